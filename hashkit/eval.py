"""``hashkit eval``: a saved code file in, a table (or JSON, or plots) of retrieval metrics out.

A code file holds query and database codes per modality and their labels
(:func:`hashkit.codefile.load_code_file` reads hashkit's ``.npz`` and the field's ``.mat`` /
``.npz`` layouts). Every direction present is evaluated: ``i2t`` (image queries against the text
database), ``t2i``, and ``i2i`` / ``t2t`` when both code sets of a modality exist. Each direction
costs one kernel pass that yields every requested metric.

Metric names (``metrics=`` / ``--metrics``); ``@k`` ones are reported once per cut-off as
``map@50``, ``p@50`` ...:

=============  ==============================================================================
``map``        full-ranking MAP (:func:`hashkit.metrics.mean_average_precision`, ``ties``)
``map@k``      MAP@k, normalised by the relevant items inside the top k (hashing convention)
``p@k``        precision at k; ``r@k`` recall at k; ``ndcg@k`` / ``acg@k`` graded by shared labels
``p@r2``       precision within Hamming radius 2, mean over queries (empty lookup = 0)
``map-ties``   full-ranking MAP under every tie rule: pessimistic, index, aware, optimistic
``pr``         precision and recall over Hamming radius 0..nbits, pooled (a curve)
``pk``         precision at k on a grid of cut-offs up to N (a curve)
=============  ==============================================================================

Usage::

    hashkit eval codes.npz --metrics map,map@k,p@r2 -k 50,500 --json
    hashkit eval --example --plot plots/
    python -m hashkit.eval codes.mat

The numbers of one direction come from :func:`hashkit.metrics.report` (one kernel pass).
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
from .codefile import CodeFile, load_code_file
from .metrics.ranking import TIES
from .metrics.report import METRIC_NAMES, parse_metrics, report

__all__ = ["evaluate", "example_path", "format_table", "to_json", "plot_curves",
           "add_eval_arguments", "run_eval"]

DIRECTIONS = ("i2t", "t2i", "i2i", "t2t")
CLI_METRICS = ("map", "map@k", "p@k", "p@r2")


def example_path() -> Path:
    """Path of the bundled example code file (32-bit mfeat CCA codes; see hashkit/examples)."""
    return Path(__file__).parent / "examples" / "mfeat_cca32.npz"


def _load(source):
    if isinstance(source, CodeFile):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_code_file(source)
    raise TypeError(f"source: expected a path or a hashkit.codefile.CodeFile, got {V.describe(source)}")


def evaluate(source, metrics: Sequence[str] | str = ("map",), k=None,
             directions: Sequence[str] | None = None, ties: str = "index", backend: str = "auto",
             nthreads: int | None = None) -> dict:
    """Evaluate a code file in every (or the chosen) retrieval direction.

    Parameters
    ----------
    source : path to a code file, or a :class:`hashkit.codefile.CodeFile`.
    metrics : names from :data:`METRIC_NAMES` (a sequence or a comma-separated string).
    k : int, sequence of ints in ``[1, N]``, or None (``DEFAULT_K`` = 50, 100, those <= N) for
        the ``@k`` metrics.
    directions : subset of ``("i2t", "t2i", "i2i", "t2t")`` present in the file; None = all present.
    ties : tie rule for ``map``, ``map@k``, ``p@k`` and ``r@k`` (see :func:`hashkit.metrics.report`).
    backend, nthreads : kernel backend and thread count.

    Returns
    -------
    dict ``{direction: {metric name: float | dict of lists}}``; scalar metrics are floats (NaN
    where undefined), curves are dicts of Python lists (``pr``: radius/precision/recall;
    ``pk``: k/precision); ``map-ties``: a dict of four floats.

    Raises
    ------
    TypeError, ValueError
        Bad ``source``, unknown metric / direction / tie rule, a direction the file lacks, a
        cut-off outside ``[1, N]``; plus whatever the file reader raises (naming file and key).

    Examples
    --------
    >>> res = evaluate(example_path(), metrics=("map", "map@k"), k=50)
    >>> sorted(res), sorted(res["i2t"])
    (['i2i', 'i2t', 't2i', 't2t'], ['map', 'map@50'])
    """
    cf = _load(source)
    wanted = parse_metrics(metrics)
    V.check_choice(ties, TIES, "ties")
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
    results = {}
    for d in chosen:
        q, r = present[d]
        results[d] = report(q, r, cf.query_labels, cf.db_labels, metrics=wanted, ks=k, ties=ties,
                            backend=backend, nthreads=nthreads)
    return results


# -------------------------------------------------------------------------------- output

def _clean(x):
    """JSON-safe: NaN -> None, NumPy scalars -> Python."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def to_json(results: dict) -> str:
    """One JSON object keyed by direction, each holding metrics by name (NaN written as null)."""
    return json.dumps(_clean(results), sort_keys=False)


