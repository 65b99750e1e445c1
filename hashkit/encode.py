"""Codes for new items from a trained run: ``hashkit.encode.encode`` and ``hashkit encode``.

A run folder written by ``hashkit train`` (``config.json`` + ``checkpoints/last.pt``, and
``checkpoints/best.pt`` for ``--select best-val``) is rebuilt with :func:`load_method`, which
reads checkpoints with ``torch.load(weights_only=True)`` only (``hashkit._checkpoint``): a run
folder someone shares cannot run code. :func:`encode` turns image and/or text features (or raw
pixels) into ±1 codes (value > 0 is +1; 0 becomes -1, as ``hashkit.pack`` reads it; NaN or
infinite features are an error, not a code); ``hashkit encode`` reads feature files (``.npy``,
``.npz``, ``.mat`` through the one MAT reader, ``hashkit.data._matfile``) and writes a code file
for ``hashkit eval`` / ``search``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ._checkpoint import CheckpointError, load_checkpoint
from ._device import resolve_device
from .data._matfile import inspect_arrays, read_arrays
from .methods import get_method
from .methods.base import Method

__all__ = ["encode", "sign_codes", "load_method", "read_features", "read_labels", "pixels_nchw",
           "add_encode_arguments", "run_encode"]


def sign_codes(real) -> np.ndarray:
    """Real-valued network outputs -> ``int8`` ±1 codes (``value > 0`` is +1; 0 becomes -1).

    Parameters
    ----------
    real : array-like or torch.Tensor, shape (n, nbits)

    Returns
    -------
    numpy.ndarray, int8 (n, nbits)

    Raises
    ------
    ValueError
        NaN values: a NaN has no sign (it used to become -1, so a diverged model gave all -1 codes).
    """
    from ._validate import to_numpy

    arr = to_numpy(real, "real")
    if arr.dtype.kind in "fc":
        bad = np.isnan(arr)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=tuple(range(1, arr.ndim))) if arr.ndim > 1 else bad)
            raise ValueError(f"real: expected real-valued outputs, got NaN in {rows.size} row(s) (first: row "
                             f"{rows[0]}); the model or its input is broken, and a NaN has no sign")
    return np.where(arr > 0, 1, -1).astype(np.int8)


def _check_finite_rows(arr: np.ndarray, name: str, offset: int = 0) -> None:
    if arr.dtype.kind in "fc":
        ok = np.isfinite(arr)
        if not ok.all():
            rows = np.flatnonzero(~ok.all(axis=1)) + offset
            raise ValueError(f"{name}: expected finite features, got NaN or infinite values in {rows.size} "
                             f"row(s) (first: row {rows[0]}); their codes would be arbitrary (all -1)")


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
    """Whether a view's images enter as features (else raw pixels through ``pixel_batch``).

    A dataset says which with ``image_input`` (a release may hold both); otherwise feature
    datasets expose ``images`` and raw-pixel datasets only ``pixel_batch`` (data contract).
    """
    ds = getattr(view, "dataset", None)
    if ds is not None and getattr(ds, "image_input", None) in ("features", "pixels"):
        return ds.image_input == "features"
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
        A feature array of the wrong width for this method, features that are NaN or infinite,
        or a model whose outputs are NaN.
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
                parts = []
                for i in range(0, arr.shape[0], batch_size):
                    with np.errstate(over="ignore"):  # overflow is reported just below, by row
                        chunk = np.ascontiguousarray(arr[i:i + batch_size], dtype=np.float32)
                    # float32 overflow (1e39 -> inf) counts too: that is what the network sees.
                    _check_finite_rows(chunk, key, offset=i)
                    parts.append(sign_codes(fn(chunk)))
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
        raise FileNotFoundError(f"run: expected a run folder holding config.json, got {str(run)!r}")
    raise ValueError(f"run: {str(run)!r} holds several runs ({', '.join(p.name for p in subs)}); "
                     f"name one of them")


CHECKPOINT_CHOICES = ("selected", "last", "best")


def load_method(run: str | os.PathLike, device: str = "cpu", checkpoint: str = "selected") -> tuple[Method, dict]:
    """Rebuild a trained method from a run folder (its config and a checkpoint).

    Parameters
    ----------
    run : path
        A run folder (or a parent holding exactly one run).
    device : {"cpu", "cuda", "cuda:N", "auto"}
    checkpoint : {"selected", "last", "best"}
        ``selected``: the model the run kept (``best.pt`` for ``--select best-val``, else
        ``last.pt``); ``last`` / ``best``: that file.

    Returns
    -------
    (method, run_config)

    Raises
    ------
    FileNotFoundError
        No config.json or no checkpoint.
    ValueError
        An unreadable config.json, a method that is not registered (plugins are never imported
        because a file names them: the message says which ``--plugin`` to pass), a checkpoint
        that is damaged, foreign or would need code execution to read, or one that does not
        match config.json.
    """
    from ._validate import check_choice

    run = _resolve_run(run)
    device = resolve_device(device)
    check_choice(checkpoint, CHECKPOINT_CHOICES, "checkpoint")
    try:
        cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"run: {run / 'config.json'} cannot be read ({exc})") from None
    need = ("method", "nbits", "image_dim", "text_dim", "nlabels", "config")
    if not isinstance(cfg, dict) or any(k not in cfg for k in need):
        raise ValueError(f"run: {run / 'config.json'} is not a hashkit run config (expected keys {list(need)})")
    if checkpoint == "selected":
        checkpoint = "best" if cfg.get("select") == "best-val" and (run / "checkpoints" / "best.pt").exists() \
            else "last"
    ckpt = run / "checkpoints" / f"{checkpoint}.pt"
    if not ckpt.exists():
        raise FileNotFoundError(f"run: expected a checkpoint at {str(ckpt)!r}; has the run trained an epoch?")
    from .methods._plugins import load_plugins

    load_plugins()
    try:
        cls = get_method(cfg["method"])
    except ValueError as exc:
        plugins = cfg.get("plugins") or []
        hint = (f"pass --plugin {' --plugin '.join(map(str, plugins))}, which the run was trained with"
                if plugins else "a method from outside hashkit needs --plugin MODULE")
        raise ValueError(f"{exc}; {hint}") from None
    state = load_checkpoint(ckpt, map_location=device)
    saved = state.get("run_config")
    if isinstance(saved, dict):
        keys = ("method", "nbits", "image_dim", "text_dim", "nlabels", "config")
        diff = [k for k in keys if saved.get(k) != cfg.get(k)]
        if diff:
            raise CheckpointError(f"run: {ckpt} does not match {run / 'config.json'} "
                                  f"({'; '.join(f'{k}: {saved.get(k)!r} vs {cfg.get(k)!r}' for k in diff)})")
    try:
        method = cls(cfg["nbits"], cfg["image_dim"], cfg["text_dim"], cfg["nlabels"], config=cfg["config"],
                     device=device)
        method.load_state_dict(state["method"], optimizers=False)
    except (RuntimeError, KeyError, TypeError, IndexError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise CheckpointError(f"run: {ckpt} does not fit {cfg['method']} as config.json describes it "
                              f"({type(exc).__name__}: {msg[:300]}{' ...' if len(msg) > 300 else ''})") from None
    return method, cfg


def read_array(path: str | os.PathLike, key: str | None = None, name: str = "features") -> np.ndarray:
    """The one 2-D (or named) array of a ``.npy``, ``.npz`` or ``.mat`` file, as stored.

    Only the chosen array is read; for a ``.mat`` file that is after the file's declarations
    are checked by the one safe reader (a small file may declare a huge array), and MATLAB
    text (``char``), cells and structs are never taken for numbers. Without ``key`` the file
    must hold exactly one 2-D numeric array (or, failing any, one 1-D array).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, unknown extension, missing/ambiguous key, a damaged file or an object
        array (never unpickled).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file {str(path)!r}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                decl = {k: (z[k].shape, z[k].dtype.kind) for k in z.files}
                return np.asarray(z[_pick(name, path, key, decl)])
        if suffix != ".mat":
            raise ValueError(f"{name}: expected a .npy, .npz or .mat file, got {str(path)!r}")
        infos = inspect_arrays(path)
        decl = {k: (i.shape, "b" if i.kind == "logical" else i.dtype.kind if i.dtype is not None else i.kind)
                for k, i in infos.items()}
        arr = read_arrays(path, keys=[_pick(name, path, key, decl)])
        arr = next(iter(arr.values()))
        return arr.toarray() if hasattr(arr, "toarray") else np.asarray(arr)
    except ValueError as exc:
        if str(exc).startswith(name):
            raise
        msg = " ".join(str(exc).split())
        raise ValueError(f"{name}: {str(path)!r} cannot be read as {suffix} ({msg[:200]})") from None
    except (OSError, EOFError, KeyError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{name}: {str(path)!r} cannot be read as {suffix} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]})") from None


