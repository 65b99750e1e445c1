"""Markdown ratio tables from pytest-benchmark JSON: peer time / hashkit time, per group.

Usage::

    python -m pytest benchmarks/ --benchmark-enable --benchmark-json=bench.json
    python benchmarks/report.py bench.json [more.json ...] [--stat min|median|mean] [--wide]
        [--out table.md]

Every row names the CPU (``machine_info["cpu_model"]``, written by benchmarks/conftest.py, else
py-cpuinfo's brand string) and hashkit's SIMD path (``machine_info["hashkit_simd_path"]``; "?" in
files from before it was recorded) beside its ratio. Several files (one per machine or
``HASHKIT_SIMD`` path) give one table; ``--wide`` puts one ratio column per (CPU, SIMD path),
the layout of the README's speed tables.

Convention (docs/BENCHMARKS.md), shared by every file in benchmarks/:

- ``extra_info["group"]`` names what is compared (benchmarks in one group do the same work);
  without it, pytest-benchmark's own ``group``, else the test's parameter id, is used.
- ``extra_info["impl"]`` names the implementation: ``"hashkit"`` for the reference, anything
  else is a peer (variants such as ``"hashkit (1 thread)"`` are listed like peers). Without it,
  the test function's name decides: a name ending in ``_hashkit`` is the reference, otherwise
  the part after ``test_<group>_``.
- When every entry of a group has ``extra_info["per_query_s"]`` (a peer timed on fewer queries),
  ratios use it; otherwise the chosen statistic of the run time (default: min).

A ratio > 1 means hashkit is faster. A group without a ``"hashkit"`` entry uses its first
``hashkit...`` entry as the reference (or lists times only). An entry with
``extra_info["interleaved"]`` (benchmarks/test_bench_kernels.py::test_interleaved: both sides
timed in one loop of alternating rounds) is its own row: FAISS and hashkit min over the rounds,
the ratio of the mins and the range of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import OrderedDict


def _impl(bench: dict) -> str:
    info = bench.get("extra_info") or {}
    if info.get("impl"):
        return str(info["impl"])
    name = bench.get("name", "").split("[")[0]
    if name.endswith("_hashkit"):
        return "hashkit"
    parts = name.split("_")
    return "_".join(parts[2:]) or name


def _group(bench: dict) -> str:
    info = bench.get("extra_info") or {}
    return str(info.get("group") or bench.get("group") or bench.get("param") or bench.get("name"))


def _seconds(bench: dict, stat: str, per_query: bool) -> float:
    if per_query:
        return float(bench["extra_info"]["per_query_s"])
    return float(bench["stats"][stat])


def _fmt_time(s: float) -> str:
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def machine(data: dict) -> tuple[str, str]:
    """(CPU, SIMD path) of one benchmark file."""
    info = data.get("machine_info") or {}
    cpu = info.get("cpu_model") or (info.get("cpu") or {}).get("brand_raw") or "?"
    return str(cpu), str(info.get("hashkit_simd_path") or "?")


def rows(data: dict, stat: str = "min") -> list[tuple[str, str, str, str, str]]:
    """(group, peer, peer time, hashkit time, ratio) for every peer entry, in file order."""
    groups: OrderedDict[str, list[dict]] = OrderedDict()
    for bench in data.get("benchmarks", []):
        groups.setdefault(_group(bench), []).append(bench)
    out = []
    for group, benches in groups.items():
        inter = [b for b in benches if "interleaved" in (b.get("extra_info") or {})]
        for b in inter:
            r = b["extra_info"]["interleaved"]
            out.append((group, "faiss (interleaved rounds)", _fmt_time(r["faiss_s"]),
                        _fmt_time(r["hashkit_s"]),
                        f"{r['ratio']:.2f}× ({r['ratio_lo']:.2f}–{r['ratio_hi']:.2f})"))
        benches = [b for b in benches if b not in inter]
        if not benches:
            continue
        per_query = all("per_query_s" in (b.get("extra_info") or {}) for b in benches)
        ref = next((b for b in benches if _impl(b) == "hashkit"), None)
        if ref is None:
            ref = next((b for b in benches if _impl(b).startswith("hashkit")), None)
        unit = " /query" if per_query else ""
        ref_t = _seconds(ref, stat, per_query) if ref is not None else None
        for b in benches:
            if b is ref:
                continue
            t = _seconds(b, stat, per_query)
            ratio = f"{t / ref_t:.1f}×" if ref_t else "–"
            out.append((group, _impl(b), _fmt_time(t) + unit,
                        (_fmt_time(ref_t) + unit) if ref_t is not None else "–", ratio))
        if ref is not None and len(benches) == 1:
            out.append((group, "(no peer)", "–", _fmt_time(ref_t) + unit, "–"))
    return out


def markdown(datas, stat: str = "min", wide: bool = False) -> str:
    """One table for one or more benchmark files (a dict, or a list of dicts)."""
    if isinstance(datas, dict):
        datas = [datas]
    head = [f"Ratio = peer time / hashkit time ({stat} of the rounds; > 1: hashkit faster)."]
    for data in datas:
        info = data.get("machine_info") or {}
        cpu, simd = machine(data)
        head.append(f"Machine: {info.get('node', '?')}, {cpu}, SIMD path {simd}, "
                    f"{info.get('python_version', '')}; run {data.get('datetime', '?')}.")
    head.append("")
    if wide:
        cols: list[tuple[str, str]] = []
        table: OrderedDict[tuple[str, str], dict] = OrderedDict()
        for data in datas:
            col = machine(data)
            if col not in cols:
                cols.append(col)
            for g, p, _pt, _ht, r in rows(data, stat):
                table.setdefault((g, p), {})[col] = r
        head += ["| group | peer | " + " | ".join(f"{c} ({s})" for c, s in cols) + " |",
                 "|---|---|" + "---:|" * len(cols)]
        body = [f"| {g} | {p} | " + " | ".join(v.get(c, "–") for c in cols) + " |"
                for (g, p), v in table.items()]
        return "\n".join(head + body) + "\n"
    head += ["| group | peer | peer | hashkit | ratio | CPU | SIMD path |",
             "|---|---|---:|---:|---:|---|---|"]
    body = []
    for data in datas:
        cpu, simd = machine(data)
        body += [f"| {g} | {p} | {pt} | {ht} | {r} | {cpu} | {simd} |"
                 for g, p, pt, ht, r in rows(data, stat)]
    return "\n".join(head + body) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+", help="pytest-benchmark JSON (--benchmark-json=...), one or more")
    ap.add_argument("--stat", choices=["min", "median", "mean"], default="min")
    ap.add_argument("--wide", action="store_true",
                    help="one ratio column per (CPU, SIMD path) instead of one row per entry")
    ap.add_argument("--out", help="write the table here (atomically) instead of stdout")
    args = ap.parse_args(argv)
    datas = []
    for path in args.json:
        with open(path, encoding="utf-8") as f:
            datas.append(json.load(f))
    text = markdown(datas, args.stat, wide=args.wide)
    if args.out:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.out)) or ".")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
