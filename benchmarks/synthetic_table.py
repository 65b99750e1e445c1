"""MAP of every registered method on the MIRFLICKR-like synthetic set, all four directions.

Trains each method (``hashkit train``, the methods' own defaults for ``synthetic``) at each code
length on one seeded synthetic set, evaluates the final codes with ``hashkit.eval.evaluate``
(I->T, T->I, I->I, T->T, full-ranking MAP, ties by index) and prints a Markdown table; the README
table is this script's output.

    python benchmarks/synthetic_table.py                       # n=4000, bits 16 32 64, seed 0
    python benchmarks/synthetic_table.py --n 20015 --seed 1 --methods dcmh gch

Every number can be rerun: data, split and training are seeded (``--seed`` trains, the split and
the data use ``--split-seed``), and each run directory keeps its config and split manifest.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from hashkit.eval import evaluate
    from hashkit.methods import list_methods

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    p.add_argument("--bits", nargs="*", type=int, default=[16, 32, 64])
    p.add_argument("--n", type=int, default=4000, help="synthetic items (query/retrieval/train by protocol)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/synthetic-table")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)

    methods = args.methods or list(list_methods())
    rows = []
    for m in methods:
        run = Path(args.out) / m
        cmd = [sys.executable, "-m", "hashkit", "train", "--method", m, "--dataset", "synthetic",
               "--data-option", f"n={args.n}", "--bits", *map(str, args.bits), "--seed", str(args.seed),
               "--split-seed", str(args.split_seed), "--threads", str(args.threads), "--out", str(run),
               "--no-progress", "--overwrite"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        secs = time.perf_counter() - t0
        for b in args.bits:
            res = evaluate(run / f"{b}bits-seed{args.seed}" / "codes.npz", metrics=("map",))
            rows.append({"method": m, "bits": b, "seconds": secs / len(args.bits),
                         **{d: res["directions"][d]["metrics"]["map"] for d in ("i2t", "t2i", "i2i", "t2t")}})
            print(f"{m} {b} bits: " + " ".join(f"{d} {rows[-1][d]:.4f}" for d in ("i2t", "t2i", "i2i", "t2t")),
                  file=sys.stderr)
    print(f"\nsynthetic (MIRFLICKR-like), n={args.n}, data/split seed {args.split_seed}, "
          f"training seed {args.seed}; MAP, full ranking, ties by index\n")
    print("| method | bits | I→T | T→I | I→I | T→T |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['bits']} | {r['i2t']:.3f} | {r['t2i']:.3f} | {r['i2i']:.3f} | {r['t2t']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
