"""Full-size MIRFLICKR-25K in every released layout: write it, read it, train cca-itq on it.

For each MIRFLICKR layout hashkit reads (``hashkit datasets`` lists them), this script writes a
20,015-item dataset in that layout into a temporary folder (generated on the fly from
``hashkit.data.synthetic``: 24 labels, 1,386-d BoW, 4096-d features; raw-pixel layouts get small
32 x 24 images; nothing is committed), then, in a fresh process per layout, loads it with
``hashkit.data.load("mirflickr", root=...)`` and

- feature layouts (``vgg``: UCCH's ``mirflickr25k-iall-vgg.mat``; ``ugach``: UGACH's text
  release; ``djsrh`` with the VGG file beside the pixels, ``image="features"``): trains cca-itq
  (32 bits) end to end with the Trainer and evaluates it (I->T / T->I MAP on the split);
- raw-pixel layouts (``dcmh``: ``FLICKR-25K.mat``; ``djsrh``: ``mirflickr25k-iall.mat``;
  ``torchcmh``: ``imgList.mat`` + a JPEG folder): cca-itq takes features only, so the run
  streams every item's pixels through ``view.pixel_batch`` in batches of 128, the path a CNN
  method's training and encoding take.
Each run reports wall time (load, train or stream) and peak resident memory (``VmHWM`` of its
process). The peer, in its own process too, is the authors' loader for the same files: h5py
``[:]`` of the whole image stack (DCMH / DJSRH / UCCH for pixels), ``scipy.io.loadmat`` of the
whole feature file (UCCH ``MIRFlickr25K_fea``), ``np.loadtxt`` of every feature file (UGACH
parses them into Python lists, which is larger still).

Usage::

    python benchmarks/bench_data_layouts.py                 # every layout, n = 20015
    python benchmarks/bench_data_layouts.py --n 3000 --layouts vgg ugach --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_N = 20015
LAYOUTS = ("dcmh", "djsrh", "djsrh+vgg", "vgg", "torchcmh", "ugach")
IMG = (32, 24)   # small raw images (H, W): the pixel layouts' files stay a few tens of MB


def _peak_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- writers
def _mat73(path, variables):
    """MATLAB -v7.3 as MATLAB writes it: 512-byte header, axes reversed, MATLAB_class."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    cls = {np.dtype(np.uint8): "uint8", np.dtype(np.float64): "double",
           np.dtype(np.float32): "single"}
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, a in variables.items():
            d = f.create_dataset(k, data=np.ascontiguousarray(a.transpose(
                tuple(range(a.ndim))[::-1])))
            d.attrs["MATLAB_class"] = np.bytes_(cls[a.dtype])
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 "
                 b"HDF5 schema 1.00 .".ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")


def _mat5(path, variables):
    import scipy.io

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables)


