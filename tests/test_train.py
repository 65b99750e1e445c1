"""The shared Trainer: run directory, checkpoints, validation discipline, CLI entry points."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from hashkit.encode import add_encode_arguments, load_method, read_features, run_encode, sign_codes
from hashkit.methods._cli import add_list_methods_arguments, run_list_methods
from hashkit.train import Trainer, add_train_arguments, run_train
from test_methods import tiny_dataset
from train_fixtures import Linear


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


_Linear = Linear


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
    with Trainer("test-linear", ds, 8, tmp_path / "run", progress=False, resume=True) as t:
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
    assert (out / "8bits-seed0" / "codes.npz").exists() and (out / "16bits-seed0" / "codes.npz").exists()

    method, cfg = load_method(out / "16bits-seed0")
    feats = np.random.default_rng(0).normal(size=(7, cfg["image_dim"])).astype(np.float32)
    np.save(tmp_path / "img.npy", feats)
    enc = tmp_path / "enc.npz"
    args = _parse(add_encode_arguments, ["--run", str(out / "16bits-seed0"), "--images", str(tmp_path / "img.npy"),
                                         "--out", str(enc)])
    assert run_encode(args) == 0
    cf = load_code_file(enc)
    assert cf.query_image.nbits == 16 and cf.query_image.n == 7
    assert cf.query_labels is None and cf.db_labels is None  # no --labels: codes only
    from hashkit.eval import evaluate
    with pytest.raises(ValueError, match="without labels"):
        evaluate(enc)
    with pytest.raises(ValueError, match="several runs"):
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
    with pytest.raises(ValueError, match="'names' holds MATLAB char data, not a numeric array"):
        read_features(tmp_path / "f.mat", key="names", name="--images")
    scipy.io.savemat(tmp_path / "g.mat", {"A": feats, "B": feats})
    with pytest.raises(ValueError, match="holds 2 2-D arrays .*name one with --texts-key"):
        read_features(tmp_path / "g.mat", name="--texts")


# --------------------------------------------------------------------------- model selection
def quiet(msg):
    pass


def test_best_val_keeps_the_best_validation_epoch(tmp_path):
    ds = tiny_dataset()
    t = Trainer("test-scripted", ds, 8, tmp_path / "run", progress=False, select="best-val", log=quiet)
    res = t.fit()
    scores = [0.5 * (h["val_map_i2t"] + h["val_map_t2i"]) for h in t.history]
    assert len(scores) == 8  # best-val validates every epoch by default
    best = int(np.argmax(scores)) + 1  # the earliest maximum
    assert best != 8, "the fixture's validation MAP should peak before the end"
    assert res["selected_epoch"] == best and res["select"] == "best-val" and res["epochs_run"] == 8
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["selected_epoch"] == best and saved["val_map_i2t"] == t.history[best - 1]["val_map_i2t"]
    # Oracle: the same seed trained for exactly `best` epochs and kept as it ends.
    short = Trainer("test-scripted", ds, 8, None, config={"epochs": best}, progress=False, log=quiet)
    short_res = short.fit()
    for key in ("query_image", "query_text", "db_image", "db_text"):
        np.testing.assert_array_equal(t.codes[key], short.codes[key], err_msg=key)
    assert res["map_i2t"] == short_res["map_i2t"]
    ql, rl = np.asarray(ds.query.labels), np.asarray(ds.retrieval.labels)
    assert res["map_i2t"] == pytest.approx(_oracle_map(t.codes["query_image"], t.codes["db_text"], ql, rl),
                                           abs=1e-12)
    # hashkit encode --run uses the selected model (best.pt), or last.pt when asked
    m, _ = load_method(tmp_path / "run")
    from hashkit.encode import encode

    np.testing.assert_array_equal(encode(m, images=ds.query.images)["images"], t.codes["query_image"])
    last, _ = load_method(tmp_path / "run", checkpoint="last")
    assert not np.array_equal(encode(last, images=ds.query.images)["images"], t.codes["query_image"])
    # the in-memory Trainer (no run folder) selects the same epoch and codes
    mem = Trainer("test-scripted", ds, 8, None, progress=False, select="best-val", log=quiet)
    assert mem.fit()["selected_epoch"] == best
    np.testing.assert_array_equal(mem.codes["db_text"], t.codes["db_text"])


def test_last_is_the_default_and_says_so(tmp_path):
    res = Trainer("test-scripted", tiny_dataset(), 8, None, progress=False, log=quiet).fit()
    assert res["select"] == "last" and res["selected_epoch"] == 8 and res["stopped_early_at"] is None


@pytest.mark.parametrize("patience", [1, 2])
def test_patience_stops_where_the_validation_history_says(tmp_path, patience):
    ds = tiny_dataset()
    full = Trainer("test-scripted", ds, 8, None, progress=False, select="best-val", log=quiet)
    full.fit()
    scores = [0.5 * (h["val_map_i2t"] + h["val_map_t2i"]) for h in full.history]
    # oracle: the first epoch at which `patience` validations in a row did not beat the best
    best, bad, stop = -1.0, 0, None
    for e, s in enumerate(scores, 1):
        best, bad = (s, 0) if s > best else (best, bad + 1)
        if bad >= patience:
            stop = e
            break
    assert stop is not None and stop < 8
    t = Trainer("test-scripted", ds, 8, tmp_path / "run", progress=False, select="best-val", patience=patience,
                log=quiet)
    res = t.fit()
    assert res["stopped_early_at"] == stop and res["epochs_run"] == stop and len(t.history) == stop
    assert res["selected_epoch"] == int(np.argmax(scores[:stop])) + 1
    # a resumed run that had stopped early stays stopped
    again = Trainer("test-scripted", ds, 8, tmp_path / "run", progress=False, select="best-val",
                    patience=patience, resume=True, log=quiet)
    assert again.fit()["epochs_run"] == stop


def test_selection_and_early_stopping_never_read_the_test_queries(tmp_path):
    ds = tiny_dataset()
    ds.query = _LockedView(ds.query)
    original = Trainer.evaluate_test

    def unlock_then_evaluate(self):
        ds.query.locked = False  # the one place the test queries may be read: after selection
        return original(self)

    t = Trainer("test-scripted", ds, 8, tmp_path / "run", progress=False, select="best-val", patience=2,
                log=quiet)
    t.evaluate_test = unlock_then_evaluate.__get__(t)
    res = t.fit()
    assert res["selected_epoch"] <= res["epochs_run"] and "map_i2t" in res


def test_best_val_resumes_to_the_same_result_and_rebuilds_a_missing_best(tmp_path):
    ds = tiny_dataset()
    kw = dict(progress=False, select="best-val", log=quiet)
    full = Trainer("test-scripted", ds, 8, tmp_path / "full", **kw)
    full_res = full.fit()
    Trainer("test-scripted", ds, 8, tmp_path / "part", **kw).fit(stop_after_epochs=3)
    part = Trainer("test-scripted", ds, 8, tmp_path / "part", resume=True, **kw)
    assert part.fit()["selected_epoch"] == full_res["selected_epoch"]
    for key in full.codes:
        np.testing.assert_array_equal(part.codes[key], full.codes[key])
    # A kill between last.pt (naming epoch e the best) and best.pt: last.pt holds epoch e itself.
    scores = [0.5 * (h["val_map_i2t"] + h["val_map_t2i"]) for h in full.history]
    first_best = 1  # epoch 1 is always the best so far when it finishes
    Trainer("test-scripted", ds, 8, tmp_path / "kill", **kw).fit(stop_after_epochs=first_best)
    (tmp_path / "kill" / "checkpoints" / "best.pt").unlink()
    killed = Trainer("test-scripted", ds, 8, tmp_path / "kill", resume=True, **kw)
    assert killed.fit()["selected_epoch"] == int(np.argmax(scores)) + 1
    np.testing.assert_array_equal(killed.codes["query_image"], full.codes["query_image"])


@pytest.mark.parametrize("kwargs, match", [
    ({"select": "best"}, "select: expected one of"),
    ({"select": "best-val", "eval_every": 0}, "needs validation, but eval_every=0"),
    ({"patience": 0}, "patience: expected a positive number"),
    ({"patience": 2, "config": {"eval_every": 0}}, "needs validation"),
    ({"resume": True, "overwrite": True}, "resume/overwrite"),
])
def test_selection_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trainer("test-linear", tiny_dataset(), 8, None, progress=False, **kwargs)


def test_best_val_needs_a_validation_split():
    ds = tiny_dataset()
    ds.val = None
    with pytest.raises(ValueError, match="needs a validation split"):
        Trainer("test-linear", ds, 8, None, progress=False, select="best-val")


# --------------------------------------------------------------------------- small defects
def test_eval_every_zero_means_never_however_it_is_given():
    ds = tiny_dataset()
    by_option = Trainer("test-linear", ds, 8, None, progress=False, eval_every=0, log=quiet)
    by_config = Trainer("test-linear", ds, 8, None, progress=False, config={"eval_every": 0}, log=quiet)
    default = Trainer("test-linear", ds, 8, None, progress=False, config={"epochs": 10}, log=quiet)
    assert by_option.eval_every == 0 and by_config.eval_every == 0
    assert default.eval_every == 2  # "about five times": every ceil(10 / 5) epochs
    by_config.fit()
    assert not any("val_map_i2t" in h for h in by_config.history)


def test_cli_set_accepts_the_list_syntax_its_error_suggests(tmp_path, capsys):
    from hashkit.cli import main

    argv = ["train", "--method", "dcmh", "--bits", "8", "--epochs", "1", "--no-progress", "--set",
            "txt_hidden=16"]
    assert main([*argv, "--set", "img_hidden=[32, 16]", "--out", str(tmp_path / "a")]) == 0
    cfg = json.loads((tmp_path / "a" / "8bits-seed0" / "config.json").read_text())
    assert cfg["config"]["img_hidden"] == [32, 16]
    capsys.readouterr()
    assert main([*argv, "--set", "img_hidden=1024x", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    suggested = json.loads(err.split("like ")[1].split(", got")[0])  # e.g. [1024]
    assert main([*argv, "--set", f"img_hidden={json.dumps(suggested)}", "--epochs", "0",
                 "--out", str(tmp_path / "c")]) == 0
    assert main([*argv, "--set", "img_hidden=[32,", "--out", str(tmp_path / "d")]) == 1
    assert "expected a JSON list" in capsys.readouterr().err


def test_data_option_false_is_false(tmp_path):
    from hashkit.train import _auto_type

    assert _auto_type("false") is False and _auto_type("True") is True and _auto_type("none") is None
    assert _auto_type("3") == 3 and _auto_type("0.5") == 0.5 and _auto_type("x.h5") == "x.h5"
    args = _parse(add_train_arguments, [
        "--method", "test-linear", "--dataset", "synthetic", "--data-option", "n=300", "--data-option",
        "image_dim=16", "--data-option", "text_dim=12", "--data-option", "raw_images=false", "--bits", "8",
        "--epochs", "1", "--out", str(tmp_path), "--no-progress"])
    assert run_train(args) == 0  # raw images would have no image_dim for test-linear's Linear
    cfg = json.loads((tmp_path / "8bits-seed0" / "config.json").read_text())
    assert cfg["data_options"]["raw_images"] is False and cfg["image_dim"] == 16


@pytest.mark.parametrize("flag, value, match", [
    ("--lr", "inf", r"config\['lr'\]: expected a finite number, got inf"),
    ("--lr", "nan", r"config\['lr'\]: expected a finite number"),
    ("--lr", "-0.1", r"config\['lr'\]: expected a positive learning rate"),
    ("--batch-size", "-3", r"config\['batch_size'\]: expected a positive batch size"),
    ("--batch-size", "0", r"config\['batch_size'\]: expected a positive batch size"),
    ("--epochs", "-1", r"config\['epochs'\]: expected a non-negative number of epochs"),
    ("--set", "g_lr=0", r"config\['g_lr'\]: expected a positive learning rate"),
])
def test_meaningless_hyper_parameters_are_one_line_errors(tmp_path, capsys, flag, value, match):
    from hashkit.cli import main

    method = "ugach" if value.startswith("g_lr") else "test-linear"
    rc = main(["train", "--method", method, "--bits", "8", flag, value, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1
    import re

    assert re.search(match, err), err
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_a_config_file_repeating_unused_zero_defaults_is_fine():
    from hashkit.methods.cca_itq import CCAITQ

    cfg = CCAITQ.default_config("tiny")  # batch_size=0, lr=0.0: options cca-itq does not use
    assert cfg["batch_size"] == 0 and cfg["lr"] == 0.0
    Trainer("cca-itq", tiny_dataset(), 8, None, config=cfg, progress=False)
    with pytest.raises(ValueError, match="positive batch size"):
        Trainer("cca-itq", tiny_dataset(), 8, None, config={"batch_size": -3}, progress=False)


def test_a_loss_that_is_not_finite_stops_the_run_naming_epoch_and_term(tmp_path, capsys):
    from hashkit.train import TrainingDiverged

    t = Trainer("test-diverge", tiny_dataset(), 8, tmp_path / "run", progress=False, log=quiet)
    with pytest.raises(TrainingDiverged, match=r"'quant' is nan at epoch 2 \(step 1\)"):
        t.fit()
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 0  # epoch 1's checkpoint is kept, epoch 2 was not saved
    assert not (tmp_path / "run" / "results.json").exists() and not (tmp_path / "run" / ".hashkit.lock").exists()
    from hashkit.cli import main

    rc = main(["train", "--method", "test-diverge", "--bits", "8", "--out", str(tmp_path / "cli"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and err.strip().splitlines() == [err.strip()]
    assert "training diverged: 'quant' is nan at epoch 2" in err


def test_encode_refuses_nan_features_and_nan_outputs(tmp_path, capsys):
    from hashkit.encode import encode

    t = Trainer("test-linear", tiny_dataset(), 8, tmp_path / "run", progress=False, log=quiet)
    t.fit()
    x = np.ones((5, 12), np.float32)
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"images: expected finite features, got NaN or infinite values in 1 "
                                         r"row\(s\) \(first: row 3\)"):
        encode(t.method, images=x, batch_size=2)
    x = x.astype(np.float64)
    x[3, 2] = 1e39  # finite in float64, inf in the float32 the network sees
    with pytest.raises(ValueError, match="first: row 3"):
        encode(t.method, images=x)
    with pytest.raises(ValueError, match="NaN has no sign"):
        sign_codes(np.array([[0.5, np.nan]]))
    np.save(tmp_path / "x.npy", np.where(np.arange(12) == 4, np.nan, 1.0)[None, :].repeat(3, 0))
    from hashkit.cli import main

    assert main(["encode", "--run", str(tmp_path / "run"), "--images", str(tmp_path / "x.npy")]) == 1
    assert "expected finite features" in capsys.readouterr().err


def test_encode_labels_are_checked_not_truncated(tmp_path, capsys):
    from hashkit.cli import main
    from hashkit.codefile import load_code_file

    ds = tiny_dataset()
    Trainer("test-linear", ds, 8, tmp_path / "run", progress=False, log=quiet).fit()
    n = len(ds.retrieval.labels)
    np.save(tmp_path / "x.npy", ds.retrieval.images)
    np.save(tmp_path / "t.npy", ds.retrieval.texts)
    base = ["encode", "--run", str(tmp_path / "run"), "--images", str(tmp_path / "x.npy"), "--texts",
            str(tmp_path / "t.npy"), "--out", str(tmp_path / "e.npz")]

    def run(labels, *extra):
        np.save(tmp_path / "l.npy", labels)
        rc = main([*base, "--labels", str(tmp_path / "l.npy"), *extra])
        return rc, capsys.readouterr().err

    scores = ds.retrieval.labels * 0.7  # soft labels: cast to uint8 they were all 0
    rc, err = run(scores)
    assert rc == 1 and "expected multi-hot 0/1 labels, got values like [0.7" in err
    rc, err = run(ds.retrieval.labels.astype(np.float64))  # 0.0/1.0 floats are fine
    assert rc == 0, err
    np.testing.assert_array_equal(load_code_file(tmp_path / "e.npz").query_labels, ds.retrieval.labels)
    ids = np.arange(n) % 3
    rc, err = run(ids[:, None])
    assert rc == 1 and "pass --class-ids" in err
    rc, err = run(ids)
    assert rc == 1 and "pass --class-ids" in err
    rc, err = run(ids[:, None], "--class-ids")
    assert rc == 0, err
    np.testing.assert_array_equal(load_code_file(tmp_path / "e.npz").query_labels, np.eye(3, dtype=np.uint8)[ids])
    rc, err = run(np.where(ids == 0, -1, ids), "--class-ids")
    assert rc == 1 and "non-negative integer class ids" in err
    rc, err = run(ds.retrieval.labels[:-1])
    assert rc == 1 and f"one row per encoded item ({n})" in err


@pytest.mark.parametrize("image_input", ["pixels", "features"])
def test_config_says_which_image_input_trains(tmp_path, image_input):
    """A release with both pixels and features (DCMH's NUS-WIDE-21): the dataset's choice decides
    what the method is built for, and config.json and the log say which input and file."""
    from hashkit.data import Manifest, Protocol, from_arrays, make_split
    from hashkit.encode import has_features

    rng = np.random.default_rng(0)
    n = 60
    labels = np.eye(3, dtype=np.uint8)[rng.integers(0, 3, n)]
    ds = from_arrays("both", labels, rng.random((n, 7)).astype(np.float32),
                     images=rng.random((n, 5)).astype(np.float32),
                     pixels=rng.integers(0, 255, (n, 8, 6, 3), dtype=np.uint8))
    ds.image_input = image_input
    proto = Protocol("t", query=10, train=30, val=5)
    ds.apply_split(Manifest(dataset="both", protocol="t", kind=proto.kind, seed=0, n=n,
                            **make_split(labels, proto, seed=0)))
    lines = []
    t = Trainer("cca-itq", ds, 4, tmp_path / "run", progress=False, log=lines.append)
    cfg = t.resolved_config()
    assert cfg["image_input"] == image_input
    assert cfg["image_dim"] == (5 if image_input == "features" else None)
    assert ("raw pixels" if image_input == "pixels" else "5-d features") in cfg["input"]
    assert has_features(ds.train) == (image_input == "features")
    if image_input == "features":
        t.prepare()
        t.close()
        assert any("image input: 5-d features" in line for line in lines)
        saved = json.loads((tmp_path / "run" / "config.json").read_text())
        assert saved["image_input"] == "features" and "5-d features" in saved["input"]


def test_bits_and_seeds_take_both_list_syntaxes():
    for argv in (["--bits", "16", "32", "--seeds", "0", "1"], ["--bits", "16,32", "--seeds", "0,1"],
                 ["--bits", "16", "--bits", "32", "--seeds", "0,1"]):
        args = _parse(add_train_arguments, ["--method", "dcmh", *argv])
        assert args.bits == [16, 32] and args.seeds == [0, 1]
