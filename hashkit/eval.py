"""``hashkit eval``: code files in, tables (or JSON, or figures) of retrieval metrics out.

A code set (:func:`hashkit.codefile.load_code_file`: hashkit's ``.npz`` and run folders, the
field's ``.mat`` / ``.npz`` / ``.pt`` layouts, DeepHash-pytorch's ``.npy`` folders) holds query
and database codes per modality and their labels. Every direction present is evaluated:
``i2t`` (image queries against the text database), ``t2i``, and ``i2i`` / ``t2t`` when both code
sets of a modality exist. Each direction costs one kernel pass that yields every requested
metric (:func:`hashkit.metrics.report`).

Metric names (``metrics=`` / ``--metrics``); ``@k`` ones are reported once per cut-off as
``map@50``, ``p@50`` ...:

=============  ==============================================================================
``map``        full-ranking MAP (:func:`hashkit.metrics.mean_average_precision`, ``ties``)
``map@k``      MAP@k, normalised by the relevant items inside the top k (hashing convention)
``p@k``        precision at k; ``r@k`` recall at k; ``ndcg@k`` / ``acg@k`` graded by shared labels
``p@rR``       precision within Hamming radius R (``p@r2`` ...), pooled over pairs by default
               (DCMH MATLAB) or per query (``--radius-average per-query``, thulab/DeepHash);
               the column says which: ``p@r2/pooled``, ``p@r2/query``
``map-ties``   full-ranking MAP under every tie rule: pessimistic, index, aware, optimistic
``pr``         precision and recall over Hamming radius 0..nbits (a curve, same averaging)
``pk``         precision at k on a grid of cut-offs, by default 1..min(N, 5000) (a curve)
=============  ==============================================================================

``--variant NAME`` adds MAP as one of the field's released loops computes it
(:func:`hashkit.metrics.map_compat`), e.g. ``dcmh-matlab-bug`` for the DCMH MATLAB numbers.

Every table and JSON object says what was measured, per direction: code length, numbers of
queries, database items and labels, queries with no relevant item, the tie rule, and each
metric's convention (cut-off, normalisation, averaging).

Usage::

    hashkit eval codes.npz --metrics map,map@k,p@r2 -k 50 500 --json
    hashkit eval runs/dcmh/ --plot figures/          # every run below runs/dcmh
    hashkit eval result.mat --packed-bits 64          # compactbit uint8 codes
    python -m hashkit.eval codes.mat
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from . import _validate as V
from ._command import IntList
from .codefile import CodeFile, LABEL_READINGS, code_sets, load_code_file, parse_keys
from .codes import BITORDERS
from .metrics.compat import VARIANTS, map_compat
from .metrics.radius import AVERAGE, DEFAULT_AVERAGE
from .metrics.ranking import TIES
from .metrics.report import METRIC_NAMES, PK_GRIDS, parse_metrics, report

__all__ = ["evaluate", "evaluate_all", "example_path", "format_table", "to_json", "plot_curves",
           "add_eval_arguments", "run_eval"]

DIRECTIONS = ("i2t", "t2i", "i2i", "t2t")
CLI_METRICS = ("map", "map@k", "p@k", "p@r2")
# variants without a cut-off / that need one (map_compat's rules)
_NO_K = ("dcmh-python", "ugach")
_NEED_K = ("topk", "hits-only")


def example_path() -> Path:
    """Path of the bundled example code file (32-bit mfeat CCA codes; see hashkit/examples)."""
    return Path(__file__).parent / "examples" / "mfeat_cca32.npz"


def _load(source, read):
    if isinstance(source, CodeFile):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_code_file(source, **read)
    raise TypeError(f"source: expected a path or a hashkit.codefile.CodeFile, got {V.describe(source)}")


def _parse_variants(variants) -> list[str]:
    if variants is None:
        return []
    if isinstance(variants, str):
        variants = [v.strip() for v in variants.split(",") if v.strip()]
    out = []
    for v in variants:
        V.check_choice(v, tuple(VARIANTS), "variant")
        out.append(v)
    return list(dict.fromkeys(out))


def evaluate(source, metrics: Sequence[str] | str = ("map",), k=None,
             directions: Sequence[str] | None = None, ties: str = "index",
             radius_average: str = DEFAULT_AVERAGE, pk_grid=None, variants: Sequence[str] | str | None = None,
             per_query: bool = False, keys=None, packed_bits: int | None = None, bitorder: str = "little",
             labels: str = "auto", backend: str = "auto", nthreads: int | None = None,
             client=None, nshards=None) -> dict:
    """Evaluate one code set in every (or the chosen) retrieval direction.

    Parameters
    ----------
    source : path to a code file or a folder holding one code set, or a :class:`hashkit.codefile.CodeFile`.
    metrics : names from :data:`METRIC_NAMES` (a sequence or a comma-separated string).
    k : int, sequence of ints in ``[1, N]``, or None (``DEFAULT_K`` = 50, 100, those <= N) for
        the ``@k`` metrics and the variants that take a cut-off.
    directions : subset of ``("i2t", "t2i", "i2i", "t2t")`` present in the file; None = all present.
    ties : tie rule for ``map``, ``map@k``, ``p@k``, ``r@k`` and ``pk`` (see :func:`hashkit.metrics.report`).
    radius_average : ``"pooled"`` (default) or ``"per-query"``, for ``p@rR`` and ``pr``.
    pk_grid : ``None`` / ``"linear"`` / ``"log"`` / explicit cut-offs for ``pk``.
    variants : names of :data:`hashkit.metrics.VARIANTS`: MAP as that released loop computes it,
        reported as ``map[NAME]`` (full ranking, where the variant has one) and ``map@k[NAME]``.
    per_query : also return per-query values (``"per_query"`` in each direction).
    keys, packed_bits, bitorder, labels : how to read the file (:func:`load_code_file`).
    backend, nthreads : kernel backend and thread count.
    client, nshards : a ``dask.distributed.Client`` (and database shards): compute on that
        cluster with :mod:`hashkit.distributed` (the same values bit for bit); None = here.

    Returns
    -------
    dict ``{"source": str, "meta": dict, "directions": {direction: {...}}}``; each direction holds
    ``nbits``, ``n_query``, ``n_db``, ``n_labels``, ``empty_queries``, ``ties``, ``radius_average``,
    ``metrics`` (floats for scalars, NaN where undefined; curves as dicts of lists:
    ``pr``: radius/precision/recall, ``pk``: k/precision; ``map-ties``: a dict of four floats)
    and ``conventions`` (one sentence per metric).

    Raises
    ------
    TypeError, ValueError
        Bad ``source``, unknown metric / direction / tie rule / variant, a direction the file
        lacks, a cut-off outside ``[1, N]``; plus whatever the file reader raises (naming file
        and key).

    Examples
    --------
    >>> res = evaluate(example_path(), metrics=("map", "map@k"), k=50)
    >>> sorted(res["directions"]), sorted(res["directions"]["i2t"]["metrics"])
    (['i2i', 'i2t', 't2i', 't2t'], ['map', 'map@50'])
    """
    wanted = parse_metrics(metrics)
    V.check_choice(ties, TIES, "ties")
    V.check_choice(radius_average, AVERAGE, "radius_average")
    chosen_variants = _parse_variants(variants)
    cf = _load(source, dict(keys=keys, packed_bits=packed_bits, bitorder=bitorder, labels=labels))
    if cf.query_labels is None:
        raise ValueError(f"source: {cf.path or 'the code file'} holds codes without labels "
                         "(as hashkit encode writes them without --labels); evaluating needs "
                         "query_labels and db_labels, uint8 multi-hot (n, nlabels), in the file")
    present = cf.directions()
    if directions is None:
        chosen = [d for d in DIRECTIONS if d in present]
    else:
        if isinstance(directions, str):
            directions = [d.strip() for d in directions.split(",") if d.strip()]
        chosen = []
        for d in directions:
            V.check_choice(d, DIRECTIONS, "directions")
            if d not in present:
                raise ValueError(f"directions: {d!r} needs code sets the file lacks; "
                                 f"present: {', '.join(present) or 'none'}")
            chosen.append(d)
    if not chosen:
        raise ValueError("source: the file holds no query/database pair of code sets to evaluate")
    rep, compat = report, map_compat
    if client is not None:
        import functools

        from . import distributed as hd

        rep = functools.partial(hd.report, client=client, nshards=nshards)
        compat = functools.partial(hd.map_compat, client=client, nshards=nshards)
    results = {}
    for d in chosen:
        q, r = present[d]
        res = rep(q, r, cf.query_labels, cf.db_labels, metrics=wanted, ks=k, ties=ties,
                     radius_average=radius_average, pk_grid_spec=pk_grid, backend=backend,
                     nthreads=nthreads, details=True, per_query=per_query)
        for v in chosen_variants:
            _add_variant(res, v, q, r, cf, k, backend, nthreads, compat)
        results[d] = res
    return {"source": str(cf.path) if cf.path else "", "meta": cf.meta, "directions": results}


def _add_variant(res, v, q, r, cf, k, backend, nthreads, map_compat=map_compat):
    n = r.n
    ks = [] if v in _NO_K else ([x for x in (50, 100) if x <= n] or [n] if k is None
                                else [int(x) for x in V.check_ks(k, n, "k")])
    source, summary = VARIANTS[v]
    text = f"variant {v!r}: {summary} (released in {source})"
    if v not in _NEED_K:
        key = f"map[{v}]"
        res["metrics"][key] = map_compat(q, r, cf.query_labels, cf.db_labels, v, backend=backend, nthreads=nthreads)
        res["conventions"][key] = text
    for kk in ks:
        key = f"map@{kk}[{v}]"
        res["metrics"][key] = map_compat(q, r, cf.query_labels, cf.db_labels, v, k=kk, backend=backend,
                                         nthreads=nthreads)
        res["conventions"][key] = f"{text}; k = {kk}"


def evaluate_all(sources, **kwargs) -> list[dict]:
    """:func:`evaluate` for every code set the sources stand for (folders of runs expand,
    see :func:`hashkit.codefile.code_sets`), in order."""
    if isinstance(sources, (str, os.PathLike, CodeFile)):
        sources = [sources]
    out = []
    for s in sources:
        for one in ([s] if isinstance(s, CodeFile) else code_sets(s)):
            out.append(evaluate(one, **kwargs))
    return out


# -------------------------------------------------------------------------------- output

def _clean(x):
    """JSON-safe: NaN -> None, NumPy scalars and arrays -> Python."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def to_json(results) -> str:
    """JSON of one :func:`evaluate` result (an object) or several (an array); NaN written as null."""
    return json.dumps(_clean(results), sort_keys=False)


