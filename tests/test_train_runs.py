"""Run folders as researchers use them: never overwritten, locked, reran from a config, cleaned.

Issue 15 (run folders, --config, --seeds, selection, logs, devices) and issue 14 items 8 and 9
(one writer per run folder; one-line CLI errors for bad --out, a full disk, a damaged
checkpoint; temporaries of a killed writer removed).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import train_fixtures  # noqa: F401  (registers the test-* methods)
from hashkit.cli import main
from hashkit.train import Trainer
from test_methods import tiny_dataset

TESTS = Path(__file__).resolve().parent


def quiet(msg):
    pass


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_line_error(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert lines[0].startswith(f"hashkit {command}: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


LINEAR = ["train", "--method", "test-linear", "--dataset", "mfeat", "--no-progress"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


# ----------------------------------------------------------------------------- never overwritten
def test_default_out_keeps_each_seed_and_code_length(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, *LINEAR, "--bits", "8", "--epochs", "1")[0] == 0
    seed0 = tmp_path / "runs" / "test-linear-mfeat" / "8bits-seed0"
    first = (seed0 / "results.json").read_text()
    # The README's "rerun with --seed 1" used to replace the seed-0 run.
    assert cli(capsys, *LINEAR, "--bits", "8", "--epochs", "1", "--seed", "1")[0] == 0
    assert (seed0 / "results.json").read_text() == first
    cfg = json.loads((seed0.parent / "8bits-seed1" / "config.json").read_text())
    assert cfg["seed"] == 1 and cfg["method"] == "test-linear" and cfg["dataset"] == "mfeat"


def test_a_folder_holding_a_run_needs_resume_or_overwrite(tmp_path):
    ds, run = tiny_dataset(), tmp_path / "run"
    Trainer("test-linear", ds, 8, run, progress=False, log=quiet).fit()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match=r"already holds a run \(test-linear, 8 bits, seed 0, finished\); "
                                         r"pass --resume .* --overwrite"):
        Trainer("test-linear", ds, 8, run, seed=1, progress=False, log=quiet).fit()
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before

    # --overwrite, then interrupted after one epoch: nothing of the first run is left to mix in
    # (the old code kept codes.npz, results.json and last.pt of the other run).
    (run / "encoded.npz").write_bytes(b"codes of the first run")
    t = Trainer("test-linear", ds, 8, run, seed=1, progress=False, overwrite=True, log=quiet)
    assert t.fit(stop_after_epochs=1) == {"stopped_at_epoch": 1}
    assert sorted(p.name for p in run.iterdir() if p.name != "tensorboard") == [
        "checkpoints", "config.json", "metrics.csv", "metrics.jsonl", "split.json"]
    assert json.loads((run / "config.json").read_text())["seed"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_a_folder_of_other_files_is_never_taken(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for flags in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(ValueError, match="holds files that are not a hashkit run .notes.txt."):
            Trainer("test-linear", tiny_dataset(), 8, tmp_path, progress=False, log=quiet, **flags).fit()
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- one writer
def test_a_second_writer_is_refused_and_the_lock_is_released(tmp_path):
    ds, run = tiny_dataset(), tmp_path / "run"
    first = Trainer("test-linear", ds, 8, run, progress=False, log=quiet)
    first.prepare()  # holds the folder, as a run in progress does
    try:
        with pytest.raises(RuntimeError, match=rf"is being written by pid {os.getpid()} "):
            Trainer("test-linear", ds, 8, run, progress=False, resume=True, log=quiet).fit()
        with pytest.raises(RuntimeError, match="is being written by"):
            Trainer("test-linear", ds, 8, run, seed=2, progress=False, overwrite=True, log=quiet).fit()
    finally:
        first.close()
    assert not (run / ".hashkit.lock").exists()
    res = Trainer("test-linear", ds, 8, run, progress=False, resume=True, log=quiet).fit()
    assert "map_i2t" in res and not (run / ".hashkit.lock").exists()
    # released on an error too
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer("test-linear", ds, 8, run, seed=3, progress=False, log=quiet).fit()
    assert not (run / ".hashkit.lock").exists()


_HOLDER = """
import sys, time
import train_fixtures
from hashkit.train import Trainer
t = Trainer("test-linear", "mfeat", 8, sys.argv[1], config={"epochs": 1}, progress=False, log=lambda m: None)
t.prepare()
print("ready", flush=True)
time.sleep(120)
"""


def test_two_processes_one_folder_and_a_stale_lock_after_kill_9(tmp_path, capsys):
    out = tmp_path / "runs"
    run = out / "8bits-seed0"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run)], stdout=subprocess.PIPE, text=True,
                              env=_env())
    try:
        assert holder.stdout.readline().strip() == "ready"
        rc, _, err = cli(capsys, *LINEAR, "--bits", "8", "--epochs", "1", "--out", out, "--resume")
        assert rc == 1
        assert f"is being written by pid {holder.pid} on " in one_line_error(err, "train")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        holder.stdout.close()
    assert (run / ".hashkit.lock").exists()  # kill -9 left the file; the kernel dropped the flock
    rc, text, err = cli(capsys, *LINEAR, "--bits", "8", "--epochs", "1", "--out", out, "--resume")
    assert rc == 0, err
    assert f"took over a stale lock left by pid {holder.pid}" in text
    assert (run / "results.json").exists() and not (run / ".hashkit.lock").exists()


def test_temporaries_left_by_a_kill_are_removed_on_the_next_start(tmp_path):
    ds, run = tiny_dataset(), tmp_path / "run"
    Trainer("test-linear", ds, 8, run, progress=False, log=quiet).fit(stop_after_epochs=1)
    junk = [run / "checkpoints" / ".last.pt.k1ll3d00.pt", run / ".results.json.abcd_123.json",
            run / ".metrics.csv.zz9y8x7w.csv"]
    for j in junk:
        j.write_bytes(b"\0" * 1000)
    keep = run / "checkpoints" / ".notes-of-mine"
    keep.write_text("not a temporary of hashkit")
    Trainer("test-linear", ds, 8, run, progress=False, resume=True, log=quiet).fit()
    assert not any(j.exists() for j in junk)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [".notes-of-mine", "last.pt"]


# ----------------------------------------------------------------------------- one-line errors
def test_out_on_a_file_is_a_one_line_error(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    for out in (f, f / "below"):
        rc, _, err = cli(capsys, *LINEAR, "--bits", "8", "--epochs", "1", "--out", out)
        assert rc == 1
        assert "expected a folder" in one_line_error(err, "train") and "a file" in err


def _read_only(folder: Path):
    """Make ``folder`` unwritable even for root (chattr +i), or skip."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    r = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make a folder read-only as root here: {r.stderr.decode().strip()}")
    return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_out_in_a_read_only_folder_is_a_one_line_error(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    undo = _read_only(ro)
    try:
        rc, _, err = cli(capsys, *LINEAR, "--bits", "8", "--epochs", "1", "--out", ro / "runs")
    finally:
        undo()
    assert rc == 1
    line = one_line_error(err, "train")
    assert f"cannot write {ro / 'runs'}" in line and ("not permitted" in line or "denied" in line)


def test_a_full_disk_is_a_one_line_error_and_leaves_no_temporary(tmp_path):
    """A real write failure: the file-size limit (EFBIG) hits the checkpoint, not config.json."""
    out = tmp_path / "runs"
    limit = 400_000  # config.json, split.json fit; a 512-bit linear checkpoint (~1.3 MB) does not

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = subprocess.run([sys.executable, "-m", "hashkit", "train", "--plugin", "train_fixtures",
                        "--method", "test-linear", "--bits", "512", "--epochs", "1", "--out", str(out),
                        "--no-progress", "--no-tensorboard"],
                       capture_output=True, text=True, env=_env(), preexec_fn=cap, timeout=300)
    assert r.returncode == 1, r.stderr
    line = one_line_error(r.stderr, "train")
    run = out / "512bits-seed0"
    assert f"cannot write {run / 'checkpoints' / 'last.pt'}: File too large" in line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == []
    assert (run / "config.json").exists() and not (run / ".hashkit.lock").exists()


def _finished_run(tmp_path, capsys, bits="8"):
    out = tmp_path / "runs"
    assert cli(capsys, *LINEAR, "--bits", bits, "--epochs", "2", "--out", out)[0] == 0
    return out, out / f"{bits}bits-seed0"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_is_a_one_line_error(tmp_path, capsys, damage):
    out, run = _finished_run(tmp_path, capsys)
    ckpt = run / "checkpoints" / "last.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x80\x02garbage" * 50,
                      "empty": b""}[damage])
    feats = tmp_path / "x.npy"
    np.save(feats, np.zeros((3, 240), np.float32))
    rc, _, err = cli(capsys, "encode", "--run", run, "--images", feats)
    assert rc == 1 and "cannot be read" in one_line_error(err, "encode")
    rc, _, err = cli(capsys, *LINEAR, "--bits", "8", "--epochs", "3", "--out", out, "--resume")
    # --epochs 3 differs from the run's 2: the config check speaks first, in one line as well
    assert rc == 1 and "different configuration" in one_line_error(err, "train")
    rc, _, err = cli(capsys, *LINEAR, "--bits", "8", "--epochs", "2", "--out", out, "--resume")
    assert rc == 1 and "cannot be read" in one_line_error(err, "train")


