"""Multi-index hashing beside the linear scan and FAISS's hash indexes, in the same run.

Off by default (``--benchmark-disable``; without ``--benchmark-enable`` each case runs once as a
smoke test). Run and report::

    python -m pytest benchmarks/test_bench_mih.py --benchmark-enable --benchmark-json=mih.json
    python benchmarks/report.py mih.json        # peer time / MIH time per query, per group

Reference (``impl == "hashkit"``): :class:`hashkit.MIHIndex`, tables built before timing. Peers,
all on the same thread count:

- ``hashkit linear scan``: ``hashkit._core.topk`` / ``radius`` over every code (exact);
- ``faiss IndexBinaryMultiHash``: ``nhash`` = MIH's ``m`` tables of ``b = d // m`` bits; for
  radius ``r`` its ``nflip = r // nhash`` (FAISS's radius is strict, ``r + 1``), which makes
  its range search exact (pigeonhole over the hashed bits; dropping bits only lowers
  distances); for k-NN ``nflip = 2`` (FAISS's k-NN through hash tables is approximate at any
  nflip: its recall against the exact answer is recorded in ``extra_info["recall"]``);
- ``faiss IndexBinaryHash``: one table of ``b = min(24, log2 N)`` bits, ``nflip = r`` for an
  exact range search, ``nflip = 2`` for k-NN (recall recorded).

Every group checks the answer: MIH against the scan item for item (distances and ids), FAISS
range counts against the exact counts. Timings are per query (``extra_info["per_query_s"]``):
the scan runs on ``Q_SCAN`` queries, the hash indexes on ``Q``.

Data: uniform random codes (the hardest case for MIH) and clustered codes (random centres,
~3% of bits flipped: a few huge buckets, as codes of a trained model give), queries drawn the
same way. Default grid: random 64-bit at 1M and 10M, random 128-bit and clustered 64-bit at
1M; ``--bench-full`` adds 10M x 128 bits and clustered 10M. FAISS's hash indexes are skipped at
10M x 128 bits: six ``unordered_map`` tables would hold about 4.5 GB on this shared machine.
"""

from __future__ import annotations

import math

import numpy as np
from mih_sweep import codes  # the script beside this file (pytest puts benchmarks/ on sys.path)
import pytest

import hashkit
from hashkit.mih import MIHIndex, default_m

faiss = pytest.importorskip("faiss")
core = pytest.importorskip("hashkit._core")

DEFAULT = [("random", 1_000_000, 64), ("random", 10_000_000, 64), ("random", 1_000_000, 128),
           ("clustered", 1_000_000, 64)]
FULL = DEFAULT + [("random", 10_000_000, 128), ("clustered", 10_000_000, 64), ("clustered", 1_000_000, 128)]
RADII = (0, 1, 2, 3)
KS = (1, 10, 100)
Q = 1000
Q_SCAN = 20
FAISS_MAX = 10_000_000 * 64   # N x bits above which FAISS's hash indexes are not built
IMPLS = ("hashkit", "hashkit linear scan", "faiss IndexBinaryMultiHash", "faiss IndexBinaryHash")


_codes = codes  # benchmarks/mih_sweep.py: random or clustered codes, the same in both