def _pick(name, path, key, decl: dict) -> str:
    """The key to read: ``key`` itself (checked), or the one numeric 2-D (else 1-D) array.

    ``decl`` maps each key to ``(shape, kind)``: a NumPy dtype kind for numbers (``b i u f``)
    or a MATLAB class name (``char``, ``cell``, ``struct`` ...) for what is not.
    """
    numeric = {k: shp for k, (shp, kind) in decl.items() if kind in ("b", "i", "u", "f") and len(shp) in (1, 2)}
    if key is None:
        two_d = sorted(k for k, shp in numeric.items() if len(shp) == 2)
        pick = two_d or sorted(numeric)
        if len(pick) != 1:
            how = f"{name}-key" if name.startswith("--") else "key="
            raise ValueError(f"{name}: {str(path)!r} holds {len(pick)} {'2-D ' if two_d else ''}arrays "
                             f"({', '.join(pick) or 'none'}); name one with {how}")
        return pick[0]
    if key not in decl:
        raise ValueError(f"{name}: {str(path)!r} has no array {key!r}; it has {', '.join(sorted(decl))}")
    if key not in numeric:
        kind = decl[key][1]
        what = f"MATLAB {kind} data" if len(kind) > 1 else f"a {len(decl[key][0])}-D array of kind {kind!r}"
        raise ValueError(f"{name}: {str(path)!r} key {key!r} holds {what}, not a numeric array")
    return key


