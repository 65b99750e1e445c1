"""hashkit.data readers: small files in every released layout, written the way MATLAB / the
authors' scripts write them, read back and compared with the arrays they were made from; and
every bad-data case with the message it must give."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

import hashkit.data as hd
from hashkit.data._matfile import MatFile, detect_format

HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."


# ---------------------------------------------------------------- writers (oracles of layout)
def _matlab_class(arr):
    return {np.dtype(np.uint8): "uint8", np.dtype(np.float32): "single",
            np.dtype(np.float64): "double", np.dtype(np.int32): "int32"}[arr.dtype]


def write_mat73(path, variables, header=True):
    """Write ``variables`` (MATLAB-shaped NumPy arrays: N x D matrices, H x W x C x N images) as
    MATLAB -v7.3 does: HDF5 with every array's axes reversed, a MATLAB_class attribute on each
    dataset, and the 'MATLAB 7.3 MAT-file' text in a 512-byte user block."""
    with h5py.File(path, "w", userblock_size=512 if header else 0) as f:
        for key, arr in variables.items():
            arr = np.asarray(arr)
            d = f.create_dataset(key, data=arr.transpose(tuple(range(arr.ndim))[::-1]))
            d.attrs["MATLAB_class"] = np.bytes_(_matlab_class(arr))
    if header:
        with open(path, "r+b") as fh:
            fh.write(HEADER.ljust(116, b" "))


def write_mat5(path, variables):
    scipy.io.savemat(path, variables)


def make_data(rng, n=60, nlabels=24, tdim=30, size=(8, 6), fdim=16):
    labels = (rng.random((n, nlabels)) < 0.15).astype(np.uint8)
    labels[np.arange(n), rng.integers(0, nlabels, n)] = 1
    texts = (rng.random((n, tdim)) < 0.2).astype(np.float64)
    pixels = rng.integers(0, 256, (n,) + size + (3,), dtype=np.uint8)   # N, H, W, C
    feats = rng.standard_normal((n, fdim)).astype(np.float32)
    return labels, texts, pixels, feats


def matlab_images(pixels):
    """N x H x W x C -> MATLAB's H x W x C x N."""
    return np.ascontiguousarray(pixels.transpose(1, 2, 3, 0))


def check_roundtrip(ds, labels, texts, pixels=None, feats=None):
    full = np.arange(ds.n)
    assert ds.n == len(labels)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.labels.dtype == np.uint8
    np.testing.assert_array_equal(ds.text_source.take(full), texts)
    if pixels is not None:
        assert ds.image_shape == pixels.shape[1:]
        got = ds.pixel_source.take(full)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, pixels)
    if feats is not None:
        np.testing.assert_array_equal(ds.image_source.take(full), feats)


# ---------------------------------------------------------------------------- MIRFLICKR
def test_flickr25k_single_v73(tmp_path):
    rng = np.random.default_rng(0)
    labels, texts, pixels, feats = make_data(rng, tdim=1386)
    write_mat73(tmp_path / "FLICKR-25K.mat", {"images": matlab_images(pixels), "YAll": texts,
                                              "LAll": labels.astype(np.float64)})
    with h5py.File(tmp_path / "FLICKR-25K.mat", "r") as f:   # the layout DCMH's loader reads
        assert f["images"].shape == (60, 3, 6, 8)
        assert f["LAll"].shape == (24, 60)
    assert detect_format(tmp_path / "FLICKR-25K.mat") == "v7.3"
    ds = hd.load("mirflickr", root=tmp_path, protocol=hd.Protocol("t", 10, 20, 5))
    check_roundtrip(ds, labels, texts, pixels=pixels)
    assert ds.image_dim is None and ds.text_dim == 1386
    # pixels(i) on a view is the i-th item of that view, HWC uint8
    i = 3
    np.testing.assert_array_equal(ds.query.pixels(i), pixels[ds.query.indices[i]])
    np.testing.assert_array_equal(ds.query.texts, texts[ds.query.indices].astype(np.float32))
    with pytest.raises(ValueError, match="raw pixels only"):
        ds.query.images
    ds.close()


