"""ShardedIndex: a Hamming index whose codes live on the workers of a Dask cluster."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .. import _validate as V
from ..codes import Codes, as_codes
from ..search import RadiusResult, _empty_radius, _empty_topk, _query_codes
from . import _worker as W
from ._common import check_client, gather_all, offsets, shard_sizes, workers

_KINDS = ("flat", "mih")


class ShardedIndex:
    """An exact Hamming index sharded over a ``dask.distributed.Client``'s workers.

    The interface of :class:`hashkit.HammingIndex` (``add``, ``search``, ``range_search``,
    ``ntotal``, ``codes``). Codes get global ids ``0, 1, ...`` in order of addition; shard ``s``
    holds contiguous runs of them and lives on worker ``s mod W``. A search sends the queries to
    every shard, each shard answers with its own exact top-k (or radius set) on its worker, and
    the client merges them by (distance, global id): the result equals :func:`hashkit.topk` /
    :func:`hashkit.radius_search` on all the codes, item for item.

    Failures: every shard's answer is required; if a task fails the call raises (Dask's error),
    never returns a partial merge. Shards built from a file (:meth:`from_file`) are reopened on
    another worker when theirs dies, so the search is retried and exact; shards scattered from
    the client's memory die with their worker (later calls raise until the index is rebuilt).

    Parameters
    ----------
    client : dask.distributed.Client
    nbits : int
    nshards : int
        Number of shards (default: one per worker).
    kind : {"flat", "mih"}
        Each shard's index: linear scan (:class:`hashkit.HammingIndex`) or multi-index hashing
        (:class:`hashkit.MIHIndex`, ``m`` substrings).
    """

    def __init__(self, client, nbits: int, nshards: int | None = None, *, kind: str = "flat",
                 m: int | None = None):
        self.client = check_client(client)
        self.nbits = V.check_positive_int(nbits, "nbits")
        self.kind = V.check_choice(kind, _KINDS, "kind")
        self.m = m
        ws = workers(client)
        self.nshards = len(ws) if nshards is None else V.check_positive_int(nshards, "nshards")
        self._workers = [ws[s % len(ws)] for s in range(self.nshards)]
        self._sizes = np.zeros(self.nshards, np.int64)
        self._shards = [self._submit(W.make_shard, s, self.nbits, self.kind, self.m, None, 0)
                        for s in range(self.nshards)]

    # Scattered arrays get unique keys (hash=False): Dask's content-hash keys collide when equal
    # data is sent again while the previous call's copy is being released ("lost dependencies").
    def _submit(self, fn, s, *args):
        return self.client.submit(fn, *args, workers=[self._workers[s]], allow_other_workers=True, pure=False)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def from_shards(cls, client, shards: Sequence[Any], nbits: int | None = None, *, kind: str = "flat",
                    m: int | None = None) -> "ShardedIndex":
        """An index over the given code sets, one shard each, in order (global ids follow the
        concatenation); empty shards (zero rows) are allowed."""
        if not isinstance(shards, (list, tuple)) or not shards:
            raise TypeError(f"shards: expected a non-empty list of code sets, got {V.describe(shards)}")
        if nbits is None:
            first = next((c for c in shards if getattr(c, "shape", (1,))[0] != 0), None)
            if first is None:
                raise ValueError("nbits: needed when every shard is empty")
            nbits = as_codes(first, "shards[0]").nbits
        index = cls(client, nbits, len(shards), kind=kind, m=m)
        gid = 0
        for s, c in enumerate(shards):
            words = _query_codes(c, index.nbits, f"shards[{s}]").numpy().words
            if words.shape[0]:
                fut = client.scatter(words, workers=[index._workers[s]], hash=False)
                index._shards[s] = index._submit(W.make_shard, s, index.nbits, kind, m, fut, gid)
            index._sizes[s] = words.shape[0]
            gid += words.shape[0]
        return index

    @classmethod
    def from_file(cls, client, path: str | os.PathLike, nshards: int | Sequence[int] | None = None, *,
                  kind: str = "flat", m: int | None = None) -> "ShardedIndex":
        """Shards over the rows of a code file that every worker can open at the same path
        (a ``hashkit-index/2`` file from ``HammingIndex.save``, memory-mapped by each worker, or
        a ``hashkit.save_codes`` ``.npz``). The data never passes through the client, and a
        shard whose worker dies is reopened on another one."""
        p = os.path.abspath(os.fspath(path))
        if p.endswith(".npz"):
            from ..codes import load_codes

            c = load_codes(p)
            nbits, n = c.nbits, c.n
        else:
            from .._indexfile import read_index_file

            f = read_index_file(p, verify=True)
            nbits, n = f["nbits"], f["arrays"]["words"].shape[0]
        ws = workers(client)
        sizes = shard_sizes(n, len(ws) if nshards is None else nshards)
        index = cls(client, nbits, len(sizes), kind=kind, m=m)
        off = offsets(sizes)
        for s in range(len(sizes)):
            index._shards[s] = index._submit(W.open_shard, s, p, int(off[s]), int(off[s + 1]), nbits, kind, m)
        index._sizes = sizes.copy()
        return index

    def add(self, codes: Any) -> None:
        """Append codes (global ids continue from ``ntotal``), spread so that shard sizes stay
        as equal as possible; each shard receives one contiguous run."""
        words = as_codes(codes, "codes", nbits=self.nbits).numpy().words
        n0 = self.ntotal
        target = shard_sizes(n0 + words.shape[0], self.nshards)
        need = np.maximum(target - self._sizes, 0)
        lo = 0
        for s in range(self.nshards):
            take = int(min(need[s], words.shape[0] - lo))
            if take <= 0:
                continue
            fut = self.client.scatter(np.ascontiguousarray(words[lo:lo + take]), workers=[self._workers[s]], hash=False)
            self._shards[s] = self._submit(W.add_piece, s, self._shards[s], fut, n0 + lo)
            self._sizes[s] += take
            lo += take

    # -- reading ----------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return int(self._sizes.sum())

    def __len__(self) -> int:
        return self.ntotal

    @property
    def shard_sizes(self) -> np.ndarray:
        return self._sizes.copy()

    def __repr__(self) -> str:
        return (f"ShardedIndex(nbits={self.nbits}, ntotal={self.ntotal}, nshards={self.nshards}, "
                f"kind={self.kind!r})")

    def codes(self) -> Codes:
        """Every code, gathered to the client in global-id order."""
        parts = gather_all(self.client, [self._submit(_words_and_gids, s, self._shards[s])
                                         for s in range(self.nshards)], "ShardedIndex.codes")
        words = np.concatenate([w for w, _ in parts]) if parts else np.zeros((0, 1), np.uint64)
        gids = np.concatenate([g for _, g in parts]) if parts else np.zeros(0, np.int64)
        return Codes(np.ascontiguousarray(words[np.argsort(gids, kind="stable")]), self.nbits)

    def _queries(self, q):
        qc = _query_codes(q, self.nbits).numpy()
        if self.ntotal == 0:
            raise ValueError("ShardedIndex: the index is empty; add codes before searching")
        return qc

    def _live(self):
        return [s for s in range(self.nshards) if self._sizes[s] > 0]

    def search(self, q: Any, k: int):
        """Exact top-``k``: ``(dist int32 (Q, k), idx int64 (Q, k))`` by (distance, global id)."""
        qc = self._queries(q)
        k = V.check_k(k, self.ntotal)
        if qc.n == 0:
            return _empty_topk(k, None)
        qf = self.client.scatter(qc.words, broadcast=True, hash=False)
        futs = [self._submit(W.shard_topk, s, self._shards[s], qf, self.nbits, k) for s in self._live()]
        parts = gather_all(self.client, futs, "ShardedIndex.search")   # all shards, or an error
        return merge_topk(parts, k)

    def range_search(self, q: Any, r: int) -> RadiusResult:
        """Exact radius search (distance ``<= r``): ``(lims, dist, idx)`` by (distance, global id)."""
        qc = self._queries(q)
        r = V.check_radius(r)
        if qc.n == 0:
            return _empty_radius()
        qf = self.client.scatter(qc.words, broadcast=True, hash=False)
        futs = [self._submit(W.shard_radius, s, self._shards[s], qf, self.nbits, r) for s in self._live()]
        return merge_radius(gather_all(self.client, futs, "ShardedIndex.range_search"), qc.n)


def _words_and_gids(shard):
    return shard.words(), shard.gids()


def merge_topk(parts, k: int):
    """The exact top-k of per-shard top-k lists ``[(dist (Q, k_s), gid (Q, k_s))]``."""
    d = np.concatenate([p[0] for p in parts], axis=1)
    g = np.concatenate([p[1] for p in parts], axis=1)
    if len(parts) == 1:
        return np.ascontiguousarray(d[:, :k]), np.ascontiguousarray(g[:, :k])
    order = np.lexsort((g, d), axis=1)[:, :k] if d.shape[0] else np.zeros((0, k), np.int64)
    return (np.ascontiguousarray(np.take_along_axis(d, order, 1)),
            np.ascontiguousarray(np.take_along_axis(g, order, 1)))


def merge_radius(parts, nq: int) -> RadiusResult:
    """Per query, the union of per-shard radius results ordered by (distance, global id)."""
    qid = np.concatenate([np.repeat(np.arange(nq), np.diff(p[0])) for p in parts])
    dist = np.concatenate([p[1] for p in parts])
    gid = np.concatenate([p[2] for p in parts])
    order = np.lexsort((gid, dist, qid))
    lims = np.zeros(nq + 1, np.int64)
    np.cumsum(np.bincount(qid, minlength=nq), out=lims[1:])
    return RadiusResult(lims, dist[order].astype(np.int32), gid[order].astype(np.int64))
