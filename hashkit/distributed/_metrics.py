"""The metrics of :mod:`hashkit.metrics` on a database sharded over Dask workers, exactly.

Each function takes the arguments of its namesake in :mod:`hashkit.metrics` plus ``client``
(a ``dask.distributed.Client``) and ``nshards`` (a number of contiguous shards, or their sizes),
and returns the same value, bit for bit. How (docs/SCALE.md has the derivation):

1. every shard counts its items and its relevant items at each distance (``hist_stats``);
   summed, these are the one-machine histograms, so every histogram metric (the tie rules
   aware / optimistic / pessimistic, precision and recall within a radius, PR by radius) is
   exact at once;
2. for the sums over the stable (distance, index) ranking, shard ``s``'s item at distance ``d``
   sits after every item at a smaller distance and after the items at ``d`` in shards before
   ``s``: each shard starts its counters at those offsets and so gives every item its global
   position and relevant rank; the float sums (AP lanes, cut-off buckets, DCG) are carried from
   shard to shard in database order, so the additions are the one-machine ones in the same
   order. The chain runs per block of queries, so the shards work on different blocks at once.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..metrics._stats import _Stats, prepare_pair
from ..metrics.compat import VARIANTS, compat_prepared
from ..metrics.radius import AVERAGE, DEFAULT_AVERAGE, _precision_radius, _recall_radius
from ..metrics.ranking import (EMPTY, NORMALIZE, TIES, _acg_values, _ap_values, _check_map_k, _finish_curve,
                               _keep, _ks, _mean, _ndcg_values, _precision_values, _recall_values)
from ..metrics.report import assemble, check_report_options
from . import _worker as W
from ._common import check_client, gather_all, offsets, shard_sizes, workers

__all__ = ["mean_average_precision", "map_compat", "precision_at_k", "recall_at_k", "precision_within_radius",
           "pr_curve_radius", "ndcg_at_k", "acg_at_k", "report"]

# Queries per block of the chained ranking pass (each block is one task per shard).
_BLOCK_MIN = 64


def _fold(l8: np.ndarray) -> np.ndarray:
    # the one-machine fold of eight lanes: ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))
    return ((l8[:, 0] + l8[:, 1]) + (l8[:, 2] + l8[:, 3])) + ((l8[:, 4] + l8[:, 5]) + (l8[:, 6] + l8[:, 7]))


def _prefix(b: np.ndarray) -> np.ndarray:
    # s = 0; s += bucket[c]; out[c] = s, in cut-off order (as the one-machine kernels)
    out = np.empty_like(b)
    s = np.zeros(b.shape[0], b.dtype)
    for c in range(b.shape[1]):
        s = s + b[:, c]
        out[:, c] = s
    return out


def sharded_gather(p, client, nshards, *, cutoffs=(), first_m: int = 0, graded: bool = False,
                   rank: bool = True, backend: str = "auto") -> _Stats:
    """:func:`hashkit.metrics._stats.gather` with the database split into shards on the workers."""
    client = check_client(client)
    q, db = p.q.numpy().words, p.db.numpy().words
    ql, dbl = p.ql, p.dbl
    nbits, n, nq = p.nbits, p.db.n, p.q.n
    sizes = shard_sizes(n, nshards)
    off = offsets(sizes)
    ws = workers(client)
    cut = np.unique(np.asarray(cutoffs, dtype=np.int64))
    live = [s for s in range(len(sizes)) if sizes[s] > 0]
    where = {s: [ws[s % len(ws)]] for s in range(len(sizes))}

    def submit(fn, s, *args):
        return client.submit(fn, *args, workers=where[s], allow_other_workers=True, pure=False)

    data = {s: client.scatter([np.ascontiguousarray(db[off[s]:off[s + 1]]),
                               np.ascontiguousarray(dbl[off[s]:off[s + 1]])], workers=where[s], hash=False)
            for s in live}
    qf, qlf = client.scatter([q, ql], broadcast=True, hash=False)
    hists = gather_all(client, [submit(W.shard_hist, s, data[s][0], data[s][1], qf, qlf, nbits, backend)
                                for s in live], "sharded metrics")
    zero = np.zeros((nq, nbits + 1), np.int64)
    h_all = {s: zero for s in range(len(sizes))}
    h_rel = {s: zero for s in range(len(sizes))}
    for s, (a, r) in zip(live, hists):
        h_all[s], h_rel[s] = a, r
    hist_all = sum(h_all[s] for s in live) if live else zero.copy()
    hist_rel = sum(h_rel[s] for s in live) if live else zero.copy()
    if not rank:
        return _Stats(nbits, n, p.nlabels, hist_all, hist_rel, cut, None)

    # Where each shard's items start, per query and distance, in the one-machine stable ranking.
    before_all = np.cumsum(hist_all, axis=1) - hist_all
    before_rel = np.cumsum(hist_rel, axis=1) - hist_rel
    acc_all, acc_rel, acc_k = zero.copy(), zero.copy(), np.zeros(nq, np.int64)
    starts = {}
    for s in live:
        starts[s] = client.scatter([before_all + acc_all, before_rel + acc_rel, acc_k.copy()], workers=where[s],
                                   hash=False)
        acc_all = acc_all + h_all[s]
        acc_rel = acc_rel + h_rel[s]
        acc_k = acc_k + h_rel[s].sum(1)
    first_m = min(int(first_m), n)
    nl = p.nlabels
    ncut = cut.shape[0]
    block = max(_BLOCK_MIN, -(-nq // max(1, 2 * len(live))))
    lasts, ints = [], []
    for lo in range(0, nq, block):
        hi = min(nq, lo + block)
        prev = None
        chain = []
        for s in live:
            prev = submit(_chain_block, s, data[s][0], data[s][1], qf, qlf, lo, hi, nbits, cut, first_m, graded,
                          nl, starts[s][0], starts[s][1], starts[s][2], prev)
            chain.append(prev)
        lasts.append(prev)
        ints.append(chain)
    results = gather_all(client, ints, "sharded metrics")   # every block of every shard, or an error
    lanes = np.zeros((nq, 16))
    b_ap = np.zeros((nq, ncut))
    b_dcg = np.zeros((nq, ncut))
    b_rel = np.zeros((nq, ncut), np.int64)
    b_gain = np.zeros((nq, ncut), np.int64)
    gain_hist = np.zeros((nq, nl + 1 if graded else 1), np.int64)
    for bi, lo in enumerate(range(0, nq, block)):
        hi = min(nq, lo + block)
        if not live:
            continue
        (ln, ap, dcg), _ = results[bi][-1]
        lanes[lo:hi], b_ap[lo:hi], b_dcg[lo:hi] = ln, ap, dcg
        for _, (r_, g_, gh_) in results[bi]:
            b_rel[lo:hi] += r_
            b_gain[lo:hi] += g_
            gain_hist[lo:hi] += gh_
    out = {"hist_all": hist_all, "hist_rel": hist_rel, "ap_sum": _fold(lanes[:, :8]),
           "rel_at": _prefix(b_rel), "ap_sum_at": _prefix(b_ap), "ap_first": _fold(lanes[:, 8:])}
    if graded:
        out.update(gain_at=_prefix(b_gain), dcg_at=_prefix(b_dcg), gain_hist=gain_hist)
    return _Stats(nbits, n, nl, hist_all, hist_rel, cut, out)


def _chain_block(db, dbl, q, ql, lo, hi, nbits, cut, first_m, graded, nl, start_all, start_rel, k0, prev):
    nq = hi - lo
    if prev is None:
        state = (np.zeros((nq, 16)), np.zeros((nq, cut.shape[0])), np.zeros((nq, cut.shape[0])))
    else:
        state = prev[0]
    return W.shard_chain(db, dbl, np.ascontiguousarray(q[lo:hi]), np.ascontiguousarray(ql[lo:hi]), nbits, cut,
                         first_m, graded, nl, np.ascontiguousarray(start_all[lo:hi]),
                         np.ascontiguousarray(start_rel[lo:hi]), np.ascontiguousarray(k0[lo:hi]), state)


def _prepared(qB, rB, qL, rL, backend, nthreads):
    return prepare_pair(qB, rB, qL, rL, "auto" if backend == "cuda" else backend, nthreads)


# -- the metric functions, as in hashkit.metrics (see there for definitions) -----------------------
def mean_average_precision(qB, rB, qL, rL, k: int | None = None, ties: str = "index",
                           normalize: str = "hashing", empty: str = "zero", backend: str = "auto",
                           nthreads: int | None = None, per_query: bool = False, *, client, nshards=None):
    """:func:`hashkit.metrics.mean_average_precision` on a database sharded over ``client``'s
    workers (``nshards``: a number of shards, default one per worker, or their sizes); the
    same value, bit for bit."""
    p = _prepared(qB, rB, qL, rL, backend, nthreads)
    k = _check_map_k(k, p.db.n)
    V.check_choice(ties, TIES, "ties")
    V.check_choice(normalize, NORMALIZE, "normalize")
    V.check_choice(empty, EMPTY, "empty")
    st = sharded_gather(p, client, _nshards(client, nshards), cutoffs=() if k is None else (k,),
                        rank=ties == "index", backend=backend)
    return _mean(_ap_values(st, k, ties, normalize), _keep(st, empty), per_query)


def precision_at_k(qB, rB, qL, rL, ks, ties: str = "index", backend: str = "auto",
                   nthreads: int | None = None, per_query: bool = False, *, client, nshards=None):
    """:func:`hashkit.metrics.precision_at_k`, sharded (see :func:`mean_average_precision`)."""
    p = _prepared(qB, rB, qL, rL, backend, nthreads)
    kk, scalar = _ks(ks, p.db.n)
    V.check_choice(ties, TIES, "ties")
    st = sharded_gather(p, client, _nshards(client, nshards), cutoffs=kk, rank=ties == "index", backend=backend)
    return _finish_curve(_precision_values(st, kk, ties), None, scalar, per_query)


def recall_at_k(qB, rB, qL, rL, ks, ties: str = "index", empty: str = "zero",
                backend: str = "auto", nthreads: int | None = None, per_query: bool = False, *, client,
                nshards=None):
    """:func:`hashkit.metrics.recall_at_k`, sharded (see :func:`mean_average_precision`)."""
    p = _prepared(qB, rB, qL, rL, backend, nthreads)
    kk, scalar = _ks(ks, p.db.n)
    V.check_choice(ties, TIES, "ties")
    V.check_choice(empty, EMPTY, "empty")
    st = sharded_gather(p, client, _nshards(client, nshards), cutoffs=kk, rank=ties == "index", backend=backend)
    return _finish_curve(_recall_values(st, kk, ties), _keep(st, empty), scalar, per_query)


def ndcg_at_k(qB, rB, qL, rL, ks, empty: str = "zero", backend: str = "auto",
              nthreads: int | None = None, per_query: bool = False, *, client, nshards=None):
    """:func:`hashkit.metrics.ndcg_at_k`, sharded (see :func:`mean_average_precision`)."""
    p = _prepared(qB, rB, qL, rL, backend, nthreads)
    kk, scalar = _ks(ks, p.db.n)
    V.check_choice(empty, EMPTY, "empty")
    st = sharded_gather(p, client, _nshards(client, nshards), cutoffs=kk, graded=True, backend=backend)
    return _finish_curve(_ndcg_values(st, kk), _keep(st, empty), scalar, per_query)


def acg_at_k(qB, rB, qL, rL, ks, backend: str = "auto", nthreads: int | None = None,
             per_query: bool = False, *, client, nshards=None):
    """:func:`hashkit.metrics.acg_at_k`, sharded (see :func:`mean_average_precision`)."""
    p = _prepared(qB, rB, qL, rL, backend, nthreads)
    kk, scalar = _ks(ks, p.db.n)
    st = sharded_gather(p, client, _nshards(client, nshards), cutoffs=kk, graded=True, backend=backend)
    return _finish_curve(_acg_values(st, kk), None, scalar, per_query)


def precision_within_radius(qB, rB, qL, rL, r: int = 2, average: str = DEFAULT_AVERAGE,
                            backend: str = "auto", nthreads: int | None = None, *, client,
                            nshards=None) -> float:
    """:func:`hashkit.metrics.precision_within_radius`, sharded (histograms only)."""
    p = _prepared(qB, rB, qL, rL, backend, nthreads)
    r = V.check_radius(r, "r")
    V.check_choice(average, AVERAGE, "average")
    st = sharded_gather(p, client, _nshards(client, nshards), rank=False, backend=backend)
    return float(_precision_radius(st, average)[min(r, st.nbits)])


def pr_curve_radius(qB, rB, qL, rL, average: str = "pooled", empty: str = "zero",
                    backend: str = "auto", nthreads: int | None = None, *, client, nshards=None) -> dict:
    """:func:`hashkit.metrics.pr_curve_radius`, sharded (histograms only)."""
    p = _prepared(qB, rB, qL, rL, backend, nthreads)
    V.check_choice(average, AVERAGE, "average")
    V.check_choice(empty, EMPTY, "empty")
    st = sharded_gather(p, client, _nshards(client, nshards), rank=False, backend=backend)
    return {"radius": np.arange(st.nbits + 1, dtype=np.int64),
            "precision": _precision_radius(st, average),
            "recall": _recall_radius(st, average, empty)}


def map_compat(qB, rB, qL, rL, variant: str, k: int | None = None, *, nan_on_empty: bool = False,
               backend: str = "auto", nthreads: int | None = None, client, nshards=None) -> float:
    """:func:`hashkit.metrics.map_compat`, sharded (see :func:`mean_average_precision`); the
    ``dcmh-matlab-bug`` replica (a NumPy loop over distance blocks) runs in this process."""
    V.check_choice(variant, tuple(VARIANTS), "variant")
    V.check_bool(nan_on_empty, "nan_on_empty")
    p = _prepared(qB, rB, qL, rL, backend, nthreads)
    n = _nshards(client, nshards)

    def gather_fn(pp, *, cutoffs, first_m):
        return sharded_gather(pp, client, n, cutoffs=cutoffs, first_m=first_m, backend=backend)

    return compat_prepared(p, variant, k, nan_on_empty, gather_fn)


def report(qB, rB, qL, rL, metrics=("map",), ks=None, ties: str = "index", radius_average: str = DEFAULT_AVERAGE,
           pk_grid_spec=None, backend: str = "auto", nthreads: int | None = None, details: bool = False,
           per_query: bool = False, *, client, nshards=None) -> dict:
    """:func:`hashkit.metrics.report`, sharded: every requested metric from one sharded pass
    (histograms, then the chained ranking pass), the same values as on one machine (the same
    formula layer, :func:`hashkit.metrics.report.assemble`, on the sharded statistics)."""
    wanted = check_report_options(metrics, ties, radius_average, details, per_query)
    p = _prepared(qB, rB, qL, rL, backend, nthreads)
    n = _nshards(client, nshards)

    def gather_fn(pp, *, cutoffs, graded):
        return sharded_gather(pp, client, n, cutoffs=cutoffs, graded=graded, backend=backend)

    return assemble(p, gather_fn, wanted, ks, ties, radius_average, pk_grid_spec, details, per_query)


def _nshards(client, nshards):
    if nshards is None:
        return len(workers(check_client(client)))
    return nshards
