"""Numba fallback backend: the kernel contract of ``docs/INTERNALS.md``.

Same functions, signatures, dtypes and results as the compiled ``hashkit._core`` (the
``hashkit.kernels.KernelBackend`` protocol):
``hamming``, ``topk``, ``radius``, ``hist_stats``, ``rank_stats``. Integer outputs are identical
to every other backend; float sums are formed in the same order as the C++ backend (written down
at :func:`_rank_stats_kernel`), so the two CPU backends agree bit for bit.

Importing this module is cheap and does not import Numba: the kernels are written as plain
module-level functions and compiled (``parallel=True, cache=True, nogil=True``) on the first
call, so ``import hashkit`` does not pay for Numba and a broken Numba install shows up as a
recorded backend failure at first use rather than an import error.

Memory: only ``hamming`` returns a ``(Q, N)`` array. The other kernels keep at most one ``O(N)``
buffer per chunk of queries (a chunk is processed by one thread), never a ``(Q, N)`` one.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from types import SimpleNamespace

import numpy as np

__all__ = ["hamming", "topk", "radius", "hist_stats", "rank_stats", "threading_layer"]

# Read by hashkit.kernels._select: whether Numba is installed, found without importing it.
AVAILABLE = importlib.util.find_spec("numba") is not None
REASON = "" if AVAILABLE else "ModuleNotFoundError: No module named 'numba'"

# Replaced by numba.prange when the kernels are compiled (see _build); as plain `range` the
# kernel sources stay valid Python, which keeps this module importable without Numba.
prange = range

# SWAR popcount constants as uint64 scalars: Numba freezes globals as typed constants, and any
# int64 operand would silently promote the uint64 arithmetic to float64.
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U4 = np.uint64(4)
_U56 = np.uint64(56)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


def _popcount(x):
    # Branch-free SWAR popcount. Numba exposes no CPU popcount intrinsic (only cuda.popc);
    # LLVM's AggressiveInstCombine recognises this exact pattern and emits `popcnt` when the
    # host CPU has it (checked with inspect_asm on x86-64), so nothing is lost by spelling it out.
    x = x - ((x >> _U1) & _M1)
    x = (x & _M2) + ((x >> _U2) & _M2)
    x = (x + (x >> _U4)) & _M4
    return np.int64((x * _H01) >> _U56)


def _distance(q, qi, db, i):
    # The word count is loop-invariant in every caller: spelling out W = 1 and 2 lets LLVM unswitch
    # the item loop and vectorise it (4-8x faster at W = 1 than the generic word loop).
    w = q.shape[1]
    if w == 1:
        return _popcount(q[qi, 0] ^ db[i, 0])
    if w == 2:
        return _popcount(q[qi, 0] ^ db[i, 0]) + _popcount(q[qi, 1] ^ db[i, 1])
    d = np.int64(0)
    for k in range(w):
        d += _popcount(q[qi, k] ^ db[i, k])
    return d


# Items per block in the selecting kernels: a block is first scanned by a tight loop of pure
# reductions (which LLVM vectorises; storing the distances would stop it), and only a block with
# a match is walked again, item by item. The scan is spelled out in each kernel because a call
# per block (Numba does not inline it) costs more than the scan.
_BLOCK = 1024


def _shared_labels(ql, qi, dbl, i):
    # Gain = number of shared labels; relevant <=> gain > 0 <=> (ql & dbl) != 0 in some word.
    g = np.int64(0)
    for w in range(ql.shape[1]):
        g += _popcount(ql[qi, w] & dbl[i, w])
    return g


def _bucket(cutoffs, pos):
    # The smallest c with cutoffs[c] >= pos (len(cutoffs) if none): a binary search, since C is
    # small and stays in L1 where a per-position table would miss the cache.
    lo = 0
    hi = cutoffs.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if cutoffs[mid] < pos:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _hamming_kernel(q, db, out):
    nq = q.shape[0]
    n = db.shape[0]
    for qi in prange(nq):
        for i in range(n):
            out[qi, i] = _distance(q, qi, db, i)


def _topk_kernel(q, db, nbits, k, nchunk, out_d, out_i, bad):
    nq = q.shape[0]
    n = db.shape[0]
    for c in prange(nchunk):
        dist = np.empty(n, np.int32)
        hist = np.empty(nbits + 1, np.int64)
        start = np.empty(nbits + 1, np.int64)
        for qi in range(c * nq // nchunk, (c + 1) * nq // nchunk):
            hist[:] = 0
            for i in range(n):
                d = _distance(q, qi, db, i)
                if d > nbits:
                    # Non-zero padding bits: flagged (the caller raises) and clamped, so that
                    # nothing is written out of bounds.
                    bad[qi] = 1
                    d = nbits
                dist[i] = d
                hist[d] += 1
            # Counting selection: the smallest distance `cut` whose cumulative count reaches k;
            # everything closer is taken, and the first (k - before) items at `cut` in index order.
            cum = 0
            cut = nbits
            for d in range(nbits + 1):
                start[d] = cum
                cum += hist[d]
                if cum >= k:
                    cut = d
                    break
            for i in range(n):
                d = dist[i]
                if d < cut or (d == cut and start[cut] < k):
                    p = start[d]
                    start[d] = p + 1
                    out_d[qi, p] = d
                    out_i[qi, p] = i


def _topk_select_kernel(q, db, nbits, k, cap, nchunk, out_d, out_i, bad):
    """Top-k for small k in one pass: an online counting selection with a falling threshold.

    An item arriving in index order with distance d is among the first k of the items seen so
    far iff fewer than k admitted items have distance <= d. With t = the smallest distance such
    that k admitted items lie at or below it, that is "admit iff d < t"; ``below`` counts the
    admitted items closer than t (always < k). Admitted items push out none: the candidate list
    is compacted to the current top k when it fills up, and counting-sorted by distance at the end.
    """
    nq = q.shape[0]
    n = db.shape[0]
    for c in prange(nchunk):
        h = np.empty(nbits + 2, np.int64)
        cand_i = np.empty(cap, np.int64)
        cand_d = np.empty(cap, np.int32)
        for qi in range(c * nq // nchunk, (c + 1) * nq // nchunk):
            h[:] = 0
            t = nbits + 1
            below = 0
            m = 0
            dmax = 0
            for b0 in range(0, n, _BLOCK):
                b1 = min(n, b0 + _BLOCK)
                hits = 0
                for i in range(b0, b1):
                    d = _distance(q, qi, db, i)
                    hits += d < t
                    dmax = max(dmax, d)
                if hits == 0:
                    continue
                for i in range(b0, b1):
                    d = _distance(q, qi, db, i)
                    if d >= t:
                        continue
                    h[d] += 1
                    cand_i[m] = i
                    cand_d[m] = d
                    m += 1
                    below += 1
                    while below >= k:
                        t -= 1
                        below -= h[t]
                    if m == cap:
                        m = _topk_compact(cand_i, cand_d, m, h, t, k - below)
            if dmax > nbits:
                bad[qi] = 1
            m = _topk_compact(cand_i, cand_d, m, h, t, k - below)
            # h now counts exactly the k survivors (in index order): a stable counting sort.
            cum = 0
            for d in range(t + 1):
                x = h[d]
                h[d] = cum
                cum += x
            for j in range(m):
                d = cand_d[j]
                p = h[d]
                h[d] = p + 1
                out_d[qi, p] = d
                out_i[qi, p] = cand_i[j]


def _topk_compact(cand_i, cand_d, m, h, t, take):
    # Keep every candidate closer than t and the first `take` at distance t, in index order.
    o = 0
    for j in range(m):
        d = cand_d[j]
        if d < t or (d == t and take > 0):
            if d == t:
                take -= 1
            cand_i[o] = cand_i[j]
            cand_d[o] = d
            o += 1
    h[:] = 0
    for j in range(o):
        h[cand_d[j]] += 1
    return o


def _radius_count_kernel(q, db, nbits, r, counts, bad):
    nq = q.shape[0]
    n = db.shape[0]
    for qi in prange(nq):
        # Branch-free reductions so that LLVM can vectorise the loop.
        m = 0
        dmax = 0
        for i in range(n):
            d = _distance(q, qi, db, i)
            dmax = max(dmax, d)
            m += d <= r
        counts[qi] = m
        if dmax > nbits:
            bad[qi] = 1


def _radius_fill_kernel(q, db, r, nchunk, lims, out_i, out_d):
    # Matches are written in index order into the query's output slice (the branch is rarely
    # taken, so the distance loop stays fast), then stably counting-sorted by distance in place.
    nq = q.shape[0]
    n = db.shape[0]
    for c in prange(nchunk):
        lo = c * nq // nchunk
        hi = (c + 1) * nq // nchunk
        most = 0
        for qi in range(lo, hi):
            most = max(most, lims[qi + 1] - lims[qi])
        tmp_i = np.empty(most, np.int64)
        tmp_d = np.empty(most, np.int32)
        start = np.empty(r + 1, np.int64)
        for qi in range(lo, hi):
            base = lims[qi]
            m = 0
            for b0 in range(0, n, _BLOCK):
                b1 = min(n, b0 + _BLOCK)
                hits = 0
                for i in range(b0, b1):
                    hits += _distance(q, qi, db, i) <= r
                if hits == 0:
                    continue
                for i in range(b0, b1):
                    d = _distance(q, qi, db, i)
                    if d <= r:
                        tmp_i[m] = i
                        tmp_d[m] = d
                        m += 1
            start[:] = 0
            for j in range(m):
                start[tmp_d[j]] += 1
            cum = base
            for d in range(r + 1):
                h = start[d]
                start[d] = cum
                cum += h
            for j in range(m):
                d = tmp_d[j]
                p = start[d]
                start[d] = p + 1
                out_i[p] = tmp_i[j]
                out_d[p] = d


def _relevant(ql, qi, dbl, i):
    lw = ql.shape[1]
    if lw == 1:
        return (ql[qi, 0] & dbl[i, 0]) != _U0
    for w in range(lw):
        if (ql[qi, w] & dbl[i, w]) != _U0:
            return True
    return False


def _hist_kernel(q, db, ql, dbl, nbits, hist_all, hist_rel, bad):
    # Four interleaved sub-histograms indexed by 2 * distance + relevant: consecutive items rarely
    # hit the same counter, so increments do not wait on each other through memory.
    nq = q.shape[0]
    n = db.shape[0]
    width = 2 * (nbits + 1)
    for qi in prange(nq):
        h = np.zeros(4 * width, np.int64)
        dmax = 0
        n4 = n - n % 4
        for i in range(0, n4, 4):
            d0 = _distance(q, qi, db, i)
            d1 = _distance(q, qi, db, i + 1)
            d2 = _distance(q, qi, db, i + 2)
            d3 = _distance(q, qi, db, i + 3)
            dmax = max(dmax, max(max(d0, d1), max(d2, d3)))
            h[2 * min(d0, nbits) + _relevant(ql, qi, dbl, i)] += 1
            h[width + 2 * min(d1, nbits) + _relevant(ql, qi, dbl, i + 1)] += 1
            h[2 * width + 2 * min(d2, nbits) + _relevant(ql, qi, dbl, i + 2)] += 1
            h[3 * width + 2 * min(d3, nbits) + _relevant(ql, qi, dbl, i + 3)] += 1
        for i in range(n4, n):
            d = _distance(q, qi, db, i)
            dmax = max(dmax, d)
            h[2 * min(d, nbits) + _relevant(ql, qi, dbl, i)] += 1
        if dmax > nbits:
            bad[qi] = 1
        for d in range(nbits + 1):
            a = 0
            r = 0
            for part in range(4):
                a += h[part * width + 2 * d] + h[part * width + 2 * d + 1]
                r += h[part * width + 2 * d + 1]
            hist_all[qi, d] = a
            hist_rel[qi, d] = r


def _rank_stats_kernel(q, db, ql, dbl, nbits, cutoffs, first_m, graded, nlabels,
                       nchunk, hist_all, hist_rel, ap_sum, rel_at, ap_sum_at, ap_first,
                       gain_at, dcg_at, gain_hist, bad):
    """Per query: distances and gains into O(N) buffers with the histograms (pass 1), then
    a second walk in database-index order giving each item its stable position (pass 2).

    Floating-point order (the C++ backend follows it exactly, so results are bitwise equal):
      * term(i) = double(relrank_i) / double(pos_i); relrank/pos are exact integers.
      * ap_sum: eight lanes from 0.0; the k-th relevant item in database-index order
        (k = 0, 1, ...) adds term(i) to lane k % 8; then
        ap_sum = ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). (Eight running sums, not
        one: the C++ kernel adds them with one vector instruction instead of a dependent chain.)
      * ap_first: the same lanes and fold over the terms with relrank_i <= first_m (the other
        items keep k but add nothing).
      * ap_sum_at: bucket b(pos) = smallest c with cutoffs[c] >= pos (no bucket when
        pos > cutoffs[C-1]); bucket[c] = 0.0, += term(i) in database-index order; then
        s = 0.0; for c in 0..C-1: s += bucket[c]; ap_sum_at[c] = s.
      * dcg_at: the same buckets and prefix sum with term = double(gain_i) / log2(double(pos_i + 1))
        (libm log2, a true division, no reciprocal, no fast-math) over items with gain_i > 0.
    """
    nq = q.shape[0]
    n = db.shape[0]
    ncut = cutoffs.shape[0]
    last_cut = cutoffs[ncut - 1] if ncut > 0 else 0
    for c in prange(nchunk):
        dist = np.empty(n, np.int32)
        gain = np.empty(n, np.int32)
        start = np.empty(nbits + 1, np.int64)
        relstart = np.empty(nbits + 1, np.int64)
        bucket_of_d = np.empty(nbits + 1, np.int64)
        b_rel = np.empty(ncut, np.int64)
        b_gain = np.empty(ncut, np.int64)
        b_ap = np.empty(ncut, np.float64)
        b_dcg = np.empty(ncut, np.float64)
        lanes = np.empty(16, np.float64)
        for qi in range(c * nq // nchunk, (c + 1) * nq // nchunk):
            for i in range(n):
                d = _distance(q, qi, db, i)
                if d > nbits:
                    bad[qi] = 1
                    d = nbits
                g = _shared_labels(ql, qi, dbl, i)
                dist[i] = d
                gain[i] = g
                hist_all[qi, d] += 1
                if g > 0:
                    hist_rel[qi, d] += 1
                if graded:
                    if g > nlabels:
                        bad[qi] = 1
                        g = nlabels
                    gain_hist[qi, g] += 1
            cum = 0
            cumrel = 0
            for d in range(nbits + 1):
                start[d] = cum
                relstart[d] = cumrel
                # Positions cum+1 .. cum+hist belong to distance d; when they all fall in one
                # cut-off bucket (the usual case) no item at d needs a search (-1: search).
                h = hist_all[qi, d]
                if h == 0 or cum + 1 > last_cut:
                    bucket_of_d[d] = ncut
                else:
                    lo = _bucket(cutoffs, cum + 1)
                    bucket_of_d[d] = lo if lo == _bucket(cutoffs, cum + h) else -1
                cum += h
                cumrel += hist_rel[qi, d]
            b_rel[:] = 0
            b_gain[:] = 0
            b_ap[:] = 0.0
            b_dcg[:] = 0.0
            lanes[:] = 0.0
            k = 0
            for i in range(n):
                d = dist[i]
                pos = start[d] + 1
                start[d] = pos
                g = gain[i]
                if g > 0:
                    rr = relstart[d] + 1
                    relstart[d] = rr
                    t = rr / pos
                    lanes[k & 7] += t
                    if rr <= first_m:
                        lanes[8 + (k & 7)] += t
                    k += 1
                    b = bucket_of_d[d]
                    if b < 0:
                        b = _bucket(cutoffs, pos) if pos <= last_cut else ncut
                    if b < ncut:  # past the last cut-off nothing is bucketed
                        b_rel[b] += 1
                        b_ap[b] += t
                        if graded:
                            b_gain[b] += g
                            b_dcg[b] += g / math.log2(pos + 1.0)
            ap_sum[qi] = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + (
                (lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
            ap_first[qi] = ((lanes[8] + lanes[9]) + (lanes[10] + lanes[11])) + (
                (lanes[12] + lanes[13]) + (lanes[14] + lanes[15]))
            s_rel = 0
            s_ap = 0.0
            s_gain = 0
            s_dcg = 0.0
            for cc in range(ncut):
                s_rel += b_rel[cc]
                s_ap += b_ap[cc]
                rel_at[qi, cc] = s_rel
                ap_sum_at[qi, cc] = s_ap
                if graded:
                    s_gain += b_gain[cc]
                    s_dcg += b_dcg[cc]
                    gain_at[qi, cc] = s_gain
                    dcg_at[qi, cc] = s_dcg


_HELPERS = ("_popcount", "_distance", "_shared_labels", "_relevant", "_bucket",
            "_topk_compact")
_KERNELS = ("_hamming_kernel", "_topk_kernel", "_topk_select_kernel", "_radius_count_kernel",
            "_radius_fill_kernel",
            "_hist_kernel", "_rank_stats_kernel")
class KernelSet:
    """A module's Numba kernels, compiled on first use, once, under a lock.

    Shared by every module that carries Numba kernels (this one, ``_numba_mih``,
    ``hashkit.distributed._kernels``). ``g`` is the module's globals: its ``prange`` is rebound
    to ``numba.prange`` and each helper to its compiled version in that namespace, because Numba
    resolves a kernel's globals (and freezes them) when it compiles the kernel. A helper taken
    from another module (``_popcount`` from here) is compiled from its Python source again.
    """

    def __init__(self, g: dict, helpers: tuple[str, ...], kernels: tuple[str, ...]):
        self._g, self._helpers, self._kernels = g, helpers, kernels
        self._lock = threading.Lock()
        self._compiled: SimpleNamespace | None = None

    def get(self) -> SimpleNamespace:
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = self._build()
        return self._compiled

    def _build(self) -> SimpleNamespace:
        import numba

        g = self._g
        g["prange"] = numba.prange
        helper = numba.njit(cache=True, nogil=True)
        for name in self._helpers:
            g[name] = helper(getattr(g[name], "py_func", g[name]))
        kernel = numba.njit(parallel=True, cache=True, nogil=True)
        return SimpleNamespace(numba=numba, **{name: kernel(g[name]) for name in self._kernels})


_kernels = KernelSet(globals(), _HELPERS, _KERNELS)


def _jit() -> SimpleNamespace:
    return _kernels.get()


# Below this much work (query rows x database rows x words) per thread, waking more threads costs
# more than it saves (tens of ms on a busy machine with the OpenMP layer's barriers), so small
# calls run on fewer threads. Results never depend on the thread count; tests lower this to force
# several threads onto tiny inputs.
_MIN_WORK_PER_THREAD = 1 << 17

# Numba's workqueue threading layer (what Numba falls back to where neither TBB nor OpenMP
# loads, e.g. macOS without libomp) is not thread-safe: two Python threads launching parallel
# kernels at once abort the process (SIGABRT, issue 14). Under that layer, and only there,
# launches are serialised by this lock; TBB and OpenMP run concurrent callers in parallel.
_workqueue_lock = threading.Lock()


class _threads:
    """Run a kernel on ``nthreads`` Numba threads (0 = all), restoring the caller's setting.

    At most one thread per query row and per ``_MIN_WORK_PER_THREAD`` units of work are used.
    Under the workqueue threading layer one kernel runs at a time (see ``_workqueue_lock``).
    """

    def __init__(self, nthreads, q, db):
        self.nthreads = nthreads
        self.rows = q.shape[0]
        self.work = q.shape[0] * db.shape[0] * q.shape[1]

    def __enter__(self) -> int:
        numba = _jit().numba
        nthreads = _as_int(self.nthreads, "nthreads", 0)
        most = numba.config.NUMBA_NUM_THREADS
        self.previous = numba.get_num_threads()  # also starts the threading layer: it is known now
        self.lock = _workqueue_lock if numba.threading_layer() == "workqueue" else None
        n = most if nthreads == 0 else min(nthreads, most)
        n = max(1, min(n, self.rows, self.work // max(1, _MIN_WORK_PER_THREAD)))
        if self.lock is not None:
            self.lock.acquire()
        numba.set_num_threads(n)
        return n

    def __exit__(self, *exc) -> None:
        try:
            _jit().numba.set_num_threads(self.previous)
        finally:
            if self.lock is not None:
                self.lock.release()


def threading_layer() -> str:
    """The Numba threading layer in use (or configured, before the first parallel call)."""
    numba = _jit().numba
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return f"{numba.config.THREADING_LAYER} (not started)"


def _as_int(x, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(x).__name__}")
    x = int(x)
    if x < lo or (hi is not None and x > hi):
        top = "inf" if hi is None else hi
        raise ValueError(f"{name}: expected an integer in [{lo}, {top}], got {x}")
    return x


def _words(a, name: str, width: int | None = None) -> np.ndarray:
    """The binding-level re-check: cheap, and the reason a bad call cannot crash a kernel."""
    if not isinstance(a, np.ndarray) or a.dtype != np.uint64:
        what = f"dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"{name}: expected a uint64 NumPy array, got {what}")
    if (a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1
            or (width is not None and a.shape[1] != width)):
        want = "(n >= 1, W >= 1)" if width is None else f"(n >= 1, {width})"
        raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    return a


def _pair(q, db, nbits=None):
    _words(q, "q")
    _words(db, "db", q.shape[1])
    if nbits is None:
        return None
    return _as_int(nbits, "nbits", 1, 64 * q.shape[1])


def _labels(ql, dbl, q, db):
    _words(ql, "ql")
    _words(dbl, "dbl", ql.shape[1])
    if ql.shape[0] != q.shape[0]:
        raise ValueError(f"ql: expected {q.shape[0]} rows (one per query), got {ql.shape[0]}")
    if dbl.shape[0] != db.shape[0]:
        raise ValueError(f"dbl: expected {db.shape[0]} rows (one per database item), "
                         f"got {dbl.shape[0]}")


def _raise_if_bad(bad, what: str = "codes") -> None:
    if bad.any():
        raise ValueError(f"q/db: {what} have non-zero padding bits beyond nbits "
                         f"(first bad query row {int(np.flatnonzero(bad)[0])})")


def _nchunk(nq: int, nthreads: int) -> int:
    # A few chunks per thread balance the load; each chunk owns one O(N) buffer.
    return max(1, min(nq, 4 * nthreads))


def hamming(q, db, nthreads=0):
    """All pairwise Hamming distances.

    Parameters
    ----------
    q : uint64 ndarray (Q, W), C-contiguous packed codes.
    db : uint64 ndarray (N, W), C-contiguous packed codes, same W.
    nthreads : int, 0 = all threads.

    Returns
    -------
    int32 ndarray (Q, N).

    Raises
    ------
    TypeError, ValueError
        Wrong dtype, shape or layout.

    Examples
    --------
    >>> hamming(np.array([[0b1011]], np.uint64), np.array([[0], [0b1]], np.uint64))
    array([[3, 2]], dtype=int32)
    """
    _pair(q, db)
    k = _jit()
    out = np.empty((q.shape[0], db.shape[0]), np.int32)
    with _threads(nthreads, q, db):
        k._hamming_kernel(q, db, out)
    return out


# topk: the one-pass selection (_topk_select_kernel) while k <= N / ratio, else distances into an
# O(N) buffer and one placing walk (_topk_kernel). The candidate list holds 2k + spare items
# between compactions; tests set the spare to 0 to make compactions frequent.
_TOPK_SELECT_RATIO = 8
_TOPK_SPARE = 4096


def topk(q, db, nbits, k, nthreads=0, out=None):
    """The ``k`` nearest database items per query, ordered by (distance, index).

    Counting selection over the ``nbits + 1`` possible distances: no heap, no sort.

    Returns
    -------
    (dist int32 (Q, k), idx int64 (Q, k))

    Raises
    ------
    TypeError, ValueError
        Wrong dtype/shape/layout, ``k`` outside ``[1, N]``, or non-zero padding bits.

    Examples
    --------
    >>> topk(np.array([[0]], np.uint64), np.array([[3], [1], [0]], np.uint64), 2, 2)
    (array([[0, 1]], dtype=int32), array([[2, 1]]))
    """
    nbits = _pair(q, db, nbits)
    k = _as_int(k, "k", 1, db.shape[0])
    jit = _jit()
    if out is None:
        out_d = np.empty((q.shape[0], k), np.int32)
        out_i = np.empty((q.shape[0], k), np.int64)
    else:  # checked again here: the kernels do not bounds-check their writes
        from .._validate import check_topk_out

        out_d, out_i = check_topk_out(out, q.shape[0], k)
    bad = np.zeros(q.shape[0], np.uint8)
    with _threads(nthreads, q, db) as n:
        nchunk = _nchunk(q.shape[0], n)
        if k * _TOPK_SELECT_RATIO <= db.shape[0]:
            cap = min(db.shape[0], 2 * k + _TOPK_SPARE)
            jit._topk_select_kernel(q, db, nbits, k, cap, nchunk, out_d, out_i, bad)
        else:
            jit._topk_kernel(q, db, nbits, k, nchunk, out_d, out_i, bad)
    _raise_if_bad(bad)
    return out_d, out_i


def radius(q, db, nbits, r, nthreads=0):
    """Database items within Hamming distance ``r`` (inclusive), as CSR.

    Returns
    -------
    (lims int64 (Q + 1,), idx int64 (M,), dist int32 (M,))
        Query ``i``'s items are ``idx[lims[i]:lims[i + 1]]``, ordered by (distance, index).
        ``r >= nbits`` (of any size) returns every item.

    Raises
    ------
    TypeError, ValueError
        Wrong dtype/shape/layout, ``r`` not a non-negative integer, or non-zero padding bits.

    Examples
    --------
    >>> radius(np.array([[0]], np.uint64), np.array([[3], [1], [0]], np.uint64), 2, 1)
    (array([0, 2]), array([2, 1]), array([0, 1], dtype=int32))
    """
    nbits = _pair(q, db, nbits)
    from .._validate import check_radius  # the one radius rule (any size; clamped to nbits)

    r = check_radius(r, "r", nbits)
    jit = _jit()
    nq = q.shape[0]
    counts = np.empty(nq, np.int64)
    bad = np.zeros(nq, np.uint8)
    with _threads(nthreads, q, db) as n:
        jit._radius_count_kernel(q, db, nbits, r, counts, bad)
        _raise_if_bad(bad)
        lims = np.zeros(nq + 1, np.int64)
        np.cumsum(counts, out=lims[1:])
        out_i = np.empty(int(lims[-1]), np.int64)
        out_d = np.empty(int(lims[-1]), np.int32)
        jit._radius_fill_kernel(q, db, r, _nchunk(nq, n), lims, out_i, out_d)
    return lims, out_i, out_d


def hist_stats(q, db, ql, dbl, nbits, nthreads=0):
    """Per query, the number of database items and of relevant items at each distance.

    Returns
    -------
    (hist_all int64 (Q, nbits + 1), hist_rel int64 (Q, nbits + 1))
        Relevant = query and item share at least one label (``ql & dbl`` non-zero).

    Raises
    ------
    TypeError, ValueError
        Wrong dtype/shape/layout, or non-zero padding bits.

    Examples
    --------
    >>> c = np.array([[0], [1]], np.uint64); l = np.array([[1], [2]], np.uint64)
    >>> hist_stats(c[:1], c, l[:1], l, 1)
    (array([[1, 1]]), array([[1, 0]]))
    """
    nbits = _pair(q, db, nbits)
    _labels(ql, dbl, q, db)
    jit = _jit()
    hist_all = np.zeros((q.shape[0], nbits + 1), np.int64)
    hist_rel = np.zeros((q.shape[0], nbits + 1), np.int64)
    bad = np.zeros(q.shape[0], np.uint8)
    with _threads(nthreads, q, db):
        jit._hist_kernel(q, db, ql, dbl, nbits, hist_all, hist_rel, bad)
    _raise_if_bad(bad)
    return hist_all, hist_rel


def rank_stats(q, db, ql, dbl, nbits, cutoffs, first_m, graded, nlabels, nthreads=0):
    """Retrieval statistics of the stable (distance, index) ranking, in two passes per query.

    See ``docs/INTERNALS.md`` for each output's definition and
    :func:`_rank_stats_kernel` for the floating-point summation order.

    Parameters
    ----------
    cutoffs : int64 ndarray (C,), strictly increasing, each in [1, N]; C may be 0.
    first_m : int >= 0, for ``ap_first``.
    graded : bool, also return ``gain_at``, ``dcg_at``, ``gain_hist``.
    nlabels : int, number of labels (``<= 64 * LW``).

    Returns
    -------
    dict of ndarrays: ``hist_all``, ``hist_rel`` (Q, nbits + 1) int64, ``ap_sum`` (Q,) float64,
    ``rel_at`` (Q, C) int64, ``ap_sum_at`` (Q, C) float64, ``ap_first`` (Q,) float64 and, when
    ``graded``, ``gain_at`` (Q, C) int64, ``dcg_at`` (Q, C) float64, ``gain_hist`` (Q, nlabels + 1)
    int64.

    Raises
    ------
    TypeError, ValueError
        Wrong dtype/shape/layout, bad cut-offs, or non-zero padding bits.

    Examples
    --------
    >>> c = np.array([[0], [1]], np.uint64); l = np.array([[1], [1]], np.uint64)
    >>> rank_stats(c[:1], c, l[:1], l, 1, np.array([1], np.int64), 0, False, 1)["ap_sum"]
    array([2.])
    """
    nbits = _pair(q, db, nbits)
    _labels(ql, dbl, q, db)
    nq, n = q.shape[0], db.shape[0]
    if not isinstance(cutoffs, np.ndarray) or cutoffs.dtype != np.int64 or cutoffs.ndim != 1:
        raise TypeError(f"cutoffs: expected a 1-D int64 NumPy array, got "
                        f"{getattr(cutoffs, 'dtype', type(cutoffs).__name__)}")
    if cutoffs.size and (cutoffs[0] < 1 or cutoffs[-1] > n or np.any(np.diff(cutoffs) <= 0)):
        raise ValueError(f"cutoffs: expected strictly increasing values in [1, {n}], got {cutoffs}")
    first_m = min(_as_int(first_m, "first_m", 0), n)
    if not isinstance(graded, (bool, np.bool_)):
        raise TypeError(f"graded: expected a bool, got {type(graded).__name__}")
    graded = bool(graded)
    nlabels = _as_int(nlabels, "nlabels", 0, 64 * ql.shape[1])
    ncut = cutoffs.size
    cutoffs = np.ascontiguousarray(cutoffs)
    jit = _jit()
    out = {
        "hist_all": np.zeros((nq, nbits + 1), np.int64),
        "hist_rel": np.zeros((nq, nbits + 1), np.int64),
        "ap_sum": np.zeros(nq, np.float64),
        "rel_at": np.zeros((nq, ncut), np.int64),
        "ap_sum_at": np.zeros((nq, ncut), np.float64),
        "ap_first": np.zeros(nq, np.float64),
    }
    rows = nq if graded else 0
    gain_at = np.zeros((rows, ncut), np.int64)
    dcg_at = np.zeros((rows, ncut), np.float64)
    gain_hist = np.zeros((rows, nlabels + 1), np.int64)
    bad = np.zeros(nq, np.uint8)
    with _threads(nthreads, q, db) as nt:
        jit._rank_stats_kernel(q, db, ql, dbl, nbits, cutoffs, first_m, graded, nlabels,
                               _nchunk(nq, nt), out["hist_all"], out["hist_rel"], out["ap_sum"],
                               out["rel_at"], out["ap_sum_at"], out["ap_first"],
                               gain_at, dcg_at, gain_hist, bad)
    _raise_if_bad(bad, "codes or labels")
    if graded:
        out.update(gain_at=gain_at, dcg_at=dcg_at, gain_hist=gain_hist)
    return out