def test_mirflickr_separate_files_mixed_formats(tmp_path):
    rng = np.random.default_rng(2)
    labels, texts, pixels, feats = make_data(rng, tdim=1386)
    write_mat73(tmp_path / "mirflickr25k-iall.mat", {"IAll": matlab_images(pixels)})
    write_mat5(tmp_path / "mirflickr25k-yall.mat", {"YAll": texts})
    write_mat5(tmp_path / "mirflickr25k-lall.mat", {"LAll": labels.astype(np.float64)})
    write_mat5(tmp_path / "mirflickr25k-iall-vgg.mat", {"XAll": feats})
    ds = hd.load("mirflickr", root=tmp_path, protocol=hd.Protocol("t", 10, 20, 5), image="both")
    assert ds.options["layout"] == "djsrh"
    check_roundtrip(ds, labels, texts, pixels=pixels, feats=feats)
    assert sorted(Path(f).name for f in ds.files) == sorted(
        ["mirflickr25k-iall.mat", "mirflickr25k-yall.mat", "mirflickr25k-lall.mat",
         "mirflickr25k-iall-vgg.mat"])


def test_v73_detected_from_attributes_without_header(tmp_path):
    rng = np.random.default_rng(3)
    labels, texts, pixels, _ = make_data(rng, tdim=1386)
    write_mat73(tmp_path / "FLICKR-25K.mat", {"images": matlab_images(pixels), "YAll": texts,
                                              "LAll": labels.astype(np.float64)}, header=False)
    assert detect_format(tmp_path / "FLICKR-25K.mat") == "v7.3"
    ds = hd.load("mirflickr", root=tmp_path, protocol=hd.Protocol("t", 10, 20, 5))
    check_roundtrip(ds, labels, texts, pixels=pixels)


