"""Codes for new items from a trained run: ``hashkit.encode.encode`` and ``hashkit encode``.

A run directory written by ``hashkit train`` (``config.json`` + ``checkpoints/last.pt``) is
rebuilt with :func:`load_method`; :func:`encode` turns image and/or text features (or raw
pixels) into ±1 codes (value > 0 is +1; 0 becomes -1, as ``hashkit.pack`` reads it);
``hashkit encode`` reads feature files (``.npy``, ``.npz``, ``.mat`` through the one MAT
reader, ``hashkit.data._matfile``) and writes a code file for ``hashkit eval`` / ``search``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ._validate import check_device
from .data._matfile import inspect_arrays, read_arrays
from .methods import get_method
from .methods.base import Method

__all__ = ["encode", "sign_codes", "load_method", "read_features", "pixels_nchw",
           "add_encode_arguments", "run_encode"]


def sign_codes(real) -> np.ndarray:
    """Real-valued network outputs -> ``int8`` ±1 codes (``value > 0`` is +1; 0 becomes -1).

    Parameters
    ----------
    real : array-like or torch.Tensor, shape (n, nbits)

    Returns
    -------
    numpy.ndarray, int8 (n, nbits)
    """
    from ._validate import to_numpy

    arr = to_numpy(real, "real")
    return np.where(arr > 0, 1, -1).astype(np.int8)


def pixels_nchw(view) -> Callable:
    """``positions -> float32 (b, 3, H, W)`` in [0, 255] from a view's uint8 ``pixel_batch``.

    Grey-scale images (one channel) are repeated to three, as ImageNet backbones expect.
    """
    def fetch(positions):
        px = np.asarray(view.pixel_batch(np.asarray(positions, dtype=np.int64)))
        if px.ndim == 3:
            px = px[..., None]
        if px.shape[-1] == 1:
            px = np.repeat(px, 3, axis=-1)
        return np.ascontiguousarray(px.transpose(0, 3, 1, 2), dtype=np.float32)

    return fetch


def has_features(view) -> bool:
    """Feature datasets expose ``images``; raw-pixel datasets only ``pixel_batch`` (data contract)."""
    ds = getattr(view, "dataset", None)
    if ds is not None and hasattr(ds, "image_dim"):
        return ds.image_dim is not None
    return getattr(view, "images", None) is not None


def encode(method: Method, images=None, texts=None, batch_size: int = 1024,
           pixels: Callable | None = None, n_pixels: int | None = None) -> dict:
    """Encode features with a (trained) method, in eval mode and without gradients.

    Parameters
    ----------
    method : Method
    images : numpy.ndarray float (n, image_dim), optional
    texts : numpy.ndarray float (m, text_dim), optional
    batch_size : int
        Rows per forward pass.
    pixels, n_pixels : callable and int, optional
        For raw-pixel datasets: ``pixels(idx) -> (b, 3, H, W)`` and the row count (instead of
        ``images``).

    Returns
    -------
    dict with ``"images"`` and/or ``"texts"``: ``int8`` ±1 arrays ``(n, nbits)``.

    Raises
    ------
    ValueError
        A feature array of the wrong width for this method.
    """
    import contextlib

    from ._validate import describe

    ctx = contextlib.nullcontext()
    if method.uses_torch:
        import torch

        ctx = torch.no_grad()
        method.train_mode(False)
    out = {}
    try:
        with ctx:
            for key, arr, fn, dim in (("images", images, method.encode_images, method.image_dim),
                                      ("texts", texts, method.encode_texts, method.text_dim)):
                if arr is None:
                    continue
                arr = np.asarray(arr)
                if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim):
                    raise ValueError(f"{key}: expected a 2-D float array (n, {dim}), got {describe(arr)}")
                parts = [sign_codes(fn(np.ascontiguousarray(arr[i:i + batch_size], dtype=np.float32)))
                         for i in range(0, arr.shape[0], batch_size)]
                out[key] = np.concatenate(parts, axis=0) if parts else np.zeros((0, method.nbits), np.int8)
            if pixels is not None:
                parts = []
                for i in range(0, int(n_pixels), batch_size):
                    idx = np.arange(i, min(i + batch_size, int(n_pixels)))
                    parts.append(sign_codes(method.encode_images(np.asarray(pixels(idx), dtype=np.float32))))
                out["images"] = np.concatenate(parts, axis=0)
    finally:
        if method.uses_torch:
            method.train_mode(True)
    return out


def _resolve_run(run: str | os.PathLike) -> Path:
    run = Path(run)
    if (run / "config.json").exists():
        return run
    subs = sorted(p.parent for p in run.glob("*/config.json"))
    if len(subs) == 1:
        return subs[0]
    if not subs:
        raise FileNotFoundError(f"run: expected a run directory holding config.json, got {str(run)!r}")
    raise ValueError(f"run: {str(run)!r} holds several sub-runs ({', '.join(p.name for p in subs)}); "
                     f"name one of them")


def load_method(run: str | os.PathLike, device: str = "cpu") -> tuple[Method, dict]:
    """Rebuild a trained method from a run directory (its config and last checkpoint).

    Parameters
    ----------
    run : path
        A run directory (or a parent holding exactly one sub-run).
    device : {"cpu", "cuda"}

    Returns
    -------
    (method, run_config)

    Raises
    ------
    FileNotFoundError
        No config.json or no checkpoint.
    """
    import torch

    run = _resolve_run(run)
    device = check_device(device)
    cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
    ckpt = run / "checkpoints" / "last.pt"
    if not ckpt.exists():
        raise FileNotFoundError(f"run: expected a checkpoint at {str(ckpt)!r}; has the run trained an epoch?")
    cls = get_method(cfg["method"])
    method = cls(cfg["nbits"], cfg["image_dim"], cfg["text_dim"], cfg["nlabels"], config=cfg["config"],
                 device=device)
    state = torch.load(ckpt, map_location=device, weights_only=False)
    method.load_state_dict(state["method"], optimizers=False)
    return method, cfg


def read_features(path: str | os.PathLike, key: str | None = None, name: str = "features") -> np.ndarray:
    """Read a 2-D float feature matrix from ``.npy``, ``.npz`` or ``.mat`` (v5 or v7.3/HDF5).

    ``key`` names the array in ``.npz`` / ``.mat`` files; without it the file must hold exactly
    one 2-D array. MATLAB v7.3 arrays are transposed back to row-major ``(n, d)``.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, unknown extension, missing/ambiguous key, not a 2-D numeric array.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arr = _pick(name, path, key, {k: z[k].shape for k in z.files}, lambda k: z[k])
    elif suffix == ".mat":
        # Only the chosen array is read, after the file's declarations are checked (a small
        # file may declare a huge one); MATLAB text (char) is never a feature matrix.
        infos = inspect_arrays(path)
        shapes = {k: i.shape for k, i in infos.items() if i.kind in ("numeric", "logical", "sparse")}
        arr = _pick(name, path, key, shapes, lambda k: read_arrays(path, keys=[k])[k],
                    others={k: i.kind for k, i in infos.items() if k not in shapes})
        if hasattr(arr, "toarray"):
            arr = arr.toarray()
    else:
        raise ValueError(f"{name}: expected a .npy, .npz or .mat file, got {str(path)!r}")
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected a 2-D numeric array in {str(path)!r}, got dtype {arr.dtype} "
                         f"and shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _pick(name, path, key, shapes: dict, read, others: dict | None = None):
    """The array ``key`` (or the one 2-D array) of a feature file, read by ``read(key)``."""
    others = others or {}
    if key is None:
        cands = sorted(k for k, shp in shapes.items() if len(shp) == 2)
        if len(cands) != 1:
            how = f"{name}-key" if name.startswith("--") else "key="
            raise ValueError(f"{name}: {str(path)!r} holds {len(cands)} 2-D arrays "
                             f"({', '.join(cands) or 'none'}); name one with {how}")
        key = cands[0]
    if key in others:
        raise ValueError(f"{name}: {str(path)!r} key {key!r} holds MATLAB {others[key]} data, "
                         "not a numeric feature matrix")
    if key not in shapes:
        raise ValueError(f"{name}: {str(path)!r} has no array {key!r}; it has "
                         f"{', '.join(sorted(set(shapes) | set(others)))}")
    return read(key)


