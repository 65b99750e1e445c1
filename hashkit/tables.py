"""``hashkit report``: the tables and figures of a paper, from runs and code files.

Every input (a hashkit run folder, a folder of runs, any code file ``hashkit eval`` reads) is
evaluated afresh from its codes. Runs that differ only by training seed are one row: the cell is
the mean ± sample standard deviation (``ddof=1``) over the seeds, with their count. What a run
is comes from the run itself (``codes.npz`` meta and ``config.json``: method, dataset, bits,
seed, configuration), never from folder names.

One table per dataset and direction: rows = method, columns = bit lengths (one block per metric),
or with ``--columns metrics`` rows = (method, bits) and columns = metrics. Formats: Markdown,
CSV (one row per cell: tidy, for pandas), LaTeX (booktabs; best mean per column in bold), JSON.
``--per-query FILE.csv`` writes every per-query value (for significance tests of your own);
``--wilcoxon`` runs the Wilcoxon signed-rank test (SciPy), paired over queries, between two code
sets; ``--plot DIR`` draws PR-by-radius and precision@k curves, one line per method (the mean
over seeds), one panel per direction, one figure per bit length.

    hashkit report runs/ --metrics map,map@k -k 50 --format latex
    hashkit report runs/dcmh/32bits runs/gch/32bits --wilcoxon
    hashkit report runs/ --plot figures/ --plot-format pdf
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import _validate as V
from .codefile import CodeFile, code_sets, load_code_file
from .eval import (DIRECTIONS, _clean, add_metric_arguments, add_read_arguments, convention_lines, evaluate,
                   metric_options, read_options)
from .figures import DIRECTION_TITLES
from .metrics.report import parse_metrics

__all__ = ["collect", "aggregate", "format_tables", "per_query_csv", "wilcoxon", "plot_report",
           "add_report_arguments", "run_report", "FORMATS"]

FORMATS = ("md", "csv", "latex", "json")
# meta keys that do not make two runs different methods
_NOT_SETTINGS = {"seed", "nbits", "device", "eval_every", "hashkit_checkpoint_format", "method", "dataset",
                 "run", "images", "texts", "labels", "source_keys", "packed"}
_ARROW = {"i2t": "I→T", "t2i": "T→I", "i2i": "I→I", "t2t": "T→T"}


@dataclass
class Run:
    """One evaluated code set and what it is."""

    source: str
    dataset: str
    method: str
    settings: dict
    seed: Any
    nbits: int
    result: dict          # :func:`hashkit.eval.evaluate` output
    query_labels: np.ndarray

    @property
    def group(self) -> tuple:
        return (self.dataset, self.method, json.dumps(self.settings, sort_keys=True, default=str))


def _identity(cf: CodeFile, source: Path) -> tuple[str, str, dict, Any]:
    meta = cf.meta or {}
    method = meta.get("method")
    if method:
        settings = {k: v for k, v in meta.items() if k not in _NOT_SETTINGS}
        return str(meta.get("dataset") or ""), str(method), settings, meta.get("seed")
    # a research file: it is its own row, named after the file (or its folder)
    name = source.name if source.is_dir() else source.stem
    return "", name, {"source": str(source)}, None


def collect(inputs: Sequence, **eval_kwargs) -> list[Run]:
    """Evaluate every code set the inputs stand for (see :func:`hashkit.codefile.code_sets`).

    ``eval_kwargs`` go to :func:`hashkit.eval.evaluate` (metrics, k, ties ...) and, for the
    reading options (keys, packed_bits, bitorder, labels), to :func:`load_code_file`.
    """
    read = {k: eval_kwargs.pop(k) for k in ("keys", "packed_bits", "bitorder", "labels") if k in eval_kwargs}
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise ValueError("RUN_OR_FILE: expected one or more runs or code files")
    runs: list[Run] = []
    seen: dict[tuple, str] = {}
    for item in inputs:
        for src in code_sets(item):
            cf = load_code_file(src, **read)
            res = evaluate(cf, **eval_kwargs)
            dataset, method, settings, seed = _identity(cf, src)
            nbits = next(iter(res["directions"].values()))["nbits"]
            run = Run(str(src), dataset, method, settings, seed, nbits, res, cf.query_labels)
            if run.seed is not None:
                ident = run.group + (nbits, json.dumps(seed, default=str))
                if ident in seen:
                    raise ValueError(f"RUN_OR_FILE: {seen[ident]} and {src} are the same run ({method}, {nbits} bits, "
                                     f"seed {seed}); give each run once")
                seen[ident] = str(src)
            runs.append(run)
    return runs


def _row_labels(runs: list[Run]) -> dict[tuple, str]:
    """``method``, or ``method (key=value, ...)`` where runs of one method differ in settings."""
    groups = list(dict.fromkeys(r.group for r in runs))
    settings = {r.group: r.settings for r in runs}
    out = {}
    for g in groups:
        same = [h for h in groups if h[:2] == g[:2]]
        if len(same) == 1:
            out[g] = g[1]
            continue
        keys = sorted({k for h in same for k in _flat(settings[h])})
        diff = [k for k in keys if len({json.dumps(_flat(settings[h]).get(k), default=str) for h in same}) > 1]
        flat = _flat(settings[g])
        out[g] = f"{g[1]} (" + ", ".join(f"{k}={flat.get(k)}" for k in diff[:3]) + ")"
    return out


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _scalar_names(runs: list[Run]) -> list[str]:
    names: list[str] = []
    for r in runs:
        for d in r.result["directions"].values():
            for m, v in d["metrics"].items():
                if m == "map-ties":
                    names.extend(f"map[{t}]" for t in v)
                elif not isinstance(v, dict):
                    names.append(m)
    return list(dict.fromkeys(names))


def _value(direction: dict, name: str):
    mets = direction["metrics"]
    if name.startswith("map[") and name[4:-1] in mets.get("map-ties", {}):
        return mets["map-ties"][name[4:-1]]
    return mets.get(name)


def aggregate(runs: list[Run]) -> list[dict]:
    """Tables as data: one dict per (dataset, direction) with rows of cells
    ``{"mean", "std", "n", "seeds", "values"}`` keyed by metric and bit length."""
    labels = _row_labels(runs)
    names = _scalar_names(runs)
    tables = []
    datasets = list(dict.fromkeys(r.dataset for r in runs))
    for ds in datasets:
        mine = [r for r in runs if r.dataset == ds]
        for d in DIRECTIONS:
            have = [r for r in mine if d in r.result["directions"]]
            if not have:
                continue
            bits = sorted({r.nbits for r in have})
            rows = []
            for g in dict.fromkeys(r.group for r in have):
                cells: dict[str, dict[int, dict]] = {}
                for m in names:
                    for b in bits:
                        rs = [r for r in have if r.group == g and r.nbits == b]
                        vals = [_value(r.result["directions"][d], m) for r in rs]
                        pairs = [(v, r.seed) for v, r in zip(vals, rs) if v is not None]
                        if not pairs:
                            continue
                        x = np.array([v for v, _ in pairs], dtype=np.float64)
                        cells.setdefault(m, {})[b] = {
                            "mean": float(x.mean()), "std": float(x.std(ddof=1)) if len(x) > 1 else None,
                            "n": len(x), "seeds": [s for _, s in pairs], "values": x.tolist()}
                rows.append({"label": labels[g], "method": g[1], "settings": json.loads(g[2]), "cells": cells})
            first = have[0].result["directions"][d]
            conv = {}
            for r in have:
                conv.update(r.result["directions"][d]["conventions"])
            tables.append({"dataset": ds, "direction": d, "bits": bits, "metrics": [m for m in names if any(
                m in row["cells"] for row in rows)], "rows": rows, "ties": first["ties"],
                "radius_average": first["radius_average"], "conventions": conv})
    return tables


# ---------------------------------------------------------------------------------- formatting

def _fmt(x, digits):
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _columns(t: dict, columns: str):
    """(header labels, row keys, cell getters) of one table."""
    one = len(t["metrics"]) == 1
    if columns == "bits":
        cols = [(m, b) for m in t["metrics"] for b in t["bits"]]
        heads = [f"{b} bits" if one else f"{m} {b}b" for m, b in cols]
        rows = [(row["label"], [row["cells"].get(m, {}).get(b) for m, b in cols]) for row in t["rows"]]
    else:
        heads = list(t["metrics"])
        rows = []
        for row in t["rows"]:
            for b in t["bits"]:
                cells = [row["cells"].get(m, {}).get(b) for m in t["metrics"]]
                if any(c is not None for c in cells):
                    rows.append((f"{row['label']} {b} bits", cells))
    return heads, rows


def _count_note(t: dict) -> tuple[int, str]:
    ns = Counter(c["n"] for row in t["rows"] for m in row["cells"].values() for c in m.values())
    common = ns.most_common(1)[0][0] if ns else 1
    if len(ns) <= 1:
        what = "one code set per cell" if common == 1 else f"{common} seeds in every cell"
    else:
        what = "n = seeds per row or cell"
    return common, what


def _row_n(cells) -> int | None:
    ns = {c["n"] for c in cells if c is not None}
    return ns.pop() if len(ns) == 1 else None


def _caption(t: dict) -> str:
    common, what = _count_note(t)
    ds = f"{t['dataset']}, " if t["dataset"] else ""
    return (f"{ds}{DIRECTION_TITLES[t['direction']]}: mean ± sample std (ddof=1) over training seeds, {what}; "
            f"ties = {t['ties']}, radius averaging = {t['radius_average']}")


def _row_count(label: str, cells, t: dict) -> tuple[str, int | None]:
    """(row label, the count cells need not repeat): a table whose cells all share one count says
    it in the caption; otherwise a row whose cells share one says it in its label."""
    ns = {c["n"] for row in t["rows"] for m in row["cells"].values() for c in m.values()}
    if len(ns) <= 1:
        return label, next(iter(ns), 1)
    n = _row_n(cells)
    return (f"{label} (n={n})", n) if n is not None else (label, None)


def _cell_text(c, digits, common, plus="±"):
    if c is None:
        return "-"
    s = _fmt(c["mean"], digits)
    if c["std"] is not None:
        s += f" {plus} {_fmt(c['std'], digits)}"
    if c["n"] != common:
        s += f" (n={c['n']})"
    return s


def _best(cells):
    means = [c["mean"] for c in cells if c is not None and not math.isnan(c["mean"])]
    return max(means) if means else None


def _markdown(t, digits, columns) -> str:
    heads, rows = _columns(t, columns)
    best = [_best([r[1][j] for r in rows]) for j in range(len(heads))]
    lines = [f"**{_caption(t)}**", "", "| method | " + " | ".join(heads) + " |",
             "|---|" + "---:|" * len(heads)]
    for label, cells in rows:
        label, mark = _row_count(label, cells, t)
        txt = []
        for j, c in enumerate(cells):
            s = _cell_text(c, digits, mark)
            if c is not None and len(rows) > 1 and c["mean"] == best[j]:
                s = f"**{s}**"
            txt.append(s)
        lines.append(f"| {label} | " + " | ".join(txt) + " |")
    lines.append("")
    lines.extend(f"- {n}: {text}" for n, text in convention_lines(t["conventions"]) if _shown(n, t))
    return "\n".join(lines)


def _shown(names: str, t: dict) -> bool:
    return any(n.strip() in t["metrics"] for n in names.split(","))


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s)).replace("±", r"$\pm$").replace("→", r"$\to$")


def _latex(t, digits, columns) -> str:
    heads, rows = _columns(t, columns)
    best = [_best([r[1][j] for r in rows]) for j in range(len(heads))]
    out = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * len(heads) + "}", r"\toprule",
           "Method & " + " & ".join(_tex(h) for h in heads) + r" \\", r"\midrule"]
    for label, cells in rows:
        label, mark = _row_count(label, cells, t)
        txt = []
        for j, c in enumerate(cells):
            s = _tex(_cell_text(c, digits, mark))
            if c is not None and len(rows) > 1 and c["mean"] == best[j]:
                s = r"\textbf{" + s + "}"
            txt.append(s)
        out.append(_tex(label) + " & " + " & ".join(txt) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\caption{" + _tex(_caption(t)) + "}", r"\end{table}"]
    return "\n".join(out)


def _csv_rows(tables) -> list[dict]:
    rows = []
    for t in tables:
        for row in t["rows"]:
            for m, by_bits in row["cells"].items():
                for b, c in by_bits.items():
                    rows.append({"dataset": t["dataset"], "direction": t["direction"], "method": row["label"],
                                 "metric": m, "bits": b, "mean": c["mean"], "std": c["std"], "n": c["n"],
                                 "seeds": " ".join(str(s) for s in c["seeds"]), "ties": t["ties"],
                                 "radius_average": t["radius_average"]})
    return rows


def format_tables(tables: list[dict], fmt: str = "md", digits: int = 4, columns: str = "bits") -> str:
    """The tables in Markdown, CSV, LaTeX (booktabs) or JSON."""
    V.check_choice(fmt, FORMATS, "--format")
    V.check_choice(columns, ("bits", "metrics"), "--columns")
    digits = V.check_int(digits, "--digits", min_value=0, max_value=12)
    if fmt == "json":
        return json.dumps(_clean(tables), indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        rows = _csv_rows(tables)
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["dataset"], lineterminator="\n")
        w.writeheader()
        for r in rows:
            # full precision: a CSV is for programs (``--digits`` shapes md and latex)
            w.writerow({k: ("" if v is None else (repr(v) if isinstance(v, float) else v)) for k, v in r.items()})
        return buf.getvalue().rstrip("\n")
    render = _markdown if fmt == "md" else _latex
    return "\n\n".join(render(t, digits, columns) for t in tables)


# ---------------------------------------------------------------------------------- per query, tests

def per_query_csv(runs: list[Run]) -> str:
    """Every per-query value: one row per (code set, direction, query), one column per metric."""
    names: list[str] = []
    for r in runs:
        for d in r.result["directions"].values():
            names.extend(k for k in d.get("per_query", {}) if k not in names)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["source", "dataset", "method", "bits", "seed", "direction", "query"] + names)
    for r in runs:
        for dname, d in r.result["directions"].items():
            pq = d.get("per_query", {})
            for i in range(d["n_query"]):
                w.writerow([r.source, r.dataset, r.method, r.nbits, "" if r.seed is None else r.seed, dname, i]
                           + [repr(float(pq[m][i])) if m in pq else "" for m in names])
    return buf.getvalue()


def wilcoxon(runs: list[Run]) -> list[dict]:
    """Wilcoxon signed-rank test (two-sided, ``scipy.stats.wilcoxon``), paired over queries, of the
    two code sets in ``runs`` for every direction and per-query metric both have.

    Raises
    ------
    ValueError
        Not exactly two code sets, or code sets whose query sets differ (count or labels).
    """
    from scipy import stats

    if len(runs) != 2:
        raise ValueError(f"--wilcoxon: expected exactly two code sets to compare, got {len(runs)}")
    a, b = runs
    if a.query_labels.shape != b.query_labels.shape or not np.array_equal(a.query_labels, b.query_labels):
        raise ValueError(f"--wilcoxon: {a.source} and {b.source} do not share their queries (the test pairs "
                         "query i with query i): their query labels differ")
    out = []
    for d in DIRECTIONS:
        if d not in a.result["directions"] or d not in b.result["directions"]:
            continue
        pa, pb = a.result["directions"][d]["per_query"], b.result["directions"][d]["per_query"]
        for m in pa:
            if m not in pb:
                continue
            x, y = np.asarray(pa[m]), np.asarray(pb[m])
            diff = x - y
            nz = int(np.count_nonzero(diff))
            if nz == 0:
                stat, p = float("nan"), 1.0
            else:
                res = stats.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
                stat, p = float(res.statistic), float(res.pvalue)
            out.append({"direction": d, "metric": m, "mean_a": float(x.mean()), "mean_b": float(y.mean()),
                        "diff": float(diff.mean()), "statistic": stat, "p": p, "n_queries": int(x.size),
                        "n_nonzero": nz})
    return out


def format_wilcoxon(rows: list[dict], runs: list[Run], fmt: str, digits: int) -> str:
    a, b = runs
    if fmt == "json":
        return json.dumps(_clean({"a": a.source, "b": b.source, "test": "wilcoxon signed-rank, two-sided, paired "
                                  "over queries (scipy.stats.wilcoxon, zero_method='wilcox')", "rows": rows}), indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["a", "b"] + list(rows[0]) if rows else ["a", "b"], lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({"a": a.source, "b": b.source, **r})
        return buf.getvalue().rstrip("\n")
    head = ["direction", "metric", "A", "B", "A − B", "W", "p", "queries", "non-zero"]
    body = [[_ARROW[r["direction"]], r["metric"], _fmt(r["mean_a"], digits), _fmt(r["mean_b"], digits),
             _fmt(r["diff"], digits), _fmt(r["statistic"], 1), f"{r['p']:.3g}", str(r["n_queries"]),
             str(r["n_nonzero"])] for r in rows]
    title = (f"Wilcoxon signed-rank test, two-sided, paired over queries: A = {a.source}, B = {b.source}")
    if fmt == "latex":
        lines = [r"\begin{tabular}{ll" + "r" * 7 + "}", r"\toprule", " & ".join(_tex(h) for h in head) + r" \\",
                 r"\midrule"] + [" & ".join(_tex(c) for c in row) + r" \\" for row in body] + \
                [r"\bottomrule", r"\end{tabular}", "% " + title]
        return "\n".join(lines)
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * 7]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- figures

def plot_report(runs: list[Run], out_dir, formats=("png",)) -> list[Path]:
    """PR-by-radius and precision@k figures: one per dataset and bit length, one line per row
    (the mean curve over its seeds), one panel per direction."""
    from .figures import plot_curves

    labels = _row_labels(runs)
    written = []
    for ds in dict.fromkeys(r.dataset for r in runs):
        for b in sorted({r.nbits for r in runs if r.dataset == ds}):
            series = []
            for g in dict.fromkeys(r.group for r in runs if r.dataset == ds and r.nbits == b):
                rs = [r for r in runs if r.group == g and r.nbits == b]
                dirs = {}
                for d in DIRECTIONS:
                    have = [r.result["directions"][d]["metrics"] for r in rs if d in r.result["directions"]]
                    curves = {}
                    for key in ("pr", "pk"):
                        cs = [h[key] for h in have if key in h]
                        if not cs:
                            continue
                        if key == "pk" and len({tuple(c["k"]) for c in cs}) > 1:
                            raise ValueError(f"--plot: the runs of {labels[g]} at {b} bits have different "
                                             "precision@k grids (different database sizes)")
                        ys = {yk: np.mean([c[yk] for c in cs], axis=0).tolist()
                              for yk in (("precision", "recall") if key == "pr" else ("precision",))}
                        curves[key] = {**{k: v for k, v in cs[0].items() if k not in ys}, **ys}
                    if curves:
                        dirs[d] = curves
                n = len(rs)
                series.append({"label": labels[g] + (f" (mean of {n})" if n > 1 else ""), "directions": dirs})
            stem = (f"{ds}_" if ds and len({r.dataset for r in runs}) > 1 else "") + f"{b}bits_"
            sub = (f"{ds}, " if ds else "") + f"{b} bits"
            written += plot_curves(series, out_dir, formats, stem=_safe(stem), subtitle=sub)
    return written


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in name)


# ---------------------------------------------------------------------------------- CLI

def add_report_arguments(parser) -> None:
    """Add ``hashkit report``'s arguments to an ``argparse`` parser."""
    parser.add_argument("inputs", nargs="+", metavar="RUN_OR_FILE",
                        help="hashkit run folders (or folders of runs) and code files, as hashkit eval reads them")
    add_metric_arguments(parser, "map")
    add_read_arguments(parser)
    parser.add_argument("--format", default="md", choices=FORMATS, help="table format (default: md)")
    parser.add_argument("--digits", type=int, default=4, help="decimals (default: 4)")
    parser.add_argument("--columns", default="bits", choices=("bits", "metrics"),
                        help="columns are bit lengths (one block per metric; default) or metrics")
    parser.add_argument("--out", default=None, help="write the tables to this file instead of printing them")
    parser.add_argument("--per-query", default=None, metavar="FILE.csv",
                        help="also write every per-query value to this CSV (for significance tests)")
    parser.add_argument("--wilcoxon", action="store_true",
                        help="Wilcoxon signed-rank test, paired over queries, between the two code sets given "
                             "(after the tables; with --format csv a second CSV block, with json one document)")
    parser.add_argument("--plot", metavar="DIR", default=None,
                        help="also write PR-by-radius and precision@k figures (one line per method) into DIR")
    parser.add_argument("--plot-format", default="png", metavar="png,pdf,svg", help="figure formats (default: png)")


