"""The one safe reader of MATLAB ``.mat`` (v5 and v7.3/HDF5) and plain HDF5 files in hashkit.

Two ways in:

- :func:`read_arrays` reads a few named arrays whole (code files, ``--images FILE`` feature
  files, label matrices) and :func:`inspect_arrays` lists what a file declares without reading
  any data.
- :class:`MatFile` hands out *sources* (``n`` items along a sample axis, ``take(idx)``) that read
  only the items asked for; HDF5 arrays stay on disk and are read in blocks.

Safety, before any data is read (why: a 11 KB v7.3 file can declare a 16 GiB dataset, and a
reader that trusts the declaration allocates it or returns 16 GiB of fill values):

- only the keys asked for are opened;
- every declared array is checked against what the file holds: an HDF5 dataset must have all of
  its storage allocated (contiguous: as many bytes as declared; chunked: every chunk written),
  and a compressed one may expand at most ``MAX_RATIO`` times (deflate's ceiling is about
  1032:1); a MATLAB v5 variable must have at least one stored byte per element (MATLAB stores
  small integers in a byte), or ``MAX_RATIO`` times fewer when compressed;
- an array read whole may not exceed ``max_bytes`` (default :data:`MAX_BYTES`, 8 GiB, or the
  ``HASHKIT_MAX_ARRAY_BYTES`` environment variable), and, when the caller states the expected
  shape, must have it;
- HDF5 external or virtual datasets (which read other files) are refused; nothing in a file is
  ever executed (no pickle, no MATLAB objects).
A file that declares more than it holds gives a one-line ``ValueError`` naming file and key.

Axis conventions:

- MATLAB v7.3 files are HDF5 with every array's axes reversed: a MATLAB ``N x D`` matrix is an
  HDF5 dataset of shape ``(D, N)``; an ``H x W x C x N`` image stack (DCMH's ``FLICKR-25K.mat``,
  DJSRH's ``mirflickr25k-iall.mat``, read there as ``IAll[i].transpose(2, 1, 0)``) is
  ``(N, C, W, H)``. :func:`read_arrays` returns MATLAB's orientation.
- ``MATLAB_class`` says what the numbers are: ``char`` (uint16 code units) is text and comes back
  as a NumPy string array, as ``scipy.io.loadmat`` returns a v5 char matrix (one string per
  row); ``logical`` comes back as bool; ``cell`` as an object array.
- MATLAB v5 files are read with ``scipy.io.loadmat(variable_names=...)``, as MATLAB shaped them.
- Plain HDF5 written from Python keeps C order: ``(N, D)``, images ``(N, H, W, C)`` or
  ``(N, C, H, W)``.
When the expected feature length is known and disagrees with the default orientation while the
other axis matches it, the other orientation is used (files saved the "wrong" way round exist).
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_MAT73 = b"MATLAB 7.3 MAT-file"
BLOCK = 4096  # items read per HDF5 block: bounded memory, few round trips
MAX_BYTES = 8 << 30  # default ceiling for one array (or one call's arrays) read whole
MAX_RATIO = 1100  # the most a compressed byte may expand to (deflate: about 1032)
_HIDDEN = ("#refs#", "#subsystem#")


def max_bytes_default() -> int:
    """The limit for arrays read whole: ``$HASHKIT_MAX_ARRAY_BYTES`` or :data:`MAX_BYTES`."""
    env = os.environ.get("HASHKIT_MAX_ARRAY_BYTES")
    if env:
        try:
            value = int(float(env))
        except ValueError:
            raise ValueError(f"HASHKIT_MAX_ARRAY_BYTES: expected a number of bytes, got "
                             f"{env!r}") from None
        if value > 0:
            return value
    return MAX_BYTES


def describe_format(fmt: str) -> str:
    return {"v7.3": "MATLAB v7.3 (HDF5)", "v5": "MATLAB v5", "hdf5": "HDF5",
            "npz": "NumPy .npz", "text": "text"}.get(fmt, fmt)


def detect_format(path: str | os.PathLike) -> str:
    """Return ``"v7.3"``, ``"v5"`` or ``"hdf5"`` for ``path`` (``ValueError`` otherwise)."""
    import h5py

    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(128)
    if h5py.is_hdf5(str(path)):
        if head.startswith(_MAT73):
            return "v7.3"
        try:
            with h5py.File(path, "r") as f:
                for key in f.keys():
                    if "MATLAB_class" in f[key].attrs:
                        return "v7.3"
        except (OSError, KeyError, RuntimeError) as e:
            raise ValueError(f"{path}: not a readable HDF5 file ({_one_line(e)})") from None
        return "hdf5"
    if head.startswith(b"MATLAB") or head[:4] == b"\x00\x00\x00\x00":
        return "v5"
    raise ValueError(f"{path}: expected a MATLAB .mat (v5 or v7.3) or HDF5 file, "
                     f"found neither (first bytes {head[:16]!r})")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# ----------------------------------------------------------------------------- inspection
@dataclass(frozen=True)
class ArrayInfo:
    """What a file declares for one variable (nothing of its data is read).

    Attributes
    ----------
    key : str
    kind : str
        ``numeric``, ``logical``, ``char``, ``cell``, ``sparse``, ``struct``, ``empty`` or
        ``other`` (MATLAB objects, function handles: never read).
    shape : tuple
        MATLAB's shape for ``.mat`` files (v5 and v7.3), the stored shape for plain HDF5.
    stored_shape : tuple
        The shape as stored (HDF5: reversed for v7.3).
    dtype : numpy dtype or None
        The element type once read (``None`` for text, cells and structs).
    matlab_class : str or None
    elements : int        declared number of elements (0 where not meaningful)
    nbytes : int          bytes the array takes once read whole (declared)
    stored : int          bytes the file holds for it (compressed size where compressed)
    compressed : bool
    """

    key: str
    kind: str
    shape: tuple
    stored_shape: tuple
    dtype: object
    matlab_class: str | None
    elements: int
    nbytes: int
    stored: int
    compressed: bool
    format: str = "hdf5"    # "v5", "v7.3" or "hdf5"
    complete: bool = True   # HDF5: every chunk / the whole contiguous block allocated
    refuse: str = ""        # a reason never to read it (external / virtual storage)


def _attr_str(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("ascii", "replace")
    if isinstance(v, np.ndarray):
        return _attr_str(v.ravel()[0]) if v.size else None
    return str(v)


_V5_CLASSES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double",
               7: "single", 8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32",
               13: "uint32", 14: "int64", 15: "uint64", 16: "function_handle", 17: "opaque"}
_NUMERIC_DTYPES = {"double": np.float64, "single": np.float32, "int8": np.int8,
                   "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
                   "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64}


def _v5_elements(path: Path) -> dict:
    """Top-level MATLAB v5 data elements: name -> (class, dims, bytes stored, compressed).

    Reads only tags and the first bytes of each element (at most 4 KiB decompressed each), so
    a hostile file cannot make this allocate more than that.
    """
    out = {}
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(128)
        if len(head) < 128:
            raise ValueError(f"{path}: not a MATLAB v5 file (only {len(head)} bytes)")
        endian = "<" if head[126:128] == b"IM" else ">"
        pos = 128
        while pos + 8 <= size:
            fh.seek(pos)
            dtype, nbytes = struct.unpack(endian + "II", fh.read(8))
            if dtype not in (14, 15):
                break   # not a variable (MATLAB writes only miMATRIX / miCOMPRESSED here)
            if dtype == 15:
                raw = fh.read(min(nbytes, 4096))
                try:
                    body = zlib.decompressobj().decompress(raw, 4096)
                except zlib.error as e:
                    raise ValueError(f"{path}: corrupt compressed MATLAB v5 variable at byte "
                                     f"{pos} ({e})") from None
                if len(body) < 8:
                    break
                inner_type, _ = struct.unpack(endian + "II", body[:8])
                body = body[8:]
                if inner_type != 14:
                    break
            else:
                body = fh.read(min(nbytes, 4096))
            parsed = _v5_matrix_header(body, endian)
            if parsed is None:
                break
            name, cls, dims = parsed
            out[name] = (cls, dims, nbytes, dtype == 15)
            pos += 8 + nbytes + ((8 - nbytes % 8) % 8 if dtype == 14 else 0)
    return out


def _v5_matrix_header(body: bytes, endian: str):
    """(name, class, dims) from the start of a miMATRIX element's data, or None."""
    subs = []
    off = 0
    for _ in range(3):
        if off + 8 > len(body):
            return None
        first, second = struct.unpack(endian + "II", body[off:off + 8])
        if first >> 16:                     # small data element: 2-byte size, 2-byte type
            n = first >> 16
            subs.append(body[off + 4:off + 4 + n])
            off += 8
        else:
            n = second
            subs.append(body[off + 8:off + 8 + n])
            off += 8 + n + (8 - n % 8) % 8
    flags, dims_raw, name_raw = subs
    if len(flags) < 4 or len(dims_raw) < 8:
        return None
    cls = _V5_CLASSES.get(struct.unpack(endian + "I", flags[:4])[0] & 0xFF, "other")
    if struct.unpack(endian + "I", flags[:4])[0] & 0x200 and cls not in ("sparse",):
        cls = "logical"
    dims = tuple(int(d) for d in struct.unpack(endian + f"{len(dims_raw) // 4}i", dims_raw))
    return name_raw.decode("latin-1"), cls, dims


