"""The field's released MAP loops, reproduced by name (``map_compat``; METRIC-VARIANTS table)."""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ._stats import gather, prepare_pair
from .ranking import _ap_values, _check_map_k, _mean

__all__ = ["map_compat", "VARIANTS"]


#: The compatibility variants of :func:`map_compat`: name -> (source it matches, summary).
VARIANTS: dict[str, tuple[str, str]] = {
    "dcmh-matlab": (
        "jiangqy/DCMH-CVPR2017: DCMH_matlab/DCMH_matlab/utils/calcMapTopkMapTopkPreTopkRecLabel.m",
        "full-ranking MAP (k=None) or its topkMap (k given); MATLAB sort = stable ties; "
        "AP@k divided by relevant items inside the top k; empty queries count 0"),
    "dcmh-python": (
        "jiangqy/DCMH-CVPR2017: DCMH_tensorflow/.../utils/calc_hammingranking.py calc_map "
        "(same in DeXie0808/GCH, lelan-li/SSAH utils/, rongchengtu1/DAPH utils/calc_hr.py)",
        "full-ranking MAP; the original sorts 0.5*(K - b B^T) with np.argsort's default "
        "(unstable) sort, hashkit uses the stable order; empty queries count 0"),
    "topk": (
        "DCMH topkMap; DAPH calc_topMap; zs-zhong/DJSRH metric.py calculate_top_map; "
        "swuxyj/DeepHash-pytorch utils/tools.py CalcTopMap",
        "MAP@k divided by relevant items inside the top k; no hit in the top k counts 0; "
        "mean over all queries"),
    "deephash-pytorch": (
        "swuxyj/DeepHash-pytorch: utils/tools.py CalcTopMap",
        "as 'topk'; k=None reproduces topk=-1, whose slice [0:-1] drops the last item "
        "(a cut-off at N-1)"),
    "hits-only": (
        "thulab/DeepHash: DeepHash/evaluation/__init__.py get_mAPs",
        "MAP@R divided by relevant items in the top R; queries with no hit in the top R are "
        "excluded from the mean (NaN when every query is)"),
    "first-min-k-r": (
        "WendellGul/DCMH utils.py calc_map_k; WangGodder/deep-cross-modal-hashing "
        "torchcmh/utils/calc_utils.py; kalenforn/clip-based-cross-modal-hash common/calc_utils.py",
        "precision at the first min(k, R) relevant items wherever they rank (k is not a "
        "cut-off; k=None means N); empty queries count 0, or make the whole MAP NaN with "
        "nan_on_empty=True (the kalenforn copy)"),
    "ugach": (
        "PKU-ICST-MIPL/UGACH_AAAI2018: UGACH-mir/map.py",
        "full-ranking MAP over the list sorted (stable) by the number of equal bits, which "
        "is the stable ascending-distance order; empty queries count 0"),
}


def map_compat(qB, rB, qL, rL, variant: str, k: int | None = None, *, nan_on_empty: bool = False,
               backend: str = "auto", nthreads: int | None = None) -> float:
    """MAP exactly as one of the field's released evaluation loops computes it.

    Each variant reproduces the published loop's numbers on the same codes, with one
    deliberate difference: ties in Hamming distance are always ordered by database index
    (stable). Loops that use ``np.argsort``'s default or ``torch.sort`` (not stable) give
    numbers that depend on the sort algorithm; hashkit gives the stable one and says so. A
    code bit of 0 (``sign(0)``) is bit 0 here (like -1), where the research loops' ``0.5 (K -
    b B^T)`` gives a half-integer distance.

    ============================  =============================================================
    variant                       definition (source in :data:`VARIANTS`)
    ============================  =============================================================
    ``"dcmh-matlab"``             DCMH MATLAB ``calcMapTopkMapTopkPreTopkRecLabel.m``: ``map``
                                  (k=None, AP over all relevant items) or ``topkMap`` (k: AP@k
                                  over the relevant items inside the top k); empty = 0; mean
                                  over all queries.
    ``"dcmh-python"``             DCMH/GCH/SSAH/DAPH ``calc_map``: full-ranking AP; empty = 0.
                                  ``k`` must be None.
    ``"topk"``                    ``calc_topMap`` / ``calculate_top_map`` / ``CalcTopMap``:
                                  AP@k over the relevant items inside the top k; no hit = 0;
                                  mean over all queries. ``k`` required.
    ``"deephash-pytorch"``        ``CalcTopMap``; ``k=None`` is its ``topk=-1``, whose slice
                                  ``gnd[0:-1]`` drops the last item: a cut-off at N-1.
    ``"hits-only"``               thulab ``get_mAPs(R=k)``: AP@k over the relevant items in the
                                  top k, mean over the queries with at least one hit in the top
                                  k only (NaN if none has). ``k`` required.
    ``"first-min-k-r"``           torchcmh / WendellGul ``calc_map_k``: mean of
                                  ``j / pos_j`` over the first ``min(k, R)`` relevant items
                                  wherever they rank (k is not a cut-off; None = N); empty = 0.
                                  ``nan_on_empty=True`` reproduces the kalenforn copy, which
                                  returns NaN for the whole MAP when any query has R == 0.
    ``"ugach"``                   UGACH ``map.py``: AP over the full list sorted (stably) by the
                                  number of equal bits; the same as the stable full-ranking MAP.
                                  ``k`` must be None.
    ============================  =============================================================

    Parameters
    ----------
    qB, rB, qL, rL : as :func:`mean_average_precision`.
    variant : a key of :data:`VARIANTS`.
    k : int in ``[1, N]`` or None, as the variant needs.
    nan_on_empty : only for ``"first-min-k-r"``.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        As :func:`mean_average_precision`; an unknown ``variant``; ``k`` given to a variant that
        takes none, or missing where one is required.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> round(map_compat(qB, rB, qL, rL, "deephash-pytorch"), 4)   # last item dropped
    0.5
    """
    V.check_choice(variant, tuple(VARIANTS), "variant")
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    n = p.db.n
    if variant in ("dcmh-python", "ugach") and k is not None:
        raise ValueError(f"k: variant {variant!r} has no cut-off, expected None, got {k!r}")
    if variant in ("topk", "hits-only") and k is None:
        raise ValueError(f"k: variant {variant!r} needs a cut-off, expected an integer in [1, {n}], got None")
    if nan_on_empty and variant != "first-min-k-r":
        raise ValueError(f"nan_on_empty: only the 'first-min-k-r' variant has it, got variant {variant!r}")
    k = _check_map_k(k, n)
    if variant == "deephash-pytorch" and k is None:
        if n == 1:
            return 0.0
        k = n - 1
    first_m = 0
    if variant == "first-min-k-r":
        first_m = n if k is None else k
        cut = ()
    else:
        cut = () if k is None else (k,)
    st = gather(p, cutoffs=cut, first_m=first_m)
    R = st.R
    if variant == "first-min-k-r":
        if nan_on_empty and (R == 0).any():
            return float("nan")
        den = np.minimum(R, first_m)
        vals = np.where(den > 0, st.rank["ap_first"] / np.maximum(den, 1), 0.0)
        return _mean(vals, None, False)
    vals = _ap_values(st, k, "index", "hashing")
    if variant == "hits-only":
        return _mean(vals, st.at("rel_at", k) > 0, False)
    return _mean(vals, None, False)
