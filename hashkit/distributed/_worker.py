"""What runs on the Dask workers: shards and the per-shard steps of search and metrics.

Plain functions of plain arrays (Dask ships them by reference to this module); nothing here
talks to the scheduler. Each task runs hashkit's kernels on as many threads as its worker has
(``dask worker --nthreads``), so one task per shard and worker uses the worker's cores.
"""

from __future__ import annotations

import numpy as np

from ..codes import Codes
from ..search import HammingIndex


def aligned(a: np.ndarray) -> np.ndarray:
    """``a`` C-contiguous and aligned (arrays Dask deserialises from a message may not be, and the
    kernels require both): a copy only when needed."""
    return np.require(a, requirements=["C", "A"])


def worker_threads() -> int:
    """The thread count of the worker running this task (0, every core, outside a worker)."""
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return 0
    state = getattr(w, "state", None)
    return int(getattr(state, "nthreads", None) or getattr(w, "nthreads", 0) or 0)


class Shard:
    """One shard of a sharded index: codes in pieces, each piece a run of global ids.

    Immutable as far as Dask is concerned (an add makes a new Shard sharing the old pieces);
    the concatenated codes and the search index are built on first use and kept.
    """

    def __init__(self, nbits: int, kind: str, m: int | None, pieces: tuple):
        self.nbits, self.kind, self.m, self.pieces = nbits, kind, m, tuple(pieces)
        self._index = None
        self._gids = None

    def __reduce__(self):  # what Dask sends when it moves a shard: the codes, not the caches
        return (Shard, (self.nbits, self.kind, self.m, self.pieces))

    @property
    def n(self) -> int:
        return int(sum(w.shape[0] for w, _ in self.pieces))

    def add(self, words: np.ndarray, gid0: int) -> "Shard":
        return Shard(self.nbits, self.kind, self.m, self.pieces + ((aligned(words), int(gid0)),))

    def gids(self) -> np.ndarray:
        if self._gids is None:
            parts = [np.arange(g, g + w.shape[0], dtype=np.int64) for w, g in self.pieces]
            self._gids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return self._gids

    def words(self) -> np.ndarray:
        parts = [w for w, _ in self.pieces]
        if len(parts) == 1:
            return np.ascontiguousarray(parts[0])
        return np.concatenate(parts) if parts else np.zeros((0, (self.nbits + 63) // 64), np.uint64)

    def index(self):
        if self._index is None:
            nt = worker_threads()
            if self.kind == "mih":
                from ..mih import MIHIndex

                ix = MIHIndex(self.nbits, self.m, nthreads=nt)
            else:
                ix = HammingIndex(self.nbits, nthreads=nt)
            if self.n:
                ix.add(Codes(self.words(), self.nbits))
            self._index = ix
        return self._index


def make_shard(nbits: int, kind: str, m, words: np.ndarray | None, gid0: int) -> Shard:
    pieces = () if words is None or words.shape[0] == 0 else ((aligned(words), gid0),)
    return Shard(nbits, kind, m, pieces)


def add_piece(shard: Shard, words: np.ndarray, gid0: int) -> Shard:
    return shard.add(words, gid0)


def open_rows(path: str, start: int, stop: int, nbits: int) -> np.ndarray:
    """Rows [start, stop) of a code file, memory-mapped where the format allows it.

    hashkit index files (``hashkit-index/2``, from ``HammingIndex.save``) are mapped; a code file
    hashkit writes (``hashkit.save_codes`` ``.npz``) is read and sliced.
    """
    if path.endswith(".npz"):
        from ..codes import load_codes

        c = load_codes(path)
        words = c.words
        got = c.nbits
    else:
        from .._indexfile import read_index_file

        f = read_index_file(path, verify=False)
        words, got = f["arrays"]["words"], f["nbits"]
    if got != nbits or not 0 <= start <= stop <= words.shape[0]:
        raise ValueError(f"{path}: expected rows [{start}, {stop}) of {nbits}-bit codes, the file holds "
                         f"{words.shape[0]} codes of {got} bits")
    return words[start:stop]


def open_shard(path: str, start: int, stop: int, nbits: int, kind: str, m) -> Shard:
    """A shard over rows [start, stop) of a file every worker can open (recomputable anywhere)."""
    return make_shard(nbits, kind, m, open_rows(path, start, stop, nbits), start)


def shard_topk(shard: Shard, q: np.ndarray, nbits: int, k: int):
    """``(dist (Q, k'), global ids (Q, k'))`` of the shard's k' = min(k, n) nearest."""
    ix = shard.index()
    d, i = ix.search(Codes(aligned(q), nbits), min(k, shard.n))
    return d, shard.gids()[i]


def shard_radius(shard: Shard, q: np.ndarray, nbits: int, r: int):
    """``(lims, dist, global ids)`` within ``r``, each query by (distance, id)."""
    res = shard.index().range_search(Codes(aligned(q), nbits), r)
    return res.lims, res.dist, shard.gids()[res.idx]


def shard_hist(db: np.ndarray, dbl: np.ndarray, q: np.ndarray, ql: np.ndarray, nbits: int, backend: str):
    """Per-distance counts of all and of relevant shard items: int64 (Q, nbits + 1) each."""
    if db.shape[0] == 0:
        z = np.zeros((q.shape[0], nbits + 1), np.int64)
        return z, z.copy()
    from ..kernels import get

    # Codes and labels arrive packed and checked by the client (kernels.prepare there).
    ha, hr = get(backend).hist_stats(aligned(q), aligned(db), aligned(ql), aligned(dbl), nbits, worker_threads())
    return np.asarray(ha), np.asarray(hr)


def shard_chain(db, dbl, q, ql, nbits, cutoffs, first_m, graded, nlabels, start_all, start_rel, k0, state):
    """One shard's step of the chained ranking sums (:func:`hashkit.distributed._kernels.chain`)."""
    nq = q.shape[0]
    if db.shape[0] == 0:
        ncut = cutoffs.shape[0]
        z = np.zeros((nq, ncut), np.int64)
        return tuple(np.array(a, copy=True) for a in state), (z, z.copy(),
                                                              np.zeros((nq, nlabels + 1 if graded else 1), np.int64))
    from ._kernels import chain

    return chain(aligned(q), aligned(db), aligned(ql), aligned(dbl), nbits, aligned(cutoffs), first_m, graded,
                 nlabels, aligned(start_all), aligned(start_rel), aligned(k0), state, worker_threads())
