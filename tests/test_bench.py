"""``hashkit bench --compare faiss`` and ``benchmarks/report.py``: what they print, at toy sizes.

The timings themselves are not tested (no timing asserts); what is: both sides compute the same
answer before anything is timed, the CPU model and SIMD path are printed beside the ratios, a
missing FAISS is a one-line error, and report.py keeps the machine beside every ratio.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest

from hashkit import _bench

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _report():
    spec = importlib.util.spec_from_file_location("hk_bench_report", ROOT / "benchmarks" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_clustered_codes_have_near_neighbours_and_zero_padding():
    db, q = _bench.clustered_codes(4000, 30, 100, seed=1)
    assert db.shape == (4000, 2) and q.shape == (30, 2) and db.dtype == np.uint64
    assert not np.any(db[:, 1] >> np.uint64(36)) and not np.any(q[:, 1] >> np.uint64(36))
    pc = np.vectorize(lambda x: bin(int(x)).count("1"))
    d = pc(q[:, None, 0] ^ db[None, :, 0]) + pc(q[:, None, 1] ^ db[None, :, 1])
    assert (d.min(1) <= 12).all()  # a centre's ~3% flips on both sides: close, not random (~50)


def test_cpu_model_and_simd_path_are_named():
    assert _bench.cpu_model().strip()
    core = pytest.importorskip("hashkit._core")
    assert _bench.simd_path() == core.simd_path()


def test_compare_faiss_rows_and_table():
    pytest.importorskip("faiss")
    pytest.importorskip("hashkit._core")
    work = [("top-10 toy", "topk", 3000, 64, 20, 3.0), ("radius toy", "radius", 3000, 128, 20, 1.5)]
    rows = _bench.compare_faiss(rounds=2, threads=1, workloads=work, with_map=False)
    assert [r["name"] for r in rows] == ["top-10 toy", "radius toy"]
    for r in rows:
        assert r["hashkit_s"] > 0 and r["faiss_s"] > 0
        assert r["ratio_lo"] <= r["ratio_hi"]
    text = _bench.format_compare(rows, threads=1, rounds=2)
    assert _bench.cpu_model() in text and f"SIMD path: {_bench.simd_path()}" in text
    assert "radius toy" in text and ">= 1.5x" in text


def test_compare_without_faiss_is_one_line_error(monkeypatch, capsys):
    from hashkit import cli

    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    code = cli.main(["bench", "--compare", "faiss", "--no-map"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "faiss-cpu" in err and len(err.splitlines()) == 1


def _fake_json(cpu, simd, ratio_faiss_s=0.2):
    return {
        "machine_info": {"node": "n", "cpu": {"brand_raw": "raw"}, "cpu_model": cpu,
                         "hashkit_simd_path": simd, "python_version": "3.11"},
        "datetime": "today",
        "benchmarks": [
            {"name": "test_topk[hashkit]", "stats": {"min": 0.05},
             "extra_info": {"group": "topk100-N1000k-64b-Q200", "impl": "hashkit"}},
            {"name": "test_topk[faiss]", "stats": {"min": ratio_faiss_s},
             "extra_info": {"group": "topk100-N1000k-64b-Q200", "impl": "faiss IndexBinaryFlat (heap)"}},
            {"name": "test_interleaved[topk-64b]", "stats": {"min": 0.0},
             "extra_info": {"group": "interleaved-topk-N1000k-64b-Q200", "impl": "hashkit",
                            "interleaved": {"hashkit_s": 0.05, "faiss_s": 0.2, "ratio": 4.0,
                                            "ratio_lo": 3.5, "ratio_hi": 4.5}}},
        ],
    }


def test_report_names_cpu_and_simd_path_beside_every_ratio(tmp_path):
    rep = _report()
    text = rep.markdown(_fake_json("AMD EPYC (family 25, model 1)", "avx2"))
    lines = [ln for ln in text.splitlines() if ln.startswith("| topk") or ln.startswith("| inter")]
    assert len(lines) == 2
    assert all("AMD EPYC (family 25, model 1) | avx2 |" in ln for ln in lines)
    assert "4.0×" in lines[0] and "4.00× (3.50–4.50)" in lines[1]
    # an old file without the recorded path still reports, with the brand string and "?"
    old = _fake_json(None, None)
    del old["machine_info"]["cpu_model"], old["machine_info"]["hashkit_simd_path"]
    assert "| raw | ? |" in rep.markdown(old)


def test_report_wide_has_one_column_per_machine(tmp_path):
    rep = _report()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_fake_json("Zen 5", "avx512-vpopcntdq", 0.5)))
    b.write_text(json.dumps(_fake_json("Zen 3", "avx2", 0.1)))
    out = tmp_path / "t.md"
    assert rep.main([str(a), str(b), "--wide", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| group | peer | Zen 5 (avx512-vpopcntdq) | Zen 3 (avx2) |" in text
    assert "| topk100-N1000k-64b-Q200 | faiss IndexBinaryFlat (heap) | 10.0× | 2.0× |" in text


def test_synthetic_table_script_runs_end_to_end(tmp_path):
    """benchmarks/synthetic_table.py at toy size (the README's four-direction table is its
    output): it trains through the CLI and reads every direction's MAP from hashkit.eval's
    result (it broke silently once when that result grew a "directions" level)."""
    import subprocess

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "synthetic_table.py"),
                          "--methods", "cca-itq", "--bits", "8", "--n", "400",
                          "--out", str(tmp_path / "runs"), "--json", str(tmp_path / "t.json")],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| method | bits | I→T | T→I | I→I | T→T |" in out.stdout
    rows = json.loads((tmp_path / "t.json").read_text())
    assert [(r["method"], r["bits"]) for r in rows] == [("cca-itq", 8)]
    assert all(0.0 < rows[0][d] <= 1.0 for d in ("i2t", "t2i", "i2i", "t2t"))
