"""``hashkit report``: mean ± std over seeds against a hand computation, formats, tests, figures."""

from __future__ import annotations

import csv
import io
import json
import statistics

import numpy as np
import pytest

from hashkit.cli import main
from hashkit.codefile import save_code_file
from oracle import hamming_ref, relevance, stable_ranking

Q, N, NL = 12, 80, 4


def ap_per_query(qb, rb, ql, rl):
    dist, rel = hamming_ref(qb, rb), relevance(ql, rl)
    ranked = np.take_along_axis(rel, stable_ranking(dist), 1)
    out = []
    for row in ranked:
        R = row.sum()
        prec = np.cumsum(row) / np.arange(1, row.size + 1)
        out.append(prec[row].sum() / R if R else 0.0)
    return np.array(out)


def labels(seed=100):
    rng = np.random.default_rng(seed)
    return (rng.random((Q, NL)) < 0.35).astype(np.uint8), (rng.random((N, NL)) < 0.35).astype(np.uint8)


def make_run(folder, method, nbits, seed, ql, rl, config=None, dataset="toy", quality=0.15):
    """A run folder as ``hashkit train`` writes it (codes.npz + config.json); codes drawn so
    that quality varies by method and seed."""
    rng = np.random.default_rng([hash(method) % 1000, nbits, seed])
    proto = rng.random((NL, nbits)) < 0.5

    def codes(lab):
        base = proto[np.argmax(lab + rng.random(lab.shape) * 0.1, axis=1)]
        return (base ^ (rng.random(base.shape) < quality)).astype(np.uint8)

    b = {"qi": codes(ql), "qt": codes(ql), "ri": codes(rl), "rt": codes(rl)}
    folder.mkdir(parents=True)
    meta = {"method": method, "dataset": dataset, "nbits": nbits, "seed": seed, "split_seed": 0,
            "config": config or {"lr": 0.01}}
    save_code_file(folder / "codes.npz", query_image=b["qi"], query_text=b["qt"], db_image=b["ri"], db_text=b["rt"],
                   query_labels=ql, db_labels=rl, meta=meta)
    (folder / "config.json").write_text(json.dumps({**meta, "device": "cpu", "eval_every": 1}))
    return b


def report_json(capsys, *args):
    rc = main(["report", *map(str, args), "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def test_mean_and_std_over_seeds_by_hand(tmp_path, capsys):
    ql, rl = labels()
    by_hand = {}
    for m, q in (("alpha", 0.1), ("beta", 0.25)):
        for bits in (16, 32):
            maps = []
            for seed in (0, 1, 2):
                # folder names say nothing true: identity comes from the run's own files
                b = make_run(tmp_path / "runs" / f"x{m}{bits}{seed}" / "seed9", m, bits, seed, ql, rl, quality=q)
                maps.append(ap_per_query(b["qi"], b["rt"], ql, rl).mean())
            by_hand[(m, bits)] = (statistics.mean(maps), statistics.stdev(maps))
    tables = report_json(capsys, tmp_path / "runs", "--directions", "i2t")
    assert len(tables) == 1 and tables[0]["direction"] == "i2t" and tables[0]["dataset"] == "toy"
    assert tables[0]["bits"] == [16, 32]
    rows = {r["method"]: r for r in tables[0]["rows"]}
    assert set(rows) == {"alpha", "beta"}
    for (m, bits), (mean, std) in by_hand.items():
        cell = rows[m]["cells"]["map"][str(bits)]
        assert cell["n"] == 3 and sorted(cell["seeds"]) == [0, 1, 2]
        assert cell["mean"] == pytest.approx(mean, rel=1e-12)
        assert cell["std"] == pytest.approx(std, rel=1e-10)
    # the Markdown cell says the same to --digits places, with the count in the caption
    assert main(["report", str(tmp_path / "runs"), "--directions", "i2t", "--digits", "3"]) == 0
    md = capsys.readouterr().out
    mean, std = by_hand[("alpha", 16)]
    assert f"{mean:.3f} ± {std:.3f}" in md and "3 seeds in every cell" in md
    assert "| method | 16 bits | 32 bits |" in md


def test_runs_that_differ_in_more_than_the_seed_are_rows_of_their_own(tmp_path, capsys):
    ql, rl = labels()
    make_run(tmp_path / "a", "alpha", 16, 0, ql, rl, config={"lr": 0.01})
    make_run(tmp_path / "b", "alpha", 16, 1, ql, rl, config={"lr": 0.01})
    make_run(tmp_path / "c", "alpha", 16, 0, ql, rl, config={"lr": 0.1})
    tables = report_json(capsys, tmp_path / "a", tmp_path / "b", tmp_path / "c", "--directions", "t2i")
    labels_ = [r["label"] for r in tables[0]["rows"]]
    assert labels_ == ["alpha (config.lr=0.01)", "alpha (config.lr=0.1)"]
    assert [r["cells"]["map"]["16"]["n"] for r in tables[0]["rows"]] == [2, 1]
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "a" / "codes.npz")]) == 1
    assert "same run" in capsys.readouterr().err