def test_v73_sparse_bow(tmp_path):
    """A sparse YAll saved with -v7.3 is an HDF5 group (data/ir/jc, MATLAB_sparse = rows)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(4)
    labels, texts, pixels, _ = make_data(rng, tdim=1386)
    write_mat73(tmp_path / "FLICKR-25K.mat", {"images": matlab_images(pixels),
                                              "LAll": labels.astype(np.float64)})
    csc = sp.csc_matrix(texts)            # MATLAB sparse is CSC of the N x D matrix
    with h5py.File(tmp_path / "FLICKR-25K.mat", "a") as f:
        g = f.create_group("YAll")
        g.attrs["MATLAB_class"] = np.bytes_("double")
        g.attrs["MATLAB_sparse"] = np.uint64(texts.shape[0])
        g["data"], g["ir"], g["jc"] = csc.data, csc.indices.astype(np.uint64), \
            csc.indptr.astype(np.uint64)
    ds = hd.load("mirflickr", root=tmp_path, protocol=hd.Protocol("t", 10, 20, 5))
    check_roundtrip(ds, labels, texts, pixels=pixels)


# ----------------------------------------------------------------------------- NUS-WIDE
@pytest.mark.parametrize("tc", [21, 10])
def test_nuswide_mixed_v5_v73(tmp_path, tc):
    rng = np.random.default_rng(tc)
    labels, texts, pixels, feats = make_data(rng, n=80, nlabels=tc, tdim=1000)
    for j in range(tc):                    # every concept present for the per-class protocol
        labels[j, :] = 0
        labels[j, j] = 1
    p = f"nus-wide-tc{tc}"
    write_mat73(tmp_path / f"{p}-iall.mat", {"IAll": matlab_images(pixels)})
    write_mat73(tmp_path / f"{p}-yall.mat", {"YAll": texts})
    write_mat5(tmp_path / f"{p}-lall.mat", {"LAll": labels.astype(np.float64)})
    write_mat5(tmp_path / (f"{p}-xall.mat" if tc == 21 else f"{p}-xall-vgg.mat"), {"XAll": feats})
    ds = hd.load(f"nus-wide-{tc}", root=tmp_path, image="both",
                 protocol=hd.Protocol("t", 10, 20, 5) if tc == 21 else hd.Protocol(
                     "pc", 10, 20, 5, kind="per-class", query_per_class=1, train_per_class=2))
    check_roundtrip(ds, labels, texts, pixels=pixels, feats=feats)
    assert ds.nlabels == tc


def test_nuswide_features_only(tmp_path):
    rng = np.random.default_rng(5)
    labels, texts, _, feats = make_data(rng, n=50, nlabels=21, tdim=1000)
    write_mat5(tmp_path / "nus-wide-tc21-xall-vgg.mat", {"XAll": feats})
    write_mat5(tmp_path / "nus-wide-tc21-yall.mat", {"YAll": texts})
    write_mat5(tmp_path / "nus-wide-tc21-lall.mat", {"LAll": labels})
    ds = hd.load("nus-wide-21", root=tmp_path, protocol=hd.Protocol("t", 10, 20, 5))
    check_roundtrip(ds, labels, texts, feats=feats)
    with pytest.raises(ValueError, match="image='pixels' expects raw images"):
        hd.load("nus-wide-21", root=tmp_path, protocol=hd.Protocol("t", 10, 20, 5),
                image="pixels")


# ------------------------------------------------------------------ one pre-split HDF5 file
def test_presplit_hdf5(tmp_path):
    rng = np.random.default_rng(8)
    parts = {}
    with h5py.File(tmp_path / "presplit.h5", "w") as f:   # plain HDF5 in C order (N, ...)
        for part, kd, ky, kl, n in (("query", "test_data", "test_y", "test_L", 7),
                                    ("retrieval", "data_set", "dataset_y", "dataset_L", 30),
                                    ("train", "train_data", "train_y", "train_L", 12)):
            lab, txt, _, feat = make_data(rng, n=n, nlabels=5, tdim=9, fdim=11)
            f[kd], f[ky], f[kl] = feat, txt, lab
            parts[part] = (lab, txt, feat)
    ds = hd.load("presplit", root=tmp_path, seed=3)
    lab = np.concatenate([parts[p][0] for p in ("query", "retrieval", "train")])
    txt = np.concatenate([parts[p][1] for p in ("query", "retrieval", "train")])
    feat = np.concatenate([parts[p][2] for p in ("query", "retrieval", "train")])
    check_roundtrip(ds, lab, txt, feats=feat)
    np.testing.assert_array_equal(ds.query.images, parts["query"][2])
    np.testing.assert_array_equal(ds.train.texts, parts["train"][1].astype(np.float32))
    np.testing.assert_array_equal(ds.retrieval.labels, parts["retrieval"][0])
    assert len(ds.val) == 3 and set(ds.val.indices) <= set(ds.retrieval.indices)


def test_h5_block_reads_any_order(tmp_path, monkeypatch):
    """Lazy HDF5 reads return rows in the requested order, duplicates included, across the
    slab/point-selection switch and block boundaries."""
    import hashkit.data._matfile as mm

    monkeypatch.setattr(mm, "BLOCK", 7)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((50, 4)).astype(np.float32)
    write_mat73(tmp_path / "a.mat", {"X": x})
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["X"] = x
    for path in ("a.mat", "b.h5"):
        src = MatFile(tmp_path / path).source("X", "matrix", expected_dim=4)
        for idx in (rng.permutation(50), np.array([49, 0, 0, 3, 48, 25]), rng.integers(0, 50, 30),
                    np.array([2, 40])):
            np.testing.assert_array_equal(src.take(idx), x[idx])


# ------------------------------------------------------------------------- bad data table
def _good_flickr(tmp_path, rng, **override):
    labels, texts, pixels, _ = make_data(rng, tdim=1386)
    v = {"images": matlab_images(pixels), "YAll": texts, "LAll": labels.astype(np.float64)}
    v.update(override)
    v = {k: a for k, a in v.items() if a is not None}
    write_mat73(tmp_path / "FLICKR-25K.mat", v)


def _nan_text(tmp_path, rng):
    labels, texts, pixels, _ = make_data(rng, tdim=1386)
    texts[17, 3] = np.nan
    write_mat73(tmp_path / "FLICKR-25K.mat", {"images": matlab_images(pixels), "YAll": texts,
                                              "LAll": labels.astype(np.float64)})


BAD_CASES = [
    ("missing key", lambda p, r: _good_flickr(p, r, YAll=None), ValueError,
     ["FLICKR-25K.mat", "'YAll'", "found keys"]),
    ("labels not 0/1", lambda p, r: _good_flickr(p, r, LAll=np.full((60, 24), 2.0)), ValueError,
     ["FLICKR-25K.mat:LAll", "{0, 1}", "2.0"]),
    ("wrong label count", lambda p, r: _good_flickr(p, r, LAll=np.zeros((60, 5))), ValueError,
     ["FLICKR-25K.mat:LAll", "24 label columns", "(60, 5)"]),
    ("counts disagree", lambda p, r: _good_flickr(p, r, YAll=np.zeros((59, 1386))), ValueError,
     ["same number of items", "FLICKR-25K.mat:YAll has 59", "FLICKR-25K.mat:LAll has 60"]),
    ("3-D text", lambda p, r: _good_flickr(p, r, YAll=np.zeros((60, 1386, 2))), ValueError,
     ["FLICKR-25K.mat:YAll", "2-D", "(2, 1386, 60)"]),
    ("float pixels", lambda p, r: _good_flickr(
        p, r, images=np.zeros((8, 6, 3, 60), dtype=np.float32)), ValueError,
     ["FLICKR-25K.mat:images", "uint8", "float32"]),
    ("no channel axis", lambda p, r: _good_flickr(
        p, r, images=np.zeros((8, 6, 5, 60), dtype=np.uint8)), ValueError,
     ["FLICKR-25K.mat:images", "channel axis", "(60, 5, 6, 8)"]),
    ("NaN in text", _nan_text, ValueError, ["FLICKR-25K.mat:YAll", "NaN", "item 17"]),
]


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_data_messages(tmp_path, case):
    _, write, exc, fragments = case
    write(tmp_path, np.random.default_rng(10))
    with pytest.raises(exc) as info:
        ds = hd.load("mirflickr", root=tmp_path, protocol=hd.Protocol("t", 10, 20, 5))
        ds.retrieval.texts   # NaN is found when the values are read
    for frag in fragments:
        assert frag in str(info.value), (frag, str(info.value))


def test_missing_dataset_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHKIT_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        hd.load("mirflickr")
    msg = str(info.value)
    for frag in (str(tmp_path / "mirflickr"), "FLICKR-25K.mat", "MATLAB v7.3 (HDF5)",
                 "mirflickr25k-iall.mat", "mirflickr25k-lall.mat", "MATLAB v5", "LAll",
                 "HASHKIT_DATA"):
        assert frag in msg, frag
    assert hd.data_root("mirflickr") == tmp_path / "mirflickr"
    assert hd.data_root("mirflickr", root="/x/y") == Path("/x/y")


def test_missing_one_file_marks_it(tmp_path):
    rng = np.random.default_rng(11)
    labels, texts, pixels, _ = make_data(rng, tdim=1386)
    write_mat73(tmp_path / "mirflickr25k-iall.mat", {"IAll": matlab_images(pixels)})
    write_mat5(tmp_path / "mirflickr25k-yall.mat", {"YAll": texts})
    with pytest.raises(FileNotFoundError) as info:
        hd.load("mirflickr", root=tmp_path)
    msg = str(info.value)
    assert "mirflickr25k-lall.mat [MATLAB v5], key LAll" in msg and "MISSING" in msg


def test_not_a_mat_file(tmp_path):
    (tmp_path / "FLICKR-25K.mat").write_bytes(b"hello world, not matlab")
    with pytest.raises(ValueError, match="FLICKR-25K.mat: expected a MATLAB .mat"):
        hd.load("mirflickr", root=tmp_path)


def test_unknown_names_and_options():
    with pytest.raises(ValueError, match="name: expected one of"):
        hd.load("no-such-set")
    with pytest.raises(ValueError, match="protocol: expected one of"):
        hd.load("mfeat", protocol="nope")
    with pytest.raises(ValueError, match="view_text: expected one of"):
        hd.load("mfeat", view_text="abc")
    with pytest.raises(ValueError, match="seed: expected a non-negative integer"):
        hd.load("mfeat", seed=-1)


def test_manifest_reload_of_file_dataset(tmp_path):
    rng = np.random.default_rng(12)
    labels, texts, pixels, _ = make_data(rng, n=40, nlabels=24, tdim=1386)
    write_mat73(tmp_path / "mirflickr25k-iall.mat", {"IAll": matlab_images(pixels)})
    write_mat5(tmp_path / "mirflickr25k-yall.mat", {"YAll": texts})
    write_mat5(tmp_path / "mirflickr25k-lall.mat", {"LAll": labels.astype(np.float64)})
    ds = hd.load("mirflickr", root=tmp_path, protocol=hd.Protocol("t", 10, 20, 5), seed=2)
    path = hd.save_manifest(ds.manifest, tmp_path / "mir.split.npz")
    again = hd.load("mirflickr", root=tmp_path, manifest=path)
    assert again.manifest.same_split(ds.manifest)
    np.testing.assert_array_equal(again.val.pixel_batch(np.arange(3)),
                                  pixels[ds.val.indices[:3]])


def test_non_numeric_variable(tmp_path):
    rng = np.random.default_rng(13)
    labels, texts, pixels, _ = make_data(rng, tdim=1386)
    write_mat73(tmp_path / "mirflickr25k-iall.mat", {"IAll": matlab_images(pixels)})
    write_mat5(tmp_path / "mirflickr25k-yall.mat", {"YAll": np.array(["a", "b"])})
    write_mat5(tmp_path / "mirflickr25k-lall.mat", {"LAll": labels})
    with pytest.raises(ValueError, match=r"mirflickr25k-yall.mat:YAll: expected a numeric "
                                         r"array, found a MATLAB char array"):
        hd.load("mirflickr", root=tmp_path)
