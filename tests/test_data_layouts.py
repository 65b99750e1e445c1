"""Every public layout, written as its release stores it and read back as its authors' loader
reads it (the loader named beside each test), compared with the arrays it was made from.

Rows differ from each other (a transpose or shuffle shows) and images are not square (an H/W
swap shows). MATLAB v7.3 files carry the real header and MATLAB_class attributes, with axes
reversed (test_data_writers.py checks the writer against hdf5storage)."""

from pathlib import Path

import h5py
import numpy as np
import pytest

import hashkit.data as hd
from hashkit.data.check import check_file, format_report
from test_data_writers import (cell_column, char_matrix, make_data, matlab_images, save_images,
                               write_mat5, write_mat73)

pytest.importorskip("PIL")
P = hd.Protocol("t", 5, 10, 3)


def full(src):
    return src.take(np.arange(src.n))


def same(ds, labels, texts, pixels=None, feats=None):
    assert ds.n == len(labels)
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(full(ds.text_source), texts)
    if pixels is not None:
        assert ds.image_shape == pixels.shape[1:]
        np.testing.assert_array_equal(full(ds.pixel_source), pixels)
    else:
        assert ds.pixel_source is None
    if feats is not None:
        np.testing.assert_array_equal(full(ds.image_source), feats)
    else:
        assert ds.image_source is None


# ------------------------------------------------------------------------------ MIRFLICKR
def test_mirflickr_dcmh_single_file(tmp_path):
    """DCMH: h5py.File('FLICKR-25K.mat')['images'][:].transpose(0,3,2,1), LAll/YAll .T"""
    lab, txt, px, _ = make_data(np.random.default_rng(0), tdim=1386)
    write_mat73(tmp_path / "FLICKR-25K.mat", {"images": matlab_images(px), "YAll": txt,
                                              "LAll": lab.astype(np.float64)})
    with h5py.File(tmp_path / "FLICKR-25K.mat") as f:         # DCMH's own reading
        np.testing.assert_array_equal(f["images"][:].transpose(0, 3, 2, 1), px)
        np.testing.assert_array_equal(f["LAll"][:].T, lab)
    ds = hd.load("mirflickr", root=tmp_path, protocol=P)
    same(ds, lab, txt, pixels=px)
    assert ds.options["layout"] == "dcmh" and ds.image_input == "pixels"
    assert "FLICKR-25K.mat:images" in ds.input_description


def test_mirflickr_djsrh_cleared_set_two_levels_down(tmp_path):
    """DJSRH settings.py / datasets.py; the Cleared-Set/{IAll,YAll,LAll,FAll} release."""
    lab, txt, px, _ = make_data(np.random.default_rng(1), tdim=1386)
    cs = tmp_path / "Cleared-Set"
    write_mat73(cs / "IAll" / "mirflickr25k-iall.mat", {"IAll": matlab_images(px)})
    write_mat5(cs / "YAll" / "mirflickr25k-yall.mat", {"YAll": txt})
    write_mat5(cs / "LAll" / "mirflickr25k-lall.mat", {"LAll": lab.astype(np.float64)},
               compress=True)
    write_mat5(cs / "FAll" / "mirflickr25k-fall.mat",
               {"FAll": cell_column([f"im{i + 1}.jpg" for i in range(len(lab))])})
    with h5py.File(cs / "IAll" / "mirflickr25k-iall.mat") as f:   # DJSRH's item read
        np.testing.assert_array_equal(np.transpose(f["IAll"][3], (2, 1, 0)), px[3])
    ds = hd.load("mirflickr", root=tmp_path, protocol=P)
    same(ds, lab, txt, pixels=px)
    assert ds.options["layout"] == "djsrh"
    assert ds.found["pixels"].startswith(str(cs / "IAll" / "mirflickr25k-iall.mat"))
    rep = check_file(tmp_path, name="mirflickr")
    text = format_report(rep)
    assert "found labels: " in text and str(Path("Cleared-Set") / "LAll") in text
    assert "layout djsrh" in text


