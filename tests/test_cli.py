"""The command line as a user meets it: ``hashkit search`` on every code file, Ctrl-C, a closed
pipe, both list syntaxes, and the core (eval, report, search, metrics) without PyTorch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hashkit.cli import main
from hashkit.codefile import save_code_file
from oracle import random_codes, random_labels, topk_ref

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def run_folder(tmp_path, nbits=20, seed=0):
    rng = np.random.default_rng(seed)
    b = {k: random_codes(rng, 7 if k[0] == "q" else 41, nbits)[1] for k in ("qi", "qt", "ri", "rt")}
    _, ql = random_labels(rng, 7, 3)
    _, rl = random_labels(rng, 41, 3)
    run = tmp_path / "out" / f"{nbits}bits"
    run.mkdir(parents=True)
    save_code_file(run / "codes.npz", query_image=b["qi"], query_text=b["qt"], db_image=b["ri"], db_text=b["rt"],
                   query_labels=ql, db_labels=rl, meta={"method": "m", "dataset": "d", "nbits": nbits, "seed": seed})
    return run, b


def test_search_reads_the_codes_npz_that_train_writes(tmp_path, capsys):
    run, b = run_folder(tmp_path)
    assert main(["search", str(run), str(run), "-k", "3"]) == 1
    err = capsys.readouterr().err
    assert "--db-set" in err and "db_image, db_text" in err and err.count("\n") == 1
    out = tmp_path / "hits.npz"
    assert main(["search", str(run), str(run), "-k", "5", "--db-set", "db_image", "--query-set", "query_text",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    dist, idx = topk_ref(b["qt"], b["ri"], 5)
    with np.load(out) as z:
        np.testing.assert_array_equal(z["idx"], idx)
        np.testing.assert_array_equal(z["dist"], dist)
    # codes only (hashkit encode without --labels): query_* sets, one chosen as the database
    enc = tmp_path / "encoded.npz"
    save_code_file(enc, query_image=b["ri"], query_text=b["rt"])
    assert main(["search", str(enc), str(run / "codes.npz"), "-r", "3", "--db-set", "query_image",
                 "--query-set", "query_image", "--out", str(out)]) == 0
    capsys.readouterr()
    with np.load(out) as z:
        lims = z["lims"]
        assert lims[-1] == int((np.array([[np.sum(q != r) for r in b["ri"]] for q in b["qi"]]) <= 3).sum())


def test_search_packed_npy_and_messages_name_the_arguments(tmp_path, capsys):
    rng = np.random.default_rng(1)
    _, q = random_codes(rng, 6, 24)
    _, db = random_codes(rng, 30, 24)
    np.save(tmp_path / "q.npy", np.packbits(q, axis=1, bitorder="little"))
    np.save(tmp_path / "db.npy", np.packbits(db, axis=1, bitorder="little"))
    assert main(["search", str(tmp_path / "db.npy"), str(tmp_path / "q.npy"), "-k", "4"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hashkit search: error: database:") and "--packed-bits" in err
    out = tmp_path / "hits.npz"
    assert main(["search", str(tmp_path / "db.npy"), str(tmp_path / "q.npy"), "-k", "4", "--packed-bits", "24",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    with np.load(out) as z:
        np.testing.assert_array_equal(z["idx"], topk_ref(q, db, 4)[1])
    np.save(tmp_path / "q16.npy", q[:, :16])
    np.save(tmp_path / "db24.npy", db)
    assert main(["search", str(tmp_path / "db24.npy"), str(tmp_path / "q16.npy"), "-k", "4"]) == 1
    assert "queries and database: expected codes of the same length, got 16 and 24" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "db24.npy"), str(tmp_path / "nope.npy"), "-k", "4"]) == 1
    assert "queries: file not found" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "db24.npy"), str(tmp_path / "db24.npy"), "-k", "31"]) == 1
    assert "-k: expected an integer between 1 and the database size 30" in capsys.readouterr().err


def test_ctrl_c_and_os_errors_are_one_line(capsys):
    from hashkit._command import run_command

    def interrupted(args):
        raise KeyboardInterrupt

    def disk_full(args):
        raise OSError(28, "No space left on device", "/data/out.npz")

    assert run_command("hashkit x", "", lambda p: None, interrupted, []) == 130
    assert capsys.readouterr().err.strip() == "hashkit x: interrupted"
    assert run_command("hashkit x", "", lambda p: None, disk_full, []) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err


def test_a_closed_pipe_prints_no_traceback():
    # | head: the reader goes away after a few bytes while hashkit is still writing
    n = 40
    cmd = [sys.executable, "-m", "hashkit", "eval", *[str(ROOT / "hashkit/examples/mfeat_cca32.npz")] * n,
           "--json", "--metrics", "map,pk,pr"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    proc.stdout.read(100)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    rc = proc.wait(timeout=300)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert rc == 141


def test_list_options_take_both_syntaxes(tmp_path, capsys):
    run, _ = run_folder(tmp_path)
    for form in (["-k", "5", "10"], ["-k", "5,10"], ["-k", "5", "-k", "10"]):
        assert main(["eval", str(run), "--json", "--metrics", "p@k", "--directions", "i2t", *form]) == 0
        assert set(json.loads(capsys.readouterr().out)["directions"]["i2t"]["metrics"]) == {"p@5", "p@10"}


NO_TORCH = textwrap.dedent('''
    import importlib.abc, json, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        """As if PyTorch were not installed."""
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoTorch())
    import numpy as np
    import hashkit
    from hashkit.cli import main

    run = sys.argv[1]
    rcs = {
        "eval": main(["eval", "--example", "--metrics", "map,map@k,p@r2,pr,pk", "--variant", "dcmh-matlab-bug"]),
        "eval-run": main(["eval", run, "--plot", sys.argv[2]]),
        "report": main(["report", run, "--metrics", "map,p@k", "--format", "latex"]),
        "search": main(["search", run, run, "-k", "3", "--db-set", "db_image", "--query-set", "query_text"]),
        "info": main(["info"]),
    }
    rng = np.random.default_rng(0)
    q, r = rng.choice([-1, 1], (5, 16)), rng.choice([-1, 1], (40, 16))
    ql, rl = rng.integers(0, 2, (5, 3)), rng.integers(0, 2, (40, 3))
    hashkit.mean_average_precision(q, r, ql, rl)
    hashkit.topk(q, r, 3)
    hashkit.metrics.report(q, r, ql, rl, metrics="map,ndcg@k", ks=5)
    assert "torch" not in sys.modules, "the core imported torch"
    for cmd in ("train", "encode", "list-methods"):
        args = {"train": ["--method", "dcmh", "--dataset", "mfeat"], "encode": ["--run", run], "list-methods": []}
        rcs[cmd] = main([cmd, *args[cmd]])
    print(json.dumps(rcs))
''')


def test_the_core_works_without_torch(tmp_path):
    run, _ = run_folder(tmp_path)
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(run), str(tmp_path / "figs")], capture_output=True,
                          text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rcs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(rcs[c] == 0 for c in ("eval", "eval-run", "report", "search", "info")), (rcs, proc.stderr)
    assert (tmp_path / "figs" / "pr_radius.png").exists()
    for cmd in ("train", "encode", "list-methods"):
        assert rcs[cmd] == 1
        assert f"hashkit {cmd}: error: this needs torch, which is not installed: pip install 'hashkit[train]'" \
            in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pyproject_keeps_torch_out_of_the_core():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = " ".join(proj["dependencies"]).lower()
    assert "torch" not in deps and "tqdm" not in deps
    for name in ("numpy", "scipy", "h5py", "numba", "matplotlib"):
        assert name in deps, name
    extras = proj["optional-dependencies"]
    assert any(d.startswith("torch") for d in extras["train"])
    assert any(d.startswith("torch") for d in extras["test"])
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install torch==2.13.0 -e ".[test]"' in ci
    readme = (ROOT / "README.md").read_text()
    assert 'pip install torch==2.13.0 ".[train]" && hashkit train' in readme


def test_bad_digits_is_one_line(capsys):
    assert main(["eval", "--example", "--digits", "-1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--digits" in err
