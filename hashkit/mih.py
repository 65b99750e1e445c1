"""Exact multi-index hashing: :class:`MIHIndex`, sub-linear k-NN and radius search.

Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index Hashing" (CVPR 2012;
TPAMI 2014). Each code is cut into ``m`` disjoint substrings and each substring indexes one
hash table. If two codes are within Hamming distance ``r = a m + b`` (``0 <= b < m``), then by
the pigeonhole principle some substring among the first ``b + 1`` differs in at most ``a`` bits,
or some later substring in at most ``a - 1`` (else the distance would be at least
``(b + 1)(a + 1) + (m - b - 1) a = r + 1``). Probing those buckets therefore finds every item
within ``r``, and each candidate is verified with its full code: results are exact, and
identical item for item and in (distance, index) order to :func:`hashkit.topk` /
:func:`hashkit.radius_search`.

The search walks *steps* ``t = 0, 1, 2, ...``, step ``t`` probing table ``t mod m`` at substring
distance exactly ``t div m``; after steps ``0..r`` the radius rule above is satisfied for ``r``.
k-NN grows the radius step by step until ``k`` items at distance ``<=`` the current step are
held. An item is verified only at its first step, so no visited set is kept per query. Tables
are CSR arrays: one ``uint32`` offset per bucket and one ``uint32`` id per item per table,
direct-addressed for substrings of up to 24 bits (hashed into ``2^b`` buckets beyond, where the
bucket's other keys are filtered out by the check). When a query's probes would read more than
``scan_fraction * N`` bucket entries (clustered codes: a few huge buckets; or a large radius),
that query is answered by the linear scan instead, with the same result.

Where it pays (AMD EPYC Zen 3, AVX2, 2 threads; benchmarks/test_bench_mih.py): random 64-bit
codes at N = 10M, radius 0-3 and small k; see docs/SCALE.md for the table and where the scan
wins.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any, NamedTuple

import numpy as np

from . import _validate as V
from ._indexfile import read_index_file, write_index_file
from .codes import Codes
from .kernels import get, prepare, resolve
from .search import (RadiusResult, _CodeStore, _empty_radius, _empty_topk, _map_ids, _radius, _Snapshot,
                     _topk)

__all__ = ["MIHIndex", "default_m", "substrings"]

#: Largest direct-addressed table: 2^24 buckets (64 MiB of offsets).
MAX_DIRECT_BITS = 24
#: Default share of the database a query may read through the tables before the linear scan
#: answers it instead (a random read costs about ten sequential ones; measured, docs/SCALE.md).
SCAN_FRACTION = 1 / 16
# Codes added after the tables were built are scanned linearly until there are this many or
# 1/64 of the tables' items, then the tables are rebuilt (amortised O(m) per added code).
_DELTA_MIN = 4096
_DELTA_SHARE = 64
# k-NN pilot: of a batch of at least 4 x 64 queries the first 64 go through the tables first;
# when more than 90% of those are scanned anyway, so is the rest of the batch, directly.
_PILOT = 64
_PILOT_GIVE_UP = 0.9


def default_m(nbits: int, n: int) -> int:
    """The number of substrings for ``n`` codes of ``nbits`` bits: ``ceil(nbits / log2 n)``.

    Substrings of about ``log2 n`` bits hold about one item per bucket, the choice the MIH paper
    derives and recommends (``m = nbits / log2 n``); rounding up, so substrings are at most
    ``log2 n`` bits, was measured faster for k-NN (random 64-bit codes, 2 threads, Zen 3: at
    N = 1M m = 4 is 2.7x faster than m = 3 at k = 10; at N = 10M m = 3 beats m = 4 2.7x; the
    radius searches differ little). At least ``ceil(nbits / 64)`` (a substring has at most 64
    bits), at most ``nbits``.
    """
    lg = max(math.log2(max(int(n), 2)), 4.0)
    m = math.ceil(nbits / lg - 1e-9)
    return int(min(nbits, max(m, -(-nbits // 64), 1)))


def substrings(nbits: int, m: int, n: int) -> np.ndarray:
    """The table descriptor ``int64 (m, 4)``: first bit, length, table bits, hashed flag.

    The ``nbits`` bits are cut into ``m`` contiguous substrings whose lengths differ by at most
    one (the longer ones first). A substring of ``L`` bits gets a direct table of ``2^L`` buckets
    when ``L <= cap``, else a table hashed into ``2^cap`` buckets, with
    ``cap = min(24, max(10, bit_length(n) + 1))``: at most about two buckets per item.
    """
    cap = min(MAX_DIRECT_BITS, max(10, int(n).bit_length() + 1))
    base, extra = divmod(nbits, m)
    desc = np.zeros((m, 4), np.int64)
    first = 0
    for j in range(m):
        length = base + (1 if j < extra else 0)
        hashed = length > cap
        desc[j] = (first, length, cap if hashed else length, int(hashed))
        first += length
    return desc


class _Tables(NamedTuple):
    desc: np.ndarray      # (m, 4) int64
    offsets: np.ndarray   # uint32, every table's CSR offsets
    ids: np.ndarray       # (m, n) uint32
    n: int                # items covered: the first n codes
    generation: int       # the store's generation they were built for


def _kernels(backend: str):
    name = resolve(backend)
    if name == "cpp":
        return get("cpp")  # hashkit._core, imported by the kernel selector
    if name == "numba":
        from .kernels import _numba_mih

        return _numba_mih
    raise ValueError(f"backend: MIHIndex runs on the CPU ('auto', 'cpp' or 'numba'), got {backend!r}; "
                     "use HammingIndex for codes on a GPU")


class MIHIndex(_CodeStore):
    """An exact multi-index hashing index with the :class:`hashkit.HammingIndex` interface.

    Parameters
    ----------
    nbits : int
        Code length.
    m : int, optional
        Number of substrings (tables). Default: :func:`default_m` of the number of codes when
        the tables are built, ``ceil(nbits / log2 N)``.
    backend : {"auto", "cpp", "numba"}
        CPU backends only; both give identical results and build identical tables.
    nthreads : int, optional
        Threads over queries (default: every core).
    scan_fraction : float or None
        A query whose probes would read more than ``scan_fraction * N`` bucket entries is
        answered by the linear scan (same result); None never falls back.

    Notes
    -----
    Results are exact: :meth:`search` equals :func:`hashkit.topk` and :meth:`range_search`
    equals :func:`hashkit.radius_search` on the same codes, item for item, ties by index.
    Tables are built on the first search (and rebuilt when enough codes were added: codes added
    since are scanned linearly and merged exactly meanwhile). Thread-safe like
    :class:`hashkit.HammingIndex`: concurrent adds and searches, each search on a snapshot.
    Memory: the codes plus, per table, 4 bytes per item and 4 bytes per bucket
    (:meth:`memory_usage`).

    Examples
    --------
    >>> import numpy as np, hashkit
    >>> rng = np.random.default_rng(0)
    >>> db = rng.integers(0, 2**63, (10_000, 1), dtype=np.uint64)
    >>> index = hashkit.MIHIndex(64)
    >>> index.add(hashkit.Codes(db, 64))
    >>> d, i = index.search(hashkit.Codes(db[:3], 64), k=2)
    >>> i[:, 0].tolist(), d[:, 0].tolist()
    ([0, 1, 2], [0, 0, 0])
    """

    _KIND = "mih"

    def __init__(self, nbits: int, m: int | None = None, *, backend: str = "auto",
                 nthreads: int | None = None, scan_fraction: float | None = SCAN_FRACTION):
        super().__init__(nbits)
        if m is not None:
            lo = -(-self.nbits // 64)
            m = V.check_int(m, "m", min_value=lo, max_value=self.nbits,
                            what=f"a number of substrings (each at most 64 bits: {lo} to {self.nbits})")
        self.m = m
        self.backend = V.check_choice(backend, ("auto", "cpp", "numba"), "backend")
        _kernels(self.backend)  # fail now, with the reason, if the backend cannot run
        self.nthreads = V.check_nthreads(nthreads)
        if scan_fraction is not None:
            if isinstance(scan_fraction, bool) or not isinstance(scan_fraction, (int, float)) or not (
                    0 < scan_fraction <= 1e6):
                raise ValueError(f"scan_fraction: expected None or a number > 0, got {scan_fraction!r}")
        self.scan_fraction = scan_fraction
        self._tables: _Tables | None = None
        self._build_lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"MIHIndex(nbits={self.nbits}, m={self.m if self.m else 'auto'}, ntotal={self.ntotal}, "
                f"backend={self.backend!r})")

    # -- tables -----------------------------------------------------------------------------
    def _tables_for(self, snap: _Snapshot, k: int = 1) -> _Tables:
        n = snap.words.shape[0]
        with self._build_lock:
            tab = self._tables
            if (tab is not None and tab.generation == snap.generation and k <= tab.n <= n
                    and n - tab.n <= max(_DELTA_MIN, tab.n // _DELTA_SHARE)):
                return tab
            m = self.m if self.m is not None else default_m(self.nbits, n)
            desc = substrings(self.nbits, m, n)
            offsets, ids = _kernels(self.backend).mih_build(snap.words, self.nbits, desc, self.nthreads)
            tab = _Tables(desc, offsets, ids, n, snap.generation)
            if snap.generation == self._generation and (self._tables is None or self._tables.n <= n
                                                        or self._tables.generation != snap.generation):
                self._tables = tab
            return tab

    def build(self) -> None:
        """Build (or rebuild) the tables now rather than on the first search."""
        snap = self._snapshot()
        if snap.words.shape[0]:
            with self._build_lock:
                self._tables = None
            self._tables_for(snap)

    def _limit(self, n: int) -> int:
        return 0 if self.scan_fraction is None else max(1, int(self.scan_fraction * n))

    def memory_usage(self) -> dict:
        """Bytes held: ``codes``, ``ids`` (4 per item per table), ``offsets`` (4 per bucket per
        table), ``user_ids`` (8 per item when ids were given) and ``total``; ``m`` and
        ``bytes_per_item_per_table`` (ids + offsets) for the tables as built (0 before)."""
        snap = self._snapshot()
        tab = self._tables
        n = snap.words.shape[0]
        out = {"codes": int(snap.words.nbytes), "ids": 0, "offsets": 0,
               "user_ids": 0 if snap.ids is None else int(snap.ids.nbytes), "m": 0,
               "bytes_per_item_per_table": 0.0}
        if tab is not None:
            out.update(ids=int(tab.ids.nbytes), offsets=int(tab.offsets.nbytes), m=int(tab.desc.shape[0]))
            out["bytes_per_item_per_table"] = (out["ids"] + out["offsets"]) / max(1, tab.n * out["m"])
        out["total"] = out["codes"] + out["ids"] + out["offsets"] + out["user_ids"]
        out["n"] = n
        return out

    # -- search -----------------------------------------------------------------------------
    def _db(self, snap: _Snapshot) -> Codes:
        if snap.words.shape[0] == 0:
            raise ValueError("MIHIndex: the index is empty; add codes before searching")
        return Codes(snap.words, self.nbits)

    def search(self, q: Any, k: int, *, return_work: bool = False):
        """Exact top-``k``: ``(dist int32 (Q, k), idx int64 (Q, k))`` by (distance, index),
        the same as :func:`hashkit.topk`; ``idx`` holds ids when the index has them.

        ``return_work=True`` adds a third array, int64 ``(Q,)``: bucket probes plus candidates
        read per query, or -1 where the query was answered by the linear scan.
        """
        snap = self._snapshot()
        db = self._db(snap)
        qc = self._queries(q).numpy()
        k = V.check_k(k, db.n)
        if qc.n == 0:
            d, i = _empty_topk(k, None)
            return (d, i, np.zeros(0, np.int64)) if return_work else (d, i)
        tab = self._tables_for(snap, k)
        nb = tab.n
        d, i, work = self._knn_tables(qc.words, snap.words[:nb], tab, k)
        if nb < db.n:  # codes added since the build: scanned, merged by (distance, index)
            k2 = min(k, db.n - nb)
            d2, i2 = _topk(self._scan(qc, snap.words[nb:]), k2, None)
            d, i = _merge_topk(d, i, d2, i2 + nb, k)
        i = _map_ids(i, snap.ids)
        return (d, i, work) if return_work else (d, i)

    def _knn_tables(self, q: np.ndarray, words: np.ndarray, tab: _Tables, k: int):
        """k-NN of a batch through the tables. A pilot of the first ``_PILOT`` queries goes first;
        when nearly all of them exceed the budget (k-NN at a radius the tables cannot reach
        cheaply, e.g. 128-bit random codes), the rest are scanned at once rather than each
        spending its budget first (work -1). Deterministic: results never depend on it."""
        kern = _kernels(self.backend)
        args = (self.nbits, tab.desc, tab.offsets, tab.ids, k, self._limit(tab.n), self.nthreads)
        nq = q.shape[0]
        if self.scan_fraction is None or nq < 4 * _PILOT:
            return kern.mih_topk(q, words, *args)
        d, i, work = kern.mih_topk(q[:_PILOT], words, *args)
        if np.mean(work < 0) <= _PILOT_GIVE_UP:
            d2, i2, w2 = kern.mih_topk(np.ascontiguousarray(q[_PILOT:]), words, *args)
        else:
            d2, i2 = _topk(self._scan(Codes(np.ascontiguousarray(q[_PILOT:]), self.nbits), words), k, None)
            w2 = np.full(nq - _PILOT, -1, np.int64)
        return np.concatenate([d, d2]), np.concatenate([i, i2]), np.concatenate([work, w2])

    def range_search(self, q: Any, r: int, *, return_work: bool = False) -> RadiusResult:
        """Exact radius search (distance ``<= r``): ``(lims, dist, idx)`` in FAISS's order,
        each query's items by (distance, index), the same as :func:`hashkit.radius_search`.

        ``return_work=True`` returns ``(result, work)`` (see :meth:`search`).
        """
        res, ids, work = self._range_work(q, r)
        res = res._replace(idx=_map_ids(res.idx, ids))
        return (res, work) if return_work else res

    def _range_positions(self, q: Any, r: int):
        res, ids, _ = self._range_work(q, r)
        return res, ids

    def _range_work(self, q: Any, r: int):
        snap = self._snapshot()
        db = self._db(snap)
        qc = self._queries(q).numpy()
        r = V.check_radius(r)
        if qc.n == 0:
            return _empty_radius(), snap.ids, np.zeros(0, np.int64)
        tab = self._tables_for(snap)
        nb = tab.n
        lims, idx, dist, work = _kernels(self.backend).mih_radius(
            qc.words, snap.words[:nb], self.nbits, tab.desc, tab.offsets, tab.ids, r, self._limit(nb),
            self.nthreads)
        res = RadiusResult(lims, dist, idx)
        if nb < db.n:
            more = _radius(self._scan(qc, snap.words[nb:]), r)
            res = _merge_radius(res, more._replace(idx=more.idx + nb))
        return res, snap.ids, work

    def _scan(self, qc: Codes, words: np.ndarray):
        return prepare(qc, Codes(words, self.nbits), backend=self.backend, nthreads=self.nthreads)

    # -- files ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write codes, ids and the tables atomically (``hashkit-index/2``); :meth:`load` maps
        them back without rebuilding."""
        snap = self._snapshot()
        arrays = self._file_arrays(snap)
        tab = self._tables_for(snap) if snap.words.shape[0] else None
        meta = {"m": self.m}
        if tab is not None and tab.n == snap.words.shape[0]:
            arrays.update(desc=tab.desc, offsets=tab.offsets, table_ids=tab.ids)
        write_index_file(path, self._KIND, self.nbits, arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, *, backend: str = "auto", nthreads: int | None = None,
             scan_fraction: float | None = SCAN_FRACTION, mmap: bool = True) -> "MIHIndex":
        """Read an index written by :meth:`save` (or a flat index file, whose tables are built
        on the first search). Arrays are memory-mapped read-only and CRC-checked once."""
        p = os.fspath(path)
        f = read_index_file(p, mmap=mmap)
        if f["kind"] not in ("mih", "flat"):
            raise ValueError(f"{p}: holds a {f['kind']!r} index, expected 'mih' or 'flat'")
        m = f["meta"].get("m")
        if m is not None and not isinstance(m, int):
            raise ValueError(f"{p}: corrupt meta 'm'")
        index = cls(f["nbits"], m, backend=backend, nthreads=nthreads, scan_fraction=scan_fraction)
        arrays = f["arrays"]
        index._load_arrays(arrays, p)
        if "desc" in arrays:
            desc, off, ids = arrays["desc"], arrays.get("offsets"), arrays.get("table_ids")
            n = index.ntotal
            if (off is None or ids is None or desc.dtype != np.int64 or desc.ndim != 2 or desc.shape[1] != 4
                    or off.dtype != np.uint32 or ids.dtype != np.uint32 or ids.shape != (desc.shape[0], n)):
                raise ValueError(f"{p}: the MIH tables do not match the codes")
            index._tables = _Tables(desc, off, ids, n, index._generation)
        return index


def _merge_topk(d1, i1, d2, i2, k):
    """Exact top-k of two candidate sets by (distance, index); indices below 2^40."""
    key = np.concatenate([(d1.astype(np.int64) << 40) | i1, (d2.astype(np.int64) << 40) | i2], axis=1)
    key.sort(axis=1)
    key = key[:, :k]
    return (key >> 40).astype(np.int32), key & ((1 << 40) - 1)


def _merge_radius(a: RadiusResult, b: RadiusResult) -> RadiusResult:
    """Per query, the union of two radius results ordered by (distance, index)."""
    nq = a.lims.shape[0] - 1
    qa = np.repeat(np.arange(nq), np.diff(a.lims))
    qb = np.repeat(np.arange(nq), np.diff(b.lims))
    q = np.concatenate([qa, qb])
    dist = np.concatenate([a.dist, b.dist])
    idx = np.concatenate([a.idx, b.idx])
    order = np.lexsort((idx, dist, q))
    lims = np.zeros(nq + 1, np.int64)
    np.cumsum(np.bincount(q, minlength=nq), out=lims[1:])
    return RadiusResult(lims, dist[order].astype(np.int32), idx[order].astype(np.int64))
