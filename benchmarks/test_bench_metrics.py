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
import subprocess
import sys
import textwrap
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


# --- rank_stats past 2^24 relevant items (issue 14): a correctness check too large for tests/ ---

RANK_2_24 = textwrap.dedent("""
    import sys, numpy as np
    from hashkit import _core as core
    n = 2**24 + 2**20
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, (8, 4), dtype=np.uint64)
    db = base[rng.integers(0, 8, n)]  # eight distinct 256-bit codes: many ties, eight distances
    q = base[:1].copy()
    ql, dl = np.ones((1, 1), np.uint64), np.ones((n, 1), np.uint64)
    cut = np.array([2**24 + 3, n], np.int64)
    out = core.rank_stats(q, db, ql, dl, 256, cut, 2**24 + 5, False, 1, 0)
    print(core.simd_path(), repr(float(out["ap_sum"][0])), repr(float(out["ap_first"][0])),
          repr(out["ap_sum_at"][0].tolist()), out["rel_at"][0].tolist())
""")


@pytest.mark.slow
def test_rank_stats_past_2_24_relevant_items():
    """Every item relevant: each AP term relrank / pos is exactly 1.0, so ap_sum = N exactly.

    256-bit codes take rank_stats' unpacked path, whose final ranks carry the relevant rank in
    bits 32..63: past 2^24 relevant items their top byte is non-zero. That byte indexed a
    one-entry offset table (an out-of-bounds read; MAP 0.99999826 here on the scalar, popcnt and
    AVX2 paths). Run on every SIMD path this CPU has, each in its own process (the path is
    chosen once per process); about 1 GB and a few seconds each.
    """
    core = pytest.importorskip("hashkit._core")
    order = list(core.build_info()["simd_paths_compiled"])  # lowest first
    n = 2**24 + 2**20
    for path in order[: order.index(core.simd_path()) + 1]:
        env = dict(os.environ, HASHKIT_SIMD=path)
        res = subprocess.run([sys.executable, "-c", RANK_2_24], env=env, check=True,
                             capture_output=True, text=True).stdout.split(maxsplit=3)
        got_path, ap_sum, ap_first, rest = res[0], float(res[1]), float(res[2]), res[3]
        assert got_path == path
        assert ap_sum == float(n), (path, ap_sum / n)
        assert ap_first == float(2**24 + 5), (path, ap_first)
        assert rest.split("]")[0] == f"[{float(2**24 + 3)!r}, {float(n)!r}", (path, rest)
