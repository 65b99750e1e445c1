"""File safety: atomic writes (a crash never leaves a half-written result, checkpoint or manifest)
and safe reads of ``.npz`` files (declarations checked, never unpickling, errors named)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary file lives in the destination folder so that ``os.replace`` is a rename on
    one file system. ``suffix`` keeps writers that append an extension (``np.savez`` adds
    ``.npz``) from writing somewhere else; it defaults to the destination's own suffix.

    Examples
    --------
    >>> with atomic_path("codes.npz") as tmp:          # doctest: +SKIP
    ...     np.savez(tmp, a=1)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; results, codes and checkpoints are meant to be shared like any
        # file the user writes, so apply the usual umask.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except OSError as exc:
        # A full disk names the temporary file; the user knows the destination.
        if exc.errno is not None and exc.filename in (None, str(tmp_path), tmp_path):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def clean_temporaries(folder: str | os.PathLike, names) -> list[Path]:
    """Remove the temporary files :func:`atomic_path` left beside ``names`` in ``folder``.

    A writer killed mid-write (``kill -9`` during a checkpoint) leaves ``.last.pt.XXXXXXXX.pt``
    beside ``last.pt``; nothing else reads it, and it may be large. Call this only while no
    other process can be writing there (the Trainer holds the run folder's lock).

    Returns
    -------
    list of Path
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for name in names:
        for p in folder.glob(f".{glob.escape(name)}.*"):
            if p.is_file() and not p.is_symlink():
                p.unlink()
                removed.append(p)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically (NumPy scalars and arrays, paths allowed)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def json_default(o: Any):
    """``json.dumps(default=...)`` for the objects runs write: NumPy values, paths, small objects."""
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "__dict__"):
        return {k: v for k, v in vars(o).items() if not k.startswith("_")}
    return str(o)


# What reading a damaged .npz can raise (NumPy, zipfile and zlib do not wrap their errors).
NPZ_ERRORS = (ValueError, OSError, EOFError, KeyError, IndexError, TypeError, RuntimeError, zipfile.BadZipFile,
              zlib.error, UnicodeDecodeError, OverflowError, NotImplementedError)


def npz_declarations(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of a ``.npz`` from its member headers, without reading data.

    Every member is checked before anything is read: no Python objects (pickles are never
    loaded) and no more data declared than the member holds, so a small file cannot make a
    reader allocate a huge array.

    Raises
    ------
    ValueError
        A damaged or truncated file, an object array, a member that declares more than it holds
        (the message names the file and the key).
    """
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                name = info.filename[:-4]
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = reader(fh)
                    header = fh.tell()
                if dtype.hasobject:
                    raise ValueError(f"key {name!r} holds Python objects (pickles are never loaded)")
                declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if declared > info.file_size - header:
                    raise ValueError(f"key {name!r} declares {declared} bytes of data but holds "
                                     f"{info.file_size - header}")
                out[name] = (tuple(int(x) for x in shape), dtype)
    except NPZ_ERRORS as exc:
        raise ValueError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    return out


def read_npz(path: str | os.PathLike, keys=None) -> dict[str, np.ndarray]:
    """Read the arrays ``keys`` (all when None) of a ``.npz`` safely: declarations checked first
    (:func:`npz_declarations`), never unpickling, every error one ``ValueError`` naming the file."""
    decl = npz_declarations(path)
    wanted = list(decl) if keys is None else [k for k in keys if k in decl]
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in wanted}
    except NPZ_ERRORS as exc:
        raise ValueError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