def _v5_infos(path: Path, keys) -> dict:
    elements = _v5_elements(path)
    infos = {}
    for name, (cls, dims, stored, compressed) in elements.items():
        if keys is not None and name not in keys:
            continue
        elems = int(np.prod(dims, dtype=np.float64)) if dims else 0
        if cls in _NUMERIC_DTYPES:
            kind, dtype = "numeric", np.dtype(_NUMERIC_DTYPES[cls])
        elif cls == "logical":
            kind, dtype = "logical", np.dtype(np.bool_)
        elif cls in ("char", "cell", "sparse", "struct"):
            kind, dtype = cls, None
        else:
            kind, dtype = "other", None
        if kind in ("numeric", "logical"):
            nbytes = elems * dtype.itemsize
        elif kind == "char":
            nbytes = elems * 4                 # NumPy's UTF-32 strings
        else:                                  # bounded by what is stored, expanded
            nbytes = stored * (MAX_RATIO if compressed else 1)
        infos[name] = ArrayInfo(name, kind, dims, dims, dtype, cls, elems, nbytes, stored,
                                compressed, "v5")
    return infos


def _h5_info(key: str, obj, matlab: bool) -> ArrayInfo:
    import h5py

    fmt = "v7.3" if matlab else "hdf5"
    cls = _attr_str(obj.attrs.get("MATLAB_class"))
    if isinstance(obj, h5py.Group):
        if "MATLAB_sparse" in obj.attrs:
            nrows = int(np.asarray(obj.attrs["MATLAB_sparse"]).ravel()[0])
            ncols = len(obj["jc"]) - 1 if "jc" in obj else 0
            stored = sum(obj[m].id.get_storage_size() for m in ("data", "ir", "jc") if m in obj)
            return ArrayInfo(key, "sparse", (nrows, ncols), (ncols, nrows), None, cls, 0, 0,
                             stored, False, fmt)
        return ArrayInfo(key, "struct", (), (), None, cls, 0, 0, 0, False, fmt)
    stored_shape = tuple(int(s) for s in obj.shape) if obj.shape is not None else ()
    shape = stored_shape[::-1] if matlab else stored_shape
    elems = int(np.prod(stored_shape, dtype=np.float64)) if stored_shape else 1
    dtype = np.dtype(obj.dtype)
    refuse = ""
    if obj.is_virtual:
        refuse = "a virtual dataset (its data live in other files)"
    elif obj.external:
        refuse = "stored in external files"
    plist = obj.id.get_create_plist()
    layout = plist.get_layout()
    stored = obj.id.get_storage_size()
    compressed = plist.get_nfilters() > 0
    complete = True
    if layout == h5py.h5d.CONTIGUOUS:
        complete = stored >= elems * dtype.itemsize
    elif layout == h5py.h5d.CHUNKED:
        chunks = obj.chunks
        expected = int(np.prod([-(-s // c) for s, c in zip(stored_shape, chunks)],
                               dtype=np.float64)) if elems else 0
        complete = obj.id.get_num_chunks() >= expected
    if "MATLAB_empty" in obj.attrs and int(np.asarray(obj.attrs["MATLAB_empty"]).ravel()[0]):
        return ArrayInfo(key, "empty", (0,), stored_shape, None, cls, 0, 0, stored, compressed,
                         fmt)
    if cls == "char":
        kind, out_dtype, nbytes = "char", None, elems * 4
    elif cls == "cell" or dtype.kind == "O" or h5py.check_dtype(ref=dtype) is not None:
        kind, out_dtype, nbytes = "cell", None, elems * 8
    elif cls == "logical":
        kind, out_dtype, nbytes = "logical", np.dtype(np.bool_), elems
    elif cls in ("struct", "function_handle") or dtype.kind not in "biuf":
        kind, out_dtype, nbytes = "other", None, elems * dtype.itemsize
    else:
        kind, out_dtype, nbytes = "numeric", dtype, elems * dtype.itemsize
    return ArrayInfo(key, kind, shape, stored_shape, out_dtype, cls, elems, nbytes, stored,
                     compressed, fmt, complete, refuse)


def inspect_arrays(path, keys=None) -> dict:
    """What ``path`` declares, without reading any data: ``{key: ArrayInfo}``.

    Parameters
    ----------
    path : path
        A ``.mat`` (v5 or v7.3) or HDF5 file.
    keys : list of str, optional
        Only these variables (a missing one is a ``ValueError`` listing the keys found).

    Raises
    ------
    FileNotFoundError, ValueError
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    fmt = detect_format(path)
    keys = None if keys is None else list(keys)
    if fmt == "v5":
        infos = _v5_infos(path, keys)
        found = list(infos) if keys is None else list(_v5_elements(path))
    else:
        import h5py

        infos = {}
        try:
            with h5py.File(path, "r") as f:
                found = [k for k in f.keys() if k not in _HIDDEN]
                for k in (found if keys is None else [k for k in keys if k in found]):
                    infos[k] = _h5_info(k, f[k], fmt == "v7.3")
        except (OSError, KeyError, RuntimeError, TypeError) as e:
            raise ValueError(f"{path}: not a readable {describe_format(fmt)} file "
                             f"({_one_line(e)})") from None
    if keys is not None:
        missing = [k for k in keys if k not in infos]
        if missing:
            raise ValueError(f"{path}: expected key {' and '.join(map(repr, missing))} in this "
                             f"{describe_format(fmt)} file, found keys {found}")
    return infos


def check_declared(path, info: ArrayInfo, *, whole: bool, max_bytes: int | None = None,
                   shape=None) -> None:
    """Raise a one-line ``ValueError`` when ``info`` declares more than the file holds, more
    than ``max_bytes`` (for a whole read, ``whole=True``), or a shape other than ``shape``
    (a tuple in MATLAB orientation; ``None`` entries match any size)."""
    origin = f"{path}:{info.key}"
    if info.refuse:
        raise ValueError(f"{origin}: refusing to read a dataset {info.refuse}")
    if info.kind in ("numeric", "logical", "char", "cell") and info.elements:
        if info.format == "v5":
            # MATLAB stores at least one byte per element (small integers in a byte each)
            held = info.elements <= info.stored * (MAX_RATIO if info.compressed else 1)
        else:
            need = info.elements * _stored_item(info)
            held = info.complete and (need <= info.stored * MAX_RATIO if info.compressed
                                      else info.stored >= need)
        if not held:
            raise ValueError(f"{origin}: declares {_shape_text(info)} "
                             f"({_bytes_text(info.nbytes)}) but the file holds only "
                             f"{_bytes_text(info.stored)} for it (a truncated or crafted file)")
    if whole:
        limit = max_bytes_default() if max_bytes is None else int(max_bytes)
        if info.nbytes > limit:
            raise ValueError(f"{origin}: declares {_shape_text(info)} "
                             f"({_bytes_text(info.nbytes)}), more than the limit of "
                             f"{_bytes_text(limit)} for an array read whole (max_bytes, or "
                             f"HASHKIT_MAX_ARRAY_BYTES)")
    if shape is not None:
        want = tuple(shape)
        got = tuple(info.shape)
        if len(want) != len(got) or any(w is not None and int(w) != g
                                        for w, g in zip(want, got)):
            shown = "(" + ", ".join("any" if w is None else str(w) for w in want) + ")"
            raise ValueError(f"{origin}: expected shape {shown}, found {_shape_text(info)} "
                             f"declared")


def _stored_item(info: ArrayInfo) -> int:
    if info.kind == "char":
        return 2
    if info.kind == "cell":
        return 8
    if info.kind == "logical":
        return 1
    return info.dtype.itemsize if info.dtype is not None else 1


def _shape_text(info: ArrayInfo) -> str:
    cls = f" {info.matlab_class}" if info.matlab_class else (
        f" {info.dtype}" if info.dtype is not None else "")
    return f"shape {tuple(info.shape)}{cls}"


def _bytes_text(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# --------------------------------------------------------------------------- whole reads
def read_arrays(path, keys=None, *, max_bytes: int | None = None, shapes=None) -> dict:
    """Read a few named arrays of a ``.mat`` (v5 / v7.3) or HDF5 file whole, safely.

    Parameters
    ----------
    path : path
    keys : list of str, optional
        The variables to read (only these are opened). ``None`` reads every variable that
        holds numbers, text or cells (structs and MATLAB objects are skipped).
    max_bytes : int, optional
        Ceiling on the declared bytes of the arrays read in this call together (default
        :func:`max_bytes_default`: 8 GiB or ``$HASHKIT_MAX_ARRAY_BYTES``).
    shapes : dict, optional
        ``{key: shape}`` expected shapes in MATLAB orientation (``None`` entries: any size),
        checked before reading.

    Returns
    -------
    dict
        ``{key: array}``: numeric arrays in MATLAB orientation (v7.3 axes reversed back;
        plain HDF5 as stored), ``logical`` as bool, ``char`` as a NumPy string array (one
        string per row, as ``scipy.io.loadmat`` gives), ``cell`` as an object array,
        sparse matrices as ``scipy.sparse`` CSC.

    Raises
    ------
    FileNotFoundError
    ValueError
        One line naming file and key: a missing key, a declaration larger than the file holds
        or than ``max_bytes``, an unexpected shape, an unreadable file.

    Example
    -------
    >>> arrays = read_arrays("codes.mat", keys=["qB", "rB"])       # doctest: +SKIP
    >>> arrays["qB"].shape                                          # doctest: +SKIP
    (2000, 64)
    """
    path = Path(path)
    infos = inspect_arrays(path, keys)
    if keys is None:
        infos = {k: i for k, i in infos.items() if i.kind not in ("struct", "other")}
    limit = max_bytes_default() if max_bytes is None else int(max_bytes)
    shapes = dict(shapes or {})
    total = 0
    for k, info in infos.items():
        if info.kind in ("struct", "other"):
            raise ValueError(f"{path}:{k}: expected a numeric, text or cell array, found a "
                             f"MATLAB {info.matlab_class or info.kind}")
        check_declared(path, info, whole=True, max_bytes=limit, shape=shapes.get(k))
        total += info.nbytes
        if total > limit:
            raise ValueError(f"{path}:{k}: the arrays asked for declare "
                             f"{_bytes_text(total)} together, more than the limit of "
                             f"{_bytes_text(limit)} (max_bytes, or HASHKIT_MAX_ARRAY_BYTES)")
    if not infos:
        return {}
    fmt = next(iter(infos.values())).format
    if fmt == "v5":
        return _read_v5(path, list(infos))
    import h5py

    out = {}
    try:
        with h5py.File(path, "r") as f:
            for k, info in infos.items():
                out[k] = _read_h5(path, f, k, f[k], info, limit)
    except (OSError, RuntimeError, TypeError) as e:
        raise ValueError(f"{path}: not a readable {describe_format(fmt)} file "
                         f"({_one_line(e)})") from None
    return out


def _read_v5(path: Path, keys: list) -> dict:
    import scipy.io

    try:
        data = scipy.io.loadmat(str(path), variable_names=keys)
    except Exception as e:  # scipy raises many types for a corrupt file
        raise ValueError(f"{path}: not a readable MATLAB v5 file ({type(e).__name__}: "
                         f"{_one_line(e)})") from None
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{path}: expected key {missing[0]!r}, which scipy could not read")
    return {k: data[k] for k in keys}


def _read_h5(path, f, key, obj, info: ArrayInfo, limit: int):
    import h5py

    matlab = info.format == "v7.3"
    if info.kind == "sparse":
        return _h5_sparse(path, obj, f"{path}:{key}", limit)
    if info.kind == "empty":
        dims = tuple(int(d) for d in np.asarray(obj[()]).ravel())
        dtype = _NUMERIC_DTYPES.get(info.matlab_class or "", np.float64)
        return np.zeros(dims if matlab else dims, dtype=dtype)
    arr = obj[()]
    if info.kind == "char":
        return _chars(arr, matlab)
    if info.kind == "cell":
        out = np.empty(arr.shape, dtype=object)
        used = 0
        for idx in np.ndindex(arr.shape):
            ref = arr[idx]
            if not ref:
                out[idx] = np.zeros((0, 0))
                continue
            target = f[ref]
            sub = _h5_info(key, target, matlab)
            if isinstance(target, h5py.Group) or sub.kind in ("cell", "struct", "other"):
                raise ValueError(f"{path}:{key}: expected a cell of numeric or text arrays, "
                                 f"found a nested MATLAB {sub.matlab_class or sub.kind}")
            check_declared(path, sub, whole=True, max_bytes=limit)
            used += sub.nbytes
            if used > limit:
                raise ValueError(f"{path}:{key}: the cell's arrays declare more than the limit "
                                 f"of {_bytes_text(limit)} together")
            out[idx] = _read_h5(path, f, key, target, sub, limit)
        return out.transpose(tuple(range(out.ndim))[::-1]) if matlab and out.ndim >= 2 else out
    if info.kind == "logical":
        arr = arr.astype(bool)
    if matlab and arr.ndim >= 2:
        arr = np.ascontiguousarray(arr.transpose(tuple(range(arr.ndim))[::-1]))
    return arr


def _chars(arr: np.ndarray, matlab: bool) -> np.ndarray:
    """MATLAB char (uint16 code units) -> NumPy strings, one per row of the char matrix."""
    arr = np.asarray(arr)
    if matlab and arr.ndim >= 2:
        arr = arr.transpose(tuple(range(arr.ndim))[::-1])
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    width = arr.shape[-1]
    if width == 0:
        return np.zeros(arr.shape[:-1], dtype="<U1")
    codes = np.ascontiguousarray(arr, dtype=np.uint32)
    return codes.view(f"<U{width}").reshape(arr.shape[:-1])


def _h5_sparse(path, group, origin, limit):
    """A MATLAB v7.3 sparse matrix (group with data/ir/jc, MATLAB_sparse = rows), checked and
    returned as CSR ``(rows, cols)``."""
    import scipy.sparse as sp

    nrows = int(np.asarray(group.attrs["MATLAB_sparse"]).ravel()[0])
    parts = {}
    for m in ("jc", "ir", "data"):
        if m in group:
            info = _h5_info(f"{origin.rsplit(':', 1)[1]}/{m}", group[m], False)
            check_declared(path, info, whole=True, max_bytes=limit)
            parts[m] = group[m][()]
    if "jc" not in parts:
        raise ValueError(f"{origin}: expected a MATLAB sparse matrix with 'jc', found members "
                         f"{list(group.keys())}")
    jc = parts["jc"].astype(np.int64).ravel()
    ir = parts.get("ir", np.zeros(0, np.int64)).astype(np.int64).ravel()
    data = parts.get("data", np.ones(len(ir), np.float32)).ravel()
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    nnz = int(jc[-1]) if len(jc) else 0
    if len(jc) < 1 or np.any(np.diff(jc) < 0) or nnz != len(ir) or len(data) != len(ir) or (
            len(ir) and (ir.min() < 0 or ir.max() >= nrows)):
        raise ValueError(f"{origin}: inconsistent MATLAB sparse matrix (rows {nrows}, "
                         f"{len(jc) - 1} columns, {len(ir)} row indices, {len(data)} values)")
    return sp.csc_matrix((data, ir, jc), shape=(nrows, len(jc) - 1)).tocsr()


def read_strings(path, key: str) -> list:
    """A list of file names (stripped) from a MATLAB char matrix, a char array of
    ``(N, parts)`` strings, or a cell array of strings (v5 or v7.3).

    A 2-D string array of ``parts > 1`` columns (torchcmh's NUS-WIDE ``imgList21.mat``: folder
    and file name) is joined as path components, as torchcmh's ``nus_wide.py`` does.
    """
    arr = read_arrays(path, [key])[key]
    origin = f"{path}:{key}"
    if arr.dtype == object:
        flat = arr.reshape(-1)
        out = []
        for i, item in enumerate(flat):
            item = np.asarray(item)
            if item.dtype.kind != "U":
                raise ValueError(f"{origin}: expected a cell array of file names, found a "
                                 f"{item.dtype} element at item {i}")
            out.append("".join(str(s) for s in item.reshape(-1)).strip())
        return out
    if arr.dtype.kind != "U":
        raise ValueError(f"{origin}: expected file names (a MATLAB char matrix or cell array of "
                         f"strings), found a numeric array of shape {arr.shape}")
    if arr.ndim <= 1:
        return [str(s).strip() for s in arr.reshape(-1)]
    if arr.ndim == 2 and arr.shape[1] == 1:
        return [str(s).strip() for s in arr[:, 0]]
    if arr.ndim == 2:
        return [os.path.join(*[str(p).strip() for p in row]) for row in arr]
    raise ValueError(f"{origin}: expected a list of file names, found a char array of shape "
                     f"{arr.shape}")


# ------------------------------------------------------------------------------- sources
class Source:
    """Items of one array, read on demand. Subclasses set ``n``, ``item_shape``, ``dtype``."""

    n: int
    item_shape: tuple
    dtype: np.dtype
    origin: str  # "FILE:KEY" for messages

    @property
    def sparse(self) -> bool:
        return False

    def take(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def all(self) -> np.ndarray:
        return self.take(np.arange(self.n, dtype=np.int64))

    def close(self) -> None:
        pass


class MemorySource(Source):
    """An in-memory array (v5 variables, the shipped mfeat views, arrays passed by the user)."""

    def __init__(self, array, origin: str):
        self.array = array
        self.origin = origin
        self.n = int(array.shape[0])
        self.item_shape = tuple(int(s) for s in array.shape[1:])
        self.dtype = np.dtype(array.dtype)

    @property
    def sparse(self) -> bool:
        return not isinstance(self.array, np.ndarray)

    def take(self, idx):
        out = self.array[np.asarray(idx, dtype=np.int64)]
        return out.toarray() if self.sparse else out


class H5Source(Source):
    """A dataset in an HDF5 file, items along ``axis`` (0 or last), optional item transpose.

    The file handle is opened lazily and dropped on pickling, so a DataLoader worker reopens it.
    """

    def __init__(self, path, key, axis: int, item_perm=None, info: ArrayInfo | None = None):
        import h5py

        self.path, self.key, self.axis = str(path), key, axis
        self.item_perm = item_perm
        self.origin = f"{path}:{key}"
        self._file = None
        if info is None:
            with h5py.File(self.path, "r") as f:
                info = _h5_info(key, f[key], detect_format(path) == "v7.3")
        check_declared(path, info, whole=False)
        shape, self.dtype = info.stored_shape, np.dtype(info.dtype)
        self.n = int(shape[axis])
        rest = [int(s) for i, s in enumerate(shape) if i != axis % len(shape)]
        if item_perm is not None:
            rest = [rest[p] for p in item_perm]
        self.item_shape = tuple(rest)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def _ds(self):
        import h5py

        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file[self.key]

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def _read_block(self, ds, uniq):
        lo, hi = int(uniq[0]), int(uniq[-1]) + 1
        # A contiguous slab is much faster than h5py point selection unless the slab is mostly
        # unwanted rows.
        if hi - lo <= 4 * len(uniq):
            if self.axis == 0:
                block = ds[lo:hi]
                return block[uniq - lo]
            block = ds[:, lo:hi]
            return np.moveaxis(block[:, uniq - lo], 1, 0)
        if self.axis == 0:
            return ds[uniq]
        return np.moveaxis(ds[:, uniq], 1, 0)

    def take(self, idx):
        idx = np.asarray(idx, dtype=np.int64).ravel()
        out = np.empty((len(idx),) + self.item_shape, dtype=self.dtype)
        if len(idx) == 0:
            return out
        ds = self._ds()
        order = np.argsort(idx, kind="stable")
        sidx = idx[order]
        # raw images are ~150 KB each: bound a block's bytes, not only its item count
        item_bytes = max(1, int(np.prod(self.item_shape)) * self.dtype.itemsize)
        step = max(1, min(BLOCK, (64 << 20) // item_bytes))
        for start in range(0, len(sidx), step):
            part = sidx[start:start + step]
            uniq, inverse = np.unique(part, return_inverse=True)
            block = self._read_block(ds, uniq)
            if self.item_perm is not None:
                block = block.transpose((0,) + tuple(p + 1 for p in self.item_perm))
            out[order[start:start + step]] = block[inverse]
        return out


_TEXT_HINT = ("holds text (MATLAB char), not numbers: a char matrix is a list of names, never "
              "a feature matrix")


class MatFile:
    """One ``.mat``/HDF5 file: lists its keys and hands out sources for them."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: file not found")
        self.format = detect_format(self.path)
        self._infos = None

    def infos(self) -> dict:
        if self._infos is None:
            self._infos = inspect_arrays(self.path)
        return self._infos

    def keys(self) -> list[str]:
        return list(self.infos())

    def info(self, key) -> ArrayInfo:
        infos = self.infos()
        if key not in infos:
            raise ValueError(f"{self.path}: expected key {key!r} in this "
                             f"{describe_format(self.format)} file, found keys {list(infos)}")
        return infos[key]

    def shape_of(self, key) -> tuple:
        """Shape as stored (HDF5 order for h5 files, MATLAB order for v5)."""
        return tuple(self.info(key).stored_shape)

    def source(self, key, kind: str, expected_dim: int | None = None) -> Source:
        """Return the source for ``key``.

        ``kind`` is ``"matrix"`` (items are rows of a 2-D array) or ``"images"`` (a 4-D stack,
        items returned as ``(H, W, C)``). Raises ``ValueError`` naming file and key when the
        array is not 2-D / 4-D, holds text, or declares more than the file holds.
        """
        origin = f"{self.path}:{key}"
        info = self.info(key)
        if info.kind == "char":
            raise ValueError(f"{origin}: expected a numeric array, found a MATLAB char array of "
                             f"shape {tuple(info.shape)}: it {_TEXT_HINT}")
        if info.kind in ("cell", "struct", "other", "empty"):
            raise ValueError(f"{origin}: expected a numeric array, found a MATLAB "
                             f"{info.matlab_class or info.kind} of shape {tuple(info.shape)}")
        if self.format == "v5":
            return self._v5_source(key, kind, expected_dim, origin)
        if info.kind == "sparse":
            if kind != "matrix":
                raise ValueError(f"{origin}: expected a dense 4-D image array, found a sparse "
                                 f"matrix of shape {tuple(info.shape)}")
            arr = read_arrays(self.path, [key])[key]
            return MemorySource(_orient_memory(arr, expected_dim), origin)
        if info.kind == "struct":
            raise ValueError(f"{origin}: expected a numeric array, found an HDF5 group "
                             f"(MATLAB struct)")
        _check_numeric(info.dtype, origin)
        shape = info.stored_shape
        matlab = self.format == "v7.3"
        if kind == "matrix":
            if len(shape) != 2:
                raise ValueError(f"{origin}: expected a 2-D array (items x features), "
                                 f"found shape {tuple(shape)} as stored")
            axis = 1 if matlab else 0
            if expected_dim is not None and shape[1 - axis] != expected_dim \
                    and shape[axis] == expected_dim:
                axis = 1 - axis
            return H5Source(self.path, key, axis=axis, info=info)
        if len(shape) != 4:
            raise ValueError(f"{origin}: expected a 4-D image array, found shape {tuple(shape)}")
        if matlab and shape[1] in (1, 3):
            return H5Source(self.path, key, axis=0, item_perm=(2, 1, 0), info=info)  # N,C,W,H
        if shape[-1] in (1, 3):
            return H5Source(self.path, key, axis=0, info=info)                       # N,H,W,C
        if shape[1] in (1, 3):
            return H5Source(self.path, key, axis=0, item_perm=(1, 2, 0), info=info)  # N,C,H,W
        raise ValueError(f"{origin}: expected a 4-D image stack with a channel axis of 1 or 3 "
                         f"(MATLAB HxWxCxN or NxHxWxC), found shape {tuple(shape)}")

    def _v5_source(self, key, kind, expected_dim, origin):
        import scipy.sparse as sp

        arr = read_arrays(self.path, [key])[key]
        if sp.issparse(arr):
            if kind != "matrix":
                raise ValueError(f"{origin}: expected a dense 4-D image array, found a sparse "
                                 f"matrix of shape {arr.shape}")
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            return MemorySource(_orient_memory(arr.tocsr(), expected_dim), origin)
        if arr.dtype.kind == "U":
            raise ValueError(f"{origin}: expected a numeric array, found text of shape "
                             f"{arr.shape}: it {_TEXT_HINT}")
        _check_numeric(arr.dtype, origin)
        if kind == "matrix":
            if arr.ndim != 2:
                raise ValueError(f"{origin}: expected a 2-D array (items x features), "
                                 f"found shape {arr.shape}")
            return MemorySource(_compact(_orient_memory(arr, expected_dim)), origin)
        if arr.ndim != 4:
            raise ValueError(f"{origin}: expected a 4-D image array, found shape {arr.shape}")
        if arr.shape[2] in (1, 3):
            return MemorySource(np.moveaxis(arr, 3, 0), origin)              # H,W,C,N
        if arr.shape[3] in (1, 3):
            return MemorySource(arr, origin)
        raise ValueError(f"{origin}: expected a 4-D image stack with a channel axis of 1 or 3, "
                         f"found shape {arr.shape}")


def _orient_memory(arr, expected_dim):
    if expected_dim is not None and arr.shape[1] != expected_dim and arr.shape[0] == expected_dim:
        return arr.T.tocsr() if hasattr(arr, "tocsr") else arr.T
    return arr


def _compact(arr: np.ndarray) -> np.ndarray:
    """Drop float64 storage of a v5 variable: uint8 when every value is a byte-sized integer
    (BoW counts, 0/1 labels), float32 otherwise; converted in row blocks."""
    if arr.dtype != np.float64:
        return arr
    small = True
    for s in range(0, arr.shape[0], BLOCK):
        blk = arr[s:s + BLOCK]
        if not (np.all(blk == np.round(blk)) and blk.min(initial=0) >= 0
                and blk.max(initial=0) <= 255):
            small = False
            break
    out = np.empty(arr.shape, dtype=np.uint8 if small else np.float32)
    for s in range(0, arr.shape[0], BLOCK):
        out[s:s + BLOCK] = arr[s:s + BLOCK]
    return out


def _check_numeric(dtype, origin):
    dtype = np.dtype(dtype)
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise ValueError(f"{origin}: expected a numeric array, found dtype {dtype}")