def _pixels(labels, rng):
    """Small RGB images whose colour follows the labels (so they are not pure noise)."""
    n = len(labels)
    base = (labels[:, :3].astype(np.float32) * 160 + 40)[:, None, None, :]
    noise = rng.integers(0, 60, (n,) + IMG + (3,), dtype=np.uint8)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_layout(layout: str, folder: Path, n: int) -> None:
    from hashkit.data import synthetic

    data = synthetic.generate(n, seed=0)
    feats = np.asarray(data["images"], dtype=np.float32)
    texts = np.asarray(data["texts"], dtype=np.float64)
    labels = np.asarray(data["labels"], dtype=np.float64)
    rng = np.random.default_rng(0)
    if layout == "dcmh":
        px = _pixels(labels, rng)
        _mat73(folder / "FLICKR-25K.mat", {"images": px.transpose(1, 2, 3, 0), "YAll": texts,
                                           "LAll": labels})
    elif layout in ("djsrh", "djsrh+vgg"):
        cs = folder / "Cleared-Set"
        _mat73(cs / "IAll" / "mirflickr25k-iall.mat",
               {"IAll": _pixels(labels, rng).transpose(1, 2, 3, 0)})
        _mat5(cs / "YAll" / "mirflickr25k-yall.mat", {"YAll": texts})
        _mat5(cs / "LAll" / "mirflickr25k-lall.mat", {"LAll": labels})
        if layout == "djsrh+vgg":
            _mat5(cs / "mirflickr25k-iall-vgg.mat", {"XAll": feats})
    elif layout == "vgg":
        _mat5(folder / "mirflickr25k-iall-vgg.mat", {"XAll": feats})
        _mat5(folder / "mirflickr25k-yall.mat", {"YAll": texts})
        _mat5(folder / "mirflickr25k-lall.mat", {"LAll": labels})
    elif layout == "torchcmh":
        from PIL import Image

        names = [f"im{i + 1}.jpg" for i in range(n)]
        px = _pixels(labels, rng)
        (folder / "mirflickr").mkdir(parents=True)
        for name, img in zip(names, px):
            Image.fromarray(img).save(folder / "mirflickr" / name, quality=90)
        cell = np.empty((n, 1), dtype=object)
        cell[:, 0] = names
        _mat5(folder / "imgList.mat", {"FAll": cell})
        _mat5(folder / "tagList.mat", {"YAll": texts})
        _mat5(folder / "labelList.mat", {"LAll": labels})
    elif layout == "ugach":
        nq = min(2000, n // 10)
        nt = min(15000, (n - nq) * 3 // 4)
        order = np.random.default_rng(1).permutation(n)
        parts = {"test": order[:nq], "database": order[nq:], "train": order[nq:nq + nt],
                 "validation": order[nq + nt:nq + nt + min(2000, (n - nq - nt) // 2)]}
        lst, fea = folder / "mir" / "list", folder / "mir" / "feature"
        lst.mkdir(parents=True)
        fea.mkdir()
        for part, idx in parts.items():
            for modal, ext, mat, fmt in (("img", "jpg", feats, "%.5g"), ("txt", "txt", texts, "%d")):
                (lst / f"{part}_{modal}.txt").write_bytes(
                    "".join(f"{i}.{ext}\r\n" for i in idx).encode())
                np.savetxt(fea / f"{part}_{modal}.txt", mat[idx], fmt=fmt, delimiter=" ",
                           newline=" \r\n")
            # the release ships no database labels; items outside train/validation need them
            name = "database_label.txt" if part == "database" else f"{part}_label.txt"
            np.savetxt(lst / name, labels[idx], fmt="%d", newline=" \r\n")
        knn = np.random.default_rng(2).integers(0, nt, (nt, 10)).astype(np.float64)
        np.save(lst / "KNN_cross5.npy", knn)
    else:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")


# ------------------------------------------------------------------------- measurements
def run_hashkit(layout: str, folder: str) -> dict:
    import hashkit.data as hd

    t0 = time.perf_counter()
    image = "features" if layout == "djsrh+vgg" else "auto"
    n = int(os.environ.get("HK_BENCH_N", "20015"))
    small = None if n >= 20015 or layout == "ugach" else hd.Protocol(
        "small", n // 10, n // 3, n // 20)     # the standard sizes need the full 20,015 items
    ds = hd.load("mirflickr", root=folder, image=image, checksums=False, protocol=small)
    t_load = time.perf_counter() - t0
    out = {"layout": ds.options["layout"], "n": ds.n, "input": ds.input_description,
           "protocol": ds.manifest.protocol, "load_s": round(t_load, 2)}
    t0 = time.perf_counter()
    if ds.image_input == "features":
        from hashkit.train import Trainer

        res = Trainer("cca-itq", ds, 32, out_dir=None).fit()
        out.update(task="train cca-itq 32 bits + evaluate", map_i2t=round(res["map_i2t"], 4),
                   map_t2i=round(res["map_t2i"], 4), train=len(ds.train))
    else:
        seen = 0
        for view in (ds.train, ds.query, ds.retrieval):
            for s in range(0, len(view), 128):
                seen += len(view.pixel_batch(np.arange(s, min(s + 128, len(view)))))
        out.update(task=f"stream {seen} images through pixel_batch(128)")
    out["work_s"] = round(time.perf_counter() - t0, 2)
    out["peak_mib"] = round(_peak_mib(), 1)
    return out


def run_peer(layout: str, folder: str) -> dict:
    t0 = time.perf_counter()
    root = Path(folder)
    if layout in ("dcmh", "djsrh"):
        import h5py

        path = next(root.rglob("FLICKR-25K.mat" if layout == "dcmh" else "mirflickr25k-iall.mat"))
        with h5py.File(path, "r") as f:
            x = f["images" if layout == "dcmh" else "IAll"][:]
        what = f"h5py [:] of {path.name} (DCMH / DJSRH / UCCH read the whole stack)"
    elif layout in ("vgg", "djsrh+vgg"):
        import scipy.io

        path = next(root.rglob("mirflickr25k-iall-vgg.mat"))
        x = scipy.io.loadmat(path)["XAll"]
        what = "scipy.io.loadmat of mirflickr25k-iall-vgg.mat (UCCH MIRFlickr25K_fea)"
    elif layout == "ugach":
        x = [np.loadtxt(p, dtype=np.float64) for p in sorted((root / "mir" / "feature").glob(
            "*_img.txt")) if not p.name.startswith("validation")]
        what = "np.loadtxt of the test/database/train image feature files"
    else:
        from PIL import Image

        x = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((root / "mirflickr")
                                                                       .iterdir())]
        what = "Pillow decode of every JPEG into a list (eager)"
    del x
    return {"layout": layout, "peer": what, "load_s": round(time.perf_counter() - t0, 2),
            "peak_mib": round(_peak_mib(), 1)}


def _child(kind: str, layout: str, folder: str) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import bench_data_layouts as b; "
            f"print(json.dumps(b.run_{kind}({layout!r}, {folder!r})))")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
               HK_BENCH_N=str(_N))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"layout": layout, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20015)
    ap.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--tmp", help="parent folder of the temporary data (default: system temp)")
    args = ap.parse_args(argv)
    global _N
    _N = args.n
    rows = []
    for layout in args.layouts:
        folder = Path(tempfile.mkdtemp(prefix=f"hk-{layout.replace('+', '-')}-", dir=args.tmp))
        try:
            t0 = time.perf_counter()
            write_layout(layout, folder, args.n)
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            row = {"layout": layout, "write_s": round(time.perf_counter() - t0, 1),
                   "disk_mib": round(size / 2 ** 20, 1),
                   "hashkit": _child("hashkit", layout, str(folder))}
            if not args.no_peer:
                row["peer"] = _child("peer", layout, str(folder))
            rows.append(row)
            print(json.dumps(row), flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
