"""Lazy access to arrays in MATLAB ``.mat`` files (v5 and v7.3/HDF5) and plain HDF5 files.

Every array is exposed as a *source*: ``n`` items along a sample axis, a canonical item shape,
and ``take(idx)`` that returns only the requested items. HDF5 arrays stay on disk and are read
in blocks; nothing here converts a whole array to float.

Axis conventions (why the code looks the way it does):

- MATLAB v7.3 files are HDF5 with every array's axes reversed. A MATLAB ``N x D`` matrix is an
  HDF5 dataset of shape ``(D, N)``; a MATLAB ``H x W x C x N`` image stack (as in DCMH's
  ``FLICKR-25K.mat``) is ``(N, C, W, H)``, so one item is ``ds[i].transpose(2, 1, 0)``.
- MATLAB v5 files are read with ``scipy.io.loadmat`` (whole variable, as MATLAB shaped it):
  matrices are ``(N, D)``, image stacks ``(H, W, C, N)``.
- Plain HDF5 written from Python keeps C order: ``(N, D)``, images ``(N, H, W, C)`` or
  ``(N, C, H, W)``.
When the expected feature length is known and disagrees with the default orientation while the
other axis matches it, the other orientation is used (files saved the "wrong" way round exist).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_MAT73 = b"MATLAB 7.3 MAT-file"
_MAT5 = b"MATLAB 5.0 MAT-file"
BLOCK = 4096  # items read per HDF5 block: bounded memory, few round trips


def describe_format(fmt: str) -> str:
    return {"v7.3": "MATLAB v7.3 (HDF5)", "v5": "MATLAB v5", "hdf5": "HDF5",
            "npz": "NumPy .npz"}.get(fmt, fmt)


def detect_format(path: str | os.PathLike) -> str:
    """Return ``"v7.3"``, ``"v5"`` or ``"hdf5"`` for ``path`` (``ValueError`` otherwise)."""
    import h5py

    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(128)
    if h5py.is_hdf5(str(path)):
        if head.startswith(_MAT73):
            return "v7.3"
        with h5py.File(path, "r") as f:
            for key in f.keys():
                if "MATLAB_class" in f[key].attrs:
                    return "v7.3"
        return "hdf5"
    if head.startswith(b"MATLAB") or head[:4] == b"\x00\x00\x00\x00":
        return "v5"
    raise ValueError(f"{path}: expected a MATLAB .mat (v5 or v7.3) or HDF5 file, "
                     f"found neither (first bytes {head[:16]!r})")


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


def _sorted_unique(idx: np.ndarray):
    uniq, inverse = np.unique(idx, return_inverse=True)
    return uniq, inverse


class H5Source(Source):
    """A dataset in an HDF5 file, items along ``axis`` (0 or last), optional item transpose.

    The file handle is opened lazily and dropped on pickling, so a DataLoader worker reopens it.
    """

    def __init__(self, path, key, axis: int, item_perm=None):
        import h5py

        self.path, self.key, self.axis = str(path), key, axis
        self.item_perm = item_perm
        self.origin = f"{path}:{key}"
        self._file = None
        with h5py.File(self.path, "r") as f:
            ds = f[key]
            shape, self.dtype = ds.shape, np.dtype(ds.dtype)
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
            uniq, inverse = _sorted_unique(part)
            block = self._read_block(ds, uniq)
            if self.item_perm is not None:
                block = block.transpose((0,) + tuple(p + 1 for p in self.item_perm))
            out[order[start:start + step]] = block[inverse]
        return out


def _h5_sparse(group, origin):
    """A MATLAB v7.3 sparse matrix (group with data/ir/jc) as CSR ``(N, D)``."""
    import scipy.sparse as sp

    nrows = int(np.asarray(group.attrs["MATLAB_sparse"]).ravel()[0])
    jc = group["jc"][()].astype(np.int64)
    ir = group["ir"][()].astype(np.int64) if "ir" in group else np.zeros(0, np.int64)
    data = group["data"][()] if "data" in group else np.ones(len(ir), np.float32)
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    return sp.csc_matrix((data, ir, jc), shape=(nrows, len(jc) - 1)).tocsr()


class MatFile:
    """One ``.mat``/HDF5 file: lists its keys and hands out sources for them."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: file not found")
        self.format = detect_format(self.path)
        self._v5 = None

    def keys(self) -> list[str]:
        if self.format == "v5":
            import scipy.io

            return [name for name, _, _ in scipy.io.whosmat(str(self.path))]
        import h5py

        with h5py.File(self.path, "r") as f:
            return [k for k in f.keys() if not k.startswith("#")]

    def shape_of(self, key) -> tuple:
        """Shape as stored (HDF5 order for h5 files, MATLAB order for v5)."""
        if self.format == "v5":
            import scipy.io

            for name, shape, _ in scipy.io.whosmat(str(self.path)):
                if name == key:
                    return tuple(shape)
            raise KeyError(key)
        import h5py

        with h5py.File(self.path, "r") as f:
            obj = f[key]
            if isinstance(obj, h5py.Group):
                if "MATLAB_sparse" in obj.attrs:
                    nrows = int(np.asarray(obj.attrs["MATLAB_sparse"]).ravel()[0])
                    return (len(obj["jc"]) - 1, nrows)
                return ()
            return tuple(obj.shape)

    def source(self, key, kind: str, expected_dim: int | None = None) -> Source:
        """Return the source for ``key``.

        ``kind`` is ``"matrix"`` (items are rows of a 2-D array) or ``"images"`` (a 4-D stack,
        items returned as ``(H, W, C)``). Raises ``ValueError`` naming file and key when the
        array is not 2-D / 4-D.
        """
        origin = f"{self.path}:{key}"
        if self.format == "v5":
            return self._v5_source(key, kind, expected_dim, origin)
        import h5py

        with h5py.File(self.path, "r") as f:
            obj = f[key]
            if isinstance(obj, h5py.Group):
                if "MATLAB_sparse" in obj.attrs and kind == "matrix":
                    arr = _h5_sparse(obj, origin)
                    return MemorySource(_orient_memory(arr, expected_dim), origin)
                raise ValueError(f"{origin}: expected a numeric array, found an HDF5 group "
                                 f"(MATLAB struct/cell) with members {list(obj.keys())[:8]}")
            shape, dtype = obj.shape, obj.dtype
        _check_numeric(dtype, origin)
        matlab = self.format == "v7.3"
        if kind == "matrix":
            if len(shape) != 2:
                raise ValueError(f"{origin}: expected a 2-D array (items x features), "
                                 f"found shape {tuple(shape)} as stored")
            axis = 1 if matlab else 0
            if expected_dim is not None and shape[1 - axis] != expected_dim \
                    and shape[axis] == expected_dim:
                axis = 1 - axis
            return H5Source(self.path, key, axis=axis)
        if len(shape) != 4:
            raise ValueError(f"{origin}: expected a 4-D image array, found shape {tuple(shape)}")
        if matlab and shape[1] in (1, 3):
            return H5Source(self.path, key, axis=0, item_perm=(2, 1, 0))   # (N,C,W,H)
        if shape[-1] in (1, 3):
            return H5Source(self.path, key, axis=0)                         # (N,H,W,C)
        if shape[1] in (1, 3):
            return H5Source(self.path, key, axis=0, item_perm=(1, 2, 0))   # (N,C,H,W)
        raise ValueError(f"{origin}: expected a 4-D image stack with a channel axis of 1 or 3 "
                         f"(MATLAB HxWxCxN or NxHxWxC), found shape {tuple(shape)}")

    def _v5_source(self, key, kind, expected_dim, origin):
        import scipy.io
        import scipy.sparse as sp

        arr = scipy.io.loadmat(str(self.path), variable_names=[key])[key]
        if sp.issparse(arr):
            if kind != "matrix":
                raise ValueError(f"{origin}: expected a dense 4-D image array, found a sparse "
                                 f"matrix of shape {arr.shape}")
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            return MemorySource(_orient_memory(arr.tocsr(), expected_dim), origin)
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


