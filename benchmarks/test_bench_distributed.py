"""Sharded search on Dask: throughput with 1 and 2 workers beside one machine, and the merge cost.

Off by default like every benchmark; run and report::

    python -m pytest benchmarks/test_bench_distributed.py --benchmark-enable --benchmark-json=dist.json
    python benchmarks/report.py dist.json

Reference (``impl == "hashkit"``): one process, no Dask, :class:`hashkit.HammingIndex` (or
:class:`hashkit.MIHIndex`) with ``--bench-threads`` threads. Peers: :class:`ShardedIndex` on a
``LocalCluster`` of one worker with that many threads (one shard), and of two worker processes
with one thread each (two shards); the client scatters the codes once, before timing. Every
peer's answer is checked against the reference (distances and ids). ``merge`` times the
client-side merge alone (two shards' top-k lists into one, per query); ``roundtrip`` one query
through the cluster (scheduling and transfer latency, no real work). ``extra_info["qps"]`` is
queries per second. Random 64-bit codes, N = 2M by default (``--bench-full``: 10M).

docs/SCALE.md turns these into an estimate for 10^9 codes on 16 workers.
"""

from __future__ import annotations

import numpy as np
import pytest

import hashkit
from hashkit.mih import MIHIndex

distributed = pytest.importorskip("distributed")
hd = pytest.importorskip("hashkit.distributed")
core = pytest.importorskip("hashkit._core")

Q = 400
K = 10


@pytest.fixture(scope="module")
def data(request):
    n = 10_000_000 if request.config.getoption("--bench-full", default=False) else 2_000_000
    rng = np.random.default_rng(1_000_000_007)
    return rng.integers(0, 2**64, (n, 1), dtype=np.uint64), rng.integers(0, 2**64, (Q, 1), dtype=np.uint64)


CLUSTERS = {"1 worker": dict(n_workers=1, threads_per_worker=None),
            "2 workers": dict(n_workers=2, threads_per_worker=1)}


@pytest.fixture(scope="module", params=list(CLUSTERS))
def cluster(request, bench_threads):
    kw = dict(CLUSTERS[request.param])
    if kw["threads_per_worker"] is None:
        kw["threads_per_worker"] = bench_threads
    with distributed.LocalCluster(processes=True, dashboard_address=":0", silence_logs=50, **kw) as c, \
            distributed.Client(c) as client:
        yield request.param, kw, client


def _info(benchmark, group, impl, nq):
    benchmark.extra_info.update(group=group, impl=impl, queries=nq, cpu="AMD EPYC Zen 3 (KVM)",
                                simd=core.simd_path())


def _finish(benchmark, nq):
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["per_query_s"] = stats.stats.min / nq
        benchmark.extra_info["qps"] = nq / stats.stats.min


_ref: dict = {}


def _one_machine(kind, db, threads):
    key = (kind, db.shape[0])
    if key not in _ref:
        _ref.clear()
        ix = MIHIndex(64, nthreads=threads) if kind == "mih" else hashkit.HammingIndex(64, nthreads=threads)
        ix.add(hashkit.Codes(db, 64))
        if kind == "mih":
            ix.build()
        _ref[key] = ix
    return _ref[key]


@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_one_machine(benchmark, bench_rounds, bench_threads, data, kind):
    db, q = data
    ix = _one_machine(kind, db, bench_threads)
    nq = Q if kind == "mih" else Q // 8
    qc = hashkit.Codes(q[:nq], 64)
    _info(benchmark, f"{kind}-top{K}-N{db.shape[0] // 1_000_000}M-64b", "hashkit", nq)
    benchmark.extra_info["setup"] = f"one process, {bench_threads} threads, no Dask"
    benchmark.pedantic(lambda: ix.search(qc, K), rounds=bench_rounds, iterations=1, warmup_rounds=1)
    _finish(benchmark, nq)


@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_sharded(benchmark, bench_rounds, bench_threads, data, cluster, kind):
    db, q = data
    name, kw, client = cluster
    nshards = kw["n_workers"]
    index = hd.ShardedIndex(client, 64, nshards=nshards, kind=kind)
    index.add(hashkit.Codes(db, 64))
    index.search(hashkit.Codes(q[:2], 64), K)   # shards and their tables built before timing
    nq = Q if kind == "mih" else Q // 8
    qc = hashkit.Codes(q[:nq], 64)
    _info(benchmark, f"{kind}-top{K}-N{db.shape[0] // 1_000_000}M-64b",
          f"dask {name} x {kw['threads_per_worker']} thread(s), {nshards} shard(s)", nq)
    d, i = benchmark.pedantic(lambda: index.search(qc, K), rounds=bench_rounds, iterations=1, warmup_rounds=1)
    _finish(benchmark, nq)
    rd, ri = _one_machine(kind, db, bench_threads).search(qc, K)
    assert np.array_equal(d, rd) and np.array_equal(i, ri)


def test_roundtrip(benchmark, bench_rounds, data, cluster):
    db, q = data
    name, kw, client = cluster
    index = hd.ShardedIndex.from_shards(client, [hashkit.Codes(db[:1000], 64)] * kw["n_workers"])
    qc = hashkit.Codes(q[:1], 64)
    _info(benchmark, f"roundtrip-{name}", f"dask {name}: one query, 1000 codes per shard", 1)
    benchmark.pedantic(lambda: index.search(qc, K), rounds=max(bench_rounds, 10), iterations=1, warmup_rounds=2)
    _finish(benchmark, 1)


def test_merge(benchmark, bench_rounds, data):
    from hashkit.distributed._index import merge_topk

    db, q = data
    half = db.shape[0] // 2
    qc = hashkit.Codes(q, 64)
    parts = [hashkit.topk(qc, hashkit.Codes(db[:half], 64), K),
             hashkit.topk(qc, hashkit.Codes(db[half:], 64), K)]
    parts[1] = (parts[1][0], parts[1][1] + half)
    _info(benchmark, "merge-2-shards", "merge_topk (client side)", Q)
    d, i = benchmark.pedantic(lambda: merge_topk(parts, K), rounds=bench_rounds, iterations=5, warmup_rounds=1)
    _finish(benchmark, Q)
    rd, ri = hashkit.topk(qc, hashkit.Codes(db, 64), K)
    assert np.array_equal(d, rd) and np.array_equal(i, ri)
