"""Hash-lookup metrics: precision and recall within a Hamming radius, and their curves."""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ._stats import _Stats, gather, prepare_pair
from .ranking import EMPTY

__all__ = ["precision_within_radius", "pr_curve_radius", "AVERAGE", "DEFAULT_AVERAGE"]


AVERAGE = ("per-query", "pooled")

#: The one default averaging of hash lookup, shared by :func:`precision_within_radius`,
#: :func:`pr_curve_radius`, :func:`hashkit.metrics.report` and ``hashkit eval``. Pooled is what
#: DCMH's MATLAB ``calcPreRecRadiusLabel.m`` computes, the hash-lookup evaluation that DCMH and
#: the cross-modal work built on it (SSAH, GCH, DAPH) report, and it makes a table's precision
#: within radius r equal the PR curve's point at r. thulab/DeepHash's per-query mean is the
#: other reading (``average="per-query"``); the two can differ a lot (0.998 pooled against 0.548
#: per query at radius 2 for a 32-bit DCMH run on mfeat, image -> text).
DEFAULT_AVERAGE = "pooled"


def _radius_counts(st: _Stats):
    """Cumulative (retrieved, relevant retrieved) per query for radius 0..nbits."""
    return np.cumsum(st.hist_all, axis=1), np.cumsum(st.hist_rel, axis=1)


def _precision_radius_per_query(st: _Stats) -> np.ndarray:
    """Per query and radius ``(Q, nbits + 1)``: precision within the radius, 0 when nothing is."""
    ret, hit = _radius_counts(st)
    return np.where(ret > 0, hit / np.maximum(ret, 1), 0.0)


def _precision_radius(st: _Stats, average: str) -> np.ndarray:
    if average == "pooled":
        ret, hit = _radius_counts(st)
        tot_ret, tot_hit = ret.sum(0), hit.sum(0)
        return np.where(tot_ret > 0, tot_hit / np.maximum(tot_ret, 1), 0.0)
    return _precision_radius_per_query(st).mean(0)


def _recall_radius(st: _Stats, average: str, empty: str) -> np.ndarray:
    ret, hit = _radius_counts(st)
    R = st.R
    if average == "pooled":
        tot = R.sum()
        return hit.sum(0) / tot if tot > 0 else np.zeros(hit.shape[1])
    rec = np.where(R[:, None] > 0, hit / np.maximum(R, 1)[:, None], 0.0)
    if empty == "skip":
        rec = rec[R > 0]
    return rec.mean(0) if rec.shape[0] else np.full(hit.shape[1], np.nan)


def precision_within_radius(qB, rB, qL, rL, r: int = 2, average: str = DEFAULT_AVERAGE,
                            backend: str = "auto", nthreads: int | None = None) -> float:
    """Precision of hash lookup within Hamming radius ``r`` (items at distance ``<= r``).

    - ``average="pooled"`` (the default, :data:`DEFAULT_AVERAGE`): (relevant pairs within r) /
      (pairs within r) over all queries together (DCMH MATLAB ``calcPreRecRadiusLabel.m``,
      where radius r is entry r+1; 0 when no pair is within r, its ``/(x + eps)``).
    - ``average="per-query"``: mean over queries of (relevant within r) / (retrieved within r),
      a query retrieving nothing counting as precision 0 (thulab/DeepHash
      ``get_precision_recall_by_Hamming_Radius``).

    Ties play no role: a radius takes whole tie groups. ``r >= nbits`` retrieves everything.

    Parameters
    ----------
    qB, rB, qL, rL : as :func:`mean_average_precision`.
    r : int >= 0.
    average : ``"pooled"`` (default) | ``"per-query"``.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        As :func:`mean_average_precision`; a negative ``r``; an unknown ``average``.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> precision_within_radius(qB, rB, qL, rL, r=1)
    0.5
    >>> precision_within_radius(qB, rB, qL, rL, r=1, average="per-query")
    0.5
    """
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    r = V.check_radius(r, "r")
    V.check_choice(average, AVERAGE, "average")
    st = gather(p, rank=False)
    return float(_precision_radius(st, average)[min(r, st.nbits)])


def pr_curve_radius(qB, rB, qL, rL, average: str = DEFAULT_AVERAGE, empty: str = "zero",
                    backend: str = "auto", nthreads: int | None = None) -> dict:
    """Precision and recall of hash lookup at every Hamming radius ``0..nbits``.

    At radius ``r`` the retrieved set is every item at distance ``<= r``. Precision at a radius
    that retrieves nothing is 0, as in both reference implementations (DCMH MATLAB
    ``calcPreRecRadiusLabel.m``'s ``/(x + eps)``; thulab ``..._Hamming_Radius_All`` leaves 0).
    ``average="pooled"`` sums pairs over all queries (DCMH MATLAB: precision = good pairs /
    pairs, recall = good pairs / all relevant pairs); ``"per-query"`` averages per-query
    precision and recall (recall of a query with ``R == 0`` is 0 with ``empty="zero"``, or the
    query is left out of the recall mean with ``empty="skip"``). Note the MATLAB loop stops at
    the largest observed distance minus one; hashkit always returns every radius.

    Parameters
    ----------
    qB, rB, qL, rL : as :func:`mean_average_precision`.
    average : ``"pooled"`` (default, :data:`DEFAULT_AVERAGE`) | ``"per-query"``.
    empty : ``"zero"`` | ``"skip"``.

    Returns
    -------
    dict with ``"radius"`` int64 ``(nbits+1,)``, ``"precision"`` and ``"recall"`` float64
    ``(nbits+1,)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`mean_average_precision`; an unknown ``average`` / ``empty``.

    Examples
    --------
    >>> import numpy as np
    >>> qB = np.array([[1, 1, -1, -1]]); rB = np.array([[1, 1, -1, -1], [1, -1, -1, -1], [-1, -1, 1, 1]])
    >>> qL = np.array([[1, 0]]); rL = np.array([[0, 1], [1, 0], [1, 1]])
    >>> pr_curve_radius(qB, rB, qL, rL)["recall"].tolist()
    [0.0, 0.5, 0.5, 0.5, 1.0]
    """
    p = prepare_pair(qB, rB, qL, rL, backend, nthreads)
    V.check_choice(average, AVERAGE, "average")
    V.check_choice(empty, EMPTY, "empty")
    st = gather(p, rank=False)
    return {"radius": np.arange(st.nbits + 1, dtype=np.int64),
            "precision": _precision_radius(st, average),
            "recall": _recall_radius(st, average, empty)}
