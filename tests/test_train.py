"""The shared Trainer: run directory, checkpoints, validation discipline, CLI entry points."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from hashkit.methods import register_method
from hashkit.methods.base import Method
from hashkit.encode import add_encode_arguments, load_method, read_features, run_encode, sign_codes
from hashkit.methods._cli import add_list_methods_arguments, run_list_methods
from hashkit.train import Trainer, add_train_arguments, run_train
from test_methods import tiny_dataset


def _oracle_map(qB, rB, qL, rL) -> float:
    """MAP over the full ranking, from the definition: stable sort by Hamming distance."""
    aps = []
    for i in range(len(qB)):
        dist = (qB[i][None, :] != rB).sum(1)
        order = np.argsort(dist, kind="stable")
        rel = ((rL[order].astype(int) @ qL[i].astype(int)) > 0)
        if not rel.any():
            aps.append(0.0)
            continue
        pos = np.flatnonzero(rel) + 1
        aps.append(float(np.mean(np.arange(1, len(pos) + 1) / pos)))
    return float(np.mean(aps))


@register_method("test-linear")
class _Linear(Method):
    """Two linear maps trained with the pairwise likelihood (a test fixture, not a real method)."""

    defaults = {"epochs": 3, "batch_size": 16, "lr": 0.05}
    buffer_names = ("counter",)

    def build(self):
        self.img = torch.nn.Linear(self.image_dim, self.nbits)
        self.txt = torch.nn.Linear(self.text_dim, self.nbits)

    def setup(self, train):
        self.opt = torch.optim.SGD(self.parameters(), lr=self.config["lr"], momentum=0.9)
        self.counter = torch.zeros(1)
        self.seen_queries = 0

    def train_step(self, idx, epoch, train):
        from hashkit import losses

        f, g = torch.tanh(self.img(train.image_batch(idx))), torch.tanh(self.txt(train.text_batch(idx)))
        loss = losses.pairwise_likelihood(f, g, train.similarity(idx, idx), reduction="mean")
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.counter += 1
        return {"loss": loss.item()}

    def encode_images(self, x):
        return self.img(self.tensor(x))

    def encode_texts(self, y):
        return self.txt(self.tensor(y))


def test_sign_codes_maps_zero_to_minus_one():
    got = sign_codes(np.array([[0.5, 0.0, -1e-9]]))
    np.testing.assert_array_equal(got, [[1, -1, -1]])
    assert got.dtype == np.int8


def test_run_directory_contents(tmp_path):
    from hashkit.codefile import load_code_file

    ds = tiny_dataset()
    t = Trainer("test-linear", ds, 16, tmp_path / "run", progress=False, eval_every=2)
    res = t.fit()
    run = tmp_path / "run"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["method"] == "test-linear" and cfg["nbits"] == 16 and cfg["config"]["epochs"] == 3
    assert cfg["seed"] == 0 and cfg["dataset"] == "tiny"
    assert json.loads((run / "split.json").read_text())["dataset"] == "tiny"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3]
    # eval_every=2: epoch 2 and the last epoch are validated
    assert ["val_map_i2t" in x for x in lines] == [False, True, True]
    assert (run / "checkpoints" / "last.pt").exists()
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.pt"]  # no temp files left
    cf = load_code_file(run / "codes.npz")
    qi, rt = cf.query_image.unpack(), cf.db_text.unpack()
    qt, ri = cf.query_text.unpack(), cf.db_image.unpack()
    ql, rl = np.asarray(ds.query.labels), np.asarray(ds.retrieval.labels)
    assert res["map_i2t"] == pytest.approx(_oracle_map(qi, rt, ql, rl), abs=1e-12)
    assert res["map_t2i"] == pytest.approx(_oracle_map(qt, ri, ql, rl), abs=1e-12)
    saved = json.loads((run / "results.json").read_text())
    assert saved["map_i2t"] == pytest.approx(res["map_i2t"])


class _LockedView:
    """A view whose features raise while locked: proves training never reads the test queries."""

    def __init__(self, view):
        self._v, self.locked = view, True
        self.indices, self.labels = view.indices, view.labels

    def __getattr__(self, name):
        if name in ("images", "texts") and self.__dict__["locked"]:
            raise AssertionError("the test queries were read during training")
        return getattr(self.__dict__["_v"], name)


def test_validation_never_reads_test_queries(tmp_path):
    ds = tiny_dataset()
    ds.query = _LockedView(ds.query)
    t = Trainer("test-linear", ds, 8, tmp_path / "run", progress=False, eval_every=1)
    assert t.fit(stop_after_epochs=3) == {"stopped_at_epoch": 3}
    assert all("val_map_i2t" in h for h in t.history)
    ds.query.locked = False
    res = Trainer("test-linear", ds, 8, tmp_path / "run", progress=False, eval_every=1, resume=True).fit()
    assert "map_i2t" in res


def test_validation_map_uses_val_against_val_retrieval():
    ds = tiny_dataset()
    t = Trainer("test-linear", ds, 8, None, progress=False, eval_every=0)
    t.fit()
    got = t.validate()
    from hashkit.encode import encode

    v = encode(t.method, images=ds.val.images, texts=ds.val.texts)
    d = encode(t.method, images=ds.val_retrieval.images, texts=ds.val_retrieval.texts)
    assert got["val_map_i2t"] == pytest.approx(_oracle_map(v["images"], d["texts"], ds.val.labels,
                                                           ds.val_retrieval.labels), abs=1e-12)
    assert got["val_map_t2i"] == pytest.approx(_oracle_map(v["texts"], d["images"], ds.val.labels,
                                                           ds.val_retrieval.labels), abs=1e-12)


def test_resume_restores_buffers_rng_and_rejects_other_config(tmp_path):
    ds = tiny_dataset()
    Trainer("test-linear", ds, 8, tmp_path / "run", progress=False).fit(stop_after_epochs=2)
    t = Trainer("test-linear", ds, 8, tmp_path / "run", progress=False, resume=True)
    m = t.prepare()
    assert t.start_epoch == 2
    assert float(m.counter) == 2 * 3  # 48 training rows / 16 per batch, two epochs
    with pytest.raises(ValueError, match="different configuration.*nbits"):
        Trainer("test-linear", ds, 16, tmp_path / "run", progress=False, resume=True).prepare()
    with pytest.raises(ValueError, match="different configuration.*seed"):
        Trainer("test-linear", ds, 8, tmp_path / "run", progress=False, resume=True, seed=3).prepare()


def test_different_seeds_differ_same_seed_equal():
    ds = tiny_dataset()
    a = Trainer("test-linear", ds, 16, None, progress=False, seed=1, eval_every=0)
    b = Trainer("test-linear", ds, 16, None, progress=False, seed=1, eval_every=0)
    c = Trainer("test-linear", ds, 16, None, progress=False, seed=2, eval_every=0)
    for t in (a, b, c):
        t.fit()
    np.testing.assert_array_equal(a.codes["db_image"], b.codes["db_image"])
    assert not np.array_equal(a.codes["db_image"], c.codes["db_image"])


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"nbits": 0}, ValueError, "nbits"),
    ({"device": "tpu"}, ValueError, "device"),
    ({"config": {"epochs": -1}}, ValueError, "epochs"),
    ({"config": {"nope": 1}}, ValueError, "no option 'nope'"),
    ({"method": "no-such-method"}, ValueError, "method"),
    ({"seed": -1}, ValueError, "seed"),
])
def test_trainer_bad_arguments(kwargs, exc, match):
    args = {"method": "test-linear", "dataset": tiny_dataset(), "nbits": 8, "progress": False}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        Trainer(**args)


def test_resolve_config_casts_strings():
    cfg = _Linear.resolve_config({"epochs": "5", "lr": "0.5"})
    assert cfg["epochs"] == 5 and isinstance(cfg["epochs"], int) and cfg["lr"] == 0.5
    with pytest.raises(ValueError, match=r"config\['epochs'\]"):
        _Linear.resolve_config({"epochs": "many"})


def test_read_features_formats(tmp_path):
    import scipy.io

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", feats=x)
    np.savez(tmp_path / "c.npz", a=x, b=x)
    scipy.io.savemat(tmp_path / "d.mat", {"I_tr": x})
    for name in ("a.npy", "b.npz", "d.mat"):
        np.testing.assert_array_equal(read_features(tmp_path / name), x)
    np.testing.assert_array_equal(read_features(tmp_path / "c.npz", key="b"), x)
    with pytest.raises(ValueError, match="holds 2 2-D arrays"):
        read_features(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="no array 'zz'"):
        read_features(tmp_path / "c.npz", key="zz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_features(tmp_path / "missing.npy")
    (tmp_path / "e.txt").write_text("1")
    with pytest.raises(ValueError, match=r"\.npy, \.npz or \.mat"):
        read_features(tmp_path / "e.txt")


def _parse(add, argv):
    p = argparse.ArgumentParser()
    add(p)
    return p.parse_args(argv)


def test_cli_train_encode_list(tmp_path, capsys):
    from hashkit.codefile import load_code_file

    out = tmp_path / "runs"
    args = _parse(add_train_arguments, ["--method", "cca-itq", "--dataset", "mfeat", "--bits", "8", "16",
                                        "--out", str(out), "--no-progress"])
    assert run_train(args) == 0
    text = capsys.readouterr().out
    assert "I->T MAP" in text and "cca-itq" in text
    assert (out / "8bits" / "codes.npz").exists() and (out / "16bits" / "codes.npz").exists()

    method, cfg = load_method(out / "16bits")
    feats = np.random.default_rng(0).normal(size=(7, cfg["image_dim"])).astype(np.float32)
    np.save(tmp_path / "img.npy", feats)
    enc = tmp_path / "enc.npz"
    args = _parse(add_encode_arguments, ["--run", str(out / "16bits"), "--images", str(tmp_path / "img.npy"),
                                         "--out", str(enc)])
    assert run_encode(args) == 0
    cf = load_code_file(enc)
    assert cf.query_image.nbits == 16 and cf.query_image.n == 7
    assert cf.query_labels is None and cf.db_labels is None  # no --labels: codes only
    from hashkit.eval import evaluate
    with pytest.raises(ValueError, match="without labels"):
        evaluate(enc)
    with pytest.raises(ValueError, match="several sub-runs"):
        load_method(out)

    assert run_list_methods(_parse(add_list_methods_arguments, ["-v"])) == 0
    listing = capsys.readouterr().out
    assert "dcmh" in listing and "cca-itq" in listing and "defaults" in listing


class _PixelView:
    """A raw-pixel view (no features), as the data contract gives for image-only datasets."""

    def __init__(self, view, pixels, ds):
        self.indices, self.labels, self.texts, self.dataset = view.indices, view.labels, view.texts, ds
        self._px = pixels[view.indices]

    def pixel_batch(self, positions):
        return self._px[np.atleast_1d(positions)]


def test_raw_pixels_go_through_cnnf(tmp_path):
    rng = np.random.default_rng(0)
    ds = tiny_dataset(n=40)
    pixels = rng.integers(0, 256, size=(40, 8, 8, 1), dtype=np.uint8)  # grey: repeated to RGB
    ds.image_dim = None
    for name in ("query", "retrieval", "train", "val", "val_retrieval"):
        setattr(ds, name, _PixelView(getattr(ds, name), pixels, ds))
    with pytest.warns(UserWarning, match="random weights"):
        t = Trainer("dcmh", ds, 8, tmp_path / "run", progress=False, eval_every=0,
                    config={"epochs": 1, "batch_size": 16, "txt_hidden": 16})
        t.fit()
    assert type(t.method.img_net).__name__ == "CNNF"
    assert t.codes["query_image"].shape == (len(ds.query.indices), 8)
    with pytest.warns(UserWarning, match="random weights"):
        m, cfg = load_method(tmp_path / "run")
    assert cfg["image_dim"] is None
    from hashkit.encode import pixels_nchw

    again = m.encode_images(pixels_nchw(ds.query)(np.arange(len(ds.query.indices))))
    np.testing.assert_array_equal(sign_codes(again), t.codes["query_image"])


def test_read_features_skips_matlab_text_and_names_the_option(tmp_path):
    import scipy.io

    feats = np.arange(12, dtype=np.float64).reshape(4, 3)
    scipy.io.savemat(tmp_path / "f.mat", {"XAll": feats, "names": np.array(["a.jpg", "b.jpg"])})
    np.testing.assert_array_equal(read_features(tmp_path / "f.mat"), feats.astype(np.float32))
    with pytest.raises(ValueError, match="'names' holds MATLAB char data, not a numeric feature matrix"):
        read_features(tmp_path / "f.mat", key="names", name="--images")
    scipy.io.savemat(tmp_path / "g.mat", {"A": feats, "B": feats})
    with pytest.raises(ValueError, match="holds 2 2-D arrays .*name one with --texts-key"):
        read_features(tmp_path / "g.mat", name="--texts")
