"""Ranking metrics: MAP / MAP@k under every tie rule, precision and recall at k, NDCG and ACG."""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ._stats import _Stats, gather, prepare_pair
from ._ties import _ap_at_ties, _ap_full_ties, _relevant_at

__all__ = ["mean_average_precision", "precision_at_k", "recall_at_k", "ndcg_at_k", "acg_at_k",
           "TIES", "NORMALIZE", "EMPTY"]


TIES = ("index", "aware", "optimistic", "pessimistic")


NORMALIZE = ("hashing", "ir")


EMPTY = ("zero", "skip")


def _ap_values(st: _Stats, k: int | None, ties: str, normalize: str) -> np.ndarray:
    R = st.R
    if k is None or (k >= st.n_db and ties == "index"):
        if ties == "index":
            return np.where(R > 0, st.rank["ap_sum"] / np.maximum(R, 1), 0.0)
        return _ap_full_ties(st, ties)
    if ties == "index":
        s, hits = st.at("ap_sum_at", k), st.at("rel_at", k)
        den = hits if normalize == "hashing" else np.minimum(R, k)
        return np.where(den > 0, s / np.maximum(den, 1), 0.0)
    return _ap_at_ties(st, k, ties, normalize)


def _mean(values: np.ndarray, keep: np.ndarray | None, per_query: bool):
    """Mean of ``values`` over the rows in ``keep`` (all when None); NaN for no rows."""
    if V.check_bool(per_query, "per_query"):
        out = values.astype(np.float64).copy()
        if keep is not None:
            out[~keep] = np.nan
        return out
    if keep is not None:
        values = values[keep]
    return float(values.mean()) if values.size else float("nan")


def _keep(st: _Stats, empty: str):
    return st.R > 0 if empty == "skip" else None


def _check_map_k(k, n):
    return None if k is None else V.check_k(k, n, "k")


def _ks(ks, n, name="ks"):
    """(sorted unique cut-offs, whether a scalar was given)."""
    try:
        scalar = np.ndim(ks) == 0 and not isinstance(ks, (list, tuple))
    except (ValueError, TypeError):  # a ragged list: NumPy cannot even count its dimensions
        raise ValueError(f"{name}: expected one or more integer cut-offs, got {V.describe(ks)}") from None
    return V.check_ks(ks, n, name), scalar


def mean_average_precision(qB, rB, qL, rL, k: int | None = None, ties: str = "index",
                           normalize: str = "hashing", empty: str = "zero", backend: str = "auto",
                           nthreads: int | None = None, per_query: bool = False):
    r"""Mean average precision of Hamming ranking, optionally cut at ``k`` (MAP / MAP@k).

    A drop-in replacement for the ``calc_map`` / ``calc_topMap`` copied across the field, with
    the tie order and the normalisation named instead of implied.

    Definition. For a query with ``R`` relevant database items (sharing at least one label),
    rank the database by ascending Hamming distance, ordering equal distances by ``ties``.
    Let ``rel(p)`` be 1 when position ``p`` is relevant and ``P(p)`` the fraction of relevant
    items among the first ``p``. Then

    - ``k=None``: ``AP = sum_p rel(p) P(p) / R`` over the whole ranking;
    - ``k`` given: ``AP@k = sum_{p<=k} rel(p) P(p) / D`` with ``D`` = relevant items inside the
      top ``k`` (``normalize="hashing"``, the hashing papers' convention; AP@k = 0 when there
      are none) or ``D = min(R, k)`` (``normalize="ir"``).

    ``ties="index"`` orders a tie by database index (= ``np.argsort(dist, kind="stable")``);
    ``"aware"`` returns the expectation of AP over uniformly random orders within every tie
    group (He et al., CVPR 2018), exactly, in closed form from the distance histograms; with a
    cut-off and ``normalize="hashing"`` the denominator itself is random (the number of
    relevant items of the straddling tie group that fall inside the top ``k`` is
    hypergeometric) and the expectation is taken exactly over it. ``"optimistic"`` /
    ``"pessimistic"`` put relevant items first / last within each tie: for the full ranking and
    for ``normalize="ir"`` they bound every tie order (``pessimistic <= index, aware <=
    optimistic``); with ``k`` and ``normalize="hashing"`` they are still the two extreme
    orders but not bounds, because adding a relevant item at a low precision lowers a mean.

    The MAP is the mean of AP over queries; queries with ``R == 0`` count as 0
    (``empty="zero"``, as the reference code does) or are left out (``empty="skip"``; NaN when
    no query remains).

    Parameters
    ----------
    qB, rB : codes ``(Q, nbits)`` / ``(N, nbits)`` as ±1, {0, 1} or bool arrays (NumPy, PyTorch,
        CuPy), packed ``uint64`` words, or :class:`hashkit.Codes`. Values > 0 are bit 1.
    qL, rL : multi-hot labels ``(Q, L)`` / ``(N, L)`` of 0/1 (or 1-D class ids). Not modified.
    k : int in ``[1, N]`` or None (full ranking).
    ties : ``"index"`` | ``"aware"`` | ``"optimistic"`` | ``"pessimistic"``.
    normalize : ``"hashing"`` | ``"ir"`` (only matters with ``k``).
    empty : ``"zero"`` | ``"skip"``.
    backend : ``"auto"`` | ``"cpp"`` | ``"numba"`` | ``"cuda"``.
    nthreads : None or 0 for every core, else a thread count.
    per_query : return the ``(Q,)`` float64 AP of each query instead of the mean (NaN marks
        queries that ``empty="skip"`` leaves out).

    Returns
    -------
    float, or float64 ndarray ``(Q,)`` when ``per_query``.

    Raises
    ------
    TypeError, ValueError
        Codes or labels of the wrong type/shape/values (labels not 0/1, NaN), different code
        lengths, codes and labels of different counts, ``k`` outside ``[1, N]``, an unknown
        ``ties`` / ``normalize`` / ``empty`` / ``backend``.
    RuntimeError
        The requested backend is not available (the message says why).

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> round(mean_average_precision(qB, rB, qL, rL), 4)    # relevant at positions 2 and 3
    0.5833
    >>> round(mean_average_precision(qB, rB, qL, rL, k=2), 4)
    0.5
    """
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    k = _check_map_k(k, p.db.n)
    V.check_choice(ties, TIES, "ties")
    V.check_choice(normalize, NORMALIZE, "normalize")
    V.check_choice(empty, EMPTY, "empty")
    need_rank = ties == "index"
    st = gather(p, cutoffs=() if k is None else (k,), rank=need_rank)
    return _mean(_ap_values(st, k, ties, normalize), _keep(st, empty), per_query)