def add_encode_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hashkit encode``."""
    parser.add_argument("--run", required=True, help="a run directory written by hashkit train")
    parser.add_argument("--images", default=None, help="image features (.npy/.npz/.mat)")
    parser.add_argument("--texts", default=None, help="text features (.npy/.npz/.mat)")
    parser.add_argument("--images-key", default=None, help="array name inside an .npz/.mat image file")
    parser.add_argument("--texts-key", default=None, help="array name inside an .npz/.mat text file")
    parser.add_argument("--labels", default=None,
                        help="multi-hot labels of the encoded items (.npy/.npz/.mat), stored for hashkit eval")
    parser.add_argument("--labels-key", default=None, help="array name inside an .npz/.mat label file")
    parser.add_argument("--out", default=None, help="codes file to write (default: RUN/encoded.npz)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=1024)


def run_encode(args: argparse.Namespace) -> int:
    """``hashkit encode``: features in, a codes ``.npz`` out (images as query_image, texts as query_text)."""
    if args.images is None and args.texts is None:
        raise ValueError("encode: expected --images and/or --texts, got neither")
    method, cfg = load_method(args.run, device=args.device)
    imgs = read_features(args.images, args.images_key, "--images") if args.images else None
    txts = read_features(args.texts, args.texts_key, "--texts") if args.texts else None
    codes = encode(method, images=imgs, texts=txts, batch_size=args.batch_size)
    out = Path(args.out) if args.out else _resolve_run(args.run) / "encoded.npz"
    from .codefile import save_code_file

    counts = {k: len(v) for k, v in codes.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"encode: --images and --texts must describe the same items, got "
                         f"{counts['images']} images and {counts['texts']} texts")
    # Without --labels the file holds codes only: searchable, and hashkit eval says why it
    # cannot evaluate it.
    labels = None
    if args.labels:
        labels = read_features(args.labels, args.labels_key, "--labels").astype(np.uint8)
    kwargs = {"query_image": codes.get("images"), "query_text": codes.get("texts")}
    save_code_file(out, query_labels=labels, db_labels=labels,
                   meta={"method": cfg["method"], "nbits": cfg["nbits"], "run": str(args.run),
                         "images": args.images, "texts": args.texts, "labels": args.labels}, **kwargs)
    parts = ", ".join(f"{len(v)} {k}" for k, v in codes.items())
    print(f"encoded {parts} with {cfg['method']} ({cfg['nbits']} bits) -> {out}")
    return 0
