"""Exact Hamming search: distances, top-k, radius, and :class:`HammingIndex` over them.

Every result is ordered by (distance, database index): ties are broken by the smaller index,
so results are deterministic and identical across backends and thread counts.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from . import _validate as V
from ._io import atomic_path
from .codes import Codes, as_codes
from .kernels import BACKENDS, prepare

__all__ = ["hamming", "topk", "radius_search", "RadiusResult", "HammingIndex"]


class RadiusResult(NamedTuple):
    """Radius-search result in CSR form.

    Query ``i``'s neighbours are ``idx[lims[i]:lims[i+1]]`` at distances
    ``dist[lims[i]:lims[i+1]]``, ordered by (distance, index). ``lims`` is int64 ``(Q+1,)``,
    ``idx`` int64 ``(M,)``, ``dist`` int32 ``(M,)``.
    """

    lims: Any
    idx: Any
    dist: Any

    def neighbours(self, i: int) -> tuple[Any, Any]:
        """``(idx, dist)`` of query ``i``."""
        a, b = int(self.lims[i]), int(self.lims[i + 1])
        return self.idx[a:b], self.dist[a:b]


def hamming(q: Any, db: Any, *, backend: str = "auto", nthreads: int | None = None):
    """All Hamming distances between query and database codes.

    Parameters
    ----------
    q, db : codes
        ``Codes``, packed ``uint64`` words, or ``(n, nbits)`` ±1 / {0, 1} / bool arrays
        (NumPy, PyTorch, CuPy). Both must have the same ``nbits``.
    backend : {"auto", "cpp", "numba", "cuda"}
    nthreads : int, optional
        CPU threads (default: every core).

    Returns
    -------
    int32 array ``(Q, N)``. This is the one function that builds a ``(Q, N)`` array: use
    :func:`topk`, :func:`radius_search` or the metrics to avoid it.

    Raises
    ------
    TypeError, ValueError
        Bad codes, different code lengths, bad ``backend`` / ``nthreads``.
    RuntimeError
        The requested backend is not available.

    Examples
    --------
    >>> import numpy as np, hashkit
    >>> hashkit.hamming(np.array([[1, -1, 1]]), np.array([[1, 1, 1], [-1, 1, -1]]))
    array([[1, 3]], dtype=int32)
    """
    p = prepare(q, db, backend=backend, nthreads=nthreads)
    return p.kernels.hamming(p.q.words, p.db.words, p.nthreads)


def topk(q: Any, db: Any, k: int, *, backend: str = "auto", nthreads: int | None = None,
         out: tuple | None = None):
    """The ``k`` nearest database codes of each query, exactly.

    Selection is a counting pass over the small integer distances (no heap, no full sort).

    Parameters
    ----------
    q, db : codes
        As for :func:`hamming`.
    k : int
        Between 1 and the database size (``k = N`` gives the full stable ranking).
    out : (dist, idx), optional
        Arrays to write the result into and return: int32 and int64, shape ``(Q, k)``,
        C-contiguous, not overlapping; NumPy arrays for the CPU backends, device arrays of the
        queries' framework and device for CUDA. Reusing them across calls saves allocating and
        page-faulting large outputs (a full ranking of 1M items writes 12 MB per query).

    Returns
    -------
    dist : int32 ``(Q, k)``
    idx : int64 ``(Q, k)``
        Ordered by (distance, database index).

    Raises
    ------
    TypeError, ValueError
        Bad codes, different code lengths, ``k`` not in ``[1, N]``.

    Examples
    --------
    >>> import numpy as np, hashkit
    >>> d, i = hashkit.topk(np.array([[1, 1]]), np.array([[-1, -1], [1, -1], [-1, 1]]), k=2)
    >>> d.tolist(), i.tolist()
    ([[1, 1]], [[1, 2]])
    """
    return _topk(prepare(q, db, backend=backend, nthreads=nthreads), k, out)


def _topk(p, k, out):
    k = V.check_k(k, p.db.n)
    if out is not None and p.backend != "cuda":
        out = V.check_topk_out(out, p.q.n, k)
    # The CUDA backend checks a device out= itself (framework, device, dtypes, shape).
    return p.kernels.topk(p.q.words, p.db.words, p.nbits, k, p.nthreads, out=out)


def radius_search(q: Any, db: Any, r: int, *, backend: str = "auto",
                  nthreads: int | None = None) -> RadiusResult:
    """Every database code within Hamming distance ``r`` (inclusive) of each query.

    Parameters
    ----------
    q, db : codes
        As for :func:`hamming`.
    r : int
        Radius >= 0; items with distance <= r are returned (FAISS's ``range_search`` is strict:
        its radius ``r + 1`` matches hashkit's ``r``).

    Returns
    -------
    RadiusResult
        CSR ``(lims, idx, dist)``, each query's slice ordered by (distance, index).

    Raises
    ------
    TypeError, ValueError
        Bad codes, different code lengths, negative or non-integer ``r``.

    Examples
    --------
    >>> import numpy as np, hashkit
    >>> res = hashkit.radius_search(np.array([[1, 1]]), np.array([[-1, -1], [1, -1], [1, 1]]), r=1)
    >>> res.lims.tolist(), res.idx.tolist(), res.dist.tolist()
    ([0, 2], [2, 1], [0, 1])
    """
    return _radius(prepare(q, db, backend=backend, nthreads=nthreads), r)


def _radius(p, r) -> RadiusResult:
    r = V.check_radius(r)
    return RadiusResult(*p.kernels.radius(p.q.words, p.db.words, p.nbits, r, p.nthreads))


class HammingIndex:
    """An exact Hamming index: add codes, then search by top-k or radius.

    Parameters
    ----------
    nbits : int
        Code length; every added and queried code set must have it.
    backend : {"auto", "cpp", "numba", "cuda"}
    nthreads : int, optional

    Examples
    --------
    >>> import numpy as np, hashkit
    >>> rng = np.random.default_rng(0)
    >>> index = hashkit.HammingIndex(64)
    >>> index.add(rng.choice([-1, 1], size=(1000, 64)))
    >>> dist, idx = index.search(rng.choice([-1, 1], size=(5, 64)), k=10)
    >>> dist.shape, index.ntotal
    ((5, 10), 1000)
    """

    def __init__(self, nbits: int, *, backend: str = "auto", nthreads: int | None = None):
        self.nbits = V.check_positive_int(nbits, "nbits")
        self.backend = V.check_choice(backend, BACKENDS, "backend")
        self.nthreads = V.check_nthreads(nthreads)
        # Device copies of the database, one per device that queried it (placed once, not per
        # search; dropped when codes are added or removed).
        self._placed: dict[str, Codes] = {}
        self._chunks: list[np.ndarray] = []
        self._words: np.ndarray | None = np.zeros((0, (self.nbits + 63) // 64), dtype=np.uint64)

    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return int(sum(c.shape[0] for c in self._chunks) + (0 if self._words is None else self._words.shape[0]))

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return f"HammingIndex(nbits={self.nbits}, ntotal={self.ntotal}, backend={self.backend!r})"

    def add(self, codes: Any) -> None:
        """Append codes; they get the next database indices (0, 1, ... in order of addition).

        The index keeps its own copy, so later changes to the caller's array do not leak in.
        """
        c = as_codes(codes, "codes", nbits=self.nbits).numpy()
        self._chunks.append(np.array(c.words, copy=True))
        self._placed.clear()

    def reset(self) -> None:
        """Remove every code."""
        self._chunks.clear()
        self._words = np.zeros((0, (self.nbits + 63) // 64), dtype=np.uint64)
        self._placed.clear()

    def codes(self) -> Codes:
        """The indexed codes, in index order."""
        if self._chunks:
            self._words = np.concatenate([self._words] + self._chunks)
            self._chunks.clear()
        return Codes(self._words, self.nbits)

    def _db(self) -> Codes:
        db = self.codes()
        if db.n == 0:
            raise ValueError("HammingIndex: the index is empty; add codes before searching")
        return db

    def search(self, q: Any, k: int, *, out: tuple | None = None):
        """Top-``k`` search; see :func:`topk`. Returns ``(dist int32 (Q,k), idx int64 (Q,k))``
        (``out``'s arrays when given)."""
        return _topk(self._prepare(q), k, out)

    def range_search(self, q: Any, r: int) -> RadiusResult:
        """Radius search (inclusive); see :func:`radius_search`."""
        return _radius(self._prepare(q), r)

    def _prepare(self, q):
        return prepare(as_codes(q, "q", nbits=self.nbits), self._db(), backend=self.backend,
                       nthreads=self.nthreads, db_cache=self._placed)

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``.npz`` atomically."""
        db = self.codes()
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, format="hashkit-index/1", nbits=self.nbits, words=db.words)

    @classmethod
    def load(cls, path: str | os.PathLike, *, backend: str = "auto", nthreads: int | None = None) -> "HammingIndex":
        """Read an index written by :meth:`save`."""
        p = os.fspath(path)
        if not os.path.isfile(p):
            raise FileNotFoundError(f"index file not found: {p}")
        with np.load(p, allow_pickle=False) as z:
            fmt = str(z["format"]) if "format" in z else None
            if fmt != "hashkit-index/1":
                raise ValueError(f"{p}: key 'format' is {fmt!r}, expected 'hashkit-index/1'")
            index = cls(int(z["nbits"]), backend=backend, nthreads=nthreads)
            if z["words"].shape[0]:
                index.add(Codes(z["words"], index.nbits))
        return index