def precision_at_k(qB, rB, qL, rL, ks, ties: str = "index", backend: str = "auto",
                   nthreads: int | None = None, per_query: bool = False):
    """Precision at cut-off ``k``: relevant items among the first ``k`` positions, divided by ``k``.

    The ranking is by ascending Hamming distance with ties ordered by ``ties`` (``"aware"`` is
    the expectation over random orders within ties: the tie group straddling position ``k``
    contributes ``m r / n`` for ``m`` of its ``n`` items inside, ``r`` relevant). Every query
    counts, including those with no relevant item (precision 0), as in the DCMH MATLAB
    ``topkPre``.

    Parameters
    ----------
    qB, rB, qL, rL : as :func:`mean_average_precision`.
    ks : int or sequence of ints in ``[1, N]`` (sorted and de-duplicated).
    ties : ``"index"`` | ``"aware"`` | ``"optimistic"`` | ``"pessimistic"``.
    per_query : return ``(Q,)`` (int ``ks``) or ``(Q, C)`` values instead of the mean.

    Returns
    -------
    float for an int ``ks``, else float64 ndarray ``(C,)`` in ascending ``k``.

    Raises
    ------
    TypeError, ValueError
        As :func:`mean_average_precision`; a cut-off outside ``[1, N]``.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> precision_at_k(qB, rB, qL, rL, [1, 2, 3]).round(4).tolist()
    [0.0, 0.5, 0.6667]
    """
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    kk, scalar = _ks(ks, p.db.n)
    V.check_choice(ties, TIES, "ties")
    st = gather(p, cutoffs=kk, rank=ties == "index")
    return _finish_curve(_precision_values(st, kk, ties), None, scalar, per_query)


def recall_at_k(qB, rB, qL, rL, ks, ties: str = "index", empty: str = "zero",
                backend: str = "auto", nthreads: int | None = None, per_query: bool = False):
    """Recall at cut-off ``k``: relevant items among the first ``k`` positions, divided by ``R``.

    Ties as in :func:`precision_at_k`. Queries with ``R == 0`` count as recall 0
    (``empty="zero"``, the DCMH MATLAB ``topkRec`` skips their sum but divides by all queries)
    or are left out (``empty="skip"``).

    Parameters
    ----------
    qB, rB, qL, rL, ks, ties, per_query : as :func:`precision_at_k`.
    empty : ``"zero"`` | ``"skip"``.

    Returns
    -------
    float for an int ``ks``, else float64 ndarray ``(C,)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`precision_at_k`.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> recall_at_k(qB, rB, qL, rL, 2)
    0.5
    """
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    kk, scalar = _ks(ks, p.db.n)
    V.check_choice(ties, TIES, "ties")
    V.check_choice(empty, EMPTY, "empty")
    st = gather(p, cutoffs=kk, rank=ties == "index")
    return _finish_curve(_recall_values(st, kk, ties), _keep(st, empty), scalar, per_query)