def test_a_config_that_does_not_match_the_checkpoint_is_a_one_line_error(tmp_path, capsys):
    out, run = _finished_run(tmp_path, capsys)
    cfg = json.loads((run / "config.json").read_text())
    cfg["nbits"] = 16  # edited by hand, or copied from another run
    (run / "config.json").write_text(json.dumps(cfg))
    feats = tmp_path / "x.npy"
    np.save(feats, np.zeros((3, 240), np.float32))
    rc, _, err = cli(capsys, "encode", "--run", run, "--images", feats)
    assert rc == 1 and "does not match" in one_line_error(err, "encode") and "nbits: 8 vs 16" in err
    rc, _, err = cli(capsys, *LINEAR, "--bits", "16", "--epochs", "2", "--out", out, "--resume")
    assert rc == 0, err  # 16bits-seed0 is another folder: a new run, the 8-bit one untouched
    rc, _, err = cli(capsys, *LINEAR, "--bits", "8", "--epochs", "2", "--out", out, "--resume")
    assert rc == 1 and "nbits: 16 vs 8" in one_line_error(err, "train")


# ----------------------------------------------------------------------------- rerun a config
def test_config_json_reruns_the_run_and_options_override_it(tmp_path, capsys):
    out, run = _finished_run(tmp_path, capsys)
    rc, _, err = cli(capsys, "train", "--config", run / "config.json", "--out", tmp_path / "again",
                     "--no-progress")
    assert rc == 0, err
    from hashkit.codefile import load_code_file

    a, b = load_code_file(run / "codes.npz"), load_code_file(tmp_path / "again" / "8bits-seed0" / "codes.npz")
    for key in ("query_image", "query_text", "db_image", "db_text"):
        np.testing.assert_array_equal(getattr(a, key).words, getattr(b, key).words)
    first = json.loads((run / "config.json").read_text())
    again = json.loads((tmp_path / "again" / "8bits-seed0" / "config.json").read_text())
    assert {k: v for k, v in first.items() if k != "environment"} == \
        {k: v for k, v in again.items() if k != "environment"}
    # the command line wins over the file
    rc, _, err = cli(capsys, "train", "--config", run / "config.json", "--out", tmp_path / "other",
                     "--seed", "4", "--epochs", "1", "--set", "lr=0.01", "--no-progress")
    assert rc == 0, err
    other = json.loads((tmp_path / "other" / "8bits-seed4" / "config.json").read_text())
    assert other["seed"] == 4 and other["config"]["epochs"] == 1 and other["config"]["lr"] == 0.01
    assert other["config"]["batch_size"] == first["config"]["batch_size"]


