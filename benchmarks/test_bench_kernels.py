"""Kernel benchmarks: hashkit's C++ kernels against FAISS binary flat search, side by side.

Off by default (``--benchmark-disable`` in addopts: without ``--benchmark-enable`` each case runs
once, as a smoke test). Run and report::

    python -m pytest benchmarks/test_bench_kernels.py --benchmark-enable \\
        --benchmark-json=bench.json
    python benchmarks/report.py bench.json

Every benchmark sets ``extra_info["group"]`` (what is compared: operation, N, bits, Q) and
``extra_info["impl"]`` (``"hashkit"`` or the peer); ``report.py`` prints peer time / hashkit
time per group. Peers, all exact and all on the same thread count
(``faiss.omp_set_num_threads``):

- ``topk``: ``faiss.IndexBinaryFlat.search`` (k = 100, its default heap path);
- ``radius``: ``IndexBinaryFlat.range_search`` with radius ``r + 1`` (FAISS's radius is strict),
  at r = 2 and a wide radius (3/8 of the bits);
- ``full``: the full ranking, k = N, against FAISS's counting path (``use_heap = False``);
- ``full-reused``: the same, both sides writing into output arrays allocated (and page-faulted)
  once before the rounds: hashkit through ``out=``, FAISS through ``search_c`` (its C++
  entry point, which takes the output pointers). This times the kernels without the 12 bytes
  per item of fresh output each call allocates.

Each pair also checks that both sides agree (distances; counts for radius), so a fast wrong
answer cannot pass. Data: clustered codes from a seeded generator (``hashkit._bench``).

``interleaved``: the README's goal workloads (``hashkit._bench.COMPARE``: top-100 and radius 2 at
N = 1M, 64 and 128 bits), both sides in one loop of alternating rounds (what ``hashkit bench
--compare faiss`` prints), so that a busy machine slows both alike; the per-round times and
ratios go to ``extra_info`` and ``report.py`` prints them as their own rows.
"""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")
core = pytest.importorskip("hashkit._core")

from hashkit import _bench  # noqa: E402  (after the skips: needs the compiled module)

# (N, nbits) cases; the default grid keeps a full run to a few minutes on 2 cores.
DEFAULT = [(200_000, 16), (200_000, 64), (200_000, 128), (1_000_000, 64)]
FULL = [(n, b) for n in (200_000, 1_000_000) for b in (16, 32, 64, 128)]
# Queries per operation (kept small where the output is (Q, N) or a wide radius). The full
# ranking at 1M writes 240 MB per call with 20 queries; with 5 (the former setting) two threads
# split them 3 + 2 and the timing swung 2x between runs.
QUERIES = {"topk": 200, "radius": 200, "radius-wide": 50, "full": {200_000: 20, 1_000_000: 20}}
K = 100

_cache: dict = {}


def clustered_codes(n_db: int, n_q: int, nbits: int, seed: int):
    """hashkit._bench.clustered_codes (the generator ``hashkit bench --compare faiss`` uses), cached.

    Random centres (one per 200 items), each code a centre with ~3% of its bits flipped, so that
    small radii and top-k have real neighbours and ties. One cached key.
    """
    key = (n_db, n_q, nbits, seed)
    if key not in _cache:
        _cache.clear()
        _cache[key] = _bench.clustered_codes(n_db, n_q, nbits, seed)
    return _cache[key]


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        full = metafunc.config.getoption("--bench-full", default=False)
        cases = FULL if full else DEFAULT
        metafunc.parametrize("case", cases, ids=[f"N{n // 1000}k-{b}b" for n, b in cases])


def _faiss_index(db, nbits, nthreads):
    faiss.omp_set_num_threads(nthreads)
    index = faiss.IndexBinaryFlat(db.shape[1] * 64)
    index.add(db.view(np.uint8))
    return index


@pytest.fixture
def run(benchmark, bench_rounds):
    """Times fn (one warm-up, then bench_rounds rounds) under a group/impl label."""
    def _run(fn, group, impl, **info):
        benchmark.extra_info.update(group=group, impl=impl, **info)
        return benchmark.pedantic(fn, rounds=bench_rounds, iterations=1, warmup_rounds=1)
    return _run


def _data(case, nq):
    n, nbits = case
    db, q = clustered_codes(n, nq, nbits, seed=n + nbits)
    return n, nbits, db, q


def _group(op, n, nbits, nq, extra=""):
    return f"{op}{extra}-N{n // 1000}k-{nbits}b-Q{nq}"


