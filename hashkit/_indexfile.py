"""hashkit's index file: a JSON header and raw, aligned arrays that load memory-mapped.

Layout (``hashkit-index/2``), all integers little-endian::

    bytes 0..7     magic b"HKINDEX\\0"
    bytes 8..15    uint64: length L of the header
    bytes 16..     L bytes of UTF-8 JSON: {"format", "kind", "nbits", "meta", "arrays"}
    ...            each array's raw C-order bytes at a 64-byte aligned offset

``arrays`` maps a name to ``{"dtype", "shape", "offset", "crc32"}``. Reading parses JSON only
(nothing in the file can execute code), checks every declared size against the file's size
before mapping anything, and verifies each array's CRC-32, so a truncated or bit-flipped file
is a one-line ``ValueError`` rather than a wrong answer. Arrays come back as read-only
``numpy.memmap`` views: a 10M-code index opens without reading it into anonymous memory (the
CRC pass reads it once through the page cache; ``verify=False`` skips that pass).

The previous format, ``hashkit-index/1`` (an ``.npz`` of ``format``, ``nbits``, ``words``), is
still read (fully, not mapped).
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

import numpy as np

from ._io import atomic_path

__all__ = ["write_index_file", "read_index_file", "FORMAT", "MAGIC"]

FORMAT = "hashkit-index/2"
MAGIC = b"HKINDEX\x00"
_ALIGN = 64
_MAX_HEADER = 1 << 20
# Only plain little-endian integer arrays are ever stored.
_DTYPES = {"<u8": np.uint64, "<i8": np.int64, "<u4": np.uint32, "<i4": np.int32}
_CRC_BLOCK = 1 << 24


def _crc(a: np.ndarray) -> int:
    flat = a.reshape(-1).view(np.uint8) if a.size else np.zeros(0, np.uint8)
    crc = 0
    for i in range(0, flat.size, _CRC_BLOCK):  # blocks: a memmap is read once, never copied
        crc = zlib.crc32(flat[i:i + _CRC_BLOCK], crc)
    return crc


def write_index_file(path: str | os.PathLike, kind: str, nbits: int, arrays: dict[str, np.ndarray],
                     meta: dict | None = None) -> None:
    """Write an index atomically: a temporary file beside ``path``, renamed over it at the end."""
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for name, a in arrays.items():
        if a.dtype.newbyteorder("<").str not in _DTYPES or a.dtype.byteorder == ">":
            raise TypeError(f"{name}: index files hold little-endian integer arrays, got dtype {a.dtype}")
    desc: dict[str, Any] = {}
    # Offsets depend on the header's length, which depends on the offsets' digits: lay out
    # with a generous header size, then pad the header to exactly that size.
    reserve = 4096 + 256 * len(arrays)
    pos = _align(16 + reserve)
    for name, a in arrays.items():
        desc[name] = {"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape), "offset": pos,
                      "crc32": _crc(a)}
        pos = _align(pos + a.nbytes)
    header = json.dumps({"format": FORMAT, "kind": kind, "nbits": int(nbits), "meta": meta or {},
                         "arrays": desc}, sort_keys=True).encode()
    if len(header) > reserve:
        raise ValueError("index header too large")  # pragma: no cover - a few names only
    header = header + b" " * (reserve - len(header))
    with atomic_path(path, suffix=".tmp") as tmp:
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            f.write(np.uint64(len(header)).tobytes())
            f.write(header)
            for name, a in arrays.items():
                f.seek(desc[name]["offset"])
                if a.nbytes:
                    f.write(memoryview(a.reshape(-1).view(np.uint8)))
            f.truncate(max(pos, f.tell()))
            f.flush()
            os.fsync(f.fileno())


def _align(x: int) -> int:
    return (x + _ALIGN - 1) // _ALIGN * _ALIGN


def read_index_file(path: str | os.PathLike, *, verify: bool = True, mmap: bool = True) -> dict:
    """Read an index file: ``{"kind", "nbits", "meta", "arrays": {name: ndarray}}``.

    Arrays are read-only memory maps (``mmap=True``) or in-memory copies. Raises
    ``FileNotFoundError`` for a missing file and a one-line ``ValueError`` naming the file for
    anything malformed (bad magic, header, sizes beyond the file, CRC mismatch).
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"index file not found: {p}")
    size = os.path.getsize(p)
    with open(p, "rb") as f:
        head = f.read(16)
        if head[:4] == b"PK\x03\x04":
            return _read_v1(p)
        if len(head) < 16 or head[:8] != MAGIC:
            raise ValueError(f"{p}: not a hashkit index file (expected magic {MAGIC!r} or a "
                             "hashkit-index/1 .npz)")
        hlen = int(np.frombuffer(head[8:16], "<u8")[0])
        if hlen > _MAX_HEADER or 16 + hlen > size:
            raise ValueError(f"{p}: index header declares {hlen} bytes, the file holds {size}")
        try:
            h = json.loads(f.read(hlen).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p}: corrupt index header ({exc.__class__.__name__})") from None
    if not isinstance(h, dict) or h.get("format") != FORMAT:
        fmt = h.get("format") if isinstance(h, dict) else None
        raise ValueError(f"{p}: key 'format' is {fmt!r}, expected {FORMAT!r}")
    kind, nbits, meta, arrays = h.get("kind"), h.get("nbits"), h.get("meta"), h.get("arrays")
    if (not isinstance(kind, str) or not isinstance(nbits, int) or isinstance(nbits, bool) or nbits < 1
            or not isinstance(meta, dict) or not isinstance(arrays, dict)):
        raise ValueError(f"{p}: corrupt index header (kind, nbits, meta or arrays)")
    out = {}
    spans = []
    for name, d in arrays.items():
        a = _map_one(p, size, name, d, spans, mmap)
        if verify and _crc(a) != d["crc32"]:
            raise ValueError(f"{p}: array {name!r} fails its CRC-32 check (the file is corrupt)")
        out[name] = a
    return {"kind": kind, "nbits": nbits, "meta": meta, "arrays": out}


