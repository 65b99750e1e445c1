"""Retrieval metrics for binary codes: the MAP family, curves, and the field's variants.

Every number here is computed from the kernel statistics of ``docs/INTERNALS.md``
(``hist_stats`` / ``rank_stats``): per-query histograms of all and relevant database items by
Hamming distance, and sums over the stable (distance, database index) ranking. No
``(Q, N)`` matrix is ever built; memory is O(N + Q * (nbits + number of cut-offs)).

Conventions (docs/METRICS.md has the formulas):

- **Relevant** = the query and the database item share at least one label (multi-hot).
  **Graded gain** (NDCG, ACG) = the number of shared labels.
- **Ranking** = ascending Hamming distance. ``ties`` says how items at equal distance are
  ordered: ``"index"`` (by database index, i.e. ``np.argsort(kind="stable")``),
  ``"aware"`` (the expectation over uniformly random orders within each tie group, He et al.,
  CVPR 2018, in closed form), ``"optimistic"`` (relevant items first within ties) and
  ``"pessimistic"`` (relevant items last).
- **AP** over a ranking = mean over the relevant retrieved positions ``p`` of
  (relevant items among the first ``p``) / ``p``. With a cut-off ``k``, ``normalize="hashing"``
  divides by the relevant items inside the top ``k`` (the hashing papers' MAP@k) and
  ``normalize="ir"`` by ``min(R, k)`` (``R`` = relevant items in the whole database).
- **Empty queries** (``R == 0``): ``empty="zero"`` counts them as 0 in the mean (what the
  reference implementations do); ``empty="skip"`` leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _validate as V

__all__ = [
    "mean_average_precision", "map_compat", "precision_at_k", "recall_at_k",
    "precision_within_radius", "pr_curve_radius", "ndcg_at_k", "acg_at_k", "VARIANTS", "TIES",
]

TIES = ("index", "aware", "optimistic", "pessimistic")
NORMALIZE = ("hashing", "ir")
EMPTY = ("zero", "skip")
AVERAGE = ("per-query", "pooled")

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


# --------------------------------------------------------------------------------------------
# Gathering the kernel statistics
# --------------------------------------------------------------------------------------------

@dataclass
class _Stats:
    """Kernel statistics of one query set against one database (host NumPy arrays)."""

    nbits: int
    n_db: int
    nlabels: int
    hist_all: np.ndarray
    hist_rel: np.ndarray
    cutoffs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rank: dict | None = None

    @property
    def n_query(self) -> int:
        return self.hist_all.shape[0]

    @property
    def R(self) -> np.ndarray:
        return self.hist_rel.sum(1)

    def col(self, k: int) -> int:
        return int(np.searchsorted(self.cutoffs, k))

    def at(self, key: str, k: int) -> np.ndarray:
        return self.rank[key][:, self.col(k)]


def _inputs(qB, rB, qL, rL):
    """Validate codes and labels once; return (q Codes, r Codes, packed qL, packed rL, nlabels)."""
    q = V.as_codes(qB, "qB")
    r = V.as_codes(rB, "rB")
    V.check_same_nbits(q, r, ("qB", "rB"))
    ql, nlq = V.as_labels(qL, "qL")
    rl, nlr = V.as_labels(rL, "rL")
    V.check_count(q.n, ql.shape[0], ("qB", "qL"))
    V.check_count(r.n, rl.shape[0], ("rB", "rL"))
    if nlq != nlr:
        raise ValueError(f"qL and rL: expected the same number of label columns, got {nlq} and {nlr}")
    return q, r, ql, rl, nlq


def _kernels(backend: str, device: bool):
    from . import _backend
    if device and backend == "auto" and not _backend.available().get("cuda", False):
        device = False  # device codes but no CUDA kernels: evaluate on the host copy instead
    return _backend.get(backend, device=device)


def _gather(qB, rB, qL, rL, *, cutoffs=(), first_m: int = 0, graded: bool = False,
            rank: bool = True, backend: str = "auto", nthreads=None, _checked=None) -> _Stats:
    """Run one kernel pass and return the statistics every metric here is computed from.

    ``cutoffs`` must already be checked against the database size. ``rank=False`` asks only
    for the distance histograms (cheaper: one pass, no ranking).
    """
    q, r, ql, rl, nlabels = _checked if _checked is not None else _inputs(qB, rB, qL, rL)
    nt = V.check_nthreads(nthreads)
    device = bool(getattr(q, "on_device", False) or getattr(r, "on_device", False))
    be = _kernels(backend, device)
    if getattr(be, "__name__", "").endswith("_cuda_backend"):
        # device codes stay where they are; the CUDA backend copies the host labels beside them
        qw, rw = q.words, r.words
    else:
        qw, rw = q.numpy().words, r.numpy().words
    qlw, rlw = ql, rl
    cut = np.unique(np.asarray(cutoffs, dtype=np.int64))
    if rank:
        out = be.rank_stats(qw, rw, qlw, rlw, q.nbits, cut, int(first_m), bool(graded), nlabels, nt)
        out = {k: _host(v) for k, v in out.items()}
        return _Stats(q.nbits, r.n, nlabels, out["hist_all"], out["hist_rel"], cut, out)
    ha, hr = be.hist_stats(qw, rw, qlw, rlw, q.nbits, nt)
    return _Stats(q.nbits, r.n, nlabels, _host(ha), _host(hr), cut, None)


def _host(x) -> np.ndarray:
    return V.to_numpy(x, "kernel output")


# --------------------------------------------------------------------------------------------
# Closed forms over the distance histograms
# --------------------------------------------------------------------------------------------

class _Harmonic:
    """H[i] = sum_{j<=i} 1/j for i = 0..n. Only differences of it are used, which are small
    against H, so H is formed in extended precision; ``H[i]`` indexes that array and
    :meth:`diff` gives H[i] - H[j] in float64 from a double-double split of it (as accurate,
    without slow extended-precision arithmetic over (Q, nbits + 1) arrays)."""

    def __init__(self, n: int):
        h = np.zeros(n + 1, dtype=np.longdouble)
        h[1:] = np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.longdouble))
        self.ld = h
        self.hi = h.astype(np.float64)
        self.lo = (h - self.hi).astype(np.float64)

    def __getitem__(self, i):
        return self.ld[i]

    def diff(self, i, j) -> np.ndarray:
        return (self.hi[i] - self.hi[j]) + (self.lo[i] - self.lo[j])


def _sum_ratio(a, c, m, H):
    """sum_{j=1..m} (a + j) / (c + j) = m - (c - a) (H[c+m] - H[c]), elementwise."""
    return m - (c - a) * (H[c + m] - H[c])


def _aware_window(a, b, r, n, m, H):
    """Expected sum of relrank/pos over the first ``m`` positions of a tie group.

    The group holds ``n`` items, ``r`` of them relevant, in uniformly random order, and starts
    after ``b`` items of which ``a`` are relevant. Position ``t`` is relevant with probability
    r/n and, given that, has (t-1)(r-1)/(n-1) relevant items before it inside the group in
    expectation, so the sum is (r/n) sum_t (a + 1 + beta (t-1)) / (b + t), beta = (r-1)/(n-1).
    """
    # The harmonic difference is formed in extended precision (it is small against H); the
    # rest is well conditioned, so float64 (extended precision there was most of tie-aware
    # MAP's time).
    hd = H.diff(b + m, b)
    n_safe = np.maximum(n, 1)
    beta = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
    inner = beta * m + (a + 1 - beta * (b + 1)) * hd
    return np.where(r > 0, (r / n_safe) * inner, 0.0)


def _prefix(h):
    return np.cumsum(h, axis=1) - h


def _group_sums(ha, hr, ties, H):
    """Per query and distance, the (expected) sum of relrank/pos over a whole tie group."""
    b, a = _prefix(ha), _prefix(hr)
    if ties == "aware":
        return _aware_window(a, b, hr, ha, ha, H)
    if ties == "optimistic":
        return _sum_ratio(a, b, hr, H)
    return _sum_ratio(a, b + ha - hr, hr, H)  # pessimistic


def _cut_group(ha, k):
    """For cut-off k: per query the tie group containing position k and the earlier totals."""
    cum = np.cumsum(ha, axis=1)
    d = np.argmax(cum >= k, axis=1)
    rows = np.arange(ha.shape[0])
    return d, rows


def _ap_full_ties(st: _Stats, ties: str) -> np.ndarray:
    """Full-ranking AP per query (0 where R == 0) for a hist-based tie rule."""
    H = _Harmonic(st.n_db)
    s = _group_sums(st.hist_all, st.hist_rel, ties, H).sum(1)
    R = st.R
    return np.where(R > 0, s / np.maximum(R, 1), 0.0).astype(np.float64)


def _hypergeom_expectation(A, a, b, r, n, m, H, chunk_elems: int = 1 << 21) -> np.ndarray:
    """E[(A + C(X)) / (a + X)] for X ~ Hypergeometric(n items, r relevant, m drawn).

    X is the number of relevant items that fall inside the cut window of the tie group that
    straddles position k; given X = x the window is a uniformly random arrangement of x
    relevant among m positions, whose expected relrank/pos sum C(x) is the same closed form
    as a whole group (:func:`_aware_window` with n -> m, r -> x). Terms with a + x == 0 are 0.
    """
    from scipy.special import gammaln

    # log C(nn, kk) from a table of log(i!) (one gammaln per database size, not per term)
    lf = gammaln(np.arange(int(np.max(n, initial=0)) + 2, dtype=np.float64) + 1.0)

    def logc(nn, kk):
        return lf[nn] - lf[kk] - lf[nn - kk]

    Q = A.shape[0]
    xlo = np.maximum(0, m - (n - r))
    xhi = np.minimum(r, m)
    span = xhi - xlo + 1
    hd = H.diff(b + m, b)
    out = np.empty(Q, dtype=np.float64)
    # Rows in chunks of at most chunk_elems terms, each as wide as its widest row.
    width_all = int(np.max(span, initial=1))
    rows = max(1, chunk_elems // width_all)
    for start in range(0, Q, rows):
        stop = min(Q, start + rows)
        sl = slice(start, stop)
        width = int(np.max(span[sl]))
        x = xlo[sl, None] + np.arange(width)[None, :]
        valid = x <= xhi[sl, None]
        xi = np.minimum(x, xhi[sl, None])
        ri, ni, mi = (v[sl, None].astype(np.int64) for v in (r, n, m))
        logp = logc(ri, xi) + logc(ni - ri, mi - xi) - logc(ni, mi)
        x = xi.astype(np.float64)
        mm = mi.astype(np.float64)
        p = np.where(valid, np.exp(logp - logp.max(axis=1, keepdims=True)), 0.0)
        p /= p.sum(axis=1, keepdims=True)
        beta = np.where(mm > 1, (x - 1) / np.maximum(mm - 1, 1), 0.0)
        aa, bb = a[sl, None].astype(np.float64), b[sl, None].astype(np.float64)
        C = (x / mm) * (beta * mm + (aa + 1 - beta * (bb + 1)) * hd[sl, None])
        den = aa + x
        val = np.where(den > 0, (A[sl, None] + C) / np.maximum(den, 1), 0.0)
        out[sl] = (p * val).sum(axis=1)
    return out


def _ap_at_ties(st: _Stats, k: int, ties: str, normalize: str) -> np.ndarray:
    """AP@k per query from the histograms for ties aware / optimistic / pessimistic."""
    ha, hr = st.hist_all, st.hist_rel
    H = _Harmonic(st.n_db)
    d, rows = _cut_group(ha, k)
    before = np.arange(ha.shape[1])[None, :] < d[:, None]
    A = np.where(before, _group_sums(ha, hr, ties, H), 0).sum(1)
    b, a = _prefix(ha)[rows, d], _prefix(hr)[rows, d]
    n, r = ha[rows, d], hr[rows, d]
    m = k - b
    R = st.R
    ir_den = np.minimum(R, k)
    if ties == "aware":
        if normalize == "ir":
            s = A + _aware_window(a, b, r, n, m, H)
            return np.where(ir_den > 0, s / np.maximum(ir_den, 1), 0.0).astype(np.float64)
        return _hypergeom_expectation(A.astype(np.float64), a, b, r, n, m, H)
    if ties == "optimistic":
        x = np.minimum(r, m)
        s = A + _sum_ratio(a, b, x, H)
    else:
        x = np.maximum(0, r - (n - m))
        s = A + _sum_ratio(a, b + m - x, x, H)
    den = ir_den if normalize == "ir" else a + x
    return np.where(den > 0, s / np.maximum(den, 1), 0.0).astype(np.float64)


def _relevant_at(st: _Stats, k: int, ties: str) -> np.ndarray:
    """(Expected) number of relevant items among the first k positions, per query."""
    if ties == "index":
        return st.at("rel_at", k).astype(np.float64)
    ha, hr = st.hist_all, st.hist_rel
    d, rows = _cut_group(ha, k)
    a, b = _prefix(hr)[rows, d], _prefix(ha)[rows, d]
    n, r = ha[rows, d], hr[rows, d]
    m = k - b
    if ties == "aware":
        x = m * r / np.maximum(n, 1)
    elif ties == "optimistic":
        x = np.minimum(r, m)
    else:
        x = np.maximum(0, r - (n - m))
    return (a + x).astype(np.float64)


# --------------------------------------------------------------------------------------------
# Per-query values from statistics (shared by the public functions and hashkit.eval)
# --------------------------------------------------------------------------------------------

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
    if per_query:
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
    scalar = np.ndim(ks) == 0 and not isinstance(ks, (list, tuple))
    return V.check_ks(ks, n, name), scalar


# --------------------------------------------------------------------------------------------
# Public metrics
# --------------------------------------------------------------------------------------------

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
    checked = _inputs(qB, rB, qL, rL)
    k = _check_map_k(k, checked[1].n)
    V.check_choice(ties, TIES, "ties")
    V.check_choice(normalize, NORMALIZE, "normalize")
    V.check_choice(empty, EMPTY, "empty")
    need_rank = ties == "index"
    st = _gather(None, None, None, None, cutoffs=() if k is None else (k,), rank=need_rank,
                 backend=backend, nthreads=nthreads, _checked=checked)
    return _mean(_ap_values(st, k, ties, normalize), _keep(st, empty), per_query)


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
    checked = _inputs(qB, rB, qL, rL)
    n = checked[1].n
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
    st = _gather(None, None, None, None, cutoffs=cut, first_m=first_m, backend=backend,
                 nthreads=nthreads, _checked=checked)
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
    checked = _inputs(qB, rB, qL, rL)
    kk, scalar = _ks(ks, checked[1].n)
    V.check_choice(ties, TIES, "ties")
    st = _gather(None, None, None, None, cutoffs=kk, rank=ties == "index", backend=backend,
                 nthreads=nthreads, _checked=checked)
    vals = np.stack([_relevant_at(st, int(k), ties) / k for k in kk], axis=1)
    return _finish_curve(vals, None, scalar, per_query)


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
    checked = _inputs(qB, rB, qL, rL)
    kk, scalar = _ks(ks, checked[1].n)
    V.check_choice(ties, TIES, "ties")
    V.check_choice(empty, EMPTY, "empty")
    st = _gather(None, None, None, None, cutoffs=kk, rank=ties == "index", backend=backend,
                 nthreads=nthreads, _checked=checked)
    R = st.R[:, None]
    hits = np.stack([_relevant_at(st, int(k), ties) for k in kk], axis=1)
    vals = np.where(R > 0, hits / np.maximum(R, 1), 0.0)
    return _finish_curve(vals, _keep(st, empty), scalar, per_query)


def _finish_curve(vals: np.ndarray, keep, scalar: bool, per_query: bool):
    if per_query:
        out = vals.astype(np.float64).copy()
        if keep is not None:
            out[~keep] = np.nan
        return out[:, 0] if scalar else out
    rows = vals if keep is None else vals[keep]
    mean = rows.mean(0) if rows.shape[0] else np.full(vals.shape[1], np.nan)
    return float(mean[0]) if scalar else mean


def _radius_counts(st: _Stats):
    """Cumulative (retrieved, relevant retrieved) per query for radius 0..nbits."""
    return np.cumsum(st.hist_all, axis=1), np.cumsum(st.hist_rel, axis=1)


def _precision_radius(st: _Stats, average: str) -> np.ndarray:
    ret, hit = _radius_counts(st)
    if average == "pooled":
        tot_ret, tot_hit = ret.sum(0), hit.sum(0)
        return np.where(tot_ret > 0, tot_hit / np.maximum(tot_ret, 1), 0.0)
    return np.where(ret > 0, hit / np.maximum(ret, 1), 0.0).mean(0)


def _recall_radius(st: _Stats, average: str, empty: str) -> np.ndarray:
    ret, hit = _radius_counts(st)
    R = st.R
    if average == "pooled":
        tot = R.sum()
        return hit.sum(0) / tot if tot > 0 else np.zeros(hit.shape[1])
    rec = np.where(R[:, None] > 0, hit / np.maximum(R, 1)[:, None], 0.0)
    if empty == "skip":
        rec = rec[R > 0]
    return rec.mean(0) if rec.shape[0] else np.full(hit.shape[1], np.nan)


def precision_within_radius(qB, rB, qL, rL, r: int = 2, average: str = "per-query",
                            backend: str = "auto", nthreads: int | None = None) -> float:
    """Precision of hash lookup within Hamming radius ``r`` (items at distance ``<= r``).

    - ``average="per-query"``: mean over queries of (relevant within r) / (retrieved within r),
      a query retrieving nothing counting as precision 0 (thulab/DeepHash
      ``get_precision_recall_by_Hamming_Radius``).
    - ``average="pooled"``: (relevant pairs within r) / (pairs within r) over all queries
      together (DCMH MATLAB ``calcPreRecRadiusLabel.m``, where radius r is entry r+1; 0 when
      no pair is within r, its ``/(x + eps)``).

    Ties play no role: a radius takes whole tie groups. ``r >= nbits`` retrieves everything.

    Parameters
    ----------
    qB, rB, qL, rL : as :func:`mean_average_precision`.
    r : int >= 0.
    average : ``"per-query"`` | ``"pooled"``.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        As :func:`mean_average_precision`; a negative ``r``; an unknown ``average``.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> precision_within_radius(qB, rB, qL, rL, r=1)
    0.5
    """
    checked = _inputs(qB, rB, qL, rL)
    r = V.check_radius(r, "r")
    V.check_choice(average, AVERAGE, "average")
    st = _gather(None, None, None, None, rank=False, backend=backend, nthreads=nthreads,
                 _checked=checked)
    return float(_precision_radius(st, average)[min(r, st.nbits)])


def pr_curve_radius(qB, rB, qL, rL, average: str = "pooled", empty: str = "zero",
                    backend: str = "auto", nthreads: int | None = None) -> dict:
    """Precision and recall of hash lookup at every Hamming radius ``0..nbits``.

    At radius ``r`` the retrieved set is every item at distance ``<= r``. Precision at a radius
    that retrieves nothing is 0, as in both reference implementations (DCMH MATLAB
    ``calcPreRecRadiusLabel.m``'s ``/(x + eps)``; thulab ``..._Hamming_Radius_All`` leaves 0).
    ``average="pooled"`` sums pairs over all queries (DCMH MATLAB: precision = good pairs /
    pairs, recall = good pairs / all relevant pairs); ``"per-query"`` averages per-query
    precision and recall (recall of a query with ``R == 0`` is 0 with ``empty="zero"``, or the
    query is left out of the recall mean with ``empty="skip"``). Note the MATLAB loop stops at
    the largest observed distance minus one; hashkit always returns every radius.

    Parameters
    ----------
    qB, rB, qL, rL : as :func:`mean_average_precision`.
    average : ``"pooled"`` | ``"per-query"``.
    empty : ``"zero"`` | ``"skip"``.

    Returns
    -------
    dict with ``"radius"`` int64 ``(nbits+1,)``, ``"precision"`` and ``"recall"`` float64
    ``(nbits+1,)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`mean_average_precision`; an unknown ``average`` / ``empty``.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> pr_curve_radius(qB, rB, qL, rL)["recall"].tolist()
    [0.0, 0.5, 0.5, 0.5, 1.0]
    """
    checked = _inputs(qB, rB, qL, rL)
    V.check_choice(average, AVERAGE, "average")
    V.check_choice(empty, EMPTY, "empty")
    st = _gather(None, None, None, None, rank=False, backend=backend, nthreads=nthreads,
                 _checked=checked)
    return {"radius": np.arange(st.nbits + 1, dtype=np.int64),
            "precision": _precision_radius(st, average),
            "recall": _recall_radius(st, average, empty)}


def _ideal_dcg(gain_hist: np.ndarray, k: int) -> np.ndarray:
    """Ideal DCG@k per query: items sorted by gain descending, from the gain histogram."""
    disc = np.zeros(k + 1)
    disc[1:] = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    desc = gain_hist[:, ::-1]                                   # gain L, L-1, ..., 0
    gains = np.arange(gain_hist.shape[1] - 1, -1, -1, dtype=np.float64)
    end = np.minimum(np.cumsum(desc, axis=1), k)
    start = np.minimum(np.cumsum(desc, axis=1) - desc, k)
    return ((disc[end] - disc[start]) * gains[None, :]).sum(1)


def _ndcg_values(st: _Stats, k: int) -> np.ndarray:
    ideal = _ideal_dcg(st.rank["gain_hist"], k)
    dcg = st.at("dcg_at", k)
    return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0)


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
    checked = _inputs(qB, rB, qL, rL)
    kk, scalar = _ks(ks, checked[1].n)
    V.check_choice(empty, EMPTY, "empty")
    st = _gather(None, None, None, None, cutoffs=kk, graded=True, backend=backend,
                 nthreads=nthreads, _checked=checked)
    vals = np.stack([_ndcg_values(st, int(k)) for k in kk], axis=1)
    return _finish_curve(vals, _keep(st, empty), scalar, per_query)


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
    checked = _inputs(qB, rB, qL, rL)
    kk, scalar = _ks(ks, checked[1].n)
    st = _gather(None, None, None, None, cutoffs=kk, graded=True, backend=backend,
                 nthreads=nthreads, _checked=checked)
    vals = np.stack([st.at("gain_at", int(k)) / k for k in kk], axis=1)
    return _finish_curve(vals, None, scalar, per_query)
