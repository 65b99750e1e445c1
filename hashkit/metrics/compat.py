"""The field's released MAP loops, reproduced by name (``map_compat``; METRIC-VARIANTS table)."""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ._stats import gather, prepare_pair
from .ranking import _ap_values, _check_map_k, _mean

__all__ = ["map_compat", "dcmh_matlab", "VARIANTS"]


#: The compatibility variants of :func:`map_compat`: name -> (source it matches, summary).
VARIANTS: dict[str, tuple[str, str]] = {
    "dcmh-matlab": (
        "jiangqy/DCMH-CVPR2017: DCMH_matlab/DCMH_matlab/utils/calcMapTopkMapTopkPreTopkRecLabel.m",
        "full-ranking MAP (k=None) or its topkMap (k given); MATLAB sort = stable ties; "
        "AP@k divided by relevant items inside the top k; empty queries count 0"),
    "dcmh-matlab-bug": (
        "jiangqy/DCMH-CVPR2017: DCMH_matlab/DCMH_matlab/utils/calcMapTopkMapTopkPreTopkRecLabel.m "
        "with utils/hammingDist.m and compactbit.m, as released",
        "the released MATLAB numbers exactly, bug included: hammingDist.m indexes its byte table "
        "with a uint8 (bit_in_char(y+1)), so a byte whose 8 bits all differ counts 7 (uint8 "
        "255 + 1 saturates); bytes are bits 8b..8b+7 as compactbit packs them; otherwise as "
        "'dcmh-matlab'"),
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
    ``"dcmh-matlab-bug"``         the same MATLAB loop over the distances its ``hammingDist.m``
                                  really returns: a code byte (bits 8b..8b+7, as ``compactbit.m``
                                  packs them) whose 8 bits all differ counts 7, not 8 (its
                                  table is indexed by the uint8 ``y + 1``, which saturates at
                                  255). Reproduces the released numbers; :func:`dcmh_matlab`
                                  gives its whole output (PR curve included).
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
    V.check_bool(nan_on_empty, "nan_on_empty")
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    return compat_prepared(p, variant, k, nan_on_empty, gather)


def compat_prepared(p, variant: str, k, nan_on_empty: bool, gather_fn) -> float:
    """:func:`map_compat` on a prepared pair, with the statistics from ``gather_fn(p, cutoffs=,
    first_m=)`` (one machine, or :mod:`hashkit.distributed`'s sharded gather). The
    ``dcmh-matlab-bug`` replica runs its NumPy loop on ``p`` here in either case."""
    n = p.db.n
    if variant == "dcmh-matlab-bug":
        k = _check_map_k(k, n)
        res = _matlab_loop(p, () if k is None else (k,), bug=True, radius=False)
        return res["map"] if k is None else float(res["topkMap"][0])
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
    st = gather_fn(p, cutoffs=cut, first_m=first_m)
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


# ----------------------------------------------------------------------- DCMH MATLAB, as released

def dcmh_matlab(qB, rB, qL, rL, topk=None, *, hammingdist: str = "bug", backend: str = "auto",
                nthreads: int | None = None) -> dict:
    """The whole output of DCMH's MATLAB evaluation: ``calcMapTopkMapTopkPreTopkRecLabel.m`` and
    ``calcPreRecRadiusLabel.m`` (jiangqy/DCMH-CVPR2017, ``DCMH_matlab/DCMH_matlab/utils/``).

    ``hammingdist="bug"`` uses the distances the released ``hammingDist.m`` returns: it looks
    each XOR byte up in a popcount table with ``bit_in_char(y + 1)`` where ``y`` is uint8, so
    ``255 + 1`` saturates to 255 and a byte whose 8 bits all differ counts 7. A byte is bits
    ``8b .. 8b+7`` of the code (``compactbit.m`` packs them so); only whole bytes can be all
    ones. ``hammingdist="correct"`` is the same loop on true Hamming distances (MAP and topk
    values then equal ``map_compat(..., "dcmh-matlab")``, ``precision_at_k``, ``recall_at_k``,
    and ``Pre`` / ``Rec`` the pooled :func:`pr_curve_radius` cut as below).

    Exactly as the MATLAB code: ranking by MATLAB's stable ``sort``; a query with no relevant
    item adds 0 to every sum and counts in the division by the number of queries; ``topkPre`` /
    ``topkRec`` / ``topkMap`` add nothing for a query with no relevant item in the top k;
    ``Pre`` / ``Rec`` have one entry per radius ``0 .. maxHamm - 1`` (``maxHamm`` = the largest
    distance over all pairs, so the radius that retrieves everything is missing), ``Pre`` =
    good pairs / (pairs + eps), ``Rec`` = good pairs / all good pairs (NaN when there are none).

    Cost: the bug reading works on distance blocks of about 4M pairs in NumPy (no ``(Q, N)``
    matrix): 3.0-4.5 s at MIRFLICKR scale (Q = 2,000, N = 18,015, 16-64 bits, 2-core AMD EPYC
    Zen 3, AVX2 path), against 0.23-0.26 s for the correct reading, which is one kernel pass.

    Parameters
    ----------
    qB, rB, qL, rL : as :func:`mean_average_precision`.
    topk : None, an int or ints in ``[1, N]`` (ascending, as the MATLAB code requires).
    hammingdist : ``"bug"`` (as released) | ``"correct"``.

    Returns
    -------
    dict with ``map`` (float), ``Pre``, ``Rec`` (float64 ``(maxHamm,)``) and, when ``topk`` is
    given, ``topkMap``, ``topkPre``, ``topkRec`` (float64, one per cut-off).

    Raises
    ------
    TypeError, ValueError
        As :func:`mean_average_precision`; cut-offs outside ``[1, N]`` or not ascending; an
        unknown ``hammingdist``.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1] * 8]); rB = np.array([[-1] * 8, [-1] * 7 + [1]])   # distances 8 and 7
    >>> qL = np.array([[1]]); rL = np.array([[1], [0]])
    >>> dcmh_matlab(qB, rB, qL, rL, hammingdist="bug")["map"]   # 8 counts 7: a tie, index 0 first
    1.0
    >>> dcmh_matlab(qB, rB, qL, rL, hammingdist="correct")["map"]
    0.5
    """
    V.check_choice(hammingdist, ("bug", "correct"), "hammingdist")
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    ks: tuple = ()
    if topk is not None:
        arr = np.atleast_1d(V.to_numpy(topk, "topk"))
        checked = V.check_ks(arr, p.db.n, "topk")
        if arr.size != checked.size or np.any(np.diff(arr.astype(np.int64)) <= 0):
            raise ValueError(f"topk: expected ascending, distinct cut-offs (the MATLAB code's "
                             f"contract), got {arr.tolist()}")
        ks = tuple(int(x) for x in checked)
    if hammingdist == "bug":
        return _matlab_loop(p, ks, bug=True, radius=True)
    st = gather(p, cutoffs=ks)
    R = st.R
    out = {"map": _mean(np.where(R > 0, st.rank["ap_sum"] / np.maximum(R, 1), 0.0), None, False)}
    if ks:
        hits = st.rank["rel_at"].astype(np.float64)
        ok = (hits > 0) & (R[:, None] > 0)
        out["topkMap"] = np.where(ok, st.rank["ap_sum_at"] / np.maximum(hits, 1), 0.0).sum(0) / p.q.n
        out["topkPre"] = np.where(ok, hits / np.asarray(ks, np.float64), 0.0).sum(0) / p.q.n
        out["topkRec"] = np.where(ok, hits / np.maximum(R, 1)[:, None], 0.0).sum(0) / p.q.n
    out.update(_matlab_pr(st.hist_all.sum(0), st.hist_rel.sum(0)))
    return out


def _matlab_pr(pairs_at: np.ndarray, good_at: np.ndarray) -> dict:
    """calcPreRecRadiusLabel.m from pooled per-distance counts of pairs and good pairs."""
    present = np.flatnonzero(pairs_at)
    max_hamm = int(present[-1]) if present.size else 0
    ret = np.cumsum(pairs_at)[:max_hamm].astype(np.float64)
    good = np.cumsum(good_at)[:max_hamm].astype(np.float64)
    total = float(good_at.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = good / total
    return {"Pre": good / (ret + np.finfo(np.float64).eps), "Rec": rec}


_BLOCK_PAIRS = 1 << 22


def _matlab_loop(p, ks, *, bug: bool, radius: bool) -> dict:
    """The MATLAB loops over distances with hammingDist.m's saturation, one query block at a time."""
    q_words = V.to_numpy(p.q.words, "qB")
    db_words = V.to_numpy(p.db.words, "rB")
    ql, dbl = V.to_numpy(p.ql, "qL"), V.to_numpy(p.dbl, "rL")
    nbits, n, nq = p.nbits, p.db.n, p.q.n
    full = nbits // 8  # a partial last byte has zero padding bits, so it is never all ones
    q_bytes = q_words.view(np.uint8)[:, :full]
    db_bytes = np.ascontiguousarray(db_words.view(np.uint8)[:, :full].T)  # (full, N): one row per byte
    ks_arr = np.asarray(ks, dtype=np.int64)
    mp = 0.0
    tmap, tpre, trec = (np.zeros(len(ks)) for _ in range(3))
    pairs_at = np.zeros(nbits + 1, np.int64)
    good_at = np.zeros(nbits + 1, np.int64)
    pos = np.arange(1, n + 1, dtype=np.float64)
    step = max(1, _BLOCK_PAIRS // n)
    for i0 in range(0, nq, step):
        i1 = min(nq, i0 + step)
        d = V.to_numpy(p.kernels.hamming(p.q.words[i0:i1], p.db.words, p.nthreads), "distances")
        d = d.astype(np.int16)
        if bug:
            for b in range(full):
                d -= (db_bytes[b][None, :] == (~q_bytes[i0:i1, b])[:, None])
        rel = np.zeros(d.shape, dtype=bool)
        for w in range(ql.shape[1]):
            rel |= (ql[i0:i1, w][:, None] & dbl[:, w][None, :]) != 0
        if radius:
            pairs_at += np.bincount(d.ravel(), minlength=nbits + 1)[: nbits + 1]
            good_at += np.bincount(d[rel], minlength=nbits + 1)[: nbits + 1]
        order = np.argsort(d, axis=1, kind="stable")  # MATLAB sort: stable
        gnd = np.take_along_axis(rel, order, axis=1)
        cum = np.cumsum(gnd, axis=1, dtype=np.float64)
        terms = np.where(gnd, cum / pos, 0.0)
        tsum = cum[:, -1]
        has = tsum > 0
        # mean(count ./ tindex) summed in index order, as MATLAB's mean does
        mp += float((terms.sum(1)[has] / tsum[has]).sum())
        for j, k in enumerate(ks_arr):
            hits = cum[:, k - 1]
            ok = has & (hits > 0)
            tmap[j] += float((terms[:, :k].sum(1)[ok] / hits[ok]).sum())
            tpre[j] += float((hits[ok] / k).sum())
            trec[j] += float((hits[ok] / tsum[ok]).sum())
    out = {"map": mp / nq}
    if len(ks):
        out.update(topkMap=tmap / nq, topkPre=tpre / nq, topkRec=trec / nq)
    if radius:
        out.update(_matlab_pr(pairs_at, good_at))
    return out