def _label(res: dict) -> str:
    meta = res.get("meta") or {}
    parts = [str(meta[k]) for k in ("method", "dataset") if meta.get(k)]
    if meta.get("seed") is not None and meta.get("method"):
        parts.append(f"seed {meta['seed']}")
    return " ".join(parts) or (Path(res["source"]).name if res.get("source") else "codes")


def format_table(results: dict, digits: int = 4) -> str:
    """A plain-text table of one :func:`evaluate` result: one row per direction, the counts that
    say what was measured, one column per scalar metric, then each metric's convention.

    Curves (``pr``, ``pk``) are not tabulated (see ``--json`` / ``--plot``); ``map-ties`` is
    shown as four columns.
    """
    digits = V.check_int(digits, "digits", min_value=0, max_value=12)
    dirs = results["directions"]
    rows, conv = {}, {}
    for d, res in dirs.items():
        row = {"bits": res["nbits"], "queries": res["n_query"], "db": res["n_db"], "labels": res["n_labels"],
               "empty": res["empty_queries"]}
        for name, v in res["metrics"].items():
            if name == "map-ties":
                for t, x in v.items():
                    row[f"map[{t}]"] = x
            elif not isinstance(v, dict):
                row[name] = v
        rows[d] = row
        for name, text in res["conventions"].items():
            conv.setdefault(name, text)
    cols = list(dict.fromkeys(c for row in rows.values() for c in row))

    def fmt(x):
        if x is None:
            return "-"
        if isinstance(x, (int, np.integer)):
            return str(x)
        return "nan" if math.isnan(x) else f"{x:.{digits}f}"

    header = ["direction"] + cols
    body = [[d] + [fmt(row.get(c)) for c in cols] for d, row in rows.items()]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    first = next(iter(dirs.values()))
    lines.append("")
    lines.append(f"bits = code length; queries, db = items; labels = label count; empty = queries with no "
                 f"relevant item; ties = {first['ties']}; radius averaging = {first['radius_average']}.")
    lines.extend(f"  {names}: {text}" for names, text in convention_lines(conv))
    if any(isinstance(v, dict) for res in dirs.values() for k, v in res["metrics"].items() if k != "map-ties"):
        lines.append("  (curves are in --json / --plot)")
    return "\n".join(lines)


