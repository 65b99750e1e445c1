"""MAP benchmarks: hashkit against the classic NumPy evaluation loop of the field.

Off by default (``--benchmark-disable`` in addopts). Run, for example::

    python -m pytest benchmarks/test_bench_metrics.py --benchmark-enable -k "nuswide and 64"

Every benchmark carries ``extra_info["group"]`` (what is compared) and ``extra_info["impl"]``
(``"hashkit"`` or the peer's name); ratios are read within a group. The peer is the loop copied
across the field (DCMH ``calc_hammingranking.py`` / DeepHash-pytorch ``CalcTopMap`` shape):
per query a ±1 matrix-vector product ``0.5 * (K - b B^T)``, ``np.argsort``, AP from the
sorted relevance. At NUS-WIDE scale the peer runs on ``PEER_QUERIES`` queries only and both
sides report ``extra_info["per_query_s"]`` (and the peer ``estimated_full_s`` = per query x Q):
compare those. Data: random balanced codes, 24 multi-hot labels (MIRFLICKR-like density),
seeded.
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc

import numpy as np
import pytest

from hashkit.kernels import _select as _backend
from hashkit import metrics as M

SCALES = {"mirflickr": (2000, 18015), "nuswide": (2100, 193734)}
BITS = (16, 32, 64, 128)
NLABELS = 24
PEER_QUERIES = {"mirflickr": 2000, "nuswide": 60}

_cache: dict = {}


def dataset(scale: str, nbits: int):
    """±1 float32 codes (the peer's input) and uint8 labels, seeded per (scale, nbits)."""
    key = (scale, nbits)
    if key not in _cache:
        _cache.clear()
        Q, N = SCALES[scale]
        rng = np.random.default_rng(1000 + nbits)
        qB = np.where(rng.random((Q, nbits)) < 0.5, -1.0, 1.0).astype(np.float32)
        rB = np.where(rng.random((N, nbits)) < 0.5, -1.0, 1.0).astype(np.float32)
        qL = (rng.random((Q, NLABELS)) < 0.12).astype(np.uint8)
        rL = (rng.random((N, NLABELS)) < 0.12).astype(np.uint8)
        from hashkit.codes import pack
        _cache[key] = (qB, rB, qL, rL, pack(qB), pack(rB))
    return _cache[key]


def numpy_loop_map(qB, rB, qL, rL, topk=None):
    """The field's classic MAP loop (peer)."""
    K = qB.shape[1]
    rLf = rL.astype(np.float32)
    total = 0.0
    for i in range(qB.shape[0]):
        gnd = (qL[i].astype(np.float32) @ rLf.T > 0).astype(np.float32)
        if gnd.sum() == 0:
            continue
        hamm = 0.5 * (K - qB[i] @ rB.T)
        gnd = gnd[np.argsort(hamm)]
        if topk is not None:
            gnd = gnd[:topk]
        tsum = int(gnd.sum())
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.flatnonzero(gnd) + 1.0
        total += np.mean(count / tindex)
    return total / qB.shape[0]


def _info(benchmark, **kw):
    benchmark.extra_info.update(kw)
    benchmark.extra_info.setdefault("backend", _backend.resolve("auto"))
    benchmark.extra_info.setdefault("cpus", os.cpu_count())


def _per_query(benchmark, nq):
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["per_query_s"] = stats.stats.min / nq


@pytest.mark.parametrize("nbits", BITS)
@pytest.mark.parametrize("scale", list(SCALES))
def test_map_hashkit(benchmark, scale, nbits):
    qB, rB, qL, rL, qc, rc = dataset(scale, nbits)
    M.mean_average_precision(qc[:2], rc, qL[:2], rL)  # compile / warm the kernels outside the timing
    _info(benchmark, group=f"map-{scale}-{nbits}b", impl="hashkit", Q=qB.shape[0], N=rB.shape[0])
    result = benchmark.pedantic(M.mean_average_precision, args=(qc, rc, qL, rL), rounds=3, iterations=1)
    _per_query(benchmark, qB.shape[0])
    assert 0.0 <= result <= 1.0


@pytest.mark.parametrize("scale", list(SCALES))
def test_map_hashkit_one_thread(benchmark, scale):
    """One thread against the single-threaded peer: the per-core ratio, robust to a busy machine."""
    qB, rB, qL, rL, qc, rc = dataset(scale, 64)
    M.mean_average_precision(qc[:2], rc, qL[:2], rL, nthreads=1)
    _info(benchmark, group=f"map-{scale}-64b", impl="hashkit (1 thread)", Q=qB.shape[0], N=rB.shape[0])
    benchmark.pedantic(M.mean_average_precision, args=(qc, rc, qL, rL), kwargs=dict(nthreads=1),
                       rounds=3, iterations=1)
    _per_query(benchmark, qB.shape[0])


@pytest.mark.parametrize("nbits", BITS)
@pytest.mark.parametrize("scale", list(SCALES))
def test_map_numpy_loop(benchmark, scale, nbits):
    qB, rB, qL, rL, qc, rc = dataset(scale, nbits)
    nq = PEER_QUERIES[scale]
    _info(benchmark, group=f"map-{scale}-{nbits}b", impl="numpy-loop (calc_map)", Q=qB.shape[0],
          N=rB.shape[0], queries_timed=nq,
          note="peer timed on the first queries_timed queries; compare per_query_s"
          if nq < qB.shape[0] else "all queries")
    benchmark.pedantic(numpy_loop_map, args=(qB[:nq], rB, qL[:nq], rL), rounds=1, iterations=1)
    _per_query(benchmark, nq)
    if "per_query_s" in benchmark.extra_info:
        benchmark.extra_info["estimated_full_s"] = benchmark.extra_info["per_query_s"] * qB.shape[0]
    # same numbers on the timed queries (the loop's unstable sort only moves ties; MAP within 1e-3)
    want = M.mean_average_precision(qc[:nq], rc, qL[:nq], rL)
    assert abs(numpy_loop_map(qB[:5], rB, qL[:5], rL) - M.mean_average_precision(qc[:5], rc, qL[:5], rL)) < 0.05
    assert 0.0 <= want <= 1.0


@pytest.mark.parametrize("ties", ["index", "aware"])
@pytest.mark.parametrize("k", [None, 1000])
@pytest.mark.parametrize("scale", list(SCALES))
def test_map_ties(benchmark, scale, k, ties):
    qB, rB, qL, rL, qc, rc = dataset(scale, 64)
    M.mean_average_precision(qc[:2], rc, qL[:2], rL, k=k, ties=ties)
    _info(benchmark, group=f"ties-{scale}-64b-k{k}", impl=f"hashkit[{ties}]")
    benchmark.pedantic(M.mean_average_precision, args=(qc, rc, qL, rL),
                       kwargs=dict(k=k, ties=ties), rounds=3, iterations=1)
    _per_query(benchmark, qB.shape[0])


@pytest.mark.parametrize("k", [None, 1000])
def test_map_peak_memory_nuswide(benchmark, k):
    """Peak Python-visible allocation of MAP at NUS-WIDE scale: O(N + Q * k), no (Q, N) matrix."""
    qB, rB, qL, rL, qc, rc = dataset("nuswide", 64)
    Q, N = qB.shape[0], rB.shape[0]
    M.mean_average_precision(qc[:2], rc, qL[:2], rL, k=k)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    M.mean_average_precision(qc, rc, qL, rL, k=k)
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _info(benchmark, group="memory-nuswide-64b", impl="hashkit", k=k, Q=Q, N=N,
          tracemalloc_peak_bytes=int(peak), ru_maxrss_delta_kib=int(rss1 - rss0),
          qn_float64_matrix_bytes=Q * N * 8, wall_s=wall)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert peak < Q * N * 8 / 20
