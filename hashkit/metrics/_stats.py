"""The kernel statistics every metric is computed from, gathered in one pass.

:func:`gather` runs ``hist_stats`` (distance histograms of all and relevant items) or
``rank_stats`` (those plus sums over the stable (distance, index) ranking) on arrays that
:func:`hashkit.kernels.prepare` has validated and placed, and returns them as host arrays in a
:class:`_Stats`. No ``(Q, N)`` array is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _validate as V
from ..kernels import Prepared, prepare

__all__ = ["_Stats", "prepare_pair", "gather"]


def prepare_pair(qB, rB, qL, rL, backend: str = "auto", nthreads=None) -> Prepared:
    """Validate codes and labels once and place them for the chosen backend (the metrics' names)."""
    for name, lab in (("qL", qL), ("rL", rL)):
        if lab is None:
            raise TypeError(f"{name}: expected multi-hot labels (n, nlabels) or class ids (n,), got None "
                            "(every metric needs the labels of queries and database)")
    return prepare(qB, rB, qL, rL, backend=backend, nthreads=nthreads, names=("qB", "rB", "qL", "rL"))


@dataclass
class _Stats:
    """Kernel statistics of one query set against one database (host NumPy arrays)."""

    nbits: int
    n_db: int
    nlabels: int
    hist_all: np.ndarray
    hist_rel: np.ndarray
    cutoffs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rank: dict | None = None

    @property
    def R(self) -> np.ndarray:
        return self.hist_rel.sum(1)

    def col(self, k: int) -> int:
        return int(np.searchsorted(self.cutoffs, k))

    def at(self, key: str, k: int) -> np.ndarray:
        return self.rank[key][:, self.col(k)]


def gather(p: Prepared, *, cutoffs=(), first_m: int = 0, graded: bool = False, rank: bool = True) -> _Stats:
    """Run one kernel pass on prepared arrays and return the statistics the metrics use.

    ``cutoffs`` must already be checked against the database size. ``rank=False`` asks only
    for the distance histograms (cheaper: one pass, no ranking).
    """
    q, r = p.q, p.db
    cut = np.unique(np.asarray(cutoffs, dtype=np.int64))
    if rank:
        out = p.kernels.rank_stats(q.words, r.words, p.ql, p.dbl, q.nbits, cut, int(first_m), bool(graded),
                                   p.nlabels, p.nthreads)
        out = {k: _host(v) for k, v in out.items()}
        return _Stats(q.nbits, r.n, p.nlabels, out["hist_all"], out["hist_rel"], cut, out)
    ha, hr = p.kernels.hist_stats(q.words, r.words, p.ql, p.dbl, q.nbits, p.nthreads)
    return _Stats(q.nbits, r.n, p.nlabels, _host(ha), _host(hr), cut, None)


def _host(x) -> np.ndarray:
    return V.to_numpy(x, "kernel output")
