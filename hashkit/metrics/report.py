"""Many metrics from one kernel pass: :func:`report` (what ``hashkit eval`` prints per direction).

Besides the numbers, :func:`report` can say what was measured (``details=True``): the code
length, the numbers of queries, database items and labels, the queries with no relevant item,
the tie rule and radius averaging, and for every metric its convention (cut-off, normalisation,
averaging) in words, so that a table or JSON object cannot be read two ways.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from .. import _validate as V
from ._stats import gather, prepare_pair
from .radius import AVERAGE, DEFAULT_AVERAGE, _precision_radius, _precision_radius_per_query, _recall_radius
from .ranking import (TIES, _acg_values, _ap_values, _mean, _ndcg_values, _precision_values,
                      _recall_values)

__all__ = ["report"]

#: Metric names :func:`report` understands (``@k`` ones are reported once per cut-off; ``p@rR``
#: stands for any radius: ``p@r0``, ``p@r2`` ..., optionally with its averaging,
#: ``p@r2/query`` or ``p@r2/pooled``).
METRIC_NAMES = ("map", "map@k", "p@k", "r@k", "ndcg@k", "acg@k", "p@rR", "map-ties", "pr", "pk")
#: Cut-offs of the ``@k`` metrics when none are given (those <= N).
DEFAULT_K = (50, 100)
#: The precision@k curve's default range is 1 .. min(N, PK_MAX) (the range papers plot).
PK_MAX = 5000
PK_GRIDS = ("linear", "log")
_AT_K = ("map@k", "p@k", "r@k", "ndcg@k", "acg@k")
_FIXED = ("map", "map@k", "p@k", "r@k", "ndcg@k", "acg@k", "map-ties", "pr", "pk")
_RADIUS = re.compile(r"^p@r(\d+)(?:/(query|pooled))?$")
_SUFFIX = {"per-query": "query", "pooled": "pooled"}


def parse_metrics(metrics) -> list[str]:
    """Metric names from a sequence or a comma-separated string: checked, de-duplicated, in order."""
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    elif not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics: expected metric names (a list or a comma-separated string), "
                        f"got {V.describe(metrics)}")
    metrics = list(metrics)
    if not metrics:
        raise ValueError(f"metrics: expected one or more of {', '.join(METRIC_NAMES)}, got none")
    for m in metrics:
        if not isinstance(m, str) or (m not in _FIXED and not _RADIUS.match(m)):
            hint = ""
            if isinstance(m, str) and re.match(r"^(map|p|r|ndcg|acg)@\d+$", m):
                hint = f" (cut-offs are given apart: {m.split('@')[0]}@k with k = {m.split('@')[1]})"
            raise ValueError(f"metrics: expected names from {', '.join(METRIC_NAMES)} (p@rR for a radius R, "
                             f"e.g. p@r2 or p@r2/query), got {m!r}{hint}")
    return list(dict.fromkeys(metrics))


def _k_list(k, n_db: int) -> list[int]:
    if k is None:
        return [x for x in DEFAULT_K if x <= n_db] or [n_db]
    return [int(x) for x in V.check_ks(k, n_db, "k")]


def pk_grid(n_db: int, grid=None) -> np.ndarray:
    """Cut-offs of the precision@k curve.

    ``grid``: ``None`` or ``"linear"`` (the default: 1, then 50 evenly spaced cut-offs up to
    ``min(N, 5000)``: 1, 100, 200 ... 5000 at NUS-WIDE scale), ``"log"`` (40 log-spaced cut-offs
    over the same range), or explicit cut-offs in ``[1, N]``.
    """
    if grid is None or isinstance(grid, str):
        grid = "linear" if grid is None else grid
        V.check_choice(grid, PK_GRIDS, "pk_grid")
        kmax = min(n_db, PK_MAX)
        if grid == "linear":
            pts = np.r_[1.0, np.linspace(0, kmax, 51)[1:]]
        else:
            pts = np.geomspace(1, kmax, 40)
        return np.unique(np.clip(np.round(pts), 1, kmax).astype(np.int64))
    return V.check_ks(grid, n_db, "pk_grid")


def _radius_spec(name: str, radius_average: str) -> tuple[int, str]:
    m = _RADIUS.match(name)
    avg = radius_average if m.group(2) is None else {"query": "per-query", "pooled": "pooled"}[m.group(2)]
    return int(m.group(1)), avg


def radius_key(r: int, average: str) -> str:
    """The column name of precision within radius ``r``: ``p@r2/pooled``, ``p@r2/query``."""
    return f"p@r{r}/{_SUFFIX[average]}"


def _conventions(ties: str, radius_average: str) -> dict[str, str]:
    """One sentence per metric family; ``@k`` and radius metrics get "; k = 50" / "; r = 2" appended."""
    tie = {"index": "ties by database index (stable sort, as MATLAB sort and np.argsort(kind='stable'))",
           "aware": "ties tie-aware: the expectation over random orders within each tie (He et al., 2018)",
           "optimistic": "ties optimistic: relevant items first within each tie",
           "pessimistic": "ties pessimistic: relevant items last within each tie"}[ties]
    avg = {"pooled": "pooled: relevant pairs / retrieved pairs over all queries together "
                     "(DCMH MATLAB calcPreRecRadiusLabel.m); 0 when nothing is retrieved",
           "per-query": "per query: relevant / retrieved for each query, a query retrieving nothing "
                        "counting 0, then the mean over queries (thulab/DeepHash)"}
    return {
        "map": f"AP over the full Hamming ranking, {tie}; AP = mean precision at the positions of all "
               "R relevant items; a query with no relevant item counts 0; mean over all queries",
        "map@k": f"AP over the top k, {tie}; divided by the relevant items inside the top k (the "
                 "hashing papers' MAP@k); no relevant item in the top k counts 0; mean over all queries",
        "p@k": f"relevant items among the first k / k, {tie}; mean over all queries",
        "r@k": f"relevant items among the first k / R, {tie}; a query with R = 0 counts 0; mean over all "
               "queries",
        "ndcg@k": "DCG@k = sum of gain / log2(position + 1) over the first k, gain = number of shared "
                  "labels, ties by database index; divided by the ideal DCG@k; ideal DCG 0 counts 0; "
                  "mean over all queries",
        "acg@k": "mean number of shared labels over the first k positions, ties by database index; "
                 "mean over all queries",
        "p@r/query": "items within Hamming distance <= r (whole ties); " + avg["per-query"],
        "p@r/pooled": "items within Hamming distance <= r (whole ties); " + avg["pooled"],
        "map-ties": "full-ranking MAP under each tie rule (pessimistic <= index, aware <= optimistic)",
        "pr": f"precision and recall within every radius 0..nbits, {avg[radius_average]}; recall of a "
              "query with R = 0 counts 0",
        "pk": f"precision at each k of the grid, {tie}; mean over all queries",
    }


def report(qB, rB, qL, rL, metrics: Sequence[str] | str = ("map",), ks=None, ties: str = "index",
           radius_average: str = DEFAULT_AVERAGE, pk_grid_spec=None, backend: str = "auto",
           nthreads: int | None = None, details: bool = False, per_query: bool = False) -> dict:
    """Every requested metric of one query set against one database, from one kernel pass.

    The numbers are those of the single metric functions on the same inputs (they share the
    statistics layer and the per-query formulas); only the pass is shared.

    =============  ===========================================================================
    name           value (definitions: :mod:`hashkit.metrics` functions named)
    =============  ===========================================================================
    ``map``        full-ranking MAP, ``ties`` (:func:`mean_average_precision`)
    ``map@k``      MAP@k, hashing normalisation (relevant items inside the top k), ``ties``
    ``p@k``        precision at k, ``ties`` (:func:`precision_at_k`)
    ``r@k``        recall at k, ``ties``; queries with no relevant item count 0 (:func:`recall_at_k`)
    ``ndcg@k``     NDCG@k over the stable ranking, graded by shared labels (:func:`ndcg_at_k`)
    ``acg@k``      ACG@k over the stable ranking (:func:`acg_at_k`)
    ``p@rR``       precision within Hamming radius R (any R >= 0), averaged by ``radius_average``
                   or as named (``p@r2/query``, ``p@r2/pooled``); reported as ``p@r2/pooled`` or
                   ``p@r2/query`` (:func:`precision_within_radius`)
    ``map-ties``   full-ranking MAP under each tie rule: pessimistic, index, aware, optimistic
    ``pr``         precision and recall at every radius 0..nbits, ``radius_average``
                   (:func:`pr_curve_radius`)
    ``pk``         precision at the cut-offs of ``pk_grid_spec`` (default 1..min(N, 5000),
                   evenly spaced), ``ties``
    =============  ===========================================================================

    Parameters
    ----------
    qB, rB, qL, rL : codes and labels, as :func:`hashkit.metrics.mean_average_precision`.
    metrics : names from the table (a sequence or a comma-separated string).
    ks : cut-offs for the ``@k`` metrics: int or ints in ``[1, N]``; None = 50 and 100 (those
        <= N, else N).
    ties : the tie rule of ``map``, ``map@k``, ``p@k``, ``r@k`` and ``pk``.
    radius_average : ``"pooled"`` (default, DCMH MATLAB) or ``"per-query"`` (thulab/DeepHash), for
        ``p@rR`` without a suffix and for ``pr``.
    pk_grid_spec : ``None`` / ``"linear"`` / ``"log"`` / explicit cut-offs (see :func:`pk_grid`).
    backend, nthreads : as the metric functions.
    details : also say what was measured (see Returns).
    per_query : with ``details``, also the per-query value of every scalar metric that has one
        (``p@rR/pooled`` and ``map-ties`` have none), for significance tests.

    Returns
    -------
    ``details=False``: dict ``{name: value}``: floats for scalar metrics (``map@50``, ``p@100``,
    ``p@r2/pooled`` ... one key per cut-off / radius), a dict of four floats for ``map-ties``,
    dicts of lists for the curves (``pr``: radius / precision / recall; ``pk``: k / precision).

    ``details=True``: ``{"nbits", "n_query", "n_db", "n_labels", "empty_queries", "ties",
    "radius_average", "metrics": {as above}, "conventions": {name: text}}`` and, with
    ``per_query``, ``"per_query": {name: float64 (Q,)}``.

    Raises
    ------
    TypeError, ValueError
        As the metric functions; an unknown metric name; a cut-off outside ``[1, N]``.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> r = report(qB, rB, qL, rL, metrics="map,p@k,p@r1", ks=2)
    >>> round(r["map"], 4), r["p@2"], r["p@r1/pooled"]
    (0.5833, 0.5, 0.5)
    """
    wanted = check_report_options(metrics, ties, radius_average, details, per_query)
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    return assemble(p, gather, wanted, ks, ties, radius_average, pk_grid_spec, details, per_query)


def check_report_options(metrics, ties: str, radius_average: str, details: bool, per_query: bool) -> list[str]:
    """The metric names :func:`report` computes, after checking its options (shared with the
    sharded report of :mod:`hashkit.distributed`)."""
    wanted = parse_metrics(metrics)
    V.check_bool(details, "details")
    V.check_bool(per_query, "per_query")
    V.check_choice(ties, TIES, "ties")
    V.check_choice(radius_average, AVERAGE, "radius_average")
    return wanted


def assemble(p, gather_fn, wanted: list[str], ks, ties: str, radius_average: str, pk_grid_spec,
             details: bool, per_query: bool) -> dict:
    """:func:`report` on a prepared pair, with the statistics from ``gather_fn(p, cutoffs=,
    graded=)``: :func:`hashkit.metrics._stats.gather` on one machine, the sharded gather of
    :mod:`hashkit.distributed` on a cluster (one formula layer for both)."""
    n_db = p.db.n
    kk = _k_list(ks, n_db) if any(m in _AT_K for m in wanted) else []
    grid = pk_grid(n_db, pk_grid_spec) if "pk" in wanted else np.zeros(0, np.int64)
    graded = "ndcg@k" in wanted or "acg@k" in wanted
    st = gather_fn(p, cutoffs=np.union1d(np.asarray(kk, np.int64), grid), graded=graded)
    out: dict[str, Any] = {}
    pq: dict[str, np.ndarray] = {}
    conv_all = _conventions(ties, radius_average)
    conv: dict[str, str] = {}

    def per_k(prefix, values, metric):
        for j, k in enumerate(kk):
            out[f"{prefix}@{k}"] = float(values[:, j].mean())
            pq[f"{prefix}@{k}"] = values[:, j]
            conv[f"{prefix}@{k}"] = f"{conv_all[metric]}; k = {k}"

    for m in wanted:
        if m == "map":
            vals = _ap_values(st, None, ties, "hashing")
            out["map"], pq["map"], conv["map"] = _mean(vals, None, False), vals, conv_all["map"]
        elif m == "map-ties":
            out["map-ties"] = {t: _mean(_ap_values(st, None, t, "hashing"), None, False)
                               for t in ("pessimistic", "index", "aware", "optimistic")}
            conv["map-ties"] = conv_all["map-ties"]
        elif m == "map@k":
            for k in kk:
                vals = _ap_values(st, k, ties, "hashing")
                out[f"map@{k}"], pq[f"map@{k}"] = _mean(vals, None, False), vals
                conv[f"map@{k}"] = f"{conv_all['map@k']}; k = {k}"
        elif m == "p@k":
            per_k("p", _precision_values(st, kk, ties), "p@k")
        elif m == "r@k":
            per_k("r", _recall_values(st, kk, ties), "r@k")
        elif m == "ndcg@k":
            per_k("ndcg", _ndcg_values(st, kk), "ndcg@k")
        elif m == "acg@k":
            per_k("acg", _acg_values(st, kk), "acg@k")
        elif m == "pr":
            out["pr"] = {"radius": list(range(st.nbits + 1)),
                         "precision": _precision_radius(st, radius_average).tolist(),
                         "recall": _recall_radius(st, radius_average, "zero").tolist()}
            conv["pr"] = conv_all["pr"]
        elif m == "pk":
            out["pk"] = {"k": grid.tolist(),
                         "precision": _precision_values(st, grid, ties).mean(0).tolist()}
            conv["pk"] = conv_all["pk"]
        else:  # p@rR
            r, avg = _radius_spec(m, radius_average)
            key = radius_key(r, avg)
            col = min(r, st.nbits)
            if avg == "per-query":
                vals = _precision_radius_per_query(st)[:, col]
                out[key], pq[key] = float(vals.mean()), vals
            else:
                out[key] = float(_precision_radius(st, "pooled")[col])
            conv[key] = f"{conv_all[f'p@r/{_SUFFIX[avg]}']}; r = {r}"
    if not details:
        return out
    res = {"nbits": int(st.nbits), "n_query": int(p.q.n), "n_db": int(n_db), "n_labels": int(st.nlabels),
           "empty_queries": int((st.R == 0).sum()), "ties": ties, "radius_average": radius_average,
           "metrics": out, "conventions": conv}
    if per_query:
        res["per_query"] = {k: np.asarray(v, dtype=np.float64) for k, v in pq.items() if k in out}
    return res
