#!/usr/bin/env python
"""GPU benchmark for hashkit's CUDA backend: build, check, measure the ceilings, time, report.

Run from the repository root on a machine with a CUDA GPU (PyTorch with CUDA required for the
timings and the baseline; CuPy optional)::

    python benchmarks/gpu_bench.py            # build (pip, else standalone cmake), check, time
    python benchmarks/gpu_bench.py --build none --quick

Steps, in order (each reported even when a later one fails):

1. build: ``pip install --no-build-isolation -e . -Cbuild-dir=build`` with HASHKIT_CUDA=ON; if
   that fails (no scikit-build-core on the machine), a standalone cmake build of csrc/cuda
   loaded as ``hashkit._cuda``;
2. correctness: CUDA vs the CPU backend (``cpp``, else ``numba``) on samples: integer outputs
   must be identical, float sums within 1e-12 relative; the two headline configurations are
   checked too (a sample of the top-100 queries; every NUS-WIDE-scale query);
3. ceilings: device-to-device copy bandwidth and a popcount-bound microkernel (64-bit
   XOR + popcount pairs/s), measured by ``hashkit._cuda.measure_ceilings``;
4. timings with CUDA events on the current stream: warm-up, then the median of repeats, the
   inputs rotating between several copies so no run reuses the previous one's cache:
   distance matrix, distance histograms, fused MAP statistics (pairs/s against the popcount
   limit), a PyTorch baseline (XOR + popcount through a byte lookup table + stable sort),
   full MAP at NUS-WIDE scale (2,100 x 193,734, 64 bits; target < 5 ms on H100) and top-100
   for 10,000 queries over 10,000,000 codes (target < 100 ms);
5. a Markdown table printed last; JSON written to ``$OUT/gpu_bench.json`` when ``OUT`` is set.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS: dict = {"sections": {}, "rows": []}


def log(msg: str) -> None:
    print(msg, flush=True)


def section(name):
    """Run a step; record its failure instead of stopping the whole benchmark."""
    def wrap(fn):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            log(f"\n== {name}")
            try:
                out = fn(*args, **kwargs)
                RESULTS["sections"][name] = {"ok": True, "seconds": round(time.perf_counter() - t0, 2)}
                return out
            except Exception as exc:  # a benchmark reports what broke and carries on
                traceback.print_exc()
                RESULTS["sections"][name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                return None
        return run
    return wrap


def row(what: str, value: str, target: str = "", note: str = "", **data) -> None:
    RESULTS["rows"].append({"what": what, "value": value, "target": target, "note": note, **data})
    log(f"   {what}: {value}  {target}  {note}")


# ------------------------------------------------------------------------------------ build

@section("build")
def build(mode: str) -> str:
    if mode == "none":
        return "none"
    if mode in ("auto", "pip"):
        cmd = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "-e", ".",
               "-Cbuild-dir=build", "-Ccmake.define.HASHKIT_CUDA=ON"]
        log("   " + " ".join(cmd))
        r = subprocess.run(cmd, cwd=REPO)
        if r.returncode == 0:
            return "pip"
        if mode == "pip":
            raise RuntimeError(f"pip install failed (exit {r.returncode})")
        log("   pip install failed; trying the standalone cmake build of csrc/cuda")
    bdir = os.path.join(REPO, "build", "cuda-standalone")
    pyb = subprocess.run([sys.executable, "-m", "pybind11", "--cmakedir"], capture_output=True, text=True)
    cfg = ["cmake", "-S", os.path.join(REPO, "csrc", "cuda"), "-B", bdir, "-DCMAKE_BUILD_TYPE=Release",
           "-DCMAKE_CUDA_ARCHITECTURES=native", f"-Dpybind11_DIR={pyb.stdout.strip()}",
           f"-DPython_EXECUTABLE={sys.executable}"]
    subprocess.run(cfg, check=True)
    subprocess.run(["cmake", "--build", bdir, "-j", str(os.cpu_count() or 2)], check=True)
    return "cmake"


def load_backend(build_mode: str):
    """Import hashkit.kernels._cuda; after a standalone build, load that .so as hashkit._cuda."""
    sys.path.insert(0, REPO)
    if build_mode == "cmake":
        so = glob.glob(os.path.join(REPO, "build", "cuda-standalone", "_cuda*.so"))[0]
        spec = importlib.util.spec_from_file_location("hashkit._cuda", so)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        import hashkit

        sys.modules["hashkit._cuda"] = mod
        hashkit._cuda = mod
    from hashkit.kernels import _cuda as cb

    if not cb.AVAILABLE:
        raise SystemExit(f"CUDA backend unavailable: {cb.REASON}")
    from hashkit import _cuda

    return cb, _cuda


def cpu_backend():
    from hashkit.kernels import _select as _backend

    for name in ("cpp", "numba"):
        if _backend.available().get(name):
            return name, _backend.get(name)
    raise RuntimeError(f"no CPU backend: {_backend.reasons()}")


# ------------------------------------------------------------------------------------ data

def rand_words(torch, n: int, w: int, gen, nbits: int | None = None, device: str = "cuda"):
    """Uniform random packed codes (n, w) int64 on the GPU; padding bits cleared."""
    hi = torch.randint(0, 1 << 32, (n, w), dtype=torch.int64, device=device, generator=gen)
    lo = torch.randint(0, 1 << 32, (n, w), dtype=torch.int64, device=device, generator=gen)
    x = (hi << 32) | lo   # the shift wraps into the sign bit: all 64 bits random
    if nbits is not None and nbits % 64:
        x[:, -1] &= (1 << (nbits % 64)) - 1
    return x


def rand_labels(torch, n: int, nlabels: int, density: float, gen, device: str = "cuda"):
    """Random multi-hot labels packed like codes: (n, ceil(nlabels / 64)) int64, padding zero."""
    lw = -(-nlabels // 64)
    bits = torch.zeros((n, lw * 64), dtype=torch.int64, device=device)
    bits[:, :nlabels] = (torch.rand((n, nlabels), device=device, generator=gen) < density).to(torch.int64)
    shifts = torch.arange(64, device=device, dtype=torch.int64)
    # distinct powers of two: the int64 sum is the bitwise OR, bit 63 included
    return (bits.view(n, lw, 64) << shifts).sum(2)


def host(x) -> np.ndarray:
    mod = type(x).__module__.split(".")[0]
    if mod == "torch":
        return x.cpu().numpy()
    if mod == "cupy":
        return x.get()
    return np.asarray(x)


def u64(x) -> np.ndarray:
    return np.ascontiguousarray(host(x)).view(np.uint64)


# ------------------------------------------------------------------------------------ timing

def time_events(torch, fn, rotate: int, warmup: int, repeats: int) -> dict:
    """Median (and min/max) milliseconds of fn(i) by CUDA events on the current stream."""
    for i in range(warmup):
        fn(i % rotate)
    torch.cuda.synchronize()
    times = []
    for i in range(repeats):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn(i % rotate)
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
            "repeats": repeats, "warmup": warmup}


def fmt_rate(x: float) -> str:
    return f"{x / 1e9:,.1f} G pairs/s"


# ------------------------------------------------------------------------------------ steps

@section("correctness vs CPU (samples)")
def check_samples(torch, cb, quick: bool) -> None:
    name, cpu = cpu_backend()
    gen = torch.Generator(device="cuda").manual_seed(1)
    n = 20000 if quick else 60000
    for nbits, nlabels in ((16, 24), (64, 21), (130, 81)):
        w = -(-nbits // 64)
        q = rand_words(torch, 200, w, gen, nbits)
        d = rand_words(torch, n, w, gen, nbits)
        if nbits == 16:   # low-entropy 16-bit codes: many ties
            d = d & rand_words(torch, n, w, gen, nbits)
        ql = rand_labels(torch, 200, nlabels, 0.1, gen)
        dl = rand_labels(torch, n, nlabels, 0.1, gen)
        qh, dh, qlh, dlh = u64(q), u64(d), u64(ql), u64(dl)
        cut = np.array([1, 10, 100, 1000, n], np.int64)
        got = cb.rank_stats(q, d, ql, dl, nbits, cut, 100, True, nlabels)
        ref = cpu.rank_stats(qh, dh, qlh, dlh, nbits, cut, 100, True, nlabels, 0)
        for key, v in ref.items():
            g = host(got[key])
            if np.asarray(v).dtype.kind == "f":
                np.testing.assert_allclose(g, v, rtol=1e-12, atol=0, err_msg=key)
            else:
                np.testing.assert_array_equal(g, v, err_msg=key)
        for k in (1, 100, 5000):
            gd, gi = cb.topk(q, d, nbits, k)
            rd, ri = cpu.topk(qh, dh, nbits, k, 0)
            np.testing.assert_array_equal(host(gi), ri)
            np.testing.assert_array_equal(host(gd), rd)
        r = nbits // 4
        for a, b in zip(cb.radius(q, d, nbits, r), cpu.radius(qh, dh, nbits, r, 0)):
            np.testing.assert_array_equal(host(a), b)
        np.testing.assert_array_equal(host(cb.hamming(q[:50], d)), cpu.hamming(qh[:50], dh, 0))
        log(f"   {nbits} bits, {nlabels} labels: identical to {name} (topk, radius, hamming, rank_stats)")
    RESULTS["correctness_reference"] = name


@section("ceilings")
def ceilings(ext, device: int) -> dict:
    c = ext.measure_ceilings(device, 1 << 30, 10)
    row("D2D copy bandwidth (read+write)", f"{c['copy_GBps']:,.0f} GB/s", note="cudaMemcpy 1 GiB, best of 10")
    row("popcount limit, 64-bit codes", fmt_rate(c["popc64_pairs_per_s"]),
        note="XOR+popcount microkernel, best of 10")
    RESULTS["ceilings"] = c
    return c


@section("throughput")
def throughput(torch, cb, ceil: dict | None, quick: bool) -> None:
    gen = torch.Generator(device="cuda").manual_seed(2)
    limit = ceil["popc64_pairs_per_s"] if ceil else float("nan")
    nq, n = (512, 200_000) if quick else (2048, 1_000_000)
    qs = [rand_words(torch, nq, 1, gen) for _ in range(3)]
    ds = [rand_words(torch, n, 1, gen) for _ in range(2)]
    qls = [rand_labels(torch, nq, 21, 0.09, gen) for _ in range(3)]
    dls = [rand_labels(torch, n, 21, 0.09, gen) for _ in range(2)]
    pairs = nq * n
    nh = 256
    t = time_events(torch, lambda i: cb.hamming(qs[i % 3][:nh], ds[i % 2]), 6, 3, 10)
    rate = nh * n / (t["median_ms"] * 1e-3)
    gbs = 4 * nh * n / (t["median_ms"] * 1e-3) / 1e9
    row(f"hamming matrix {nh}x{n:,} (64 b)", f"{t['median_ms']:.2f} ms",
        note=f"{fmt_rate(rate)}; writes {gbs:,.0f} GB/s"
        + (f" = {gbs / ceil['copy_GBps']:.0%} of copy bw" if ceil else ""), **t)
    cut = np.zeros(0, np.int64)
    t = time_events(torch, lambda i: cb.hist_stats(qs[i % 3], ds[i % 2], qls[i % 3], dls[i % 2], 64), 6, 3, 10)
    rate = pairs / (t["median_ms"] * 1e-3)
    row(f"hist_stats {nq}x{n:,} (64 b)", f"{t['median_ms']:.2f} ms",
        note=f"{fmt_rate(rate)} = {rate / limit:.0%} of popcount limit", **t)
    t = time_events(torch, lambda i: cb.rank_stats(qs[i % 3], ds[i % 2], qls[i % 3], dls[i % 2], 64, cut, 0, False, 21),
                    6, 3, 10)
    rate = pairs / (t["median_ms"] * 1e-3)
    row(f"rank_stats (fused MAP stats) {nq}x{n:,}", f"{t['median_ms']:.2f} ms",
        note=f"{fmt_rate(rate)} = {rate / limit:.0%} of popcount limit (two passes)", **t)


def torch_map(torch, q, d, ql, dl, batch: int = 32):
    """The usual PyTorch evaluation: XOR, popcount by byte lookup table, stable sort, cumsum."""
    lut = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int16, device=q.device)
    n = d.shape[0]
    pos = torch.arange(1, n + 1, device=q.device, dtype=torch.float64)
    aps = []
    for s in range(0, q.shape[0], batch):
        x = q[s:s + batch, None, :] ^ d[None, :, :]
        dist = lut[x.view(torch.uint8).long()].sum(-1, dtype=torch.int32)
        rel = ((ql[s:s + batch, None, :] & dl[None, :, :]) != 0).any(-1)
        order = torch.sort(dist, dim=1, stable=True).indices
        r = rel.gather(1, order).to(torch.float64)
        ap_sum = (r.cumsum(1) / pos * r).sum(1)
        R = r.sum(1)
        aps.append(torch.where(R > 0, ap_sum / R.clamp(min=1), torch.zeros_like(R)))
    return torch.cat(aps).mean()


def hashkit_map(torch, cb, q, d, ql, dl):
    out = cb.rank_stats(q, d, ql, dl, 64, np.zeros(0, np.int64), 0, False, 21)
    R = out["hist_rel"].sum(1).to(torch.float64)
    return torch.where(R > 0, out["ap_sum"] / R.clamp(min=1), torch.zeros_like(R)).mean()


@section("MAP at NUS-WIDE scale")
def nus_map(torch, cb, quick: bool) -> None:
    gen = torch.Generator(device="cuda").manual_seed(3)
    nq, n = 2100, 193_734
    qs = [rand_words(torch, nq, 1, gen) for _ in range(3)]
    ds = [rand_words(torch, n, 1, gen) for _ in range(3)]
    qls = [rand_labels(torch, nq, 21, 0.09, gen) for _ in range(3)]
    dls = [rand_labels(torch, n, 21, 0.09, gen) for _ in range(3)]
    t = time_events(torch, lambda i: hashkit_map(torch, cb, qs[i], ds[i], qls[i], dls[i]), 3, 3, 20)
    row("MAP 2,100 x 193,734, 64 b (hashkit)", f"{t['median_ms']:.2f} ms", "target < 5 ms",
        note=f"{fmt_rate(nq * n / (t['median_ms'] * 1e-3))}", **t)
    # same numbers as the CPU backend, and as the PyTorch baseline
    name, cpu = cpu_backend()
    got = cb.rank_stats(qs[0], ds[0], qls[0], dls[0], 64, np.array([100, 1000], np.int64), 0, False, 21)
    ref = cpu.rank_stats(u64(qs[0]), u64(ds[0]), u64(qls[0]), u64(dls[0]), 64, np.array([100, 1000], np.int64),
                         0, False, 21, 0)
    for key in ("hist_all", "hist_rel", "rel_at"):
        np.testing.assert_array_equal(host(got[key]), ref[key], err_msg=key)
    np.testing.assert_allclose(host(got["ap_sum"]), ref["ap_sum"], rtol=1e-12, atol=0)
    log(f"   NUS-WIDE-scale statistics identical to {name} (integers), ap_sum within 1e-12")
    m_hk = float(hashkit_map(torch, cb, qs[0], ds[0], qls[0], dls[0]))
    reps = 1 if quick else 3
    t = time_events(torch, lambda i: torch_map(torch, qs[i], ds[i], qls[i], dls[i]), 3, 1, reps)
    m_pt = float(torch_map(torch, qs[0], ds[0], qls[0], dls[0]))
    row("MAP 2,100 x 193,734 (PyTorch LUT popcount + stable sort)", f"{t['median_ms']:.1f} ms",
        note=f"MAP {m_pt:.6f} vs hashkit {m_hk:.6f} (|diff| {abs(m_pt - m_hk):.1e})", **t)
    if abs(m_pt - m_hk) > 1e-9:
        raise AssertionError(f"PyTorch baseline MAP {m_pt} != hashkit MAP {m_hk}")


@section("top-100, 10,000 x 10,000,000")
def big_topk(torch, cb, quick: bool) -> None:
    gen = torch.Generator(device="cuda").manual_seed(4)
    nq, n, k = (2000, 2_000_000, 100) if quick else (10_000, 10_000_000, 100)
    qs = [rand_words(torch, nq, 1, gen) for _ in range(3)]
    d = rand_words(torch, n, 1, gen)   # 80 MB: larger than L2, so rotating queries suffices
    torch.cuda.reset_peak_memory_stats()
    t = time_events(torch, lambda i: cb.topk(qs[i], d, 64, k), 3, 2, 10)
    row(f"top-{k} {nq:,} x {n:,}, 64 b", f"{t['median_ms']:.1f} ms", "target < 100 ms" if not quick else "",
        note=f"{fmt_rate(nq * n / (t['median_ms'] * 1e-3))} (two passes)", **t)
    name, cpu = cpu_backend()
    sample = qs[0][:16]
    gd, gi = cb.topk(sample, d, 64, k)
    rd, ri = cpu.topk(u64(sample), u64(d), 64, k, 0)
    np.testing.assert_array_equal(host(gi), ri)
    np.testing.assert_array_equal(host(gd), rd)
    log(f"   16 sampled queries identical to {name}")


def table() -> str:
    lines = ["| measurement | result | target | notes |", "|---|---|---|---|"]
    for r in RESULTS["rows"]:
        lines.append(f"| {r['what']} | {r['value']} | {r['target']} | {r['note']} |")
    bad = [f"{k}: {v['error']}" for k, v in RESULTS["sections"].items() if not v["ok"]]
    if bad:
        lines.append("")
        lines.extend(f"- FAILED {b}" for b in bad)
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", choices=("auto", "pip", "cmake", "none"), default="auto")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a sanity run, not the targets)")
    ap.add_argument("--device", type=int, default=0)
    args = ap.parse_args(argv)

    mode = build(args.build) or "none"
    cb, ext = load_backend(mode)
    import torch

    torch.cuda.set_device(args.device)
    RESULTS["device"] = ext.device_properties(args.device)
    RESULTS["torch"] = torch.__version__
    RESULTS["python"] = platform.python_version()
    RESULTS["build"] = mode
    log(f"device: {RESULTS['device']}")

    check_samples(torch, cb, args.quick)
    ceil = ceilings(ext, args.device)
    throughput(torch, cb, ceil, args.quick)
    nus_map(torch, cb, args.quick)
    big_topk(torch, cb, args.quick)
    RESULTS["peak_torch_memory_GB"] = torch.cuda.max_memory_allocated() / 1e9

    out_dir = os.environ.get("OUT")
    if out_dir:
        path = os.path.join(out_dir, "gpu_bench.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(RESULTS, f, indent=2, default=str)
        os.replace(tmp, path)
    dev = RESULTS["device"]
    log(f"\n### hashkit CUDA backend on {dev.get('name')} (cc {dev.get('compute_capability')}), "
        f"torch {RESULTS['torch']}, median of repeats by CUDA events\n")
    log(table())
    return 0 if all(v["ok"] for v in RESULTS["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