def _map_one(p: str, size: int, name: str, d: Any, spans: list, mmap: bool) -> np.ndarray:
    ok = (isinstance(d, dict) and d.get("dtype") in _DTYPES and isinstance(d.get("shape"), list)
          and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in d["shape"])
          and isinstance(d.get("offset"), int) and isinstance(d.get("crc32"), int))
    if not ok:
        raise ValueError(f"{p}: corrupt description of array {name!r}")
    dtype = np.dtype(d["dtype"])
    shape = tuple(d["shape"])
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    off = d["offset"]
    if off % _ALIGN or off < 16 or off + nbytes > size:
        raise ValueError(f"{p}: array {name!r} declares {nbytes} bytes at offset {off}, "
                         f"the file holds {size}")
    for a, b in spans:
        if off < b and a < off + nbytes:
            raise ValueError(f"{p}: arrays overlap in the file (corrupt)")
    spans.append((off, off + nbytes))
    if nbytes == 0:
        return np.zeros(shape, dtype)
    if mmap:
        return np.memmap(p, dtype=dtype, mode="r", offset=off, shape=shape)
    with open(p, "rb") as f:
        f.seek(off)
        a = np.fromfile(f, dtype=dtype, count=nbytes // dtype.itemsize).reshape(shape)
    return a


def _read_v1(p: str) -> dict:
    try:
        with np.load(p, allow_pickle=False) as z:
            fmt = str(z["format"]) if "format" in z else None
            if fmt != "hashkit-index/1":
                raise ValueError(f"{p}: key 'format' is {fmt!r}, expected 'hashkit-index/1' or {FORMAT!r}")
            nbits = int(z["nbits"])
            words = np.ascontiguousarray(z["words"])
    except ValueError:
        raise
    except Exception as exc:  # a truncated zip, a missing key: one line naming the file
        raise ValueError(f"{p}: corrupt index file ({exc.__class__.__name__}: {exc})") from None
    return {"kind": "flat", "nbits": nbits, "meta": {}, "arrays": {"words": words}}