def convention_lines(conv: dict[str, str]) -> list[tuple[str, str]]:
    """Conventions grouped by family for a legend: ``("map@50, map@100", "AP over the top k ...")``."""
    import re

    groups: dict[str, list[str]] = {}
    for name, text in conv.items():
        groups.setdefault(re.sub(r"; [kr] = \d+$", "", text), []).append(name)
    return [(", ".join(names), text) for text, names in groups.items()]


def plot_curves(results, out_dir: str | os.PathLike, formats=("png",)) -> list[Path]:
    """Figures of one or several :func:`evaluate` results: ``pr_radius`` and ``precision_at_k``,
    one panel per direction, one line per code set (see :func:`hashkit.figures.plot_curves`)."""
    from .figures import plot_curves as _plot

    if isinstance(results, dict):
        results = [results]
    labels = [_label(r) for r in results]
    if len(set(labels)) < len(labels):  # two runs of one method: tell them apart by bits / file
        labels = [f"{lab} ({next(iter(r['directions'].values()))['nbits']} bits)" for lab, r in zip(labels, results)]
    if len(set(labels)) < len(labels):
        labels = [f"{lab} {Path(r['source']).parent.name}/{Path(r['source']).name}" for lab, r in zip(labels, results)]
    series = [{"label": lab, "directions": {d: v["metrics"] for d, v in r["directions"].items()}}
              for lab, r in zip(labels, results)]
    bits = {v["nbits"] for r in results for v in r["directions"].values()}
    return _plot(series, out_dir, formats, subtitle=f"{bits.pop()} bits" if len(bits) == 1 else "")


