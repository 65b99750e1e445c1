"""Seconds per training epoch for every registered method at MIRFLICKR-25K size.

Synthetic data shaped like MIRFLICKR-25K (``hashkit.data.load("synthetic")``: 10,000 training
pairs, 4096-d image features, 1386-d BoW, 24 labels). The registry is iterated, so a method
added later is measured too. Each method runs with its own defaults (no dataset tuning exists
for ``synthetic``); one warm-up epoch is excluded unless ``--warmup 0``; validation, checkpoints
and the final evaluation are not timed (they are the Trainer's, shared by all methods).

Peer: the same DCMH epoch written as the plain PyTorch loop the research ports use (one
script, no Trainer); the ratio shows what the shared Trainer costs.

Usage::

    python benchmarks/bench_train.py                       # all methods, 2 threads, 1 epoch each
    python benchmarks/bench_train.py --methods dcmh cca-itq --epochs 2 --n 20015 --json out.json

As a pytest-benchmark suite (off by default, like every benchmark here)::

    python -m pytest benchmarks/bench_train.py --benchmark-enable     # 2,000 training pairs
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _dataset(n: int, seed: int = 0):
    import hashkit.data

    return hashkit.data.load("synthetic", n=n, seed=seed)


def time_method(name: str, ds, nbits: int = 32, epochs: int = 1, warmup: int = 1, device: str = "cpu",
                config: dict | None = None) -> dict:
    """Train ``name`` for ``warmup + epochs`` epochs; return mean seconds of the timed epochs."""
    from hashkit.train import Trainer

    t = Trainer(name, ds, nbits, None, progress=False, eval_every=0, device=device, config=config or {},
                log=lambda m: None)
    t0 = time.perf_counter()
    t.prepare()
    setup = time.perf_counter() - t0
    times = []
    for e in range(warmup + epochs):
        rec = t.run_epoch(e)
        if e >= warmup:
            times.append(rec["seconds"])
    return {"method": name, "n_train": t.train_data.n, "setup_s": setup,
            "s_per_epoch": float(np.mean(times)), "steps": rec["steps"]}


def peer_dcmh_epoch(ds, nbits: int = 32, batch: int = 128, seed: int = 0) -> float:
    """A plain-PyTorch DCMH epoch (image pass + text pass + B update) without the Trainer."""
    import torch

    torch.manual_seed(seed)
    x = torch.as_tensor(ds.train.images)
    y = torch.as_tensor(ds.train.texts)
    lab = torch.as_tensor(ds.train.labels.astype(np.float32))
    n = x.shape[0]
    img = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 8192), torch.nn.ReLU(), torch.nn.Linear(8192, nbits))
    txt = torch.nn.Sequential(torch.nn.Linear(y.shape[1], 8192), torch.nn.ReLU(), torch.nn.Linear(8192, nbits))
    oi = torch.optim.SGD(img.parameters(), lr=0.03, weight_decay=5e-4)
    ot = torch.optim.SGD(txt.parameters(), lr=0.03, weight_decay=5e-4)
    with torch.no_grad():
        F, G = img(x), txt(y)
    B = torch.sign(F + G)
    t0 = time.perf_counter()
    for net, opt, inp, buf, other in ((img, oi, x, F, G), (txt, ot, y, G, F)):
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            out = net(inp[idx])
            buf[idx] = out.detach()
            s = (lab[idx] @ lab.T > 0).float()
            th = 0.5 * out @ other.T
            loss = (torch.nn.functional.softplus(th) - s * th).sum() + ((B[idx] - out) ** 2).sum() \
                + ((out.sum(0) + buf.sum(0) - buf[idx].sum(0)) ** 2).sum()
            loss = loss / (len(idx) * n)
            opt.zero_grad()
            loss.backward()
            opt.step()
    B = torch.sign(F + G)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    from hashkit.methods import list_methods

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    p.add_argument("--n", type=int, default=20015, help="dataset size (20015 -> 10,000 training pairs)")
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per method")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the 2-core target)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    ds = _dataset(args.n)
    rows = []
    print(f"synthetic n={args.n} (train {len(ds.train)}), {args.bits} bits, {args.threads} threads, {args.device}")
    print(f"{'method':<12} {'s/epoch':>9} {'steps':>6} {'setup s':>8}")
    for name in args.methods or list_methods():
        try:
            r = time_method(name, ds, args.bits, args.epochs, args.warmup, args.device)
        except Exception as exc:  # one broken method must not hide the others' numbers
            print(f"{name:<12} failed: {exc!r}")
            continue
        rows.append(r)
        print(f"{name:<12} {r['s_per_epoch']:>9.2f} {r['steps']:>6} {r['setup_s']:>8.2f}", flush=True)
    if not args.no_peer and args.device == "cpu":
        peer = peer_dcmh_epoch(ds, args.bits)
        ours = next((r["s_per_epoch"] for r in rows if r["method"] == "dcmh"), None)
        ratio = f"  (Trainer dcmh / peer = {ours / peer:.2f})" if ours else ""
        print(f"{'peer dcmh':<12} {peer:>9.2f}{ratio}")
        rows.append({"method": "peer-dcmh-plain-torch", "s_per_epoch": peer})
    if args.json:
        from hashkit._io import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")
    return 0


# ----------------------------------------------------------------------------- pytest-benchmark
try:
    import pytest

    from hashkit.methods import list_methods as _lm

    @pytest.fixture(scope="module")
    def _bench_ds():
        return _dataset(4003)  # 2,000 training pairs: keeps a collected run short

    @pytest.mark.slow
    @pytest.mark.parametrize("name", _lm())
    def test_epoch(benchmark, name, _bench_ds):
        from hashkit.train import Trainer

        t = Trainer(name, _bench_ds, 32, None, progress=False, eval_every=0, log=lambda m: None)
        t.prepare()
        counter = iter(range(10 ** 6))
        benchmark.pedantic(lambda: t.run_epoch(next(counter)), rounds=2, iterations=1)
except ImportError:  # running as a plain script without pytest
    pass


if __name__ == "__main__":
    sys.exit(main())