def read_arrays(path: str | os.PathLike, keys=None) -> dict:
    """Read whole named arrays from a ``.mat`` (v5 or v7.3) or HDF5 file into memory.

    The one MAT reader for small files read in full (code files, feature files for
    ``hashkit encode``). ``keys=None`` reads every array; otherwise only those named (missing
    ones are absent from the result). MATLAB v7.3 arrays come back in MATLAB's axis order (the
    HDF5 shape reversed); plain HDF5 arrays as stored.

    Raises
    ------
    FileNotFoundError, ValueError
        No such file; not a MATLAB / HDF5 file, or unreadable (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    fmt = detect_format(path)
    wanted = None if keys is None else list(keys)
    if fmt == "v5":
        import scipy.io

        try:
            raw = scipy.io.loadmat(str(path), variable_names=wanted)
        except Exception as exc:  # scipy raises several types for a corrupt file
            raise ValueError(f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
        return {k: v for k, v in raw.items() if not k.startswith("__")}
    import h5py

    out = {}
    try:
        with h5py.File(path, "r") as f:
            for k in (wanted if wanted is not None else list(f.keys())):
                obj = f.get(k)
                if isinstance(obj, h5py.Dataset):
                    arr = obj[()]
                    out[k] = arr.T if fmt == "v7.3" and arr.ndim >= 2 else arr
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 / MATLAB v7.3 file ({exc})") from None
    return out