def run_report(args) -> int:
    """Run ``hashkit report`` from parsed arguments; returns the exit status."""
    from ._io import atomic_write_text

    formats = None
    if args.plot:
        from .figures import check_plot_dir, parse_formats

        check_plot_dir(args.plot)
        formats = parse_formats(args.plot_format)
    for opt, val in (("--out", args.out), ("--per-query", args.per_query)):
        if val is not None and Path(val).is_dir():
            raise ValueError(f"{opt}: expected a file to write, got the folder {val}")
    V.check_int(args.digits, "--digits", min_value=0, max_value=12)
    metrics = parse_metrics(args.metrics)
    if args.plot:
        metrics += [m for m in ("pr", "pk") if m not in metrics]
    runs = collect(args.inputs, metrics=metrics, per_query=bool(args.per_query or args.wilcoxon),
                   **metric_options(args), **read_options(args))
    tables = aggregate(runs)
    tests = wilcoxon(runs) if args.wilcoxon else None
    if args.format == "json":  # one JSON document
        doc: Any = _clean(tables) if tests is None else {
            "tables": _clean(tables), "wilcoxon": json.loads(format_wilcoxon(tests, runs, "json", args.digits))}
        text = json.dumps(doc, indent=1)
    else:
        text = format_tables(tables, args.format, args.digits, args.columns)
        if tests is not None:
            text += "\n\n" + format_wilcoxon(tests, runs, args.format, args.digits)
    if args.out:
        atomic_write_text(args.out, text + "\n")
        print(f"wrote {args.out}")
    else:
        print(text)
    if args.per_query:
        atomic_write_text(args.per_query, per_query_csv(runs))
        print(f"wrote {args.per_query}", file=sys.stderr if not args.out else sys.stdout)
    if args.plot:
        for p in plot_report(runs, args.plot, formats):
            print(f"wrote {p}", file=sys.stderr if not args.out else sys.stdout)
    return 0