def test_mirflickr_ucch_vgg_and_image_choice(tmp_path):
    """UCCH src/cmdataset.py MIRFlickr25K_fea: loadmat('mirflickr25k-iall-vgg.mat')['XAll']."""
    lab, txt, px, feats = make_data(np.random.default_rng(2), tdim=1386, fdim=4096)
    write_mat5(tmp_path / "mirflickr25k-iall-vgg.mat", {"XAll": feats})
    write_mat5(tmp_path / "mirflickr25k-yall.mat", {"YAll": txt})
    write_mat5(tmp_path / "mirflickr25k-lall.mat", {"LAll": lab})
    ds = hd.load("mirflickr", root=tmp_path, protocol=P)
    same(ds, lab, txt, feats=feats)
    assert ds.options["layout"] == "vgg" and ds.image_input == "features"
    assert "4096-d features from" in ds.input_description
    # with the pixels file beside it: pixels by default (DJSRH), the VGG file on request
    write_mat73(tmp_path / "mirflickr25k-iall.mat", {"IAll": matlab_images(px)})
    auto = hd.load("mirflickr", root=tmp_path, protocol=P)
    same(auto, lab, txt, pixels=px)
    feat = hd.load("mirflickr", root=tmp_path, protocol=P, image="features")
    same(feat, lab, txt, feats=feats)
    both = hd.load("mirflickr", root=tmp_path, protocol=P, image="both")
    same(both, lab, txt, pixels=px, feats=feats)
    assert both.image_input == "pixels" and "also 4096-d features" in both.input_description


def test_mirflickr_torchcmh_image_folder(tmp_path):
    """torchcmh mirflckr25k.py: loadmat(imgList)['FAll'] (cell, name[0]), tagList YAll,
    labelList LAll; base.py opens img_dir/name.strip() with Pillow on demand."""
    from PIL import Image

    lab, txt, px, _ = make_data(np.random.default_rng(3), tdim=1386, size=(6, 9))
    names = [f"im{i + 1}.png" for i in range(len(lab))]
    save_images(tmp_path / "mirflickr", names, px)
    write_mat5(tmp_path / "imgList.mat", {"FAll": cell_column(names)})
    write_mat5(tmp_path / "tagList.mat", {"YAll": txt})
    write_mat5(tmp_path / "labelList.mat", {"LAll": lab})
    ds = hd.load("mirflickr", root=tmp_path, protocol=P, image_size=(6, 9))
    same(ds, lab, txt, pixels=px)
    assert ds.options["layout"] == "torchcmh" and ds.pixel_source.n == len(names)
    # default size: 224 x 224 as torchcmh's Resize((224, 224)), bilinear on the PIL image
    ds224 = hd.load("mirflickr", root=tmp_path, protocol=P)
    want = np.asarray(Image.open(tmp_path / "mirflickr" / names[7]).convert("RGB")
                      .resize((224, 224), Image.BILINEAR))
    np.testing.assert_array_equal(ds224.pixel_source.take([7])[0], want)


def _ugach_mir_release(tmp_path, rng):
    """The UGACH text release's mirflickr folder as its utils.py reads it (list files split on
    '\\r\\n', feature rows split(), list/KNN_cross5.npy as float64)."""
    sizes = {"test": 6, "database": 14, "train": 8, "validation": 4}
    root = tmp_path / "mir"
    (root / "list").mkdir(parents=True)
    (root / "feature").mkdir()
    everything = {}
    db_names = []
    for part, n in sizes.items():
        lab, txt, _, img = make_data(rng, n=n, tdim=1386, fdim=4096)
        base = 1000 * (list(sizes).index(part) + 1)
        names = [f"{base + i}" for i in range(n)]
        if part == "database":    # the database repeats train and validation items by name
            continue
        everything[part] = (names, lab, txt, img)
    db = [("train", i) for i in range(sizes["train"])] + [("validation", i) for i in range(4)]
    db += [("train", 0), ("validation", 1)]
    db_names = [everything[p][0][i] for p, i in db]
    everything["database"] = (db_names, np.stack([everything[p][1][i] for p, i in db]),
                              np.stack([everything[p][2][i] for p, i in db]),
                              np.stack([everything[p][3][i] for p, i in db]))
    for part, (names, lab, txt, img) in everything.items():
        for modal, ext, mat in (("img", "jpg", img), ("txt", "txt", txt)):
            (root / "list" / f"{part}_{modal}.txt").write_bytes(
                "".join(f"{nm}.{ext}\r\n" for nm in names).encode())
            rows = "".join(" ".join(f"{v:.6g}" for v in row) + " \r\n" for row in mat)
            (root / "feature" / f"{part}_{modal}.txt").write_bytes(rows.encode())
        if part != "database":
            (root / "list" / f"{part}_label.txt").write_bytes(
                "".join(" ".join(str(int(v)) for v in row) + " \r\n" for row in lab).encode())
    knn = rng.integers(0, sizes["train"], (sizes["train"], 10)).astype(np.float64)
    np.save(root / "list" / "KNN_cross5.npy", knn)
    return root, everything, db_names, knn


