"""``hashkit bench``: a quick look at the kernels' speed on this machine, per backend.

This is a smoke-level timer for users ("is the fast path active here?"); the benchmarks that
compare against named peers (the NumPy loop, FAISS) live in ``benchmarks/``.
"""

from __future__ import annotations

import time

import numpy as np

from .kernels import _select as _backend
from .codes import pack_bits


def _best_of(fn, repeat: int) -> float:
    fn()  # warm-up: JIT compilation and first-touch page faults stay out of the numbers
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def add_bench_arguments(parser) -> None:
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--database", type=int, default=100_000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0 = every core")


def run_bench(args) -> int:
    from ._validate import check_positive_int

    nq = check_positive_int(args.queries, "--queries")
    nd = check_positive_int(args.database, "--database")
    nbits = check_positive_int(args.bits, "--bits")
    k = min(check_positive_int(args.k, "-k"), nd)
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
        t_topk = _best_of(lambda be=be: be.topk(q, db, nbits, k, args.threads), args.repeat)
        t_hist = _best_of(lambda be=be: be.hist_stats(q, db, ql, dl, nbits, args.threads), args.repeat)
        t_rank = _best_of(lambda be=be: be.rank_stats(q, db, ql, dl, nbits, np.zeros(0, np.int64), 0, False, 24,
                                                args.threads), args.repeat)
        pairs = nq * nd
        rows.append((name, t_topk, t_hist, t_rank, pairs))
    print(f"Q={nq} N={nd} bits={nbits} k={k} threads={args.threads or 'all'} (best of {args.repeat})")
    print(f"{'backend':8s} {'top-k s':>9s} {'hist s':>9s} {'MAP s':>9s} {'Mpairs/s (MAP)':>15s}")
    for name, a, b, c, pairs in rows:
        print(f"{name:8s} {a:9.4f} {b:9.4f} {c:9.4f} {pairs / c / 1e6:15.1f}")
    return 0
