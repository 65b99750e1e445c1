"""Retrieval metrics for binary codes: the MAP family, curves, and the field's variants.

Every number here is computed from the kernel statistics of ``docs/INTERNALS.md``
(``hist_stats`` / ``rank_stats``): per-query histograms of all and relevant database items by
Hamming distance, and sums over the stable (distance, database index) ranking. No
``(Q, N)`` matrix is ever built; memory is O(N + Q * (nbits + number of cut-offs)).

Conventions (docs/METRICS.md has the formulas):

- **Relevant** = the query and the database item share at least one label (multi-hot).
  **Graded gain** (NDCG, ACG) = the number of shared labels.
- **Ranking** = ascending Hamming distance. ``ties`` says how items at equal distance are
  ordered: ``"index"`` (by database index, i.e. ``np.argsort(kind="stable")``),
  ``"aware"`` (the expectation over uniformly random orders within each tie group, He et al.,
  CVPR 2018, in closed form), ``"optimistic"`` (relevant items first within ties) and
  ``"pessimistic"`` (relevant items last).
- **AP** over a ranking = mean over the relevant retrieved positions ``p`` of
  (relevant items among the first ``p``) / ``p``. With a cut-off ``k``, ``normalize="hashing"``
  divides by the relevant items inside the top ``k`` (the hashing papers' MAP@k) and
  ``normalize="ir"`` by ``min(R, k)`` (``R`` = relevant items in the whole database).
- **Empty queries** (``R == 0``): ``empty="zero"`` counts them as 0 in the mean (what the
  reference implementations do); ``empty="skip"`` leaves them out.

The package: ``_stats`` (one kernel pass), ``_ties`` (tie arithmetic), ``ranking`` (MAP family,
P@k, R@k, NDCG, ACG), ``radius`` (lookup within a radius), ``compat`` (the field's loops by
name) and ``report`` (many metrics from one pass, for ``hashkit eval``).
"""

from __future__ import annotations

from .compat import dcmh_matlab, map_compat
from .radius import pr_curve_radius, precision_within_radius
from .ranking import acg_at_k, mean_average_precision, ndcg_at_k, precision_at_k, recall_at_k
from .report import report

# The option vocabularies, importable from here (not functions, so not in __all__).
from .compat import VARIANTS as VARIANTS  # noqa: E402
from .radius import AVERAGE as AVERAGE, DEFAULT_AVERAGE as DEFAULT_AVERAGE  # noqa: E402
from .ranking import EMPTY as EMPTY, NORMALIZE as NORMALIZE, TIES as TIES  # noqa: E402
from .report import METRIC_NAMES as METRIC_NAMES  # noqa: E402

__all__ = [
    "mean_average_precision", "map_compat", "dcmh_matlab", "precision_at_k", "recall_at_k",
    "precision_within_radius", "pr_curve_radius", "ndcg_at_k", "acg_at_k", "report",
]
