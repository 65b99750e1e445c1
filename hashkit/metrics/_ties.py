"""Tie arithmetic: closed forms over the per-distance histograms.

Expected AP (and precision, recall) over uniformly random orders inside every tie group
(``ties="aware"``, He et al., CVPR 2018), and the optimistic / pessimistic orders, computed
from the histograms of all and relevant items by distance; derivations in docs/METRICS.md.
"""

from __future__ import annotations

import numpy as np

from ._stats import _Stats


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
