"""Markdown ratio tables from pytest-benchmark JSON: peer time / hashkit time, per group.

Usage::

    python -m pytest benchmarks/ --benchmark-enable --benchmark-json=bench.json
    python benchmarks/report.py bench.json [--stat min|median|mean] [--out table.md]

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
``hashkit...`` entry as the reference (or lists times only).
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


def rows(data: dict, stat: str = "min") -> list[tuple[str, str, str, str, str]]:
    """(group, peer, peer time, hashkit time, ratio) for every peer entry, in file order."""
    groups: OrderedDict[str, list[dict]] = OrderedDict()
    for bench in data.get("benchmarks", []):
        groups.setdefault(_group(bench), []).append(bench)
    out = []
    for group, benches in groups.items():
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


def markdown(data: dict, stat: str = "min") -> str:
    machine = data.get("machine_info") or {}
    cpu = (machine.get("cpu") or {}).get("brand_raw", "")
    head = [f"Ratio = peer time / hashkit time ({stat} of the rounds; > 1: hashkit faster).",
            f"Machine: {machine.get('node', '?')}, {cpu}, {machine.get('python_version', '')}; "
            f"run {data.get('datetime', '?')}.", "",
            "| group | peer | peer | hashkit | ratio |", "|---|---|---:|---:|---:|"]
    body = [f"| {g} | {p} | {pt} | {ht} | {r} |" for g, p, pt, ht, r in rows(data, stat)]
    return "\n".join(head + body) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", help="pytest-benchmark JSON (--benchmark-json=...)")
    ap.add_argument("--stat", choices=["min", "median", "mean"], default="min")
    ap.add_argument("--out", help="write the table here (atomically) instead of stdout")
    args = ap.parse_args(argv)
    with open(args.json, encoding="utf-8") as f:
        data = json.load(f)
    text = markdown(data, args.stat)
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