def read_features(path: str | os.PathLike, key: str | None = None, name: str = "features") -> np.ndarray:
    """Read a 2-D float feature matrix from ``.npy``, ``.npz`` or ``.mat`` (v5 or v7.3/HDF5).

    ``key`` names the array in ``.npz`` / ``.mat`` files; without it the file must hold exactly
    one 2-D array. MATLAB v7.3 arrays are transposed back to row-major ``(n, d)``.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, unknown extension, missing/ambiguous key, not a 2-D numeric array.
    """
    arr = read_array(path, key, name)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected a 2-D numeric array in {str(path)!r}, got dtype {arr.dtype} "
                         f"and shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def read_labels(path: str | os.PathLike, key: str | None = None, name: str = "--labels",
                class_ids: bool = False) -> np.ndarray:
    """Labels of encoded items as uint8 multi-hot ``(n, L)``, checked, never truncated.

    Parameters
    ----------
    path, key : as :func:`read_features`
    class_ids : bool
        The file holds one integer class id per item (a vector or one column): one-hot encode it.

    Raises
    ------
    ValueError
        Values other than 0/1 in a multi-hot matrix (float scores such as 0.7 used to be cast to
        0, making every query "empty"), a single column or a vector without ``class_ids``
        (class ids or one binary label? the caller must say), negative or non-integral ids.
    """
    arr = read_array(path, key, name)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected numeric labels in {str(path)!r}, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite labels in {str(path)!r}, got NaN or infinite values")
    if class_ids:
        if not (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)):
            raise ValueError(f"{name}: --class-ids expects one id per item (n,) or (n, 1), got shape {arr.shape}")
        ids = arr.reshape(-1)
        if ids.size and (ids.min() < 0 or (arr.dtype.kind == "f" and not np.all(ids == np.round(ids)))):
            raise ValueError(f"{name}: expected non-negative integer class ids, got values like "
                             f"{ids[(ids < 0) | (ids != np.round(ids))][:3].tolist()}")
        ids = ids.astype(np.int64)
        out = np.zeros((ids.size, int(ids.max()) + 1 if ids.size else 1), np.uint8)
        out[np.arange(ids.size), ids] = 1
        return out
    if arr.ndim != 2 or arr.shape[1] == 1:
        raise ValueError(f"{name}: expected multi-hot labels (n, L) with L > 1, got shape {arr.shape}; "
                         f"for one class id per item pass --class-ids")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise ValueError(f"{name}: expected multi-hot 0/1 labels, got values like {np.unique(arr[bad])[:3].tolist()}"
                         f" in {str(path)!r}; for class ids (one column) pass --class-ids")
    return arr.astype(np.uint8)