def format_table(results: dict, digits: int = 4) -> str:
    """A plain-text table: one row per direction, one column per scalar metric.

    Curves (``pr``, ``pk``) are not tabulated (see ``--json`` / ``--plot``); ``map-ties`` is
    shown as four columns.
    """
    rows = {}
    for d, mets in results.items():
        row = {}
        for name, v in mets.items():
            if name == "map-ties":
                for t, x in v.items():
                    row[f"map[{t}]"] = x
            elif not isinstance(v, dict):
                row[name] = v
        rows[d] = row
    cols = list(dict.fromkeys(c for row in rows.values() for c in row))
    if not cols:
        return "(only curves requested: use --json or --plot)"

    def fmt(x):
        return "-" if x is None else ("nan" if isinstance(x, float) and math.isnan(x) else f"{x:.{digits}f}")

    header = ["direction"] + cols
    body = [[d] + [fmt(row.get(c)) for c in cols] for d, row in rows.items()]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_curves(results: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``pr_radius.png`` and ``precision_at_k.png`` (one line per direction) to ``out_dir``.

    Uses matplotlib's object API (no pyplot, no global backend change); each file is written
    atomically. Returns the paths written.

    Raises
    ------
    RuntimeError
        matplotlib is not installed (``pip install hashkit[plot]``).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise RuntimeError(f"--plot needs matplotlib ({exc}); install it with: pip install 'hashkit[plot]'") from None
    from ._io import atomic_path

    out_dir = Path(out_dir)
    written = []
    specs = [("pr", "pr_radius.png", "recall", "precision", "Precision-recall over Hamming radius"),
             ("pk", "precision_at_k.png", "k", "precision", "Precision at k")]
    for key, fname, xk, yk, title in specs:
        curves = {d: m[key] for d, m in results.items() if key in m}
        if not curves:
            continue
        fig = Figure(figsize=(5, 4), dpi=120)
        ax = fig.add_subplot()
        for d, c in curves.items():
            ax.plot(c[xk], c[yk], marker=".", label=d)
        ax.set_xlabel(xk)
        ax.set_ylabel(yk)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / fname
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
        written.append(path)
    return written


# -------------------------------------------------------------------------------- CLI

def add_eval_arguments(parser) -> None:
    """Add ``hashkit eval``'s arguments to an ``argparse`` parser."""
    parser.add_argument("file", nargs="?", help="code file (.npz from hashkit, or a research .mat/.npz)")
    parser.add_argument("--example", action="store_true",
                        help="evaluate the bundled example (32-bit mfeat CCA codes) instead of FILE")
    parser.add_argument("--metrics", default=",".join(CLI_METRICS),
                        help=f"comma-separated, from: {', '.join(METRIC_NAMES)} (default: %(default)s)")
    parser.add_argument("-k", "--k", default=None,
                        help="cut-offs for the @k metrics, comma-separated (default: 50,100 where <= N)")
    parser.add_argument("--directions", default=None, help="subset of i2t,t2i,i2i,t2t (default: all present)")
    parser.add_argument("--ties", default="index", choices=TIES, help="tie rule for map and map@k")
    parser.add_argument("--backend", default="auto", choices=("auto", "cpp", "numba", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by direction")
    parser.add_argument("--plot", metavar="DIR", default=None,
                        help="also write PR and precision@k curves as PNG files into DIR")


def _parse_ks(text):
    if text is None:
        return None
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"k: expected comma-separated integers, got {text!r}") from None


def run_eval(args) -> int:
    """Run ``hashkit eval`` from parsed arguments; returns the exit status."""
    if args.example and args.file:
        raise ValueError("file: give a code file or --example, not both")
    if not args.example and not args.file:
        raise ValueError("file: expected a code file path (or --example)")
    source = example_path() if args.example else args.file
    metrics = parse_metrics(args.metrics)
    if args.plot:
        metrics += [m for m in ("pr", "pk") if m not in metrics]
    res = evaluate(source, metrics=metrics, k=_parse_ks(args.k), directions=args.directions,
                   ties=args.ties, backend=args.backend, nthreads=args.threads)
    if args.json:
        print(to_json(res))
    else:
        print(f"{Path(source).name}: ties={args.ties}")
        print(format_table(res))
    if args.plot:
        for p in plot_curves(res, args.plot):
            print(f"wrote {p}", file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":  # python -m hashkit.eval FILE ...: the same as hashkit eval FILE ...
    from ._command import run_command

    sys.exit(run_command("hashkit eval", "evaluate a saved code file", add_eval_arguments, run_eval, sys.argv[1:]))