# -------------------------------------------------------------------------------- CLI

def add_read_arguments(parser) -> None:
    """The options that say how to read a code file (shared by eval, report and search)."""
    parser.add_argument("--keys", default=None, metavar="ROLE=KEY,...",
                        help="key names outside the alias list, e.g. query_image=Qi,db_image=Di,"
                             "query_labels=QL,db_labels=DL (roles: query_image, query_text, db_image, "
                             "db_text, query_labels, db_labels, nbits)")
    parser.add_argument("--packed-bits", type=int, default=None, metavar="N",
                        help="codes are bits packed into integers (MATLAB compactbit / FAISS uint8, "
                             "np.packbits, int64 words) holding N bits each")
    parser.add_argument("--bitorder", default="little", choices=BITORDERS,
                        help="bit order of packed codes: little (compactbit, FAISS; default) or big (np.packbits)")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--class-ids", action="store_true",
                   help="read a single 0/1 label column as class ids (two classes)")
    g.add_argument("--multi-hot", action="store_true",
                   help="read a single 0/1 label column as one binary label (rows with 0 have none)")


def read_options(args) -> dict:
    """``load_code_file`` keyword arguments from :func:`add_read_arguments`' options."""
    labels = "class-ids" if args.class_ids else ("multi-hot" if args.multi_hot else "auto")
    assert labels in LABEL_READINGS
    return dict(keys=parse_keys(args.keys), packed_bits=args.packed_bits, bitorder=args.bitorder, labels=labels)