# FAISS works on whole bytes of 64-bit words: the codes' padding bits are zero, so its distances
# equal hashkit's for any nbits (16- and 32-bit codes are searched as 64-bit words by both).


@pytest.mark.parametrize("impl", ["hashkit", "faiss"])
def test_topk(run, case, impl, bench_threads):
    n, nbits, db, q = _data(case, QUERIES["topk"])
    group = _group("topk", n, nbits, len(q), f"{K}")
    if impl == "hashkit":
        d, _ = run(lambda: core.topk(q, db, nbits, K, bench_threads), group, "hashkit",
                    threads=bench_threads)
    else:
        index = _faiss_index(db, nbits, bench_threads)
        d, _ = run(lambda: index.search(q.view(np.uint8), K), group,
                    "faiss IndexBinaryFlat (heap)", threads=bench_threads)
    assert np.array_equal(d, core.topk(q, db, nbits, K, bench_threads)[0])


@pytest.mark.parametrize("wide", [False, True], ids=["r2", "wide"])
@pytest.mark.parametrize("impl", ["hashkit", "faiss"])
def test_radius(run, benchmark, case, impl, wide, bench_threads):
    n, nbits, db, q = _data(case, QUERIES["radius-wide" if wide else "radius"])
    r = 3 * nbits // 8 if wide else 2
    group = _group("radius", n, nbits, len(q), f"-r{r}")
    if impl == "hashkit":
        lims = run(lambda: core.radius(q, db, nbits, r, bench_threads), group,
                    "hashkit", r=r, threads=bench_threads)[0]
    else:
        index = _faiss_index(db, nbits, bench_threads)
        lims = run(lambda: index.range_search(q.view(np.uint8), r + 1), group,
                    "faiss range_search", r=r, threads=bench_threads)[0]
    benchmark.extra_info["results"] = int(lims[-1])
    assert np.array_equal(np.diff(lims), np.diff(core.radius(q, db, nbits, r, bench_threads)[0]))


@pytest.mark.parametrize("impl", ["hashkit", "faiss"])
def test_full_ranking(run, case, impl, bench_threads):
    n = case[0]
    n, nbits, db, q = _data(case, QUERIES["full"][n])
    group = _group("full", n, nbits, len(q))
    if impl == "hashkit":
        d, i = run(lambda: core.topk(q, db, nbits, n, bench_threads), group, "hashkit",
                    threads=bench_threads)
    else:
        index = _faiss_index(db, nbits, bench_threads)
        index.use_heap = False
        d, i = run(lambda: index.search(q.view(np.uint8), n), group,
                    "faiss IndexBinaryFlat (counting)", threads=bench_threads)
    hd, hi = core.topk(q, db, nbits, n, bench_threads)
    assert np.array_equal(d, hd) and np.array_equal(i, hi)


@pytest.mark.parametrize("impl", ["hashkit", "faiss"])
def test_full_ranking_reused(run, case, impl, bench_threads):
    n = case[0]
    n, nbits, db, q = _data(case, QUERIES["full"][n])
    group = _group("full-reused", n, nbits, len(q))
    dist = np.zeros((len(q), n), np.int32)  # zero-filled: the pages exist before the rounds
    idx = np.zeros((len(q), n), np.int64)
    if impl == "hashkit":
        run(lambda: core.topk(q, db, nbits, n, bench_threads, out=(dist, idx)), group, "hashkit",
            threads=bench_threads)
    else:
        index = _faiss_index(db, nbits, bench_threads)
        index.use_heap = False
        x = np.ascontiguousarray(q.view(np.uint8))
        run(lambda: index.search_c(len(q), faiss.swig_ptr(x), n, faiss.swig_ptr(dist),
                                   faiss.swig_ptr(idx)),
            group, "faiss IndexBinaryFlat (counting, search_c)", threads=bench_threads)
    hd, hi = core.topk(q, db, nbits, n, bench_threads)
    assert np.array_equal(dist, hd) and np.array_equal(idx, hi)


@pytest.mark.parametrize("workload", _bench.COMPARE, ids=[f"{w[1]}-{w[3]}b" for w in _bench.COMPARE])
def test_interleaved(benchmark, workload, bench_threads, bench_rounds):
    row = _bench.compare_faiss(rounds=bench_rounds, threads=bench_threads, workloads=[workload],
                               with_map=False)[0]
    name, op, n, nbits, nq, goal = workload
    benchmark.extra_info.update(group=_group(f"interleaved-{op}", n, nbits, nq), impl="hashkit",
                                threads=bench_threads, interleaved=row)
    # the timing is in extra_info (one loop for both sides); the benchmark itself is a placeholder
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