class Case:
    """One data set and the indexes over it, built once and shared by every benchmark."""

    def __init__(self, kind, n, nbits, threads):
        self.kind, self.n, self.nbits, self.threads = kind, n, nbits, threads
        rng = np.random.default_rng(n + nbits + (kind == "clustered"))
        self.db = _codes(kind, n, nbits, rng)
        self.q = _codes(kind, Q, nbits, rng)
        self.mih = MIHIndex(nbits, nthreads=threads)
        self.mih.add(hashkit.Codes(self.db, nbits))
        self.mih.build()
        self.m = default_m(nbits, n)
        self._faiss = {}

    def group(self, op):
        return f"{op}-{self.kind}-N{self.n // 1_000_000}M-{self.nbits}b"

    def faiss_index(self, which):
        if self.n * self.nbits > FAISS_MAX:
            pytest.skip("FAISS hash index not built at this size (memory, see the module docstring)")
        if which not in self._faiss:
            faiss.omp_set_num_threads(self.threads)
            d = self.nbits
            if which == "multihash":
                ix = faiss.IndexBinaryMultiHash(d, self.m, d // self.m)
            else:
                ix = faiss.IndexBinaryHash(d, min(24, int(math.log2(self.n))))
            ix.add(self.db.view(np.uint8))
            self._faiss[which] = ix
        return self._faiss[which]


@pytest.fixture(scope="module", params=None)
def case(request, bench_threads):
    kind, n, nbits = request.param
    c = Case(kind, n, nbits, bench_threads)
    yield c
    del c


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        full = metafunc.config.getoption("--bench-full", default=False)
        cases = FULL if full else DEFAULT
        metafunc.parametrize("case", cases, ids=[f"{k}-N{n // 1_000_000}M-{b}b" for k, n, b in cases],
                             indirect=True, scope="module")


@pytest.fixture
def run(benchmark, bench_rounds):
    def _run(fn, group, impl, nq, **info):
        benchmark.extra_info.update(group=group, impl=impl, queries=nq, cpu="AMD EPYC Zen 3 (KVM)",
                                    simd=core.simd_path(), **info)
        out = benchmark.pedantic(fn, rounds=bench_rounds, iterations=1, warmup_rounds=1)
        stats = getattr(benchmark, "stats", None)
        if stats is not None and getattr(stats, "stats", None) is not None:
            benchmark.extra_info["per_query_s"] = stats.stats.min / nq
        return out
    return _run


@pytest.mark.parametrize("r", RADII)
@pytest.mark.parametrize("impl", IMPLS)
def test_radius(run, benchmark, case, impl, r):
    c = case
    qs = c.q[:Q_SCAN]
    exact = core.radius(qs, c.db, c.nbits, r, c.threads)
    qc = hashkit.Codes(c.q, c.nbits)
    if impl == "hashkit":
        res, work = run(lambda: c.mih.range_search(qc, r, return_work=True), c.group(f"r{r}"), impl, Q,
                        m=c.m, r=r)
        benchmark.extra_info["scan_fallback"] = float(np.mean(work < 0))
        n = exact[0][-1]
        assert np.array_equal(res.lims[:Q_SCAN + 1], exact[0])
        assert np.array_equal(res.idx[:n], exact[1]) and np.array_equal(res.dist[:n], exact[2])
    elif impl == "hashkit linear scan":
        run(lambda: core.radius(qs, c.db, c.nbits, r, c.threads), c.group(f"r{r}"), impl, Q_SCAN, r=r)
    else:
        ix = c.faiss_index("multihash" if "Multi" in impl else "hash")
        ix.nflip = r // c.m if "Multi" in impl else r
        x = np.ascontiguousarray(c.q.view(np.uint8))
        lims = run(lambda: ix.range_search(x, r + 1), c.group(f"r{r}"), impl, Q, r=r, nflip=ix.nflip)[0]
        assert np.array_equal(np.diff(lims[:Q_SCAN + 1].astype(np.int64)), np.diff(exact[0]))


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("impl", IMPLS)
def test_topk(run, benchmark, case, impl, k):
    c = case
    qs = c.q[:Q_SCAN]
    ed, ei = core.topk(qs, c.db, c.nbits, k, c.threads)
    qc = hashkit.Codes(c.q, c.nbits)
    if impl == "hashkit":
        d, i, work = run(lambda: c.mih.search(qc, k, return_work=True), c.group(f"k{k}"), impl, Q, m=c.m, k=k)
        benchmark.extra_info["scan_fallback"] = float(np.mean(work < 0))
        benchmark.extra_info["work_median"] = float(np.median(work[work >= 0])) if (work >= 0).any() else -1.0
        assert np.array_equal(d[:Q_SCAN], ed) and np.array_equal(i[:Q_SCAN], ei)
    elif impl == "hashkit linear scan":
        run(lambda: core.topk(qs, c.db, c.nbits, k, c.threads), c.group(f"k{k}"), impl, Q_SCAN, k=k)
    else:
        ix = c.faiss_index("multihash" if "Multi" in impl else "hash")
        ix.nflip = 2
        x = np.ascontiguousarray(c.q.view(np.uint8))
        D, _ = run(lambda: ix.search(x, k), c.group(f"k{k}"), impl, Q, k=k, nflip=2)
        # approximate: the fraction of the exact k-th distances it reaches
        benchmark.extra_info["recall"] = float(np.mean(D[:Q_SCAN] == ed))