def test_toml_and_yaml_configs(tmp_path, capsys, monkeypatch):
    toml = tmp_path / "run.toml"
    toml.write_text('method = "test-linear"\ndataset = "mfeat"\nbits = [8, 12]\nseeds = [0]\n'
                    'select = "best-val"\n[config]\nepochs = 2\nlr = 0.02\n')
    rc, _, err = cli(capsys, "train", "--config", toml, "--out", tmp_path / "t", "--no-progress")
    assert rc == 0, err
    for bits in (8, 12):
        cfg = json.loads((tmp_path / "t" / f"{bits}bits-seed0" / "config.json").read_text())
        assert cfg["nbits"] == bits and cfg["select"] == "best-val" and cfg["config"]["lr"] == 0.02

    yml = tmp_path / "run.yaml"
    yml.write_text("method: test-linear\nnbits: 8\nconfig: {epochs: 1}\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        yaml = None
    if yaml is not None:
        rc, _, err = cli(capsys, "train", "--config", yml, "--out", tmp_path / "y", "--no-progress")
        assert rc == 0, err
        evil = tmp_path / "evil.yaml"
        marker = tmp_path / "pwned"
        evil.write_text(f"method: !!python/object/apply:os.system ['touch {marker}']\n")
        rc, _, err = cli(capsys, "train", "--config", evil, "--out", tmp_path / "e")
        assert rc == 1 and "cannot be parsed" in one_line_error(err, "train") and not marker.exists()
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML not installed
    rc, _, err = cli(capsys, "train", "--config", yml, "--out", tmp_path / "y2")
    assert rc == 1 and "needs PyYAML (pip install pyyaml)" in one_line_error(err, "train")


@pytest.mark.parametrize("text, match", [
    ('{"method": "test-linear", "bitz": [8]}', r"unknown keys \['bitz'\]"),
    ('{"method": "test-linear", "nbits": 8, "bits": [8]}', "both 'nbits' and 'bits'"),
    ('[1, 2]', "expected a mapping"),
    ('{"method": "test-linear", "config": 3}', "'config' must be a mapping"),
    ('{"method": ', "cannot be parsed|Expecting value"),
])
def test_bad_config_files(tmp_path, capsys, text, match):
    f = tmp_path / "c.json"
    f.write_text(text)
    rc, _, err = cli(capsys, "train", "--config", f, "--out", tmp_path / "o")
    assert rc == 1
    import re

    assert re.search(match, one_line_error(err, "train"))


def test_seeds_run_into_sibling_folders(tmp_path, capsys):
    rc, text, err = cli(capsys, *LINEAR, "--bits", "8", "--epochs", "1", "--seeds", "0", "1", "2",
                        "--out", tmp_path / "runs")
    assert rc == 0, err
    results = [json.loads((tmp_path / "runs" / f"8bits-seed{s}" / "results.json").read_text()) for s in range(3)]
    assert [r["seed"] for r in results] == [0, 1, 2]
    from hashkit.codefile import load_code_file

    codes = [load_code_file(tmp_path / "runs" / f"8bits-seed{s}" / "codes.npz").db_image.words for s in range(3)]
    assert not np.array_equal(codes[0], codes[1]) and not np.array_equal(codes[1], codes[2])
    table = text.strip().splitlines()[-3:]
    assert [line.split()[3] for line in table] == ["0", "1", "2"]  # the seed column
    rc, _, err = cli(capsys, *LINEAR, "--seeds", "1", "1", "--out", tmp_path / "x")
    assert rc == 1 and "distinct" in one_line_error(err, "train")
    rc, _, err = cli(capsys, *LINEAR, "--seed", "1", "--seeds", "2", "--out", tmp_path / "x")
    assert rc == 1 and "--seed/--seeds" in one_line_error(err, "train")


def test_protocol_and_split_options(tmp_path, capsys):
    base = ["train", "--method", "test-linear", "--dataset", "synthetic", "--data-option", "n=600",
            "--data-option", "image_dim=16", "--data-option", "text_dim=12", "--bits", "8", "--epochs", "1",
            "--no-progress"]
    rc, _, err = cli(capsys, *base, "--split-seed", "3", "--out", tmp_path / "a")
    assert rc == 0, err
    split_a = tmp_path / "a" / "8bits-seed0" / "split.json"
    # the split of run a, reused exactly though the split seed now says otherwise
    rc, _, err = cli(capsys, *base, "--split", split_a, "--out", tmp_path / "b")
    assert rc == 0, err
    a, b = json.loads(split_a.read_text()), json.loads((tmp_path / "b" / "8bits-seed0" / "split.json").read_text())
    assert all(a[k] == b[k] for k in ("query", "retrieval", "train", "val"))
    assert json.loads((tmp_path / "b" / "8bits-seed0" / "config.json").read_text())["split"] == str(split_a)
    rc, _, err = cli(capsys, *base, "--out", tmp_path / "c")
    c = json.loads((tmp_path / "c" / "8bits-seed0" / "split.json").read_text())
    assert rc == 0 and c["query"] != a["query"]
    rc, _, err = cli(capsys, *base, "--protocol", "no-such-protocol", "--out", tmp_path / "d")
    assert rc == 1 and "protocol: expected one of" in one_line_error(err, "train")
    assert json.loads((tmp_path / "c" / "8bits-seed0" / "config.json").read_text())["protocol"] == "default"


# ----------------------------------------------------------------------------- devices
def test_devices_are_resolved_and_recorded(tmp_path, capsys):
    import torch

    t = Trainer("test-linear", tiny_dataset(), 8, tmp_path / "r", device="auto", progress=False, log=quiet)
    t.fit()
    want = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert json.loads((tmp_path / "r" / "config.json").read_text())["device"] == want
    for bad, match in (("tpu", "expected cpu, cuda, cuda:N or auto"), ("cuda:x", "expected cpu, cuda")):
        with pytest.raises(ValueError, match=match):
            Trainer("test-linear", tiny_dataset(), 8, None, device=bad)
    if not torch.cuda.is_available():
        rc, _, err = cli(capsys, *LINEAR, "--device", "cuda:1", "--out", tmp_path / "g")
        assert rc == 1 and "no CUDA GPU" in one_line_error(err, "train")
    else:  # pragma: no cover - on a GPU machine
        n = torch.cuda.device_count()
        with pytest.raises(ValueError, match=f"torch sees {n} GPU"):
            Trainer("test-linear", tiny_dataset(), 8, None, device=f"cuda:{n}")


# ----------------------------------------------------------------------------- logs
def test_one_plain_line_per_epoch_and_a_csv(tmp_path, capsys):
    # progress=True, but pytest's stderr is not a terminal: plain lines, no bar
    res = Trainer("test-linear", tiny_dataset(), 8, tmp_path / "r", progress=True, eval_every=2).fit()
    lines = [x for x in capsys.readouterr().out.splitlines() if " epoch " in x]
    assert len(lines) == 3
    import re

    assert re.fullmatch(r"test-linear 8b seed 0  epoch 2/3  loss \d\.\d{4}  val_map_i2t \d\.\d{4}  "
                        r"val_map_t2i \d\.\d{4}  \d+\.\ds", lines[1]), lines[1]
    import csv

    with (tmp_path / "r" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    jsonl = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert list(rows[0]) == ["epoch", "steps", "loss", "val_map_i2t", "val_map_t2i", "seconds"]
    assert rows[0]["val_map_i2t"] == "" and float(rows[1]["val_map_i2t"]) == jsonl[1]["val_map_i2t"]
    assert float(rows[2]["loss"]) == jsonl[2]["loss"] and res["selected_epoch"] == 3


def test_tensorboard_when_installed_never_required(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, log_dir, purge_step=None):
            calls.append(("init", Path(log_dir).name, purge_step))

        def add_scalar(self, key, value, step):
            calls.append((key, step))

        def flush(self):
            pass

        def close(self):
            calls.append(("close",))

    import types

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    Trainer("test-linear", tiny_dataset(), 8, tmp_path / "r", progress=False, log=quiet, eval_every=1).fit()
    assert calls[0] == ("init", "tensorboard", 1) and calls[-1] == ("close",)
    assert ("loss", 1) in calls and ("val_map_t2i", 3) in calls
    calls.clear()
    Trainer("test-linear", tiny_dataset(), 8, tmp_path / "off", progress=False, log=quiet, tensorboard=False).fit()
    assert calls == []
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed
    res = Trainer("test-linear", tiny_dataset(), 8, tmp_path / "none", progress=False, log=quiet).fit()
    assert "map_i2t" in res and not (tmp_path / "none" / "tensorboard").exists()
    with pytest.raises(RuntimeError, match="pip install tensorboard"):
        Trainer("test-linear", tiny_dataset(), 8, tmp_path / "req", progress=False, log=quiet,
                tensorboard=True).fit()


def test_real_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard")
    Trainer("test-linear", tiny_dataset(), 8, tmp_path / "r", progress=False, log=quiet).fit()
    assert list((tmp_path / "r" / "tensorboard").glob("events.out.tfevents.*"))


# ----------------------------------------------------------------------------- plugins
_PLUGIN = '''
import torch
from hashkit.methods import register_method
from train_fixtures import Linear

@register_method("test-from-{kind}")
class FromPlugin(Linear):
    """A method registered from outside hashkit ({kind})."""
'''


_DRIVER = """
import contextlib, io, json, sys
from hashkit.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    results.append([rc, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def test_methods_from_entry_points_and_plugin_modules(tmp_path):
    (tmp_path / "ep_plugin.py").write_text(_PLUGIN.format(kind="entry-point"))
    (tmp_path / "cli_plugin.py").write_text(_PLUGIN.format(kind="plugin"))
    dist = tmp_path / "hk_ep_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hk-ep-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hashkit.methods]\ntest-from-entry-point = ep_plugin\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])

    def hk(*commands):
        """Several hashkit commands in one fresh process (what each sees depends on the ones before)."""
        argv = json.dumps([[str(a) for a in c] for c in commands])
        r = subprocess.run([sys.executable, "-c", _DRIVER, argv], capture_output=True, text=True, env=env,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    out = tmp_path / "runs"
    run = out / "8bits-seed0"
    short = ["--bits", "8", "--epochs", "1", "--no-progress", "--no-tensorboard"]
    listing, trained, from_ep, nowhere, broken = hk(
        ["list-methods", "--plugin", "cli_plugin"],
        ["train", "--method", "test-from-plugin", "--plugin", "cli_plugin", "--out", out, *short],
        ["train", "--method", "test-from-entry-point", "--out", out / "ep", *short],
        ["train", "--method", "test-nowhere", "--out", out / "x"],
        ["train", "--method", "x", "--plugin", "no_such_module_here", "--out", out / "x"])
    assert listing[0] == 0 and "test-from-entry-point" in listing[1] and "test-from-plugin" in listing[1]
    assert trained[0] == 0, trained[2]
    assert json.loads((run / "config.json").read_text())["plugins"] == ["cli_plugin"]
    assert from_ep[0] == 0, from_ep[2]
    assert nowhere[0] == 1 and "--plugin MODULE" in one_line_error(nowhere[2], "train")
    assert broken[0] == 1 and "cannot import 'no_such_module_here'" in one_line_error(broken[2], "train")

    np.save(tmp_path / "x.npy", np.zeros((4, 240), np.float32))
    enc = ["encode", "--run", run, "--images", tmp_path / "x.npy", "--out", tmp_path / "e.npz"]
    # config.json names the plugin, yet nothing is imported because a file says so
    without, with_plugin = hk(enc, [*enc, "--plugin", "cli_plugin"])
    assert without[0] == 1 and "pass --plugin cli_plugin" in one_line_error(without[2], "encode")
    assert with_plugin[0] == 0, with_plugin[2]
