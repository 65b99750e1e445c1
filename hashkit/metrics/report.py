"""Many metrics from one kernel pass: :func:`report` (what ``hashkit eval`` prints per direction)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _validate as V
from ._stats import gather, prepare_pair
from .radius import _precision_radius, _recall_radius
from .ranking import (TIES, _acg_values, _ap_values, _mean, _ndcg_values, _precision_values,
                      _recall_values)

__all__ = ["report"]

#: Metric names :func:`report` understands (``@k`` ones are reported once per cut-off).
METRIC_NAMES = ("map", "map@k", "p@k", "r@k", "ndcg@k", "acg@k", "p@r2", "map-ties", "pr", "pk")
#: Cut-offs of the ``@k`` metrics when none are given (those <= N).
DEFAULT_K = (50, 100)
_AT_K = ("map@k", "p@k", "r@k", "ndcg@k", "acg@k")
_PK_POINTS = 25


def parse_metrics(metrics) -> list[str]:
    """Metric names from a sequence or a comma-separated string: checked, de-duplicated, in order."""
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    metrics = list(metrics)
    if not metrics:
        raise ValueError(f"metrics: expected one or more of {', '.join(METRIC_NAMES)}, got none")
    for m in metrics:
        V.check_choice(m, METRIC_NAMES, "metrics")
    return list(dict.fromkeys(metrics))


def _k_list(k, n_db: int) -> list[int]:
    if k is None:
        return [x for x in DEFAULT_K if x <= n_db] or [n_db]
    return [int(x) for x in V.check_ks(k, n_db, "k")]


def _pk_grid(n_db: int) -> np.ndarray:
    return np.unique(np.linspace(1, n_db, _PK_POINTS).round().astype(np.int64))


def report(qB, rB, qL, rL, metrics: Sequence[str] | str = ("map",), ks=None, ties: str = "index",
           backend: str = "auto", nthreads: int | None = None) -> dict:
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
    ``p@r2``       precision within Hamming radius 2, mean over queries, an empty lookup counting
                   0 (:func:`precision_within_radius` with ``average="per-query"``)
    ``map-ties``   full-ranking MAP under each tie rule: pessimistic, index, aware, optimistic
    ``pr``         precision and recall at every radius 0..nbits, pooled over pairs
                   (:func:`pr_curve_radius` with ``average="pooled"``)
    ``pk``         precision at 25 cut-offs evenly spaced over 1..N (stable ranking)
    =============  ===========================================================================

    Parameters
    ----------
    qB, rB, qL, rL : codes and labels, as :func:`hashkit.metrics.mean_average_precision`.
    metrics : names from the table (a sequence or a comma-separated string).
    ks : cut-offs for the ``@k`` metrics: int or ints in ``[1, N]``; None = 50 and 100 (those
        <= N, else N).
    ties : the tie rule of ``map``, ``map@k``, ``p@k`` and ``r@k``.
    backend, nthreads : as the metric functions.

    Returns
    -------
    dict ``{name: value}``: floats for scalar metrics (``map@50``, ``p@100`` ... one key per
    cut-off), a dict of four floats for ``map-ties``, dicts of lists for the curves (``pr``:
    radius / precision / recall; ``pk``: k / precision).

    Raises
    ------
    TypeError, ValueError
        As the metric functions; an unknown metric name; a cut-off outside ``[1, N]``.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> r = report(qB, rB, qL, rL, metrics="map,p@k", ks=2)
    >>> round(r["map"], 4), r["p@2"]
    (0.5833, 0.5)
    """
    wanted = parse_metrics(metrics)
    V.check_choice(ties, TIES, "ties")
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    n_db = p.db.n
    kk = _k_list(ks, n_db) if any(m in _AT_K for m in wanted) else []
    grid = _pk_grid(n_db) if "pk" in wanted else np.zeros(0, np.int64)
    graded = "ndcg@k" in wanted or "acg@k" in wanted
    st = gather(p, cutoffs=np.union1d(np.asarray(kk, np.int64), grid), graded=graded)
    out: dict[str, Any] = {}

    def per_k(prefix, values):
        for j, k in enumerate(kk):
            out[f"{prefix}@{k}"] = float(values[:, j].mean())

    for m in wanted:
        if m == "map":
            out["map"] = _mean(_ap_values(st, None, ties, "hashing"), None, False)
        elif m == "map-ties":
            out["map-ties"] = {t: _mean(_ap_values(st, None, t, "hashing"), None, False)
                               for t in ("pessimistic", "index", "aware", "optimistic")}
        elif m == "map@k":
            for k in kk:
                out[f"map@{k}"] = _mean(_ap_values(st, k, ties, "hashing"), None, False)
        elif m == "p@k":
            per_k("p", _precision_values(st, kk, ties))
        elif m == "r@k":
            per_k("r", _recall_values(st, kk, ties))
        elif m == "ndcg@k":
            per_k("ndcg", _ndcg_values(st, kk))
        elif m == "acg@k":
            per_k("acg", _acg_values(st, kk))
        elif m == "p@r2":
            out["p@r2"] = float(_precision_radius(st, "per-query")[min(2, st.nbits)])
        elif m == "pr":
            out["pr"] = {"radius": list(range(st.nbits + 1)),
                         "precision": _precision_radius(st, "pooled").tolist(),
                         "recall": _recall_radius(st, "pooled", "zero").tolist()}
        elif m == "pk":
            out["pk"] = {"k": grid.tolist(),
                         "precision": _precision_values(st, grid, "index").mean(0).tolist()}
    return out