def test_ugach_text_release_mirflickr(tmp_path):
    """UGACH utils.py: list files split on '\\r\\n', feature rows split(), KNN_cross5.npy."""
    root, everything, db_names, knn = _ugach_mir_release(tmp_path, np.random.default_rng(4))
    ds = hd.load("mirflickr", root=tmp_path)
    assert ds.options["layout"] == "ugach" and ds.manifest.protocol == "ugach-release"
    order = ("test", "database", "train")
    lab = np.concatenate([everything[p][1] for p in order])
    txt = np.concatenate([everything[p][2] for p in order]).astype(np.float32)
    img = np.concatenate([everything[p][3] for p in order])
    np.testing.assert_array_equal(ds.labels, lab)
    np.testing.assert_allclose(full(ds.text_source), txt, rtol=1e-5)
    np.testing.assert_allclose(full(ds.image_source), img, rtol=1e-5, atol=1e-5)
    assert (len(ds.query), len(ds.retrieval), len(ds.train)) == (6, 14, 8)
    np.testing.assert_allclose(ds.train.images, everything["train"][3], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ds.knn_graph, knn.astype(np.int64))
    assert set(ds.val.indices) <= set(ds.retrieval.indices)
    with pytest.raises(ValueError, match="stores its split"):
        hd.load("mirflickr", root=tmp_path, protocol="default")
    # a database item that no list labels, and no database_label.txt: one clear line
    (root / "list" / "database_img.txt").write_bytes(
        ("".join(f"{nm}.jpg\r\n" for nm in db_names[:-1]) + "9999.jpg\r\n").encode())
    with pytest.raises(ValueError, match=r"database_img.txt: expected every database item.*"
                                         r"'9999.jpg'"):
        hd.load("mirflickr", root=tmp_path)


def test_ugach_trains_on_the_release_graph(tmp_path):
    """graph='release': the Trainer hands the release's KNN_cross5.npy to UGACH for the
    release's split; its positives are each row's distinct members. The default builds its
    own graph from the features."""
    from hashkit.train import Trainer

    _, _, _, knn = _ugach_mir_release(tmp_path, np.random.default_rng(5))
    small = {"epochs": 1, "pretrain_epochs": 1, "hidden": 8, "batch_size": 4, "candidates": 4,
             "knn": 2, "graph": "release"}
    ds = hd.load("mirflickr", root=tmp_path)
    with Trainer("ugach", ds, nbits=8, out_dir=None, config=small, progress=False) as t:
        t.fit()
        g, w = t.method.graph, t.method.graph_width
    for i, row in enumerate(knn.astype(np.int64)):
        assert sorted(g[i, : w[i]].tolist()) == sorted(set(row.tolist()))
    with Trainer("ugach", ds, nbits=8, out_dir=None, config={**small, "graph": "hashkit"},
                 progress=False) as t:
        t.fit()
        assert t.method.graph_width is None and t.method.graph.shape == (8, 5)