def add_encode_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hashkit encode``."""
    parser.add_argument("--run", required=True, help="a run folder written by hashkit train")
    parser.add_argument("--images", default=None, help="image features (.npy/.npz/.mat)")
    parser.add_argument("--texts", default=None, help="text features (.npy/.npz/.mat)")
    parser.add_argument("--images-key", default=None, help="array name inside an .npz/.mat image file")
    parser.add_argument("--texts-key", default=None, help="array name inside an .npz/.mat text file")
    parser.add_argument("--labels", default=None,
                        help="multi-hot 0/1 labels of the encoded items (.npy/.npz/.mat), stored for hashkit eval")
    parser.add_argument("--labels-key", default=None, help="array name inside an .npz/.mat label file")
    parser.add_argument("--class-ids", action="store_true",
                        help="--labels holds one integer class id per item (one-hot encoded)")
    parser.add_argument("--out", default=None, help="codes file to write (default: RUN/encoded.npz)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--checkpoint", default="selected", choices=CHECKPOINT_CHOICES,
                        help="the model to use: the one the run selected (default), or last.pt / best.pt")
    parser.add_argument("--plugin", action="append", metavar="MODULE",
                        help="import MODULE first (the run's method is registered outside hashkit)")


def run_encode(args: argparse.Namespace) -> int:
    """``hashkit encode``: features in, a codes ``.npz`` out (images as query_image, texts as query_text)."""
    try:
        return _run_encode(args)
    except OSError as exc:
        if exc.errno is None:
            raise
        name = f" {exc.filename}" if exc.filename else ""
        raise RuntimeError(f"cannot write{name}: {exc.strerror or exc}") from exc


def _run_encode(args: argparse.Namespace) -> int:
    from ._validate import check_positive_int
    from .methods._plugins import load_plugins

    if args.images is None and args.texts is None:
        raise ValueError("encode: expected --images and/or --texts, got neither")
    batch_size = check_positive_int(args.batch_size, "--batch-size")
    load_plugins(getattr(args, "plugin", None) or ())
    method, cfg = load_method(args.run, device=args.device, checkpoint=getattr(args, "checkpoint", "selected"))
    imgs = read_features(args.images, args.images_key, "--images") if args.images else None
    txts = read_features(args.texts, args.texts_key, "--texts") if args.texts else None
    if imgs is not None and txts is not None and len(imgs) != len(txts):
        raise ValueError(f"encode: --images and --texts must describe the same items, got "
                         f"{len(imgs)} images and {len(txts)} texts")
    labels = None
    if args.labels:
        labels = read_labels(args.labels, args.labels_key, "--labels", class_ids=getattr(args, "class_ids", False))
        n = len(imgs) if imgs is not None else len(txts)
        if len(labels) != n:
            raise ValueError(f"--labels: expected one row per encoded item ({n}), got {len(labels)} rows")
    codes = encode(method, images=imgs, texts=txts, batch_size=batch_size)
    out = Path(args.out) if args.out else _resolve_run(args.run) / "encoded.npz"
    if out.exists() and out.is_dir():
        raise ValueError(f"--out: expected a file name, got the folder {str(out)!r}")
    from .codefile import save_code_file

    # Without --labels the file holds codes only: searchable, and hashkit eval says why it
    # cannot evaluate it.
    kwargs = {"query_image": codes.get("images"), "query_text": codes.get("texts")}
    save_code_file(out, query_labels=labels, db_labels=labels,
                   meta={"method": cfg["method"], "nbits": cfg["nbits"], "run": str(args.run),
                         "images": args.images, "texts": args.texts, "labels": args.labels}, **kwargs)
    parts = ", ".join(f"{len(v)} {k}" for k, v in codes.items())
    print(f"encoded {parts} with {cfg['method']} ({cfg['nbits']} bits) -> {out}")
    return 0