def add_metric_arguments(parser, default_metrics: str) -> None:
    """The options that choose and define the metrics (shared by eval and report)."""
    parser.add_argument("--metrics", default=default_metrics,
                        help=f"comma-separated, from: {', '.join(METRIC_NAMES)} (default: %(default)s)")
    parser.add_argument("-k", "--k", action=IntList, default=None, metavar="K",
                        help="cut-offs for the @k metrics: -k 50 100 or -k 50,100 (default: 50 and 100 where <= N)")
    parser.add_argument("--ties", default="index", choices=TIES, help="tie rule for map, map@k, p@k, r@k, pk")
    parser.add_argument("--radius-average", default=DEFAULT_AVERAGE, choices=AVERAGE,
                        help="precision within a radius and the PR curve: pooled over all pairs (DCMH MATLAB, "
                             "default) or the mean over queries (thulab/DeepHash)")
    parser.add_argument("--pk-grid", default=None, metavar="linear|log|K,K,...",
                        help="cut-offs of the precision@k curve: linear (default: 1, then 50 steps to "
                             "min(N, 5000)), log, or a list")
    parser.add_argument("--variant", default=None, metavar="NAME[,NAME]",
                        help=f"also MAP as a released loop computes it: {', '.join(VARIANTS)}")
    parser.add_argument("--directions", default=None, help="subset of i2t,t2i,i2i,t2t (default: all present)")
    parser.add_argument("--backend", default="auto", choices=("auto", "cpp", "numba", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")


def metric_options(args) -> dict:
    """``evaluate`` keyword arguments from :func:`add_metric_arguments`' options."""
    grid = args.pk_grid
    if grid is not None and grid not in PK_GRIDS:
        try:
            grid = [int(x) for x in grid.replace(" ", ",").split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--pk-grid: expected linear, log or comma-separated integers, "
                             f"got {args.pk_grid!r}") from None
    return dict(k=args.k, directions=args.directions, ties=args.ties, radius_average=args.radius_average,
                pk_grid=grid, variants=args.variant, backend=args.backend, nthreads=args.threads)


def add_eval_arguments(parser) -> None:
    """Add ``hashkit eval``'s arguments to an ``argparse`` parser."""
    parser.add_argument("file", nargs="*", metavar="FILE",
                        help="code file(s) or folder(s): hashkit .npz or run folder, research .mat/.npz/.pt, "
                             "DeepHash-pytorch .npy folder")
    parser.add_argument("--example", action="store_true",
                        help="evaluate the bundled example (32-bit mfeat CCA codes) instead of FILE")
    add_metric_arguments(parser, ",".join(CLI_METRICS))
    add_read_arguments(parser)
    parser.add_argument("--digits", type=int, default=4, help="decimals in the table (default: 4)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: one object per code set (an array when there are several)")
    parser.add_argument("--plot", metavar="DIR", default=None,
                        help="also write PR-by-radius and precision@k figures into the folder DIR")
    parser.add_argument("--plot-format", default="png", metavar="png,pdf,svg", help="figure formats (default: png)")
    from .distributed._cli import add_scheduler_arguments

    add_scheduler_arguments(parser, shards=True)


def run_eval(args) -> int:
    """Run ``hashkit eval`` from parsed arguments; returns the exit status."""
    if args.example and args.file:
        raise ValueError("FILE: give code files or --example, not both")
    if not args.example and not args.file:
        raise ValueError("FILE: expected a code file or folder (or --example)")
    formats = None
    if args.plot:
        from .figures import check_plot_dir, parse_formats

        check_plot_dir(args.plot)
        formats = parse_formats(args.plot_format)
    V.check_int(args.digits, "--digits", min_value=0, max_value=12)
    sources = [example_path()] if args.example else args.file
    metrics = parse_metrics(args.metrics)
    if args.plot:
        metrics += [m for m in ("pr", "pk") if m not in metrics]
    kwargs = dict(metrics=metrics, **metric_options(args), **read_options(args))
    sets = [one for s in sources for one in code_sets(s)]
    if args.shards is not None and not args.scheduler:
        raise ValueError("--shards: only with --scheduler ADDRESS (the database is split over that cluster)")
    if args.scheduler:
        from .distributed._cli import cluster

        with cluster(args.scheduler) as client:
            results = [evaluate(one, client=client, nshards=args.shards, **kwargs) for one in sets]
    else:
        results = [evaluate(one, **kwargs) for one in sets]
    if args.json:
        print(to_json(results[0] if len(results) == 1 else results))
    else:
        for i, res in enumerate(results):
            if i:
                print()
            what = _label(res)
            print(res["source"] if what == Path(res["source"]).name else f"{res['source']} ({what})")
            print(format_table(res, args.digits))
    if args.plot:
        for p in plot_curves(results, args.plot, formats):
            print(f"wrote {p}", file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":  # python -m hashkit.eval FILE ...: the same as hashkit eval FILE ...
    from ._command import run_command

    sys.exit(run_command("hashkit eval", "evaluate a saved code file", add_eval_arguments, run_eval, sys.argv[1:]))