def test_ugach_text_release_nus_and_bad_row(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "nus"
    (root / "list").mkdir(parents=True)
    (root / "feature").mkdir()
    lab, txt, _, img = make_data(rng, n=9, nlabels=10, tdim=1000, fdim=4096)
    for part in ("test", "database", "train"):
        for modal, ext, mat in (("img", "jpg", img), ("txt", "txt", txt)):
            (root / "list" / f"{part}_{modal}.txt").write_bytes(
                "".join(f"{part}{i}.{ext}\r\n" for i in range(9)).encode())
            (root / "feature" / f"{part}_{modal}.txt").write_text(
                "".join(" ".join(f"{v:.7g}" for v in row) + "\n" for row in mat))
    for part in ("test", "train", "database"):
        (root / "list" / f"{part}_label.txt").write_bytes(
            "".join(" ".join(str(int(v)) for v in row) + "\r\n" for row in lab).encode())
    ds = hd.load("nus-wide-10", root=tmp_path)
    assert ds.n == 27 and ds.nlabels == 10 and ds.text_dim == 1000 and ds.knn_graph is None
    np.testing.assert_allclose(ds.query.texts, txt.astype(np.float32))
    with open(root / "feature" / "train_txt.txt", "a") as fh:
        fh.write("1 2 3\n")
    with pytest.raises(ValueError, match=r"train_txt.txt: expected 9 rows"):
        hd.load("nus-wide-10", root=tmp_path)


# ------------------------------------------------------------------------------- NUS-WIDE
def test_nus10_djsrh_release_folder(tmp_path):
    """DJSRH: LAll loadmat, YAll h5py .transpose(), IAll in NUS-WIDE-TC10/IAll/ (v7.3)."""
    lab, txt, px, _ = make_data(np.random.default_rng(6), n=30, nlabels=10, tdim=1000)
    top = tmp_path / "NUS-WIDE-TC10"
    write_mat5(top / "nus-wide-tc10-lall.mat", {"LAll": lab.astype(np.float64)})
    write_mat73(top / "nus-wide-tc10-yall.mat", {"YAll": txt})
    write_mat73(top / "IAll" / "nus-wide-tc10-iall.mat", {"IAll": matlab_images(px)})
    with h5py.File(top / "nus-wide-tc10-yall.mat") as f:           # DJSRH's reading
        np.testing.assert_array_equal(np.array(f["YAll"]).transpose(), txt)
    for root in (top, tmp_path):
        ds = hd.load("nus-wide-10", root=root, protocol=P)
        same(ds, lab, txt, pixels=px)
        assert ds.options["layout"] == "djsrh"


def test_nus10_ucch_vgg_v5_yall(tmp_path):
    """UCCH NUSWIDE_fea: loadmat of -xall-vgg (XAll), -yall (v5 in UCCH's release), -lall."""
    lab, txt, _, feats = make_data(np.random.default_rng(7), n=30, nlabels=10, tdim=1000,
                                   fdim=4096)
    write_mat5(tmp_path / "nus-wide-tc10-xall-vgg.mat", {"XAll": feats})
    write_mat5(tmp_path / "nus-wide-tc10-yall.mat", {"YAll": txt})
    write_mat5(tmp_path / "nus-wide-tc10-lall.mat", {"LAll": lab})
    ds = hd.load("nus-wide-10", root=tmp_path, protocol=P)
    same(ds, lab, txt, feats=feats)
    assert ds.options["layout"] == "vgg"


def test_nus21_dcmh_pixels_by_default(tmp_path):
    """DCMH's NUS-WIDE-21 ships pixels and a 500-d XAll: DCMH trains on the pixels."""
    lab, txt, px, feats = make_data(np.random.default_rng(8), n=30, nlabels=21, tdim=1000,
                                    fdim=500)
    write_mat73(tmp_path / "nus-wide-tc21-iall.mat", {"IAll": matlab_images(px)})
    write_mat5(tmp_path / "nus-wide-tc21-xall.mat", {"XAll": feats})
    write_mat5(tmp_path / "nus-wide-tc21-yall.mat", {"YAll": txt})
    write_mat5(tmp_path / "nus-wide-tc21-lall.mat", {"LAll": lab})
    ds = hd.load("nus-wide-21", root=tmp_path, protocol=P)
    same(ds, lab, txt, pixels=px)
    assert ds.image_input == "pixels" and ds.image_dim is None
    assert "raw pixels" in ds.input_description and "nus-wide-tc21-iall.mat:IAll" in \
        ds.input_description
    assert ds.manifest.options["image_input"] == "pixels"
    f = hd.load("nus-wide-21", root=tmp_path, protocol=P, image="features")
    same(f, lab, txt, feats=feats)
    assert f.image_dim == 500 and f.image_input == "features"


def test_nus21_vgg_and_torchcmh(tmp_path):
    lab, txt, px, feats = make_data(np.random.default_rng(9), n=30, nlabels=21, tdim=1000,
                                    fdim=4096)
    write_mat5(tmp_path / "v" / "nus-wide-tc21-xall-vgg.mat", {"XAll": feats})
    write_mat5(tmp_path / "v" / "nus-wide-tc21-yall.mat", {"YAll": txt})
    write_mat5(tmp_path / "v" / "nus-wide-tc21-lall.mat", {"LAll": lab})
    same(hd.load("nus-wide-21", root=tmp_path / "v", protocol=P), lab, txt, feats=feats)
    # torchcmh nus_wide.py: imgs[i][0].strip() / imgs[i][1].strip() joined
    folders = [f"Flickr/actor{i % 3}" for i in range(30)]
    files = [f"{i:04d}_img.jpg" for i in range(30)]
    save_images(tmp_path / "t" / "images", [f"{a}/{b}" for a, b in zip(folders, files)], px,
                fmt="JPEG")
    pairs = np.array([[a.ljust(16), b.ljust(14)] for a, b in zip(folders, files)])
    write_mat5(tmp_path / "t" / "imgList21.mat", {"imgs": pairs})
    write_mat5(tmp_path / "t" / "tagList21.mat", {"tags": txt})
    write_mat5(tmp_path / "t" / "labelList21.mat", {"labels": lab})
    ds = hd.load("nus-wide-21", root=tmp_path / "t", protocol=P, image_size=(6, 9))
    from PIL import Image
    want = np.stack([np.asarray(Image.open(tmp_path / "t" / "images" / a / b).convert("RGB"))
                     for a, b in zip(folders, files)])
    same(ds, lab, txt, pixels=want)


# ---------------------------------------------------------------------- IAPR TC-12, COCO
@pytest.mark.parametrize("name,nlabels,tdim,module", [("iapr-tc12", 275, 1251, "tc12.py"),
                                                       ("mscoco", 80, 2026, "coco2014.py")])
def test_torchcmh_lists_sizes_from_files(tmp_path, name, nlabels, tdim, module):
    """torchcmh tc12.py / coco2014.py: loadmat(imgList)['imgs'].squeeze(), tags, labels;
    the label and tag sizes are whatever the files hold."""
    lab, txt, px, _ = make_data(np.random.default_rng(10), n=30, nlabels=nlabels, tdim=tdim)
    names = [f"images/{i // 10:02d}/{i + 25}.jpg" for i in range(30)]
    save_images(tmp_path / "iaprtc12", names, px, fmt="JPEG")
    write_mat5(tmp_path / "imgList.mat", {"imgs": char_matrix(names)})
    write_mat5(tmp_path / "tagList.mat", {"tags": txt})
    write_mat5(tmp_path / "labelList.mat", {"labels": lab.astype(np.float64)})
    ds = hd.load(name, root=tmp_path, protocol=P, image_size=(6, 9))
    from PIL import Image
    want = np.stack([np.asarray(Image.open(tmp_path / "iaprtc12" / n).convert("RGB"))
                     for n in names])
    same(ds, lab, txt, pixels=want)
    assert ds.nlabels == nlabels and ds.text_dim == tdim and module in ds.layout_source


def test_torchcmh_missing_image_names_the_file(tmp_path):
    lab, txt, px, _ = make_data(np.random.default_rng(11), n=12, nlabels=80, tdim=20)
    names = [f"COCO_{i}.jpg" for i in range(12)]
    save_images(tmp_path / "images", names[:-1], px[:-1], fmt="JPEG")
    write_mat5(tmp_path / "imgList.mat", {"imgs": char_matrix(names)})
    write_mat5(tmp_path / "tagList.mat", {"tags": txt})
    write_mat5(tmp_path / "labelList.mat", {"labels": lab})
    with pytest.raises(ValueError, match=r"imgList.mat:imgs: expected an image file for every "
                                         r"name, found 1 missing .*'COCO_11.jpg'"):
        hd.load("mscoco", root=tmp_path, protocol=P)


@pytest.mark.parametrize("file,x", [("iapr-tc12.mat", "X"), ("iapr-tc12-rand.mat", "V")])
def test_iapr_presplit_files(tmp_path, file, x):
    """MATLAB baselines' iapr-tc12.mat and UCCH's iapr-tc12-rand.mat (IAPR_fea: VDatabase,
    YDatabase, databaseL; VTest, YTest, testL): query = test, retrieval = database."""
    rng = np.random.default_rng(12)
    lq, tq, _, fq = make_data(rng, n=12, nlabels=255, tdim=40, fdim=64)
    ld, td, _, fd = make_data(rng, n=50, nlabels=255, tdim=40, fdim=64)
    write_mat5(tmp_path / file, {f"{x}Test": fq, "YTest": tq, "testL": lq,
                                 f"{x}Database": fd, "YDatabase": td, "databaseL": ld})
    ds = hd.load("iapr-tc12", root=tmp_path, seed=1)
    assert ds.manifest.protocol == "presplit"
    np.testing.assert_array_equal(ds.query.images, fq)
    np.testing.assert_array_equal(ds.retrieval.images, fd)
    np.testing.assert_array_equal(ds.retrieval.labels, ld)
    np.testing.assert_array_equal(ds.query.texts, tq.astype(np.float32))
    np.testing.assert_array_equal(ds.train.indices, ds.retrieval.indices)   # UCCH: all of it
    assert len(ds.val) == 5 and set(ds.val.indices) <= set(ds.retrieval.indices)
    some = hd.load("iapr-tc12", root=tmp_path, seed=1,
                   protocol=hd.Protocol("p", 0, 20, 5, kind="presplit"))
    assert len(some.train) == 20 and set(some.train.indices) <= set(some.retrieval.indices)
    with pytest.raises(ValueError, match="stores its split"):
        hd.load("iapr-tc12", root=tmp_path, protocol="default")


# --------------------------------------------------------------------------- text, not data
def test_v73_char_is_text_never_features(tmp_path):
    """A MATLAB char matrix (uint16, MATLAB_class 'char') under XAll is names, not 10-d
    features: loading and `datasets check` both refuse it."""
    lab, txt, _, _ = make_data(np.random.default_rng(13), n=20, nlabels=10, tdim=1000)
    write_mat73(tmp_path / "nus-wide-tc10-xall-vgg.mat",
                {"XAll": char_matrix([f"img{i:05d}.j" for i in range(20)])})
    write_mat5(tmp_path / "nus-wide-tc10-yall.mat", {"YAll": txt})
    write_mat5(tmp_path / "nus-wide-tc10-lall.mat", {"LAll": lab})
    with h5py.File(tmp_path / "nus-wide-tc10-xall-vgg.mat") as f:
        assert f["XAll"].dtype == np.uint16 and f["XAll"].shape == (10, 20)
    with pytest.raises(ValueError, match=r"nus-wide-tc10-xall-vgg.mat:XAll: expected a numeric "
                                         r"array, found a MATLAB char array"):
        hd.load("nus-wide-10", root=tmp_path, protocol=P)
    with pytest.raises(ValueError, match="MATLAB char"):
        check_file(tmp_path, name="nus-wide-10")
    # the same names are read as text where names belong
    from hashkit.data._matfile import read_strings
    assert read_strings(tmp_path / "nus-wide-tc10-xall-vgg.mat", "XAll")[3] == "img00003.j"
