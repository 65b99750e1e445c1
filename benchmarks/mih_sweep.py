"""Where multi-index hashing stops paying: MIH and the linear scan in interleaved rounds.

pytest-benchmark (benchmarks/test_bench_mih.py) times each side in its own block of rounds; on
a shared machine the load changes between blocks, so this script alternates the two sides round
by round in one process and reports the min over rounds of each, per query, for a sweep of
radii and k. Every MIH answer is checked against the scan's on the scanned queries.

    python benchmarks/mih_sweep.py --n 10000000 --bits 64 --kind random --threads 2 --rounds 5

Prints a Markdown table (scan time / MIH time; > 1: MIH faster) with the CPU and SIMD path.

``--account K`` adds, for the first ``--account-queries`` queries of a k-NN search with k = K, an
exact count (NumPy, from every item's substring distances, independent of the kernels) of what
the search reads: bucket probes, bucket entries, entries already seen at an earlier step, and the
last step's entries whose id is above the k-th item's (not read: csrc/mih.cpp, ``kth_id``). With
random reads at the machine's rate this bounds the search's time from below (docs/SCALE.md).
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np

import hashkit
import hashkit._core as core
from hashkit.mih import MIHIndex, substrings


def codes(kind, n, nbits, rng):
    w = nbits // 64
    if kind == "random":
        return rng.integers(0, 2**64, (n, w), dtype=np.uint64)
    ncent = max(16, n // 200)
    centres = np.random.default_rng(7).integers(0, 2**64, (ncent, w), dtype=np.uint64)
    out = centres[rng.integers(0, ncent, n)]
    flip = rng.integers(0, 2**64, (n, w), dtype=np.uint64)
    for _ in range(4):  # AND of five random words: each bit flips with p = 1/32
        flip &= rng.integers(0, 2**64, (n, w), dtype=np.uint64)
    return np.ascontiguousarray(out ^ flip)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def account(db, q, nbits, desc, k):
    """Mean per query of the reads of k-NN through tables `desc` (steps 0..d_k, as csrc/mih.cpp)."""
    m, n = desc.shape[0], db.shape[0]
    ids = np.arange(n)
    tot = dict(probes=0, entries=0, seen_before=0, last_step_entries=0, last_step_skipped=0)
    for qq in q:
        x = db ^ qq
        d = np.bitwise_count(x).sum(1, dtype=np.int64)
        sub = []
        for first, length, _, _ in desc:  # substring distances (substrings of <= 64 bits)
            w0, sh = divmod(int(first), 64)
            v = x[:, w0] >> np.uint64(sh)
            if sh + length > 64:
                v |= x[:, w0 + 1] << np.uint64(64 - sh)
            sub.append(np.bitwise_count(v & np.uint64(2**int(length) - 1)).astype(np.int64))
        first_step = np.min(np.stack([sub[j] * m + j for j in range(m)]), axis=0)
        order = np.lexsort((ids, d))
        dk = int(d[order[k - 1]])
        for r in range(dk + 1):
            j, s = r % m, r // m
            if s > desc[j, 1]:
                continue
            entries = sub[j] == s
            tot["probes"] += math.comb(int(desc[j, 1]), s)
            tot["entries"] += int(entries.sum())
            tot["seen_before"] += int((entries & (first_step < r)).sum())
            if r == dk:  # the k-th held before the step, among items first seen earlier
                held = np.flatnonzero((first_step < r) & (d <= dk))
                key = np.sort(d[held] * n + held)
                tot["last_step_entries"] += int(entries.sum())
                if len(key) >= k and key[k - 1] // n == dk:
                    tot["last_step_skipped"] += int((entries & (ids > key[k - 1] % n)).sum())
    return {name: v / len(q) for name, v in tot.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--kind", choices=("random", "clustered"), default="random")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--queries", type=int, default=1000, help="MIH queries per round")
    ap.add_argument("--scan-queries", type=int, default=32, help="linear-scan queries per round")
    ap.add_argument("--radii", default="0,1,2,3,4,5,6,8")
    ap.add_argument("--ks", default="1,10,100,1000")
    ap.add_argument("--m", type=int, default=None)
    ap.add_argument("--scan-fraction", type=float, default=None,
                    help="MIHIndex's scan_fraction (default: the index's default; 0: never fall back)")
    ap.add_argument("--codes", default=None, metavar="FILE",
                    help="codes from a trained method instead of generated ones: a code file or run folder "
                         "(as hashkit eval reads it); its db_image codes are the database, its "
                         "query_image codes the queries (--n, --bits, --kind, --queries are then taken from it)")
    ap.add_argument("--account", type=int, default=0, metavar="K",
                    help="also count exactly what k-NN with this k reads (probes, entries, ...), in NumPy")
    ap.add_argument("--account-queries", type=int, default=20)
    a = ap.parse_args()
    if a.codes:
        from hashkit.codefile import code_sets, load_code_file

        cf = load_code_file(code_sets(a.codes)[0])
        db, q = cf.db_image.numpy().words, cf.query_image.numpy().words
        a.n, a.bits, a.kind, a.queries = db.shape[0], cf.db_image.nbits, f"trained ({a.codes})", q.shape[0]
        a.scan_queries = min(a.scan_queries, a.queries)
    else:
        rng = np.random.default_rng(a.n + a.bits)
        db = codes(a.kind, a.n, a.bits, rng)
        q = codes(a.kind, a.queries, a.bits, rng)
    qs = np.ascontiguousarray(q[: a.scan_queries])
    kw = {} if a.scan_fraction is None else {"scan_fraction": a.scan_fraction or None}
    ix = MIHIndex(a.bits, a.m, nthreads=a.threads, **kw)
    ix.add(hashkit.Codes(db, a.bits))
    t = time.perf_counter()
    ix.build()
    build = time.perf_counter() - t
    mem = ix.memory_usage()
    qc = hashkit.Codes(q, a.bits)
    ops = [("r", int(r)) for r in a.radii.split(",")] + [("k", int(k)) for k in a.ks.split(",")]
    best = {op: [np.inf, np.inf] for op in ops}
    work = {}
    for _ in range(a.rounds):
        for op in ops:
            kind, v = op
            t = time.perf_counter()
            if kind == "r":
                res, w = ix.range_search(qc, v, return_work=True)
            else:
                d, i, w = ix.search(qc, v, return_work=True)
            tm = (time.perf_counter() - t) / a.queries
            t = time.perf_counter()
            ref = core.radius(qs, db, a.bits, v, a.threads) if kind == "r" else core.topk(qs, db, a.bits, v,
                                                                                            a.threads)
            ts = (time.perf_counter() - t) / a.scan_queries
            best[op][0] = min(best[op][0], tm)
            best[op][1] = min(best[op][1], ts)
            work[op] = w
            if kind == "r":
                n = int(ref[0][-1])
                assert np.array_equal(res.lims[: a.scan_queries + 1], ref[0]) and np.array_equal(res.idx[:n], ref[1])
            else:
                assert np.array_equal(i[: a.scan_queries], ref[1]) and np.array_equal(d[: a.scan_queries], ref[0])
    print(f"{a.kind} {a.bits}-bit codes, N = {a.n:,}, m = {mem['m']}, {a.threads} threads; {cpu_name()}, "
          f"simd_path={core.simd_path()}; scan_fraction {ix.scan_fraction}; min of {a.rounds} interleaved rounds; "
          f"build {build:.1f} s; "
          f"tables {mem['ids'] + mem['offsets']:,} B ({mem['bytes_per_item_per_table']:.1f} B/item/table)")
    print("| query | MIH /query | scan /query | scan / MIH | scanned by fallback | median work |")
    print("|---|---:|---:|---:|---:|---:|")
    for op in ops:
        tm, ts = best[op]
        w = work[op]
        med = int(np.median(w[w >= 0])) if (w >= 0).any() else -1
        label = f"r = {op[1]}" if op[0] == "r" else f"k = {op[1]}"
        print(f"| {label} | {tm * 1e6:.1f} µs | {ts * 1e6:.0f} µs | {ts / tm:.1f}× | {np.mean(w < 0):.0%} | {med} |")
    if a.account:
        desc = substrings(a.bits, mem["m"], a.n) if ix._tables is None else ix._tables.desc
        acc = account(db, q[: a.account_queries], a.bits, desc, a.account)
        print(f"k = {a.account}, mean of {a.account_queries} queries: "
              + ", ".join(f"{name} {v:,.0f}" for name, v in acc.items()))


if __name__ == "__main__":
    main()
