"""Split protocols as data, seeded split construction, and split manifests.

A :class:`Protocol` states the query / retrieval / train / validation sizes of a dataset and how
they are drawn. :func:`make_split` turns it into index arrays with ``np.random.default_rng(seed)``;
the result is a :class:`Manifest` (indices, seed, checksums of the source files) that is saved
beside every result (JSON or npz, written atomically) and can be loaded to reuse the split
exactly (``hashkit.data.load(name, manifest=path)``).

Conventions: ``query`` and ``retrieval`` are disjoint and together cover the dataset unless the
protocol caps the retrieval size; ``train`` and ``val`` are drawn from ``retrieval`` (as in the
papers), ``val`` disjoint from ``train`` where the retrieval set is large enough, and never from
the queries. Every index array is sorted ascending, so database order (which decides Hamming
ties under ``ties="index"``) is the file's order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hashkit._io import atomic_path

KINDS = ("random", "stratified", "per-class", "fixed", "presplit", "permutation")
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Protocol:
    """Sizes and drawing rule of a split.

    Parameters
    ----------
    name : str
    query : int or float        number of queries; a float in (0, 1) is a fraction of the items
    train : int, float or None  training items, drawn from the retrieval set (float: fraction;
                                None: the whole retrieval set)
    val : int or float          validation queries, drawn from the retrieval set (float: fraction)
    retrieval : int or None     retrieval-set size; None = every item that is not a query
    kind : {"random", "stratified", "per-class", "fixed", "presplit", "permutation"}
        ``random``: uniform without replacement. ``stratified``: single-label data, every class
        in proportion. ``per-class``: for each label in turn, ``query_per_class`` queries and
        ``train_per_class`` training items among items carrying it and not yet taken, the
        first label taking ``first_query_per_class`` / ``first_train_per_class`` when set;
        then training items topped up to ``train`` from the rest of the retrieval set (DJSRH
        ``datasets.py``: MIRFLICKR 160/400 then 80/200, NUS-WIDE 200/500). Randomness is
        consumed as DJSRH does (a permutation of every item carrying the label, then the taken
        ones filtered out), so a transcription of its loop with the same generator gives the
        same indices. ``fixed``: the unshuffled split of the DCMH PyTorch port (first
        ``query`` items are queries, the next ``retrieval`` the database, its first ``train``
        items the training set, the following ``val`` the validation set). ``permutation``:
        torchcmh's ``split_data``: ``np.random.seed(seed); perm = np.random.permutation(n)``,
        queries ``perm[:query]``, training items ``perm[query:query + train]``, retrieval
        ``perm[query:]`` (pass torchcmh's seed to get its split). ``presplit``: the file holds
        the split; only ``val`` is drawn (at most a tenth of the retrieval set), and ``train``
        too when the file stores none (``None``: the whole retrieval set).
    query_per_class, train_per_class : int, for ``per-class``
    first_query_per_class, first_train_per_class : int, for ``per-class`` (0: as the others)
    source : str                where the numbers come from
    """

    name: str
    query: int | float
    train: int | float
    val: int | float
    retrieval: int | None = None
    kind: str = "random"
    query_per_class: int = 0
    train_per_class: int = 0
    source: str = ""
    first_query_per_class: int = 0
    first_train_per_class: int = 0

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Manifest:
    """Everything needed to rebuild a split exactly.

    Attributes
    ----------
    dataset, protocol, kind : str
    seed : int
    n : int                          items in the dataset
    query, retrieval, train, val : int64 arrays (sorted) of dataset indices
    sources : list of dict           {"path", "size", "sha256", "method"} per source file
    labels_sha256 : str              checksum of the uint8 label matrix (catches a changed file
                                     even when only a partial file checksum was affordable)
    options : dict                   reader options (e.g. ``image="features"``)
    protocol_spec : dict             the Protocol's fields
    """

    dataset: str
    protocol: str
    kind: str
    seed: int
    n: int
    query: np.ndarray
    retrieval: np.ndarray
    train: np.ndarray
    val: np.ndarray
    sources: list = field(default_factory=list)
    labels_sha256: str = ""
    options: dict = field(default_factory=dict)
    protocol_spec: dict = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    _ARRAYS = ("query", "retrieval", "train", "val")

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in self._ARRAYS:
            d[k] = [int(i) for i in d[k]]
        return d

    @classmethod
    def from_dict(cls, d: dict, origin: str = "manifest") -> "Manifest":
        missing = [k for k in ("dataset", "seed", "n") + cls._ARRAYS if k not in d]
        if missing:
            raise ValueError(f"{origin}: expected a split manifest with keys {missing}, "
                             f"found keys {sorted(d)}")
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for k in cls._ARRAYS:
            arr = np.asarray(kw[k], dtype=np.int64).reshape(-1)
            if arr.size and (arr.min() < 0 or arr.max() >= int(d["n"])):
                raise ValueError(f"{origin}: {k} indices must lie in [0, {d['n']}), found "
                                 f"range [{arr.min()}, {arr.max()}]")
            kw[k] = arr
        kw.setdefault("protocol", "")
        kw.setdefault("kind", "")
        kw["seed"] = int(kw["seed"]) if kw["seed"] is not None else None
        kw["n"] = int(kw["n"])
        return cls(**kw)

    def save(self, path) -> Path:
        return save_manifest(self, path)

    # dict(manifest) and json.dumps(dict(manifest)) work like to_dict()
    def keys(self):
        return self.to_dict().keys()

    def __getitem__(self, key):
        return self.to_dict()[key]

    def same_split(self, other: "Manifest") -> bool:
        return all(np.array_equal(getattr(self, k), getattr(other, k)) for k in self._ARRAYS)


def _atomic_write(path: Path, write) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
    return Path(path)


def save_manifest(manifest: Manifest, path) -> Path:
    """Write ``manifest`` to ``path`` (``.json`` or ``.npz``) atomically; returns the path.

    Example
    -------
    >>> ds = hashkit.data.load("mfeat", seed=0)               # doctest: +SKIP
    >>> save_manifest(ds.manifest, "runs/mfeat.split.json")  # doctest: +SKIP
    """
    path = Path(path)
    d = manifest.to_dict()
    if path.suffix == ".npz":
        meta = {k: v for k, v in d.items() if k not in Manifest._ARRAYS}
        arrays = {k: np.asarray(getattr(manifest, k), dtype=np.int64) for k in Manifest._ARRAYS}
        return _atomic_write(path, lambda fh: np.savez_compressed(
            fh, meta=np.array(json.dumps(meta)), **arrays))
    if path.suffix != ".json":
        raise ValueError(f"path: expected a file name ending in .json or .npz, got {str(path)!r}")
    text = json.dumps(d, indent=1, sort_keys=True)
    return _atomic_write(path, lambda fh: fh.write(text.encode()))


def load_manifest(path) -> Manifest:
    """Read a manifest written by :func:`save_manifest` (``.json`` or ``.npz``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split manifest not found")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise ValueError(f"{path}: expected a split manifest with a 'meta' entry, "
                                 f"found {z.files}")
            d = json.loads(str(z["meta"]))
            for k in Manifest._ARRAYS:
                if k in z.files:
                    d[k] = z[k]
        return Manifest.from_dict(d, str(path))
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: expected a JSON split manifest, found invalid JSON ({e})") from None
    return Manifest.from_dict(d, str(path))


def manifest_path(result_path) -> Path:
    """The conventional manifest file beside a result: ``run.npz`` -> ``run.split.json``."""
    p = Path(result_path)
    return p.with_name(p.stem + ".split.json")


def file_checksum(path, full_limit: int = 1 << 28) -> dict:
    """sha256 of a source file. Files above ``full_limit`` bytes (256 MiB) are fingerprinted:
    sha256 of the size and three 4 MiB windows (head, middle, tail); ``method`` says which."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= full_limit:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
            method = "sha256"
        else:
            h.update(str(size).encode())
            win = 1 << 22
            for off in (0, size // 2, max(size - win, 0)):
                fh.seek(off)
                h.update(fh.read(win))
            method = "sha256-sampled"
    return {"path": str(path), "name": path.name, "size": size, "sha256": h.hexdigest(),
            "method": method}


def labels_checksum(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.uint8).tobytes()
                          + str(labels.shape).encode()).hexdigest()


def _count(q, n) -> int:
    if q is None:
        return n
    if isinstance(q, float) and 0 < q < 1:
        return int(round(q * n))
    return int(q)


def _need(what, wanted, available, dataset):
    if wanted > available:
        raise ValueError(f"{dataset}: split needs {wanted} {what} items, but only "
                         f"{available} are available")


def _pick(rng, pool: np.ndarray, k: int) -> np.ndarray:
    return np.sort(rng.choice(pool, size=k, replace=False)) if k else np.zeros(0, np.int64)


def _draw_val(rng, retrieval, train, nval, dataset):
    rest = np.setdiff1d(retrieval, train, assume_unique=True)
    pool = rest if len(rest) >= nval else retrieval
    _need("validation", nval, len(pool), dataset)
    return _pick(rng, pool, nval)


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder allocation of ``total`` over classes in proportion to ``counts``."""
    exact = counts * (total / counts.sum())
    base = np.floor(exact).astype(np.int64)
    short = total - int(base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:short]] += 1
    return base


