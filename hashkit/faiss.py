"""FAISS's binary indexes, over hashkit's kernels: switch by changing one import.

::

    from hashkit import faiss          # instead of: import faiss

    index = faiss.IndexBinaryFlat(d)   # d bits, a multiple of 8
    index.add(xb)                      # uint8 (n, d / 8), FAISS's packed layout
    D, I = index.search(xq, k)         # int32 / int64 (nq, k), -1 / INT32_MAX padding past ntotal
    lims, D, I = index.range_search(xq, radius)   # strict: distance < radius

Conventions are FAISS's, checked against ``faiss-cpu`` on the same inputs in
tests/test_faiss_compat.py: inputs are C-ordered ``uint8`` arrays of ``d / 8`` bytes per code
(``TypeError`` for another dtype); ``search`` returns ``D`` int32 and ``I`` int64 ordered by
(distance, index), padded with ``I = -1`` and ``D = 2**31 - 1`` when ``k > ntotal``;
``range_search`` returns ``lims`` uint64 ``(nq + 1,)``, ``D`` float32 and ``I`` int64 with
FAISS's strict ``distance < radius`` and, within a query, FAISS's flat order (by index);
``remove_ids`` renumbers a flat index and returns the count; :class:`IndexBinaryIDMap`
translates ids and refuses ``add``; ``write_index_binary`` / ``read_index_binary`` use
hashkit's own file format (``hashkit-index/2``), loaded memory-mapped.

Differences, on purpose: :class:`IndexBinaryMultiHash` is exact (multi-index hashing,
:class:`hashkit.MIHIndex`): ``search`` and ``range_search`` return exactly what
:class:`IndexBinaryFlat` returns whatever ``nflip`` and ``b`` are (FAISS's is approximate unless
``nflip`` covers the radius), and it supports ``remove_ids`` and ``reconstruct``, which FAISS's
lacks. Bad input raises ``TypeError`` / ``ValueError`` with a message rather than FAISS's
``AssertionError``. Concurrent ``add`` and ``search`` from several threads are safe.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import _validate as V
from ._indexfile import read_index_file, write_index_file
from .codes import Codes
from .mih import MIHIndex, _Tables
from .search import HammingIndex

__all__ = ["IndexBinary", "IndexBinaryFlat", "IndexBinaryMultiHash", "IndexBinaryIDMap",
           "IndexBinaryIDMap2", "write_index_binary", "read_index_binary", "IO_FLAG_MMAP"]

#: Accepted by :func:`read_index_binary` for compatibility; hashkit always maps the file.
IO_FLAG_MMAP = 1
_INT32_MAX = np.iinfo(np.int32).max


def _check_d(d: Any) -> int:
    d = V.check_positive_int(d, "d")
    if d % 8:
        raise ValueError(f"d: expected a number of bits that is a multiple of 8, got {d}")
    return d


def _codes(x: Any, d: int, name: str = "x") -> Codes:
    """FAISS's packed uint8 rows as hashkit codes (zero padding to whole 64-bit words)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a NumPy uint8 array of shape (n, {d // 8}), got {V.describe(x)}")
    if x.dtype != np.uint8:
        raise TypeError(f"{name}: expected dtype uint8 (FAISS's packed binary codes), got {x.dtype}")
    if x.ndim != 2 or x.shape[1] * 8 != d:
        raise ValueError(f"{name}: expected shape (n, {d // 8}) for d = {d} bits, got {x.shape}")
    w = (d + 63) // 64
    n = x.shape[0]
    if d % 64 == 0:
        words = np.ascontiguousarray(x).view(np.uint64)
        if words.ctypes.data % 8:
            words = words.copy()
    else:
        padded = np.zeros((n, w * 8), np.uint8)
        padded[:, : d // 8] = x
        words = padded.view(np.uint64)
    return Codes(words.reshape(n, w), d)


def _bytes(words: np.ndarray, d: int) -> np.ndarray:
    return np.ascontiguousarray(words).view(np.uint8).reshape(words.shape[0], -1)[:, : d // 8].copy()


def _sel_ids(sel: Any) -> np.ndarray:
    if hasattr(sel, "is_member"):
        raise TypeError("sel: hashkit.faiss takes the ids to remove as an integer array, got a FAISS "
                        "IDSelector")
    arr = np.asarray(sel)
    if arr.ndim > 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise TypeError(f"sel: expected a 1-D array of integer ids, got {V.describe(sel)}")
    return arr.reshape(-1).astype(np.int64)


def _out(D, I, n, k):  # noqa: E741 - FAISS's names
    if D is None and I is None:
        return np.empty((n, k), np.int32), np.empty((n, k), np.int64)
    if D is None or I is None:
        raise ValueError("D, I: give both output arrays or neither")
    return V.check_topk_out((D, I), n, k, "D, I")


class IndexBinary:
    """What every binary index here shares: ``d``, ``code_size``, ``ntotal``, and the checks."""

    def __init__(self, d: int):
        self.d = _check_d(d)
        self.code_size = self.d // 8
        self.is_trained = True
        self.verbose = False

    @property
    def ntotal(self) -> int:
        return self._index.ntotal

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d={self.d}, ntotal={self.ntotal})"

    def train(self, x: Any) -> None:
        """No training is needed (as FAISS's binary flat and hash indexes); checks ``x``."""
        _codes(x, self.d)

    def add(self, x: Any) -> None:
        """Append uint8 codes ``(n, d / 8)``; they get ids ``ntotal, ntotal + 1, ...``."""
        if isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[0] == 0:
            _codes(np.zeros((1, x.shape[1]), x.dtype) if x.dtype == np.uint8 else x, self.d)
            return
        self._index.add(_codes(x, self.d))

    def add_with_ids(self, x: Any, ids: Any) -> None:
        raise RuntimeError("add_with_ids not implemented for this type of index "
                           "(wrap it in hashkit.faiss.IndexBinaryIDMap, as in FAISS)")

    def search(self, x: Any, k: int, *, params=None, D=None, I=None):  # noqa: E741
        """The ``k`` nearest codes of each query: ``(D int32 (n, k), I int64 (n, k))``.

        Ordered by (distance, index); rows are padded with ``I = -1``, ``D = 2**31 - 1`` past
        ``ntotal`` (FAISS's convention). ``D`` / ``I``: optional output arrays.
        """
        if params is not None:
            raise ValueError("params: search parameters are not supported by hashkit.faiss, got "
                             f"{type(params).__name__}")
        q = self._queries(x)
        k = V.check_int(k, "k", min_value=1, what="a positive number of neighbours")
        Do, Io = _out(D, I, q.n, k)
        kk = min(k, self.ntotal)
        if kk and q.n:
            d, i = self._index.search(q, kk)
            Do[:, :kk] = d
            Io[:, :kk] = i
        Do[:, kk:] = _INT32_MAX
        Io[:, kk:] = -1
        return Do, Io

    def range_search(self, x: Any, radius: int, *, params=None):
        """Every code at distance ``< radius`` (strict, as FAISS): ``(lims uint64, D float32,
        I int64)``, each query's results in index order (FAISS's flat order)."""
        if params is not None:
            raise ValueError("params: search parameters are not supported by hashkit.faiss")
        q = self._queries(x)
        radius = V.check_int(radius, "radius", what="an integer radius")
        if radius <= 0 or self.ntotal == 0 or q.n == 0:
            return np.zeros(q.n + 1, np.uint64), np.zeros(0, np.float32), np.zeros(0, np.int64)
        res, ids = self._index._range_positions(q, radius - 1)
        qid = np.repeat(np.arange(q.n), np.diff(res.lims))
        order = np.lexsort((res.idx, qid))  # within a query: by position, as FAISS's flat scan
        idx = res.idx[order]
        return (res.lims.astype(np.uint64), res.dist[order].astype(np.float32),
                idx if ids is None else ids[idx])

    def reconstruct(self, key: int, x=None) -> np.ndarray:
        """The stored code number ``key`` as uint8 ``(d / 8,)``."""
        key = V.check_int(key, "key", min_value=0, max_value=self.ntotal - 1,
                          what="the number of a stored code")
        out = _bytes(self._index.codes().words[key:key + 1], self.d)[0]
        if x is not None:
            x[...] = out
            return x
        return out

    def reconstruct_n(self, i0: int, ni: int, x=None) -> np.ndarray:
        """Stored codes ``i0 .. i0 + ni - 1`` as uint8 ``(ni, d / 8)``."""
        i0 = V.check_int(i0, "i0", min_value=0, max_value=self.ntotal)
        ni = V.check_int(ni, "ni", min_value=0, max_value=self.ntotal - i0)
        out = _bytes(self._index.codes().words[i0:i0 + ni], self.d)
        if x is not None:
            x[...] = out
            return x
        return out

    def remove_ids(self, sel: Any) -> int:
        """Remove the codes with these ids (an integer array); returns how many. The codes
        after a removed one move up (their ids are their new positions), as in FAISS."""
        return self._index._remove(_sel_ids(sel))

    def reset(self) -> None:
        """Remove every code."""
        self._index.reset()

    def _queries(self, x: Any) -> Codes:
        if isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[0] == 0:
            if x.dtype != np.uint8:
                raise TypeError(f"x: expected dtype uint8 (FAISS's packed binary codes), got {x.dtype}")
            if x.shape[1] * 8 != self.d:
                raise ValueError(f"x: expected shape (n, {self.code_size}) for d = {self.d} bits, got {x.shape}")
            return Codes(np.zeros((0, (self.d + 63) // 64), np.uint64), self.d)
        return _codes(x, self.d)


class IndexBinaryFlat(IndexBinary):
    """Exact binary index by linear scan (FAISS's ``IndexBinaryFlat``), on hashkit's kernels."""

    def __init__(self, d: int):
        super().__init__(d)
        self._index = HammingIndex(self.d)


class IndexBinaryMultiHash(IndexBinary):
    """Multi-index hashing, exact (FAISS's ``IndexBinaryMultiHash`` interface).

    ``nhash`` is the number of tables (substrings; default: ``ceil(d / log2 N)`` when the
    tables are built); ``b`` (bits per table in FAISS) and ``nflip`` are accepted and change
    nothing: the substrings tile all ``d`` bits and every search is exact, equal to
    :class:`IndexBinaryFlat`'s.
    """

    def __init__(self, d: int, nhash: int | None = None, b: int | None = None):
        super().__init__(d)
        if nhash is not None:
            lo = -(-self.d // 64)
            nhash = V.check_int(nhash, "nhash", min_value=lo, max_value=self.d,
                                what=f"a number of hash tables (each over at most 64 bits: {lo} to {self.d})")
        if b is not None:
            b = V.check_positive_int(b, "b")
            if nhash is not None and nhash * b > self.d:
                raise ValueError(f"b: nhash * b must be at most d = {self.d}, got {nhash} * {b}")
        self.nhash, self.b, self.nflip = nhash, b, 0
        self._index = MIHIndex(self.d, nhash)


class IndexBinaryIDMap(IndexBinary):
    """Ids of your own over another index (FAISS's ``IndexBinaryIDMap``).

    Wraps an empty :class:`IndexBinaryFlat` or :class:`IndexBinaryMultiHash`; ``add_with_ids``
    stores the codes with their int64 ids (any values, as in FAISS), searches return the ids
    (``-1`` padding stays ``-1``), ties still by order of addition, and ``remove_ids`` removes by
    id without renumbering. ``add`` and ``reconstruct`` raise, as in FAISS
    (:class:`IndexBinaryIDMap2` reconstructs by id). The wrapped index shares the storage, so
    its own searches return the ids too.
    """

    def __init__(self, index: IndexBinary):
        if not isinstance(index, (IndexBinaryFlat, IndexBinaryMultiHash)):
            raise TypeError(f"index: expected a hashkit.faiss IndexBinaryFlat or IndexBinaryMultiHash, got "
                            f"{V.describe(index)}")
        if index.ntotal:
            raise ValueError(f"index: must be empty when wrapped, got ntotal = {index.ntotal}")
        super().__init__(index.d)
        self.index = index
        self._index = index._index

    @property
    def id_map(self) -> np.ndarray:
        """The id of every stored code, in storage order (read-only)."""
        return self._index.ids()

    def add(self, x: Any) -> None:
        raise RuntimeError("add does not make sense with IndexBinaryIDMap, use add_with_ids")

    def add_with_ids(self, x: Any, ids: Any) -> None:
        """Append codes ``(n, d / 8)`` with their ids ``(n,)``."""
        c = _codes(x, self.d)
        arr = np.asarray(ids)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"ids: expected a 1-D integer array, got {V.describe(ids)}")
        if arr.shape[0] != c.n:
            raise ValueError(f"ids: expected {c.n} ids (one per code), got {arr.shape[0]}")
        self._index._add_ids(c.words, arr.astype(np.int64))

    def remove_ids(self, sel: Any) -> int:
        """Remove the codes whose ids are in ``sel``; returns how many (no renumbering)."""
        return self._index._remove(_sel_ids(sel))

    def reconstruct(self, key: int, x=None):
        raise RuntimeError("reconstruct not implemented for this type of index (use IndexBinaryIDMap2)")

    def reconstruct_n(self, i0: int, ni: int, x=None):
        raise RuntimeError("reconstruct not implemented for this type of index (use IndexBinaryIDMap2)")


class IndexBinaryIDMap2(IndexBinaryIDMap):
    """:class:`IndexBinaryIDMap` that also reconstructs a code from its id (the last one added
    with that id, as FAISS's reverse map keeps)."""

    def reconstruct(self, key: int, x=None) -> np.ndarray:
        key = V.check_int(key, "key", what="an id")
        snap = self._index._snapshot()
        hits = np.flatnonzero(snap.ids == key) if snap.ids is not None else np.zeros(0, np.int64)
        if hits.size == 0:
            raise ValueError(f"key: no code has id {key}")
        out = _bytes(snap.words[hits[-1]:hits[-1] + 1], self.d)[0]
        if x is not None:
            x[...] = out
            return x
        return out


def write_index_binary(index: IndexBinary, fname: str | os.PathLike) -> None:
    """Write a hashkit.faiss index to ``fname`` atomically (hashkit's ``hashkit-index/2``
    format, not FAISS's; :func:`read_index_binary` maps it back)."""
    if not isinstance(index, IndexBinary):
        raise TypeError(f"index: expected a hashkit.faiss binary index, got {V.describe(index)}")
    inner = index.index if isinstance(index, IndexBinaryIDMap) else index
    store = inner._index
    snap = store._snapshot()
    arrays = {"words": snap.words}
    meta: dict = {"d": index.d, "class": type(index).__name__, "inner": type(inner).__name__}
    if isinstance(inner, IndexBinaryMultiHash):
        meta.update(nhash=inner.nhash, b=inner.b, nflip=inner.nflip)
        if snap.words.shape[0]:
            tab = store._tables_for(snap)
            if tab.n == snap.words.shape[0]:
                arrays.update(desc=tab.desc, offsets=tab.offsets, table_ids=tab.ids)
    if isinstance(index, IndexBinaryIDMap):
        arrays["id_map"] = snap.ids if snap.ids is not None else np.zeros(0, np.int64)
    write_index_file(fname, "faiss-binary", index.d, arrays, meta)


def read_index_binary(fname: str | os.PathLike, io_flags: int = 0) -> IndexBinary:
    """Read an index written by :func:`write_index_binary`, memory-mapped (read-only until the
    first add). ``io_flags`` is accepted for compatibility (hashkit always maps)."""
    p = os.fspath(fname)
    f = read_index_file(p)
    meta, arrays = f["meta"], f["arrays"]
    classes = {"IndexBinaryFlat": IndexBinaryFlat, "IndexBinaryMultiHash": IndexBinaryMultiHash,
               "IndexBinaryIDMap": IndexBinaryIDMap, "IndexBinaryIDMap2": IndexBinaryIDMap2}
    if f["kind"] != "faiss-binary" or meta.get("class") not in classes or meta.get("inner") not in classes:
        raise ValueError(f"{p}: not an index written by hashkit.faiss.write_index_binary")
    d = meta.get("d")
    if d != f["nbits"]:
        raise ValueError(f"{p}: corrupt header (d)")
    if meta["inner"] == "IndexBinaryMultiHash":
        inner = IndexBinaryMultiHash(d, meta.get("nhash"), meta.get("b"))
        inner.nflip = meta.get("nflip", 0)
    else:
        inner = IndexBinaryFlat(d)
    wrapped = meta["class"] in ("IndexBinaryIDMap", "IndexBinaryIDMap2")
    out = classes[meta["class"]](inner) if wrapped else inner
    loaded = {"words": arrays["words"]}
    if wrapped:
        ids = arrays.get("id_map")
        n = arrays["words"].shape[0]
        if ids is None or ids.dtype != np.int64 or ids.shape != (n,):
            raise ValueError(f"{p}: array 'id_map' must be int64 of shape ({n},)")
        loaded["ids"] = ids
    inner._index._load_arrays(loaded, p)
    if "desc" in arrays:
        n = inner.ntotal
        desc, off, ids = arrays["desc"], arrays.get("offsets"), arrays.get("table_ids")
        if (off is None or ids is None or desc.dtype != np.int64 or desc.ndim != 2 or off.dtype != np.uint32
                or ids.dtype != np.uint32 or ids.shape != (desc.shape[0], n)):
            raise ValueError(f"{p}: the hash tables do not match the codes")
        inner._index._tables = _Tables(desc, off, ids, n, inner._index._generation)
    return out