def test_formats_latex_csv_and_metric_columns(tmp_path, capsys):
    ql, rl = labels()
    for seed in (0, 1):
        make_run(tmp_path / f"a{seed}", "alpha_x", 16, seed, ql, rl)
        make_run(tmp_path / f"b{seed}", "beta", 16, seed, ql, rl, quality=0.3)
    runs = [tmp_path / f"{m}{s}" for m in "ab" for s in (0, 1)]
    assert main(["report", *map(str, runs), "--format", "latex", "--directions", "i2t"]) == 0
    tex = capsys.readouterr().out
    for word in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lr}", r"alpha\_x", r"$\pm$",
                 r"\textbf{", r"\caption{toy, Image $\to$ Text"):
        assert word in tex, word
    assert main(["report", *map(str, runs), "--format", "csv", "--metrics", "map,p@k", "-k", "10"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["metric"] for r in rows} == {"map", "p@10"} and {r["direction"] for r in rows} == {"i2t", "t2i", "i2i",
                                                                                                  "t2t"}
    assert all(r["n"] == "2" and r["seeds"] == "0 1" for r in rows)
    assert main(["report", *map(str, runs), "--columns", "metrics", "--metrics", "map,p@k", "-k", "10",
                 "--directions", "i2t"]) == 0
    md = capsys.readouterr().out
    assert "| method | map | p@10 |" in md and "| alpha_x 16 bits |" in md


def test_per_query_csv_and_wilcoxon_against_scipy(tmp_path, capsys):
    from scipy import stats

    ql, rl = labels()
    a = make_run(tmp_path / "a", "alpha", 16, 0, ql, rl, quality=0.1)
    b = make_run(tmp_path / "b", "beta", 16, 0, ql, rl, quality=0.3)
    out_csv = tmp_path / "pq.csv"
    rc = main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--wilcoxon", "--per-query", str(out_csv),
               "--format", "json", "--directions", "i2t,t2i"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    apa = ap_per_query(a["qi"], a["rt"], ql, rl)
    apb = ap_per_query(b["qi"], b["rt"], ql, rl)
    row = next(r for r in doc["wilcoxon"]["rows"] if r["direction"] == "i2t" and r["metric"] == "map")
    ref = stats.wilcoxon(apa, apb)
    assert row["p"] == pytest.approx(ref.pvalue, rel=1e-12) and row["statistic"] == pytest.approx(ref.statistic)
    assert row["diff"] == pytest.approx((apa - apb).mean(), rel=1e-12) and row["n_queries"] == Q
    pq = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    mine = [float(r["map"]) for r in pq if r["method"] == "alpha" and r["direction"] == "i2t"]
    np.testing.assert_allclose(mine, apa, rtol=1e-12)
    assert [int(r["query"]) for r in pq if r["method"] == "alpha" and r["direction"] == "i2t"] == list(range(Q))
    # a paired test needs the same queries, and exactly two code sets
    other_q, other_r = labels(7)
    make_run(tmp_path / "c", "gamma", 16, 0, other_q, other_r)
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "c"), "--wilcoxon"]) == 1
    assert "do not share their queries" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "a"), "--wilcoxon"]) == 1
    assert "exactly two" in capsys.readouterr().err


def test_figures_one_per_bit_length(tmp_path, capsys):
    ql, rl = labels()
    for m in ("alpha", "beta"):
        for seed in (0, 1):
            for bits in (16, 32):
                make_run(tmp_path / "runs" / m / f"s{seed}" / f"{bits}bits", m, bits, seed, ql, rl)
    figs = tmp_path / "figs"
    assert main(["report", str(tmp_path / "runs"), "--plot", str(figs), "--plot-format", "png,pdf"]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in figs.iterdir())
    assert names == sorted(f"{b}bits_{k}.{f}" for b in (16, 32) for k in ("pr_radius", "precision_at_k")
                           for f in ("png", "pdf"))
    assert (figs / "16bits_pr_radius.pdf").read_bytes()[:4] == b"%PDF"
    (tmp_path / "file").write_text("x")
    assert main(["report", str(tmp_path / "runs"), "--plot", str(tmp_path / "file")]) == 1
    assert "--plot: expected a folder" in capsys.readouterr().err


def test_research_files_are_rows_named_after_the_file(tmp_path, capsys):
    ql, rl = labels()
    rng = np.random.default_rng(3)
    for name in ("dcmh_release", "ssah_release"):
        np.savez(tmp_path / f"{name}.npz", qB=rng.choice([-1, 1], (Q, 16)), rB=rng.choice([-1, 1], (N, 16)),
                 query_L=ql, retrieval_L=rl)
    tables = report_json(capsys, tmp_path / "dcmh_release.npz", tmp_path / "ssah_release.npz")
    assert [r["label"] for r in tables[0]["rows"]] == ["dcmh_release", "ssah_release"]
    assert tables[0]["rows"][0]["cells"]["map"]["16"]["std"] is None