def _precision_values(st: _Stats, ks, ties: str) -> np.ndarray:
    """Precision per query and cut-off ``(Q, C)``: (expected) relevant among the first k, over k."""
    return np.stack([_relevant_at(st, int(k), ties) / k for k in ks], axis=1)


def _recall_values(st: _Stats, ks, ties: str) -> np.ndarray:
    """Recall per query and cut-off ``(Q, C)``; 0 for queries with no relevant item."""
    R = st.R[:, None]
    hits = np.stack([_relevant_at(st, int(k), ties) for k in ks], axis=1)
    return np.where(R > 0, hits / np.maximum(R, 1), 0.0)


def _finish_curve(vals: np.ndarray, keep, scalar: bool, per_query: bool):
    if V.check_bool(per_query, "per_query"):
        out = vals.astype(np.float64).copy()
        if keep is not None:
            out[~keep] = np.nan
        return out[:, 0] if scalar else out
    rows = vals if keep is None else vals[keep]
    mean = rows.mean(0) if rows.shape[0] else np.full(vals.shape[1], np.nan)
    return float(mean[0]) if scalar else mean


def _ideal_dcg(gain_hist: np.ndarray, k: int) -> np.ndarray:
    """Ideal DCG@k per query: items sorted by gain descending, from the gain histogram."""
    disc = np.zeros(k + 1)
    disc[1:] = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    desc = gain_hist[:, ::-1]                                   # gain L, L-1, ..., 0
    gains = np.arange(gain_hist.shape[1] - 1, -1, -1, dtype=np.float64)
    end = np.minimum(np.cumsum(desc, axis=1), k)
    start = np.minimum(np.cumsum(desc, axis=1) - desc, k)
    return ((disc[end] - disc[start]) * gains[None, :]).sum(1)


def _ndcg_values(st: _Stats, ks) -> np.ndarray:
    """NDCG per query and cut-off ``(Q, C)`` (0 where the ideal DCG is 0)."""
    cols = []
    for k in ks:
        ideal = _ideal_dcg(st.rank["gain_hist"], int(k))
        dcg = st.at("dcg_at", int(k))
        cols.append(np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0))
    return np.stack(cols, axis=1)


def _acg_values(st: _Stats, ks) -> np.ndarray:
    """ACG per query and cut-off ``(Q, C)``: mean gain over the first k positions."""
    return np.stack([st.at("gain_at", int(k)) / k for k in ks], axis=1)


def ndcg_at_k(qB, rB, qL, rL, ks, empty: str = "zero", backend: str = "auto",
              nthreads: int | None = None, per_query: bool = False):
    r"""Normalised discounted cumulative gain at ``k`` with graded relevance.

    Gain of a database item = number of labels it shares with the query. Over the stable
    (distance, index) ranking, ``DCG@k = sum_{p<=k} gain(p) / log2(p + 1)`` (linear gain);
    the ideal ``IDCG@k`` sorts the whole database by gain, descending (computed from the
    per-query gain histogram). ``NDCG@k = DCG@k / IDCG@k``; a query with no relevant item
    (IDCG = 0) counts as 0 (``empty="zero"``) or is left out (``empty="skip"``).

    Parameters
    ----------
    qB, rB, qL, rL, ks, per_query : as :func:`precision_at_k`.
    empty : ``"zero"`` | ``"skip"``.

    Returns
    -------
    float for an int ``ks``, else float64 ndarray ``(C,)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`precision_at_k`.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 1]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> round(ndcg_at_k(qB, rB, qL, rL, 3), 4)
    0.8403
    """
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    kk, scalar = _ks(ks, p.db.n)
    V.check_choice(empty, EMPTY, "empty")
    st = gather(p, cutoffs=kk, graded=True)
    return _finish_curve(_ndcg_values(st, kk), _keep(st, empty), scalar, per_query)


def acg_at_k(qB, rB, qL, rL, ks, backend: str = "auto", nthreads: int | None = None,
             per_query: bool = False):
    """Average cumulative gain at ``k``: mean number of shared labels over the first ``k`` items.

    ``ACG@k = (1/k) sum_{p<=k} gain(p)`` over the stable (distance, index) ranking, gain = number
    of labels shared with the query; every query counts.

    Parameters
    ----------
    qB, rB, qL, rL, ks, per_query : as :func:`precision_at_k`.

    Returns
    -------
    float for an int ``ks``, else float64 ndarray ``(C,)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`precision_at_k`.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 1]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> acg_at_k(qB, rB, qL, rL, 3)
    1.3333333333333333
    """
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    kk, scalar = _ks(ks, p.db.n)
    st = gather(p, cutoffs=kk, graded=True)
    return _finish_curve(_acg_values(st, kk), None, scalar, per_query)
