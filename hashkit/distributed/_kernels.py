"""The one kernel sharding needs: ranking sums of one shard, at global positions, continued.

``rank_stats`` (docs/INTERNALS.md) walks the database in index order and forms its float sums
as running sums in that order. A shard holds a contiguous slice of the database, so its items
come in the same order; given, per query,

- ``start_all[d]`` / ``start_rel[d]``: the number of (relevant) items that precede the shard's
  first item at distance ``d`` in the one-machine stable ranking (all items at a smaller
  distance, plus those at distance ``d`` in earlier shards), from the histograms of every shard,
- ``k0``: the number of relevant items in earlier shards (the lane of the next term), and
- the running sums (eight AP lanes and eight ``ap_first`` lanes, one per cut-off bucket for AP
  and DCG) as the previous shard left them,

this kernel performs exactly the additions the one-machine kernel performs for this shard's
items, in the same order, and returns the sums it leaves. Chaining the shards in database
order therefore reproduces the one-machine floats bit for bit (floating-point addition is not
associative, so per-shard partial sums added afterwards would not). The integer outputs
(relevant and gain counts per bucket, the gain histogram) are per shard and add exactly.

Float operations are those of ``hashkit.kernels._numba._rank_stats_kernel`` (the reference the
C++ kernel follows): ``term = double(relrank) / double(pos)``, the k-th relevant item adds to
lane ``k % 8``, bucket ``b`` = smallest ``c`` with ``cutoffs[c] >= pos``,
``gain / log2(pos + 1.0)`` for DCG.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from ..kernels._numba import KernelSet, _bucket, _popcount  # noqa: F401  (helpers of the chain kernel)

prange = range

def _chain_kernel(q, db, ql, dbl, nbits, cutoffs, first_m, graded, nlabels, start_all, start_rel, k0,
                  lanes, b_ap, b_dcg, b_rel, b_gain, gain_hist, bad):
    nq = q.shape[0]
    n = db.shape[0]
    w = q.shape[1]
    lw = ql.shape[1]
    ncut = cutoffs.shape[0]
    last_cut = cutoffs[ncut - 1] if ncut > 0 else 0
    for qi in prange(nq):
        start = start_all[qi].copy()
        relstart = start_rel[qi].copy()
        k = k0[qi]
        for i in range(n):
            d = np.int64(0)
            for t in range(w):
                d += _popcount(q[qi, t] ^ db[i, t])
            if d > nbits:
                bad[qi] = 1
                d = nbits
            g = np.int64(0)
            for t in range(lw):
                g += _popcount(ql[qi, t] & dbl[i, t])
            pos = start[d] + 1
            start[d] = pos
            if g > 0:
                rr = relstart[d] + 1
                relstart[d] = rr
                term = rr / pos
                lanes[qi, k & 7] += term
                if rr <= first_m:
                    lanes[qi, 8 + (k & 7)] += term
                k += 1
                b = _bucket(cutoffs, pos) if pos <= last_cut else ncut
                if b < ncut:
                    b_rel[qi, b] += 1
                    b_ap[qi, b] += term
                    if graded:
                        b_gain[qi, b] += g
                        b_dcg[qi, b] += g / math.log2(pos + 1.0)
            if graded:
                if g > nlabels:
                    bad[qi] = 1
                    g = nlabels
                gain_hist[qi, g] += 1


_kernels = KernelSet(globals(), ("_popcount", "_bucket"), ("_chain_kernel",))


def _jit() -> SimpleNamespace:
    return _kernels.get()


def chain(q, db, ql, dbl, nbits, cutoffs, first_m, graded, nlabels, start_all, start_rel, k0, state,
          nthreads=0):
    """One shard's step of the chained ranking sums (see the module docstring).

    ``state`` is ``(lanes (Q, 16), b_ap (Q, C), b_dcg (Q, C))`` float64 as the previous shard
    left them (copied, not modified). Returns ``(state, (b_rel, b_gain, gain_hist))``: the new
    running sums and this shard's integer counts.
    """
    jit = _jit()
    nq = q.shape[0]
    ncut = cutoffs.shape[0]
    lanes, b_ap, b_dcg = (np.array(a, dtype=np.float64, copy=True) for a in state)
    b_rel = np.zeros((nq, ncut), np.int64)
    b_gain = np.zeros((nq, ncut), np.int64)
    gain_hist = np.zeros((nq, nlabels + 1 if graded else 1), np.int64)
    bad = np.zeros(nq, np.uint8)
    numba = jit.numba
    prev = numba.get_num_threads()
    most = numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(max(1, min(most if not nthreads else nthreads, most, nq)))
    try:
        jit._chain_kernel(q, db, ql, dbl, nbits, cutoffs, first_m, graded, nlabels, start_all, start_rel, k0,
                  lanes, b_ap, b_dcg, b_rel, b_gain, gain_hist, bad)
    finally:
        numba.set_num_threads(prev)
    if bad.any():
        raise ValueError("q/db: codes or labels have non-zero padding bits beyond nbits / nlabels")
    return (lanes, b_ap, b_dcg), (b_rel, b_gain, gain_hist)
