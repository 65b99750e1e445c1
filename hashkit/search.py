"""Exact Hamming search: distances, top-k, radius, and :class:`HammingIndex` over them.

Every result is ordered by (distance, database index): ties are broken by the smaller index,
so results are deterministic and identical across backends and thread counts.
"""

from __future__ import annotations

import os
import threading
from typing import Any, NamedTuple

import numpy as np

from . import _validate as V
from ._indexfile import read_index_file, write_index_file
from .codes import Codes, as_codes
from .kernels import BACKENDS, prepare

__all__ = ["hamming", "topk", "radius_search", "RadiusResult", "HammingIndex"]


class RadiusResult(NamedTuple):
    """Radius-search result in CSR form, in FAISS's order ``(lims, dist, idx)``.

    Query ``i``'s neighbours are ``idx[lims[i]:lims[i+1]]`` at distances
    ``dist[lims[i]:lims[i+1]]``, ordered by (distance, index). ``lims`` is int64 ``(Q+1,)``,
    ``dist`` int32 ``(M,)``, ``idx`` int64 ``(M,)``. Unpacking follows FAISS's
    ``lims, D, I = index.range_search(...)`` (hashkit 0.1 returned ``(lims, idx, dist)``;
    attribute access ``.lims``, ``.dist``, ``.idx`` reads the same either way).
    """

    lims: Any
    dist: Any
    idx: Any

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
        CSR ``(lims, dist, idx)`` (FAISS's order), each query's slice ordered by (distance, index).

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
    lims, idx, dist = p.kernels.radius(p.q.words, p.db.words, p.nbits, r, p.nthreads)
    return RadiusResult(lims, dist, idx)


class _Snapshot(NamedTuple):
    """What one search works on: the first ``n`` codes (and their ids) at one moment."""

    words: np.ndarray        # (n, W) uint64 view, never written while a search holds it
    ids: np.ndarray | None   # (n,) int64 user ids, or None (ids are positions)
    version: int             # changes with every add / remove / reset
    generation: int          # changes only with remove / reset (positions are renumbered)


class _CodeStore:
    """Codes (and optional ids) under a lock, growing in place; the storage of every index.

    Concurrency: every mutation (add, add_with_ids, remove_ids, reset) holds ``self._lock``;
    a search takes a :class:`_Snapshot` under the lock and then runs without it, so searches
    run in parallel with each other and with adds, and each sees the index exactly as it was at
    one moment (all of an add or none of it). Appends write past the rows any snapshot can
    see, into spare capacity that grows by doubling (amortised O(1) per code, no copy of the
    database per add + search); removals build a new buffer, so a running search keeps the old.
    """

    def __init__(self, nbits: int):
        self.nbits = V.check_positive_int(nbits, "nbits")
        self._w = (self.nbits + 63) // 64
        self._lock = threading.Lock()
        self._buf = np.zeros((0, self._w), dtype=np.uint64)
        self._ids: np.ndarray | None = None  # capacity-sized like _buf, when ids are explicit
        self._n = 0
        self._version = 0
        self._generation = 0

    # -- size -------------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return self._n

    def __len__(self) -> int:
        return self._n

    # -- mutation ---------------------------------------------------------------------------
    def add(self, codes: Any) -> None:
        """Append codes; they get the next ids (0, 1, ... in order of addition).

        The index keeps its own copy, so later changes to the caller's array do not leak in.
        An index that holds explicit ids (:meth:`add_with_ids`) refuses codes without ids.
        """
        words = self._words_of(codes, "codes")
        with self._lock:
            if self._ids is not None:
                raise ValueError("codes: this index holds explicit ids (add_with_ids); add codes with "
                                 "add_with_ids(codes, ids)")
            self._append(words, None)

    def add_with_ids(self, codes: Any, ids: Any) -> None:
        """Append codes with their own int64 ids (returned by searches instead of positions).

        Ids are non-negative (-1 marks "no result" in FAISS-style outputs) and need not be
        unique or sorted; ties between equal distances are still broken by position (order of
        addition). An index that already holds codes added without ids gives them their
        positions as ids.
        """
        words = self._words_of(codes, "codes")
        self._add_ids(words, _check_ids(ids, "ids", words.shape[0]))

    def _add_ids(self, words: np.ndarray, ids: np.ndarray) -> None:
        with self._lock:
            if self._ids is None:
                self._ids = np.arange(self._buf.shape[0], dtype=np.int64)
            self._append(words, ids)

    def remove_ids(self, ids: Any) -> int:
        """Remove every code whose id is in ``ids``; returns how many were removed.

        Without explicit ids, ids are positions and the codes after a removed one move up (as
        FAISS's ``IndexBinaryFlat.remove_ids`` renumbers); with explicit ids nothing is renumbered.
        """
        return self._remove(_check_ids(ids, "ids", None))

    def _remove(self, sel: np.ndarray) -> int:
        with self._lock:
            n = self._n
            cur = self._ids[:n] if self._ids is not None else np.arange(n, dtype=np.int64)
            keep = ~np.isin(cur, sel)
            removed = int(n - np.count_nonzero(keep))
            if removed:
                self._buf = np.ascontiguousarray(self._buf[:n][keep])
                if self._ids is not None:
                    self._ids = np.ascontiguousarray(cur[keep])
                self._n = self._buf.shape[0]
                self._changed(structure=True)
            return removed

    def reset(self) -> None:
        """Remove every code (and every id)."""
        with self._lock:
            self._buf = np.zeros((0, self._w), dtype=np.uint64)
            self._ids = None
            self._n = 0
            self._changed(structure=True)

    def _append(self, words: np.ndarray, ids: np.ndarray | None) -> None:
        # Caller holds the lock. Rows [0, n) are never written: snapshots may be reading them.
        m = words.shape[0]
        n = self._n
        if n + m > self._buf.shape[0] or not self._buf.flags.writeable:
            cap = max(n + m, 2 * self._buf.shape[0], 1024)
            buf = np.empty((cap, self._w), dtype=np.uint64)
            buf[:n] = self._buf[:n]
            self._buf = buf
            if self._ids is not None:
                grown = np.empty(cap, dtype=np.int64)
                grown[:n] = self._ids[:n]
                self._ids = grown
        self._buf[n:n + m] = words
        if self._ids is not None:
            self._ids[n:n + m] = np.arange(n, n + m) if ids is None else ids
        self._n = n + m
        self._changed(structure=False)

    def _changed(self, structure: bool) -> None:
        self._version += 1
        if structure:
            self._generation += 1

    def _words_of(self, codes: Any, name: str) -> np.ndarray:
        return as_codes(codes, name, nbits=self.nbits).numpy().words

    # -- reading ----------------------------------------------------------------------------
    def _snapshot(self) -> _Snapshot:
        with self._lock:
            n = self._n
            ids = None if self._ids is None else self._ids[:n]
            return _Snapshot(self._buf[:n], ids, self._version, self._generation)

    def codes(self) -> Codes:
        """The indexed codes in index order: a read-only view (no copy) of one snapshot."""
        words = self._snapshot().words.view()
        words.flags.writeable = False
        return Codes(words, self.nbits)

    def ids(self) -> np.ndarray:
        """The id of every code in index order (positions when no ids were given), read-only."""
        snap = self._snapshot()
        out = np.arange(snap.words.shape[0], dtype=np.int64) if snap.ids is None else snap.ids.view()
        out.flags.writeable = False
        return out

    @property
    def has_ids(self) -> bool:
        """Whether the index holds explicit ids (from :meth:`add_with_ids`)."""
        return self._ids is not None

    def _queries(self, q: Any) -> Codes:
        """Query codes of this index's length; an empty batch (0 rows) is allowed."""
        return _query_codes(q, self.nbits)

    # -- files ------------------------------------------------------------------------------
    def _file_arrays(self, snap: _Snapshot) -> dict[str, np.ndarray]:
        arrays = {"words": snap.words}
        if snap.ids is not None:
            arrays["ids"] = snap.ids
        return arrays

    def _load_arrays(self, arrays: dict, path: str) -> None:
        words = arrays.get("words")
        if words is None or words.dtype != np.uint64 or words.ndim != 2 or words.shape[1] != self._w:
            raise ValueError(f"{path}: array 'words' must be uint64 of shape (n, {self._w})")
        if words.shape[0]:
            Codes(words, self.nbits)  # checks the padding bits
        ids = arrays.get("ids")
        if ids is not None and (ids.dtype != np.int64 or ids.shape != (words.shape[0],)):
            raise ValueError(f"{path}: array 'ids' must be int64 of shape ({words.shape[0]},)")
        # Mapped read-only: used as they are; the first add copies them into memory.
        self._buf = words
        self._ids = ids
        self._n = words.shape[0]
        self._changed(structure=True)


def _check_ids(ids: Any, name: str, n: int | None) -> np.ndarray:
    arr = np.asarray(V.to_numpy(ids, name))
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise TypeError(f"{name}: expected a 1-D array of integer ids, got {V.describe(ids)}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} ids (one per code), got {arr.shape[0]}")
    if arr.size and (arr.min() < 0 or (arr.dtype == np.uint64 and arr.max() > np.iinfo(np.int64).max)):
        raise ValueError(f"{name}: expected ids in [0, 2**63), got values from {arr.min()} to {arr.max()}")
    return arr.astype(np.int64, copy=False)


def _query_codes(q: Any, nbits: int, name: str = "q") -> Codes:
    """``as_codes`` that also accepts an empty batch (0 rows), checked against ``nbits``."""
    w = (nbits + 63) // 64
    if isinstance(q, Codes):
        if q.nbits != nbits:
            raise ValueError(f"{name}: expected codes of {nbits} bits, got {q.nbits}")
        return q
    shape = getattr(q, "shape", None)
    if shape is not None and len(shape) == 2 and shape[0] == 0:
        dtype_name = str(q.dtype).split(".")[-1]
        cols = w if dtype_name == "uint64" else nbits
        if shape[1] != cols:
            raise ValueError(f"{name}: expected codes of {nbits} bits, got shape {tuple(shape)}")
        return Codes(np.zeros((0, w), dtype=np.uint64), nbits)
    return as_codes(q, name, nbits=nbits)


class HammingIndex(_CodeStore):
    """An exact Hamming index: add codes, then search by top-k or radius (a linear scan).

    Safe to use from several threads: adds, removals and searches may run concurrently; each
    search sees a consistent snapshot of the index (every code of an add or none), and no add
    is ever lost. Searches run in parallel with each other.

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

    _KIND = "flat"

    def __init__(self, nbits: int, *, backend: str = "auto", nthreads: int | None = None):
        super().__init__(nbits)
        self.backend = V.check_choice(backend, BACKENDS, "backend")
        self.nthreads = V.check_nthreads(nthreads)
        # Device copies of the database, one per device that queried it, for one version of
        # the codes (placed once, not per search; dropped when codes are added or removed).
        self._placed: dict[str, Codes] = {}
        self._placed_version = -1

    def __repr__(self) -> str:
        return f"HammingIndex(nbits={self.nbits}, ntotal={self.ntotal}, backend={self.backend!r})"

    def _db(self, snap: _Snapshot) -> Codes:
        if snap.words.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: the index is empty; add codes before searching")
        return Codes(snap.words, self.nbits)

    def _cache(self, version: int) -> dict:
        with self._lock:
            if version != self._placed_version:
                if version < self._version:
                    return {}  # an older snapshot than the cache's: place for this call only
                self._placed, self._placed_version = {}, version
            return self._placed

    def search(self, q: Any, k: int, *, out: tuple | None = None):
        """Top-``k`` search; see :func:`topk`. Returns ``(dist int32 (Q,k), idx int64 (Q,k))``
        (``out``'s arrays when given); ``idx`` holds ids when the index has them. An empty
        batch of queries gives ``(0, k)`` arrays."""
        snap = self._snapshot()
        db = self._db(snap)
        qc = self._queries(q)
        if qc.n == 0:
            k = V.check_k(k, db.n)
            return _empty_topk(k, out)
        d, i = _topk(self._prepare(qc, db, snap), k, out)
        return d, _map_ids(i, snap.ids)

    def range_search(self, q: Any, r: int) -> RadiusResult:
        """Radius search (inclusive); see :func:`radius_search`. Returns ``(lims, dist, idx)``
        (FAISS's order); ``idx`` holds ids when the index has them."""
        res, ids = self._range_positions(q, r)
        return res._replace(idx=_map_ids(res.idx, ids))

    def _range_positions(self, q: Any, r: int):
        """``(result with positions, the snapshot's ids or None)``."""
        snap = self._snapshot()
        db = self._db(snap)
        qc = self._queries(q)
        if qc.n == 0:
            V.check_radius(r)
            return _empty_radius(), snap.ids
        return _radius(self._prepare(qc, db, snap), r), snap.ids

    def _prepare(self, qc: Codes, db: Codes, snap: _Snapshot):
        return prepare(qc, db, backend=self.backend, nthreads=self.nthreads,
                       db_cache=self._cache(snap.version))

    def save(self, path: str | os.PathLike) -> None:
        """Write the index (codes and ids) to ``path`` atomically, in hashkit's index format
        (``hashkit-index/2``: loads memory-mapped; see :meth:`load`)."""
        snap = self._snapshot()
        write_index_file(path, self._KIND, self.nbits, self._file_arrays(snap))

    @classmethod
    def load(cls, path: str | os.PathLike, *, backend: str = "auto", nthreads: int | None = None,
             mmap: bool = True) -> "HammingIndex":
        """Read an index written by :meth:`save` or :meth:`hashkit.MIHIndex.save` (its codes and
        ids; the tables are not needed for a scan), or the older ``.npz`` format.

        With ``mmap=True`` (default) the codes are memory-mapped read-only: opening costs no
        anonymous memory, several processes share one copy in the page cache, and the first
        :meth:`add` copies them into memory. Every array's CRC-32 is checked once.
        """
        f = read_index_file(path, mmap=mmap)
        if f["kind"] not in (cls._KIND, "flat", "mih"):  # an MIH file holds the codes too
            raise ValueError(f"{os.fspath(path)}: holds a {f['kind']!r} index, expected 'flat' or 'mih'")
        index = cls(f["nbits"], backend=backend, nthreads=nthreads)
        index._load_arrays(f["arrays"], os.fspath(path))
        return index


def _map_ids(idx: Any, ids: np.ndarray | None):
    if ids is None:
        return idx
    if not isinstance(idx, np.ndarray):  # device results: ids are mapped on the host
        idx = V.to_numpy(idx, "idx")
    return ids[idx]


def _empty_topk(k: int, out):
    if out is not None:
        return V.check_topk_out(out, 0, k)
    return np.zeros((0, k), np.int32), np.zeros((0, k), np.int64)


def _empty_radius() -> RadiusResult:
    return RadiusResult(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64))