def make_split(labels: np.ndarray, protocol: Protocol, seed: int | None = 0,
               dataset: str = "dataset", presplit: dict | None = None) -> dict:
    """Draw the split of ``protocol`` for items with multi-hot ``labels`` (uint8 (n, L)).

    Returns a dict of sorted int64 index arrays ``query``, ``retrieval``, ``train``, ``val``.
    The same ``(labels, protocol, seed)`` always gives the same arrays.

    Raises
    ------
    ValueError
        When the dataset is too small for the protocol, or ``stratified`` meets multi-label rows.

    Example
    -------
    >>> p = Protocol("demo", query=2, train=3, val=1)
    >>> s = make_split(np.eye(4, dtype=np.uint8).repeat(3, 0), p, seed=0)
    >>> [len(s[k]) for k in ("query", "retrieval", "train", "val")]
    [2, 10, 3, 1]
    """
    n = int(labels.shape[0])
    kind = protocol.kind
    if kind not in KINDS:
        raise ValueError(f"protocol.kind: expected one of {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    nq = _count(protocol.query, n)
    nt, nv = _count(protocol.train, n), _count(protocol.val, n)

    if kind == "presplit":
        if presplit is None:
            raise ValueError(f"{dataset}: protocol 'presplit' needs a file that holds the split")
        query, retrieval = (np.asarray(presplit[k], np.int64) for k in ("query", "retrieval"))
        if presplit.get("train") is not None:
            train = np.asarray(presplit["train"], np.int64)
        else:   # the file stores query and database only: training items come from the database
            nt = _count(protocol.train, len(retrieval))
            _need("training", nt, len(retrieval), dataset)
            train = retrieval.copy() if nt == len(retrieval) else _pick(rng, retrieval, nt)
        # the file's sizes are not known in advance: never take more than a tenth of them
        nv = min(nv, len(retrieval) // 10)
        outside = train if len(retrieval) - len(np.intersect1d(retrieval, train)) >= nv \
            else np.zeros(0, np.int64)
        val = _draw_val(rng, retrieval, outside, nv, dataset)
        return {"query": query, "retrieval": retrieval, "train": train, "val": val}

    if kind == "fixed":
        nr = n - nq if protocol.retrieval is None else int(protocol.retrieval)
        _need("query + retrieval", nq + nr, n, dataset)
        _need("train + validation", nt + nv, nr, dataset)
        retrieval = np.arange(nq, nq + nr, dtype=np.int64)
        return {"query": np.arange(nq, dtype=np.int64), "retrieval": retrieval,
                "train": retrieval[:nt].copy(), "val": retrieval[nt:nt + nv].copy()}

    if kind == "stratified":
        card = labels.sum(axis=1)
        if np.any(card != 1):
            raise ValueError(f"{dataset}: protocol kind 'stratified' expects exactly one label "
                             f"per item, found items with {int(card.min())}..{int(card.max())}")
        cls = np.argmax(labels, axis=1)
        counts = np.bincount(cls, minlength=labels.shape[1])
        present = counts > 0
        query, train, val, retrieval = [], [], [], []
        qa = np.zeros_like(counts)
        qa[present] = _allocate(counts[present], nq)
        nr_total = n - nq
        ta = np.zeros_like(counts)
        ta[present] = _allocate(counts[present] - qa[present], min(nt, nr_total))
        va = np.zeros_like(counts)
        va[present] = _allocate(counts[present] - qa[present], min(nv, nr_total))
        for c in np.nonzero(present)[0]:
            members = rng.permutation(np.nonzero(cls == c)[0])
            query.append(members[:qa[c]])
            rest = members[qa[c]:]
            retrieval.append(rest)
            train.append(rest[:ta[c]])
            val_pool = rest[ta[c]:] if len(rest) - ta[c] >= va[c] else rest
            val.append(val_pool[len(val_pool) - va[c]:] if va[c] else val_pool[:0])
        out = {k: np.sort(np.concatenate(v)).astype(np.int64)
               for k, v in (("query", query), ("retrieval", retrieval), ("train", train),
                            ("val", val))}
        _need("training", nt, len(out["retrieval"]), dataset)
        if protocol.retrieval is not None:
            _need("retrieval", int(protocol.retrieval), len(out["retrieval"]), dataset)
        return out

    if kind == "per-class":
        taken = np.zeros(n, dtype=bool)
        query, train = [], []
        for j in range(labels.shape[1]):
            nqc, ntc = protocol.query_per_class, protocol.train_per_class
            if j == 0:
                nqc = protocol.first_query_per_class or nqc
                ntc = protocol.first_train_per_class or ntc
            # DJSRH: permute every item carrying label j, then drop the ones already taken
            index = np.nonzero(labels[:, j] == 1)[0]
            index = index[rng.permutation(len(index))]
            members = index[~taken[index]]
            q = members[:nqc]
            t = members[nqc:nqc + ntc]
            taken[q] = True
            taken[t] = True
            query.append(q)
            train.append(t)
        query = np.concatenate(query).astype(np.int64)
        train = np.concatenate(train).astype(np.int64)
        retrieval = np.setdiff1d(np.arange(n, dtype=np.int64), query)
        if len(train) < nt:  # rare labels ran out: top up from the rest of the retrieval set
            pick = retrieval[~np.isin(retrieval, train)]
            pick = pick[rng.permutation(len(pick))]
            train = np.concatenate([train, pick[:nt - len(train)]])
        query, train = np.sort(query), np.sort(train)
        val = _draw_val(rng, retrieval, train, nv, dataset)
        return {"query": query, "retrieval": retrieval, "train": train, "val": val}

    if kind == "permutation":
        _need("query", nq, n, dataset)
        _need("training", nt, n - nq, dataset)
        perm = np.random.RandomState(seed).permutation(n)   # torchcmh: np.random.seed(seed)
        query = np.sort(perm[:nq]).astype(np.int64)
        retrieval = np.sort(perm[nq:]).astype(np.int64)
        train = np.sort(perm[nq:nq + nt]).astype(np.int64)
        val = _draw_val(rng, retrieval, train, nv, dataset)
        return {"query": query, "retrieval": retrieval, "train": train, "val": val}

    _need("query", nq, n, dataset)
    perm = rng.permutation(n)
    query = np.sort(perm[:nq]).astype(np.int64)
    rest = perm[nq:]
    if protocol.retrieval is not None:
        _need("retrieval", int(protocol.retrieval), len(rest), dataset)
        rest = rest[:int(protocol.retrieval)]
    retrieval = np.sort(rest).astype(np.int64)
    _need("training", nt, len(retrieval), dataset)
    train = _pick(rng, retrieval, nt)
    val = _draw_val(rng, retrieval, train, nv, dataset)
    return {"query": query, "retrieval": retrieval, "train": train, "val": val}
