"""Checkpoints that cannot run code: tensors and plain values only, read with ``weights_only``.

A run folder is something people share. ``torch.load(weights_only=False)`` unpickles
arbitrary objects, so a crafted ``checkpoints/last.pt`` ran commands during ``hashkit encode``
(issue 14). Every checkpoint hashkit writes is now a tree of tensors, ``dict`` / ``list`` /
``tuple`` / ``OrderedDict`` and ``str`` / ``int`` / ``float`` / ``bool`` / ``None`` / ``bytes``
-- exactly what ``torch.load(weights_only=True)`` accepts without any allow-listed global.
NumPy arrays and scalars (in method buffers, NumPy's RNG state) are stored as a small dict of
dtype string, shape and raw bytes, and rebuilt bit for bit on load; the dtype is checked
against the numeric kinds, so an ``object`` array can never be asked for.

No ``torch.serialization.add_safe_globals`` entry is needed (the test suite checks every
registered method's checkpoint with ``get_unsafe_globals_in_checkpoint``); allow-listing
NumPy's reconstructors would let a file choose which NumPy callables to run.
"""

from __future__ import annotations

import collections
import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_plain", "from_plain", "save_checkpoint", "load_checkpoint", "CheckpointError"]

_NDARRAY = "__hashkit_ndarray__"
# bool, signed/unsigned integers, floats, complex: the only array kinds a checkpoint holds.
_NUMERIC_KINDS = "biufc"


class CheckpointError(ValueError):
    """A checkpoint that is damaged, foreign, or would need code execution to read."""


def to_plain(obj: Any, where: str = "state") -> Any:
    """``obj`` with NumPy values replaced by tagged dicts; raises on anything not plain.

    Raises
    ------
    TypeError
        An object that is neither a tensor, a NumPy value, a container nor a plain scalar
        (``where`` names its place in the state), because it could not be read back safely.
    """
    import torch

    if obj is None or isinstance(obj, (bool, int, float, str, bytes, torch.Tensor)):
        return obj
    if isinstance(obj, (np.ndarray, np.generic)):
        arr = np.asarray(obj)
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"{where}: expected a numeric NumPy array, got dtype {arr.dtype}")
        return {_NDARRAY: arr.dtype.str, "shape": list(arr.shape), "scalar": isinstance(obj, np.generic),
                "data": np.ascontiguousarray(arr).tobytes()}
    if isinstance(obj, collections.OrderedDict):
        out = collections.OrderedDict((k, to_plain(v, f"{where}[{k!r}]")) for k, v in obj.items())
        meta = getattr(obj, "_metadata", None)  # nn.Module.state_dict's version record
        if meta is not None:
            out._metadata = to_plain(meta, f"{where}._metadata")
        return out
    if isinstance(obj, dict):
        return {k: to_plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        vals = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return vals if isinstance(obj, list) else tuple(vals)
    raise TypeError(f"{where}: a checkpoint holds tensors, NumPy arrays and plain values only, "
                    f"got {type(obj).__module__}.{type(obj).__qualname__}")


def from_plain(obj: Any) -> Any:
    """Inverse of :func:`to_plain`."""
    if isinstance(obj, dict) and _NDARRAY in obj:
        dtype = np.dtype(obj[_NDARRAY]) if isinstance(obj[_NDARRAY], str) else None
        if dtype is None or dtype.kind not in _NUMERIC_KINDS:
            raise CheckpointError(f"checkpoint: an array of dtype {obj[_NDARRAY]!r} is not numeric")
        shape = tuple(int(s) for s in obj["shape"])
        data = obj["data"]
        if not isinstance(data, bytes) or len(data) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
            raise CheckpointError(f"checkpoint: an array of shape {shape} and dtype {dtype} has "
                                  f"{len(data) if isinstance(data, bytes) else type(data).__name__} bytes")
        arr = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        return arr[()] if obj.get("scalar") else arr
    if isinstance(obj, collections.OrderedDict):
        out = collections.OrderedDict((k, from_plain(v)) for k, v in obj.items())
        meta = getattr(obj, "_metadata", None)
        if meta is not None:
            out._metadata = meta
        return out
    if isinstance(obj, dict):
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_plain(v) for v in obj)
    return obj


def save_checkpoint(path: str | os.PathLike, state: Any) -> None:
    """Write ``state`` (after :func:`to_plain`) to ``path`` atomically with ``torch.save``."""
    import torch

    from ._io import atomic_path

    plain = to_plain(state)
    # torch.save writing a file itself reports a full disk as "[enforce fail at
    # inline_container.cc] unexpected pos ..."; serialised in memory first, the write below
    # raises the OSError (ENOSPC, EFBIG) that says what happened.
    buf = io.BytesIO()
    torch.save(plain, buf)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(buf.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Read a checkpoint written by :func:`save_checkpoint`, never executing code from it.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        A truncated or damaged file, a file that is not a checkpoint, or one that asks for
        objects other than tensors and plain values (refused, not run).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint: no such file {str(path)!r}")
    _check_crc(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.findall(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(exc))
        if not found:  # not a global: bytes that are no pickle of ours at all
            raise CheckpointError(f"checkpoint: {path} cannot be read ({_first_line(exc)}); the file is "
                                  f"damaged or not a hashkit checkpoint") from None
        old = " It may come from hashkit before checkpoint format 2, which stored NumPy objects;" \
              " retrain that run." if found[0].startswith("numpy") else ""
        raise CheckpointError(f"checkpoint: {path} holds objects other than tensors and plain values "
                              f"(it asks for {found[0]}); refusing to load it, since loading would run "
                              f"code from the file.{old}") from None
    except Exception as exc:  # zip, EOF, unpickling and storage errors all mean a damaged file
        raise CheckpointError(f"checkpoint: {path} cannot be read ({_first_line(exc)}); the file "
                              f"is damaged or not a hashkit checkpoint") from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"checkpoint: {path} is not a hashkit checkpoint (no 'format' entry)")
    return from_plain(state)


def _check_crc(path: Path) -> None:
    """Refuse a checkpoint whose records fail their zip CRC-32: torch.load does not check it, so
    flipped bits in tensor data would load silently as a different model."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError) as exc:
        raise CheckpointError(f"checkpoint: {path} cannot be read ({type(exc).__name__}: {exc}); the "
                              f"file is damaged or not a hashkit checkpoint") from None
    if bad is not None:
        raise CheckpointError(f"checkpoint: {path} is damaged (record {bad!r} fails its CRC-32 check); "
                              f"refusing to load a different model than was saved")


def _first_line(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    # torch wraps its weights_only errors in paragraphs of advice (to retry with
    # weights_only=False, precisely what must not happen); keep the line with the cause.
    advice = ("Weights only load failed", "Please file an issue", "Check the documentation", "Re-running")
    cause = [x for x in lines if not x.startswith(advice) and not x.endswith("error:")]
    msg = cause[0] if cause else (lines[0] if lines else "")
    return f"{type(exc).__name__}: {msg[:200]}" if msg else type(exc).__name__
