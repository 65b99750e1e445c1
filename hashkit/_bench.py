"""``hashkit bench``: the kernels' speed on this machine.

Two modes:

- ``hashkit bench``: a quick per-backend timing ("is the fast path active here?");
- ``hashkit bench --compare faiss``: the README's speed table for this CPU. hashkit against FAISS
  (``faiss-cpu``, ``IndexBinaryFlat``) on the README's workloads, both sides on the same number of
  threads (one by default), in one process with interleaved rounds (hashkit, FAISS, hashkit, ...)
  so that a busy machine slows both alike, plus stable MAP at NUS-WIDE scale against its goal.
  The CPU model and the SIMD path are printed beside the ratios. Each pair of results is checked
  equal before timing, so a fast wrong answer cannot print a ratio. About 20 s on a 2-core
  Zen 3 VM (AVX2); under a minute on any CPU with AVX2.

The benchmarks that carry their peers for the record live in ``benchmarks/`` (pytest-benchmark);
``benchmarks/test_bench_kernels.py`` draws its codes from :func:`clustered_codes` here.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from .kernels import _select as _backend
from .codes import pack_bits

# The README's goals on every CPU (issue 17): hashkit / FAISS, one thread each side.
COMPARE = (
    # (name, operation, N, nbits, queries, goal ratio)
    ("top-100, N = 1M, 64 bits, 200 queries", "topk", 1_000_000, 64, 200, 3.0),
    ("top-100, N = 1M, 128 bits, 200 queries", "topk", 1_000_000, 128, 200, 3.0),
    ("radius r = 2 (FAISS r + 1), N = 1M, 64 bits, 200 queries", "radius", 1_000_000, 64, 200, 1.5),
    ("radius r = 2 (FAISS r + 1), N = 1M, 128 bits, 200 queries", "radius", 1_000_000, 128, 200, 1.5),
)
MAP_SCALE = (2_100, 193_734)  # NUS-WIDE's query / retrieval sizes
MAP_GOAL_US = 200.0
K, RADIUS = 100, 2


def clustered_codes(n_db: int, n_q: int, nbits: int, seed: int):
    """Packed uint64 codes (db ``(n_db, W)``, queries ``(n_q, W)``) with realistic neighbourhoods.

    Random centres (one per 200 items), each code a centre with ~3% of its bits flipped, so that
    small radii and top-k have real neighbours and ties (uniform random codes would have none
    within r = 2). Queries are drawn the same way, not copied from the database. Seeded.
    """
    rng = np.random.default_rng(seed)
    w = (nbits + 63) // 64
    ncent = max(16, n_db // 200)
    centres = rng.integers(0, 2**64, (ncent, w), dtype=np.uint64)

    def draw(n):
        codes = centres[rng.integers(0, ncent, n)]
        flip = rng.integers(0, 2**64, (n, w), dtype=np.uint64)
        for _ in range(4):  # AND of five random words: each bit flips with p = 1/32
            flip &= rng.integers(0, 2**64, (n, w), dtype=np.uint64)
        codes = codes ^ flip
        if nbits % 64:
            codes[:, -1] &= np.uint64((1 << (nbits % 64)) - 1)
        return np.ascontiguousarray(codes)

    return draw(n_db), draw(n_q)


def cpu_model() -> str:
    """The CPU's name as the OS reports it, with family/model numbers where Linux gives them
    (a VM often shows only "AMD EPYC": the numbers tell Zen 3 from Zen 5)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            fields: dict[str, str] = {}
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
        name = fields.get("model name") or platform.processor() or platform.machine()
        if "cpu family" in fields and "model" in fields:
            name += f" (family {fields['cpu family']}, model {fields['model']})"
        return name
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"


def simd_path() -> str:
    """The C++ kernels' SIMD path in this process (``HASHKIT_SIMD`` may have lowered it)."""
    entry = _backend.info()["backends"].get("cpp", {})
    return str(entry.get("simd_path", "none (C++ backend not built)"))


