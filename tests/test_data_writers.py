"""Writers of the released file layouts, independent of hashkit (the oracles of layout), and a
check of the v7.3 writer against hdf5storage, the peer that writes MATLAB-compatible files.

- MATLAB v7.3 as MATLAB and hdf5storage write it: a 512-byte user block holding the text
  header ("MATLAB 7.3 MAT-file, Platform: ..., Created on: ... HDF5 schema 1.00 ."), the
  version 0x0200 and the 'IM' endian mark at bytes 124..127; every array's axes reversed; a
  ``MATLAB_class`` attribute on each dataset; char arrays as uint16 code units with
  ``MATLAB_int_decode = 2``; logicals as uint8; cells as object references into ``#refs#``.
- MATLAB v5 through scipy.io.savemat (a char matrix padded with spaces, as MATLAB's char()
  pads it; a cell array as an object array).
"""

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

HEADER = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 "
          b"HDF5 schema 1.00 .")

_CLASSES = {np.dtype(np.uint8): "uint8", np.dtype(np.float32): "single",
            np.dtype(np.float64): "double", np.dtype(np.int32): "int32",
            np.dtype(np.uint16): "uint16", np.dtype(np.int64): "int64"}


def _reverse(arr):
    return np.ascontiguousarray(arr.transpose(tuple(range(arr.ndim))[::-1]))


def _put(f, group, key, arr):
    """One MATLAB variable into ``group`` (a file or the #refs# group); returns the dataset."""
    if isinstance(arr, np.ndarray) and arr.dtype == object:        # cell array
        refs = f.require_group("#refs#")
        ref_arr = np.empty(arr.shape, dtype=h5py.ref_dtype)
        for idx in np.ndindex(arr.shape):
            sub = _put(f, refs, f"{key}_{len(refs)}", np.asarray(arr[idx]))
            ref_arr[idx] = sub.ref
        d = group.create_dataset(key, data=_reverse(ref_arr), dtype=h5py.ref_dtype)
        d.attrs["MATLAB_class"] = np.bytes_("cell")
        return d
    arr = np.asarray(arr)
    if arr.dtype.kind == "U":                                       # char: rows of text
        if arr.ndim == 0:
            arr = arr.reshape(1)
        width = max(1, arr.dtype.itemsize // 4)
        padded = np.array([s.ljust(width) for s in arr.reshape(-1)], dtype=f"<U{width}")
        codes = padded.view(np.uint32).reshape(arr.shape + (width,)).astype(np.uint16)
        d = group.create_dataset(key, data=_reverse(codes))
        d.attrs["MATLAB_class"] = np.bytes_("char")
        d.attrs["MATLAB_int_decode"] = np.int64(2)
        return d
    if arr.dtype == np.bool_:
        d = group.create_dataset(key, data=_reverse(arr.astype(np.uint8)))
        d.attrs["MATLAB_class"] = np.bytes_("logical")
        return d
    d = group.create_dataset(key, data=_reverse(arr))
    d.attrs["MATLAB_class"] = np.bytes_(_CLASSES[arr.dtype])
    return d


def write_mat73(path, variables, header=True):
    """Write ``variables`` (MATLAB-shaped arrays: N x D matrices, H x W x C x N images, string
    arrays as char matrices, object arrays as cells) as MATLAB -v7.3 does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512 if header else 0) as f:
        for key, arr in variables.items():
            _put(f, f, key, arr)
    if header:
        with open(path, "r+b") as fh:
            fh.write(HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


def write_mat5(path, variables, compress=False):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables, do_compression=compress)


def char_matrix(names):
    """A MATLAB char matrix of file names, padded with spaces as char() pads them."""
    width = max(len(n) for n in names)
    return np.array([n.ljust(width) for n in names])


def cell_column(names):
    """A MATLAB N x 1 cell array of strings."""
    out = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        out[i, 0] = n
    return out


def matlab_images(pixels):
    """N x H x W x C -> MATLAB's H x W x C x N."""
    return np.ascontiguousarray(pixels.transpose(1, 2, 3, 0))


def make_data(rng, n=40, nlabels=24, tdim=30, fdim=16, size=(6, 9)):
    """Labels, texts, pixels (N, H, W, 3; H != W) and features whose every row differs, so a
    transpose, an H/W swap or a shuffle shows."""
    labels = (rng.random((n, nlabels)) < 0.15).astype(np.uint8)
    bits = min(nlabels, 16)
    code = (np.arange(n)[:, None] + 1 >> np.arange(bits)[None, :]) & 1   # row i: bits of i + 1
    labels[:, :bits] = code
    texts = rng.integers(0, 3, (n, tdim)).astype(np.float64)
    texts[:, 0] = np.arange(n) + 1
    feats = (rng.standard_normal((n, fdim)) + np.arange(n)[:, None]).astype(np.float32)
    pixels = rng.integers(0, 256, (n,) + tuple(size) + (3,), dtype=np.uint8)
    pixels[:, 0, 0, 0] = np.arange(n) % 256
    return labels, texts, pixels, feats


def save_images(folder, names, pixels, fmt="PNG"):
    from PIL import Image

    for name, px in zip(names, pixels):
        p = Path(folder) / name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(px).save(p, format=fmt)


def test_v73_writer_matches_hdf5storage(tmp_path):
    """The hand writer lays variables out as hdf5storage (matlab_compatible) does."""
    hdf5storage = pytest.importorskip("hdf5storage")
    x = np.arange(6, dtype=np.float32).reshape(2, 3) + 0.5
    mask = np.array([[True, False, True]])
    hdf5storage.savemat(str(tmp_path / "peer.mat"), {"X": x, "M": mask}, format="7.3",
                        matlab_compatible=True, store_python_metadata=False)
    write_mat73(tmp_path / "mine.mat", {"X": x, "M": mask})
    with h5py.File(tmp_path / "peer.mat", "r") as a, h5py.File(tmp_path / "mine.mat", "r") as b:
        for k, v in (("X", x), ("M", mask)):
            assert a[k].shape == b[k].shape == v.shape[::-1]
            np.testing.assert_array_equal(a[k][()], b[k][()])
            assert a[k].attrs["MATLAB_class"] == b[k].attrs["MATLAB_class"]
    for p in ("peer.mat", "mine.mat"):
        head = (tmp_path / p).read_bytes()[:128]
        assert head.startswith(b"MATLAB 7.3 MAT-file") and head[126:128] == b"IM"
