"""Nothing hashkit opens runs code from the file (issue 14, item 1).

Each file kind hashkit reads -- checkpoints and weights (``.pt``), code / index / manifest /
feature files (``.npz``, ``.npy``), MATLAB files (``.mat`` v5 and v7.3), HDF5 (``.h5``), JSON
(``config.json``, manifests) and YAML configs -- gets a crafted payload that would write a
marker file if anything unpickled or evaluated it. The payload must be refused (or ignored) and
the marker must not appear. A source scan keeps the loaders honest: every ``np.load`` passes
``allow_pickle=False``, every ``torch.load`` ``weights_only=True``, YAML is ``safe_load``, and
nothing imports :mod:`pickle` to load.
"""

from __future__ import annotations

import ast
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import train_fixtures  # noqa: F401  (registers test-linear)
from hashkit.cli import main
from test_methods import MethodContract, tiny_dataset

ROOT = Path(__file__).resolve().parents[1] / "hashkit"


class Payload:
    """Unpickling this writes ``marker``: what a crafted file in a shared run folder would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"with open({self.marker!r}, 'w') as fh: fh.write('code ran')",))


def payload_object_array(marker: Path) -> np.ndarray:
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = Payload(marker), 1
    return arr


def _prove_pickle_runs(marker: Path):
    """The payload is live: plain pickle.loads writes the marker (then it is removed)."""
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()
    marker.unlink()


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- .pt
def _train(run, **kw):
    from hashkit.train import Trainer

    Trainer("test-linear", tiny_dataset(), 8, run, progress=False, log=lambda m: None, **kw).fit()
    return run


@pytest.fixture
def trained_run(tmp_path):
    return _train(tmp_path / "run")


@pytest.mark.parametrize("which", ["last.pt", "best.pt"])
def test_a_crafted_checkpoint_runs_nothing(tmp_path, capsys, which):
    # (the old loader, torch.load(weights_only=False), wrote the marker here)
    trained_run = _train(tmp_path / "run", **({"select": "best-val"} if which == "best.pt" else {}))
    marker = tmp_path / "pwned"
    _prove_pickle_runs(marker)
    ckpt = trained_run / "checkpoints" / which
    good = torch.load(ckpt, weights_only=False)  # our own file (and old ones held NumPy objects)
    good["history"] = [Payload(marker)]
    torch.save(good, ckpt)  # a valid torch zip whose pickle calls exec

    np.save(tmp_path / "x.npy", np.zeros((2, 12), np.float32))
    rc, _, err = cli(capsys, "encode", "--run", trained_run, "--images", tmp_path / "x.npy",
                     *(["--checkpoint", "best"] if which == "best.pt" else []))
    assert rc == 1 and not marker.exists()
    assert "refusing to load it" in _one_line(err) and "(it asks for exec)" in err
    from hashkit.encode import load_method

    with pytest.raises(ValueError, match="asks for exec"):
        load_method(trained_run, **({"checkpoint": "best"} if which == "best.pt" else {}))
    from hashkit.train import Trainer

    with pytest.raises(ValueError, match="asks for exec"):
        Trainer("test-linear", tiny_dataset(), 8, trained_run, progress=False, resume=True, log=lambda m: None,
                **({"select": "best-val"} if which == "best.pt" else {})).fit()
    assert not marker.exists()


def test_backbone_weights_run_nothing(tmp_path):
    from hashkit.nn.backbones import AlexNet

    marker = tmp_path / "pwned"
    torch.save({"features.0.weight": Payload(marker)}, tmp_path / "alexnet.pt")
    with pytest.raises((pickle.UnpicklingError, ValueError)):
        AlexNet(8, weights=tmp_path / "alexnet.pt")
    assert not marker.exists()


@pytest.mark.parametrize("method", sorted(c.method for c in MethodContract.__subclasses__()))
def test_every_method_checkpoint_is_tensors_and_plain_values(tmp_path, method):
    """No allow-listed global is needed: what weights_only=True reads without help."""
    from hashkit.encode import load_method
    from hashkit.train import Trainer

    contract = next(c for c in MethodContract.__subclasses__() if c.method == method)()
    from hashkit.methods import get_method

    t = Trainer(method, tiny_dataset(), 8, tmp_path / "run", config=contract.config(get_method(method)),
                progress=False, log=lambda m: None)
    t.fit(stop_after_epochs=1)
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []
    load_method(tmp_path / "run")


# ----------------------------------------------------------------------------- .npz / .npy
def test_object_arrays_in_npz_and_npy_are_refused(tmp_path, capsys):
    from hashkit import HammingIndex
    from hashkit.codefile import load_code_file
    from hashkit.codes import load_codes
    from hashkit.data.check import describe_file
    from hashkit.data.splits import load_manifest
    from hashkit.encode import read_features, read_labels

    marker = tmp_path / "pwned"
    _prove_pickle_runs(marker)
    evil = payload_object_array(marker)
    npz = tmp_path / "evil.npz"
    np.savez(npz, query_image=evil, query_text=evil, db_image=evil, db_text=evil, query_labels=evil,
             db_labels=evil, nbits=np.int64(8), words=evil, meta=evil, query=evil)
    npy = tmp_path / "evil.npy"
    np.save(npy, evil, allow_pickle=True)

    calls = [lambda: load_code_file(npz), lambda: load_codes(npz), lambda: HammingIndex.load(npz),
             lambda: read_features(npz, key="words"), lambda: read_features(npy),
             lambda: read_labels(npz, key="words"), lambda: load_manifest(npz), lambda: describe_file(npz)]
    for call in calls:
        try:
            call()
        except (ValueError, TypeError, KeyError, FileNotFoundError):
            pass
        assert not marker.exists()
    for argv in (["eval", npz], ["search", npz, npz, "-k", "1"], ["search", npy, npy, "-k", "1"],
                 ["datasets", "check", npz], ["encode", "--run", tmp_path, "--images", npz]):
        rc, _, err = cli(capsys, *argv)
        assert rc != 0 and not marker.exists(), argv


# ----------------------------------------------------------------------------- .mat / .h5
def test_mat_and_hdf5_payloads_are_data_not_code(tmp_path, capsys):
    import h5py
    import scipy.io

    from hashkit.codefile import load_code_file
    from hashkit.data._matfile import read_arrays
    from hashkit.encode import read_features

    marker = tmp_path / "pwned"
    blob = np.frombuffer(pickle.dumps(Payload(marker)), dtype=np.uint8)
    v5 = tmp_path / "v5.mat"
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0], cell[0, 1] = blob, "exec"
    scipy.io.savemat(v5, {"qB": cell, "rB": blob[None, :], "I_tr": cell})
    v73 = tmp_path / "v73.mat"
    with h5py.File(v73, "w") as f:
        f.create_dataset("qB", data=np.void(pickle.dumps(Payload(marker))))
        f.create_dataset("I_tr", data=blob[None, :])
        f["I_tr"].attrs["MATLAB_class"] = np.bytes_(pickle.dumps(Payload(marker)))
    h5 = tmp_path / "data.h5"
    with h5py.File(h5, "w") as f:
        for k in ("train_x", "train_y", "train_L", "test_x", "test_y", "test_L", "dataset_x"):
            f.create_dataset(k, data=np.void(pickle.dumps(Payload(marker))))

    for path in (v5, v73):
        for call in (lambda p=path: read_arrays(p), lambda p=path: load_code_file(p),
                     lambda p=path: read_features(p, "I_tr")):
            try:
                call()
            except (ValueError, TypeError, KeyError):
                pass
            assert not marker.exists()
        rc, _, err = cli(capsys, "eval", path)
        assert rc != 0 and not marker.exists()
    import hashkit.data

    try:
        hashkit.data.load("presplit", root=tmp_path, file="data.h5")
    except (ValueError, TypeError, KeyError):
        pass
    cli(capsys, "datasets", "check", h5)
    assert not marker.exists()


# ----------------------------------------------------------------------------- .json / YAML
def test_json_files_are_read_as_data(trained_run, tmp_path, capsys):
    """config.json and manifests are JSON (no object hooks); names in them are looked up, never
    imported or evaluated."""
    marker = tmp_path / "pwned"
    (tmp_path / "evil_plugin.py").write_text(f"with open({str(marker)!r}, 'w') as fh:\n    fh.write('imported')\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        cfg = json.loads((trained_run / "config.json").read_text())
        cfg["method"] = "__import__('evil_plugin')"
        cfg["plugins"] = ["evil_plugin"]
        (trained_run / "config.json").write_text(json.dumps(cfg))
        np.save(tmp_path / "x.npy", np.zeros((2, 12), np.float32))
        rc, _, err = cli(capsys, "encode", "--run", trained_run, "--images", tmp_path / "x.npy")
        assert rc == 1 and "pass --plugin evil_plugin" in _one_line(err)
        rc, _, err = cli(capsys, "train", "--config", trained_run / "config.json", "--out", tmp_path / "o")
        assert rc == 1 and "pass --plugin evil_plugin" in _one_line(err)
        split = json.loads((trained_run / "split.json").read_text())
        split["dataset"] = "__import__('evil_plugin')"
        (tmp_path / "split.json").write_text(json.dumps(split))
        from hashkit.data.splits import load_manifest

        with pytest.raises(ValueError):
            import hashkit.data

            hashkit.data.load("mfeat", manifest=load_manifest(tmp_path / "split.json"))
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists()


# ----------------------------------------------------------------------------- the source
def _calls(name: str):
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                owner = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
                if fname == name.split(".")[-1] and (owner == name.split(".")[0] or "." not in name):
                    yield path.relative_to(ROOT.parent), node


def _kw(node, key):
    return next((k.value for k in node.keywords if k.arg == key), None)


def test_every_loader_in_the_package_is_the_safe_kind():
    found = []
    for where, node in _calls("np.load"):
        v = _kw(node, "allow_pickle")
        if not (isinstance(v, ast.Constant) and v.value is False):
            found.append(f"{where}:{node.lineno} np.load without allow_pickle=False")
    for where, node in _calls("torch.load"):
        v = _kw(node, "weights_only")
        if not (isinstance(v, ast.Constant) and v.value is True):
            found.append(f"{where}:{node.lineno} torch.load without weights_only=True")
    for where, node in _calls("yaml.load"):
        found.append(f"{where}:{node.lineno} yaml.load (use yaml.safe_load)")
    text = {p: p.read_text(encoding="utf-8") for p in ROOT.rglob("*.py")}
    for p, src in text.items():
        if re.search(r"^\s*(import pickle|from pickle import|import dill|import cloudpickle)", src, re.M) \
                and "pickle.UnpicklingError" not in src:
            found.append(f"{p.relative_to(ROOT.parent)} imports a pickle loader")
        if re.search(r"\bpickle\.loads?\(|(?<![.\w])(eval|exec)\(", src.replace("def eval(", "")):
            found.append(f"{p.relative_to(ROOT.parent)} unpickles or evaluates")
    assert not found, "\n".join(found)
