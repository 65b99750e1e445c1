"""The shipped mfeat set, the torch batch layer, batch_similarity, `hashkit datasets`, and
that `import hashkit.data` stays light."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

import hashkit.data as hd
from hashkit.data import cli as dcli
from hashkit.data import mfeat


def test_mfeat_contents_and_pairing():
    views = mfeat.load_views()
    dims = {"fac": 216, "fou": 76, "kar": 64, "mor": 6, "pix": 240, "zer": 47}
    for v, d in dims.items():
        assert views[v].shape == (2000, d)
    assert views["pix"].dtype == np.uint8 and views["pix"].max() == 6
    # the UCI file order: 200 consecutive digits per class, classes 0..9
    np.testing.assert_array_equal(views["classes"], np.repeat(np.arange(10), 200))
    ds = hd.load("mfeat")
    assert (ds.image_dim, ds.text_dim, ds.nlabels, ds.image_shape) == (240, 76, 10, (16, 15, 1))
    lab = ds.labels
    assert lab.dtype == np.uint8 and np.all(lab.sum(1) == 1)
    np.testing.assert_array_equal(np.argmax(lab, 1), views["classes"])
    q = ds.query
    np.testing.assert_array_equal(q.images, views["pix"][q.indices].astype(np.float32))
    np.testing.assert_array_equal(q.texts, views["fou"][q.indices])
    # the pixel image is the pix view, row-major 16 x 15, scaled 0..6 -> 0..255
    img = q.pixels(5)
    assert img.dtype == np.uint8 and img.shape == (16, 15, 1)
    expect = np.round(views["pix"][q.indices[5]].reshape(16, 15) * 255.0 / 6.0)
    np.testing.assert_array_equal(img[:, :, 0], expect)
    other = hd.load("mfeat", view_image="kar", view_text="zer")
    assert (other.image_dim, other.text_dim, other.image_shape) == (64, 47, None)


def test_mfeat_views_are_class_informative():
    """Nearest class mean on the default pairing beats chance (10%) by far."""
    ds = hd.load("mfeat", seed=0)
    for name in ("images", "texts"):
        tr, te = getattr(ds.train, name), getattr(ds.query, name)
        mu, sd = tr.mean(0), tr.std(0) + 1e-6
        trz, tez = (tr - mu) / sd, (te - mu) / sd
        ytr, yte = np.argmax(ds.train.labels, 1), np.argmax(ds.query.labels, 1)
        means = np.stack([trz[ytr == c].mean(0) for c in range(10)])
        pred = np.argmin(((tez[:, None, :] - means[None]) ** 2).sum(-1), 1)
        assert (pred == yte).mean() > 0.6


def test_mfeat_shipped_as_package_data():
    """scikit-build-core's wheel.packages = ["hashkit"] copies every file under the package;
    the file must be tracked by git and not ignored so that it reaches the sdist/wheel."""
    root = Path(hd.__file__).resolve().parents[2]
    rel = "hashkit/data/mfeat.npz"
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "--error-unmatch", rel], cwd=root,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ignored = subprocess.run(["git", "check-ignore", "-q", rel], cwd=root)
    assert ignored.returncode == 1
    assert mfeat.PATH.stat().st_size < 3_000_000


def oracle_similarity(a, b, graded):
    out = np.zeros((len(a), len(b)), dtype=np.float32)
    for i in range(len(a)):
        for j in range(len(b)):
            shared = sum(1 for k in range(a.shape[1]) if a[i, k] and b[j, k])
            out[i, j] = shared if graded else float(shared > 0)
    return out


@pytest.mark.parametrize("graded", [False, True])
def test_batch_similarity_numpy_and_torch(graded):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a = (rng.random((7, 12)) < 0.2).astype(np.uint8)
    b = (rng.random((9, 12)) < 0.2).astype(np.uint8)
    expect = oracle_similarity(a, b, graded)
    got = hd.batch_similarity(a, b, graded=graded)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expect)
    gt = hd.batch_similarity(torch.from_numpy(a), torch.from_numpy(b.astype(bool)), graded=graded)
    assert gt.dtype == torch.float32
    np.testing.assert_array_equal(gt.numpy(), expect)
    with pytest.raises(ValueError, match="labels_b: expected 12 label columns"):
        hd.batch_similarity(a, b[:, :5])
    with pytest.raises(ValueError, match="labels_a: expected a 2-D"):
        hd.batch_similarity(a[0], b)


def test_torch_loader_batches():
    torch = pytest.importorskip("torch")
    from hashkit.data.torch_data import make_loader

    ds = hd.load("mfeat", seed=0)
    seen = []
    for idx, img, txt, lab in make_loader(ds.train, batch_size=96, shuffle=True, seed=3):
        assert idx.dtype == torch.int64 and img.dtype == torch.float32
        assert txt.dtype == torch.float32 and lab.dtype == torch.uint8
        p = idx.numpy()
        np.testing.assert_array_equal(img.numpy(), ds.train.images[p])
        np.testing.assert_array_equal(txt.numpy(), ds.train.texts[p])
        np.testing.assert_array_equal(lab.numpy(), ds.train.labels[p])
        seen.append(p)
    allp = np.concatenate(seen)
    assert len(allp) == 1000 and len(np.unique(allp)) == 1000
    again = np.concatenate([b[0].numpy() for b in make_loader(ds.train, 96, shuffle=True, seed=3)])
    np.testing.assert_array_equal(again, allp)
    other = np.concatenate([b[0].numpy() for b in make_loader(ds.train, 96, shuffle=True, seed=4)])
    assert not np.array_equal(other, allp)
    idx, img, txt, lab = next(iter(make_loader(ds.query, 8, image="pixels", preload=False)))
    assert img.dtype == torch.uint8 and tuple(img.shape) == (8, 16, 15, 1)
    np.testing.assert_array_equal(img.numpy(), ds.query.pixel_batch(np.arange(8)))
    with pytest.raises(ValueError, match="batch_size: expected a positive integer"):
        make_loader(ds.train, 0)
    syn = hd.load("synthetic", n=300, image_dim=8, text_dim=8)
    with pytest.raises(ValueError, match="has no raw pixels"):
        make_loader(syn.train, 8, image="pixels")


def test_import_is_light():
    code = ("import sys, hashkit.data; "
            "print([m for m in ('torch', 'h5py') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(hd.__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _args(*argv):
    p = argparse.ArgumentParser()
    dcli.add_datasets_arguments(p)
    return p.parse_args(list(argv))


def test_cli_list(capsys, tmp_path):
    assert dcli.run_datasets(_args("--root", str(tmp_path))) == 0
    out = capsys.readouterr().out
    for frag in ("mfeat", "synthetic", "mirflickr", "nus-wide-21", "nus-wide-10", "iapr-tc12",
                 "mscoco", "presplit", "FLICKR-25K.mat", "MATLAB v7.3 (HDF5)", "2,000 query",
                 str(tmp_path)):
        assert frag in out, frag
    assert dcli.run_datasets(_args("--json")) == 0
    rows = json.loads(capsys.readouterr().out)
    mir = next(r for r in rows if r["name"] == "mirflickr")
    assert mir["protocols"]["default"]["query"] == 2000
    assert mir["protocols"]["default"]["train"] == 10000
    # every layout names the repository whose loader defines it; every protocol its source
    for r in rows:
        for lay in {f["layout"] for f in r["files"]}:
            assert r["layouts"][lay], (r["name"], lay)
        for name, p in r["protocols"].items():
            assert p["source"], (r["name"], name)
    assert set(mir["layouts"]) == {"dcmh", "djsrh", "vgg", "torchcmh", "ugach"}
    assert "zs-zhong/DJSRH" in mir["layouts"]["djsrh"] and "UCCH" in mir["layouts"]["vgg"]
    assert "WangGodder/deep-cross-modal-hashing" in mir["layouts"]["torchcmh"]
    assert "UGACH_AAAI2018" in mir["layouts"]["ugach"]
    assert "DAPH" not in json.dumps(mir["protocols"])   # DAPH does not evaluate MIRFLICKR
    nus10 = next(r for r in rows if r["name"] == "nus-wide-10")
    assert "tc10" not in nus10["layouts"]["ugach"] and nus10["protocols"]["ugach"]["query"] == 1865
    assert set(mir["protocols"]) >= {"default", "djsrh", "ugach", "torchcmh", "ugach-release"}


def test_cli_check_file(capsys, tmp_path):
    rng = np.random.default_rng(1)
    n = 30
    labels = (rng.random((n, 24)) < 0.2).astype(np.float64)
    texts = (rng.random((n, 1386)) < 0.01).astype(np.float64)
    imgs = rng.integers(0, 256, (4, 5, 3, n), dtype=np.uint8)     # MATLAB H x W x C x N
    with h5py.File(tmp_path / "mirflickr25k-iall.mat", "w") as f:
        d = f.create_dataset("IAll", data=imgs.transpose(3, 2, 1, 0))
        d.attrs["MATLAB_class"] = np.bytes_("uint8")
    scipy.io.savemat(tmp_path / "mirflickr25k-yall.mat", {"YAll": texts})
    scipy.io.savemat(tmp_path / "mirflickr25k-lall.mat", {"LAll": labels})
    assert dcli.run_datasets(_args("check", str(tmp_path / "mirflickr25k-lall.mat"))) == 0
    out = capsys.readouterr().out
    assert "LAll" in out and "(30, 24)" in out and "MATLAB v5" in out
    assert "dataset mirflickr: OK, 30 items, 24 labels" in out
    assert f"found labels: {tmp_path / 'mirflickr25k-lall.mat'}:LAll" in out
    assert "pixels (4, 5, 3)" in out and "no NaN/inf" in out
    assert dcli.run_datasets(_args("check", str(tmp_path), "--name", "mirflickr", "--json")) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["summary"]["n"] == 30 and rep["summary"]["text_dim"] == 1386
    # a broken file: the error names file, key, expectation and finding; exit status 1
    scipy.io.savemat(tmp_path / "mirflickr25k-lall.mat", {"LAll": labels * 3})
    assert dcli.run_datasets(_args("check", str(tmp_path / "mirflickr25k-lall.mat"))) == 1
    err = capsys.readouterr().err
    assert "mirflickr25k-lall.mat:LAll" in err and "{0, 1}" in err
    # an unknown file is described, not validated
    scipy.io.savemat(tmp_path / "other.mat", {"Z": np.zeros((2, 3))})
    assert dcli.run_datasets(_args("check", str(tmp_path / "other.mat"))) == 0
    out = capsys.readouterr().out
    assert "Z" in out and "pass --name NAME" in out
    assert dcli.run_datasets(_args("check")) == 2
    assert dcli.run_datasets(_args("check", str(tmp_path / "missing.mat"))) == 1
    assert "no such file" in capsys.readouterr().err