def _best_of(fn, repeat: int) -> float:
    fn()  # warm-up: JIT compilation and first-touch page faults stay out of the numbers
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def interleaved(fa, fb, rounds: int) -> tuple[list[float], list[float]]:
    """Wall times of ``rounds`` alternating calls a, b, a, b ... after one warm-up call each."""
    fa()
    fb()
    ta, tb = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fa()
        t1 = time.perf_counter()
        fb()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return ta, tb


def compare_faiss(rounds: int = 5, threads: int = 1, workloads=COMPARE, with_map: bool = True):
    """hashkit against FAISS on ``workloads``; one dict per row (times in seconds).

    Each row: ``name, hashkit_s, faiss_s`` (min over rounds), ``ratio`` (FAISS min / hashkit
    min), ``ratio_lo, ratio_hi`` (range of the per-round ratios), ``goal``. With ``with_map`` a
    last row gives stable MAP at NUS-WIDE scale (``per_query_us`` against ``MAP_GOAL_US``).

    Raises
    ------
    RuntimeError
        FAISS is not importable, or a pair of results differs.
    """
    try:
        import faiss
    except ImportError as exc:
        raise RuntimeError("--compare faiss needs faiss-cpu (pip install faiss-cpu); importing it "
                           f"failed: {exc}") from None
    from .codes import Codes
    from .search import radius_search, topk

    faiss.omp_set_num_threads(threads)
    rows = []
    for name, op, n, nbits, nq, goal in workloads:
        db, q = clustered_codes(n, nq, nbits, seed=n + nbits)
        qc, dc = Codes(q, nbits), Codes(db, nbits)
        index = faiss.IndexBinaryFlat(db.shape[1] * 64)  # padding bits are zero: same distances
        index.add(db.view(np.uint8))
        qu = np.ascontiguousarray(q.view(np.uint8))
        if op == "topk":
            def fh(qc=qc, dc=dc):
                return topk(qc, dc, K, nthreads=threads)

            def ff(qu=qu, index=index):
                return index.search(qu, K)
            same = np.array_equal(fh()[0], ff()[0])
        else:
            def fh(qc=qc, dc=dc):
                return radius_search(qc, dc, RADIUS, nthreads=threads)

            def ff(qu=qu, index=index):
                return index.range_search(qu, RADIUS + 1)  # FAISS's radius is strict
            same = np.array_equal(np.asarray(fh().lims), ff()[0])
        if not same:
            raise RuntimeError(f"hashkit and FAISS disagree on {name}")
        th, tf = interleaved(fh, ff, rounds)
        per = [f / h for h, f in zip(th, tf)]
        rows.append(dict(name=name, hashkit_s=min(th), faiss_s=min(tf), ratio=min(tf) / min(th),
                         ratio_lo=min(per), ratio_hi=max(per), goal=goal))
    if with_map:
        rows.append(_map_row(max(2, rounds // 2), threads))
    return rows


def _map_row(rounds: int, threads: int) -> dict:
    from .metrics import mean_average_precision

    nq, n = MAP_SCALE
    rng = np.random.default_rng(1064)
    qc = pack_bits(rng.random((nq, 64)) < 0.5)
    rc = pack_bits(rng.random((n, 64)) < 0.5)
    ql = (rng.random((nq, 24)) < 0.12).astype(np.uint8)
    rl = (rng.random((n, 24)) < 0.12).astype(np.uint8)
    from .codes import Codes

    qc, rc = Codes(qc, 64), Codes(rc, 64)
    t = _best_of(lambda: mean_average_precision(qc, rc, ql, rl, nthreads=threads), rounds)
    return dict(name=f"stable MAP, {nq:,} x {n:,} (NUS-WIDE scale), 64 bits, per query",
                per_query_us=t / nq * 1e6, goal_us=MAP_GOAL_US)


def format_compare(rows, threads: int, rounds: int) -> str:
    import faiss

    from . import __version__

    head = [f"CPU: {cpu_model()}; SIMD path: {simd_path()}; {threads} thread(s) each side; "
            f"hashkit {__version__}, faiss {getattr(faiss, '__version__', '?')}",
            f"min of {rounds} interleaved rounds; ratio = FAISS time / hashkit time "
            "(> 1: hashkit faster), range = per-round ratios", ""]
    w = max(len(r["name"]) for r in rows)
    lines = [f"{'workload':{w}s}  {'hashkit':>9s}  {'FAISS':>9s}  {'ratio':>6s}  {'range':>11s}  goal"]
    for r in rows:
        if "ratio" in r:
            ok = "met" if r["ratio"] >= r["goal"] else "NOT met"
            lines.append(f"{r['name']:{w}s}  {r['hashkit_s'] * 1e3:7.1f}ms  {r['faiss_s'] * 1e3:7.1f}ms  "
                         f"{r['ratio']:5.2f}x  {r['ratio_lo']:4.2f}-{r['ratio_hi']:4.2f}x  "
                         f">= {r['goal']:g}x {ok}")
        else:
            ok = "met" if r["per_query_us"] <= r["goal_us"] else "NOT met"
            lines.append(f"{r['name']:{w}s}  {r['per_query_us']:7.0f}us  {'':>9s}  {'':>6s}  {'':>11s}  "
                         f"<= {r['goal_us']:g} us {ok}")
    return "\n".join(head + lines)


def add_bench_arguments(parser) -> None:
    parser.add_argument("--compare", choices=["faiss"], default=None,
                        help="time the README's workloads against FAISS on this CPU (needs faiss-cpu)")
    parser.add_argument("--rounds", type=int, default=5, help="--compare: interleaved rounds per workload")
    parser.add_argument("--no-map", action="store_true", help="--compare: skip the MAP row")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--database", type=int, default=100_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per side (default: every core; with --compare, 1)")


def run_bench(args) -> int:
    from ._validate import check_positive_int

    if args.compare == "faiss":
        rounds = check_positive_int(args.rounds, "--rounds")
        threads = 1 if args.threads is None else check_positive_int(args.threads, "--threads")
        t0 = time.perf_counter()
        rows = compare_faiss(rounds=rounds, threads=threads, with_map=not args.no_map)
        print(format_compare(rows, threads, rounds))
        print(f"({time.perf_counter() - t0:.0f} s; os.cpu_count() = {os.cpu_count()})")
        return 0
    nq = check_positive_int(args.queries, "--queries")
    nd = check_positive_int(args.database, "--database")
    nbits = check_positive_int(args.bits, "--bits")
    k = min(check_positive_int(args.k, "-k"), nd)
    threads = args.threads or 0
    rng = np.random.default_rng(0)
    q = pack_bits(rng.random((nq, nbits)) < 0.5)
    db = pack_bits(rng.random((nd, nbits)) < 0.5)
    ql = pack_bits(rng.random((nq, 24)) < 0.1)
    dl = pack_bits(rng.random((nd, 24)) < 0.1)
    rows = []
    for name, ok in _backend.available().items():
        if not ok or name == "cuda":
            continue
        be = _backend.get(name)
        t_topk = _best_of(lambda be=be: be.topk(q, db, nbits, k, threads), args.repeat)
        t_hist = _best_of(lambda be=be: be.hist_stats(q, db, ql, dl, nbits, threads), args.repeat)
        t_rank = _best_of(lambda be=be: be.rank_stats(q, db, ql, dl, nbits, np.zeros(0, np.int64), 0, False, 24,
                                                threads), args.repeat)
        pairs = nq * nd
        rows.append((name, t_topk, t_hist, t_rank, pairs))
    print(f"CPU: {cpu_model()}; SIMD path: {simd_path()}")
    print(f"Q={nq} N={nd} bits={nbits} k={k} threads={threads or 'all'} (best of {args.repeat})")
    print(f"{'backend':8s} {'top-k s':>9s} {'hist s':>9s} {'MAP s':>9s} {'Mpairs/s (MAP)':>15s}")
    for name, a, b, c, pairs in rows:
        print(f"{name:8s} {a:9.4f} {b:9.4f} {c:9.4f} {pairs / c / 1e6:15.1f}")
    return 0
