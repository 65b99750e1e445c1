"""k-nearest-neighbour graphs over feature vectors (UGACH's correlation graph), on the kernels.

:func:`knn_graph` finds, for every row of a feature matrix, its ``k`` nearest other rows by
Euclidean distance. Two ways:

``"exact"``
    Blocked brute force: a block of query rows against every row (one BLAS matrix product per
    block, ``||x||^2 - 2 x.y + ||y||^2`` in float32), the ``k`` smallest per row picked with
    ``np.argpartition`` and then put in (distance, index) order, so ties go to the smaller
    index exactly as ``np.argsort(kind="stable")`` would. Memory is one block
    (``block_rows x N`` float32), never an ``N x N`` matrix.
``"hamming"``
    Sign-random-projection sketches (Charikar, STOC 2002): the centred features times a seeded
    Gaussian matrix, sign -> ``nbits``-bit codes, whose Hamming distance estimates the angle.
    The packed :func:`hashkit.topk` kernel shortlists ``candidates * k`` rows per query, and
    the shortlist is re-ranked by exact Euclidean distance (the same float32 formula and tie
    rule as ``"exact"``). Cost: ``N x d x nbits`` for the sketches, ``N^2 x nbits / 64`` word
    operations in the kernel, ``N x candidates*k x d`` for the re-ranking, against
    ``N^2 x d`` for ``"exact"``.
``"auto"``
    ``"exact"`` below :data:`AUTO_HAMMING_MIN_N` rows, ``"hamming"`` from there on. Measured
    with ``benchmarks/test_bench_graph.py`` (clustered synthetic features, k = 10, the default
    1024-bit sketches and 48 k candidates, 2 cores): the two cost the same near 30,000 rows
    (4096-d 38.5 s vs 39.3 s; 1386-d 15.0 s vs 13.7 s); at 60,000 the sketch path is 1.7-1.9x
    faster with recall@10 0.9996, at 200,000 (4096-d) about 10x with recall@10 0.997. With 16 k
    candidates it is faster from 15,000 rows on but recall@10 falls to 0.96 at 200,000, hence
    the larger shortlist.

A row's own index is never among its neighbours (a duplicate row at distance 0 is).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as V

__all__ = ["knn_graph", "sign_sketch", "AUTO_HAMMING_MIN_N"]

#: ``method="auto"`` uses the sketch path from this many rows on (measured, see module docstring).
AUTO_HAMMING_MIN_N = 30_000

# One exact block holds block_rows x N float32 distances; this caps it near 64 MiB.
_BLOCK_BYTES = 64 << 20


def _as_features(x: Any, name: str) -> np.ndarray:
    arr = V.to_numpy(x, name)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected a 2-D float array (n >= 2, d >= 1), got {V.describe(x)}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_):
        raise TypeError(f"{name}: expected a numeric array, got {V.describe(x)}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got NaN or infinity")
    return arr


def _as_rows(rows: Any, n: int) -> np.ndarray:
    if rows is None:
        return np.arange(n, dtype=np.int64)
    arr = np.atleast_1d(V.to_numpy(rows, "rows"))
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"rows: expected a 1-D integer array of row indices, got {V.describe(rows)}")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ValueError(f"rows: expected indices in [0, {n - 1}], got values from {arr.min()} to {arr.max()}")
    return arr.astype(np.int64)


def _smallest_k(d: np.ndarray, k: int) -> np.ndarray:
    """Columns of the ``k`` smallest entries per row of ``d``, ordered by (value, column).

    ``argpartition`` picks *some* ``k`` smallest; when the k-th value is tied with entries
    outside that pick, the row is redone from the full tie set so that the smaller column
    indices win, as a stable sort would choose.
    """
    b, n = d.shape
    if k < n:
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), (b, n)).copy()
    vals = np.take_along_axis(d, part, axis=1)
    kth = vals.max(axis=1)
    n_le = (d <= kth[:, None]).sum(axis=1)
    for r in np.nonzero(n_le > k)[0]:
        cand = np.nonzero(d[r] <= kth[r])[0]                 # in column order
        part[r] = cand[np.argsort(d[r, cand], kind="stable")[:k]]
    vals = np.take_along_axis(d, part, axis=1)
    order = _lexsort_rows(vals, part)
    return np.take_along_axis(part, order, axis=1)


def _lexsort_rows(vals: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Per-row order by (value, column): sort by column first, then stably by value."""
    by_col = np.argsort(cols, axis=1, kind="stable")
    v = np.take_along_axis(vals, by_col, axis=1)
    by_val = np.argsort(v, axis=1, kind="stable")
    return np.take_along_axis(by_col, by_val, axis=1)


def _exact(x: np.ndarray, rows: np.ndarray, k: int, sq: np.ndarray, block_rows: int | None):
    n = x.shape[0]
    br = block_rows or max(1, min(4096, _BLOCK_BYTES // (4 * n)))
    idx = np.empty((rows.size, k), dtype=np.int64)
    dist = np.empty((rows.size, k), dtype=np.float32)
    for s in range(0, rows.size, br):
        r = rows[s:s + br]
        d = x[r] @ x.T
        d *= -2.0
        d += sq[r][:, None]
        d += sq[None, :]
        d[np.arange(r.size), r] = np.inf                   # never a row's own index
        sel = _smallest_k(d, k)
        idx[s:s + br] = sel
        dist[s:s + br] = np.take_along_axis(d, sel, axis=1)
    return idx, dist


def sign_sketch(features: Any, nbits: int = 512, seed: int = 0, center: bool = True,
                block_rows: int = 16384):
    """Sign-random-projection codes of the rows of ``features`` (as packed :class:`hashkit.Codes`).

    Bit ``j`` of row ``x`` is ``(x - mean) . r_j > 0`` with ``r_j`` i.i.d. standard Gaussian
    (drawn from ``numpy.random.default_rng(seed)``); the Hamming distance between two sketches
    estimates ``nbits * angle / pi`` between the centred rows.

    Parameters
    ----------
    features : array (n, d), float
    nbits : int
    seed : int
    center : bool
        Subtract the column mean first (non-negative features such as BoW or ReLU activations
        all lie in one orthant, where uncentred angles say little).
    block_rows : int
        Rows projected at a time (bounds the float32 temporary).

    Returns
    -------
    hashkit.Codes, ``n`` codes of ``nbits`` bits.

    Examples
    --------
    >>> import numpy as np
    >>> sign_sketch(np.eye(3, dtype=np.float32), nbits=8).nbits
    8
    """
    from .codes import Codes, pack_bits

    x = _as_features(features, "features")
    nbits = V.check_positive_int(nbits, "nbits")
    seed = V.check_int(seed, "seed", min_value=0, what="a non-negative integer")
    proj = np.random.default_rng(seed).standard_normal((x.shape[1], nbits)).astype(np.float32)
    mu = x.mean(axis=0, dtype=np.float64).astype(np.float32) if center else None
    words = []
    for s in range(0, x.shape[0], block_rows):
        blk = x[s:s + block_rows]
        if mu is not None:
            blk = blk - mu
        words.append(pack_bits((blk @ proj) > 0))
    return Codes(np.concatenate(words, axis=0), nbits)


def _hamming(x: np.ndarray, rows: np.ndarray, k: int, sq: np.ndarray, nbits: int, candidates: int,
             seed: int, nthreads: int | None):
    from .search import topk

    n = x.shape[0]
    sk = sign_sketch(x, nbits=nbits, seed=seed)
    c = min(n, candidates * k + 1)                          # +1: the row itself comes back
    idx = np.empty((rows.size, k), dtype=np.int64)
    dist = np.empty((rows.size, k), dtype=np.float32)
    qb = 4096
    rb = max(1, min(qb, _BLOCK_BYTES // (4 * c * x.shape[1])))    # re-ranking gathers (rb, c, d)
    for s in range(0, rows.size, qb):
        r = rows[s:s + qb]
        _, cand = topk(sk[r], sk, c, nthreads=nthreads)
        for t in range(0, r.size, rb):
            rr, cc = r[t:t + rb], cand[t:t + rb]
            # exact re-ranking of the shortlist, self masked, ties to the smaller index
            d = np.matmul(x[cc], x[rr][:, :, None])[:, :, 0]
            d *= -2.0
            d += sq[rr][:, None]
            d += sq[cc]
            d[cc == rr[:, None]] = np.inf
            sel = _lexsort_rows(d, cc)[:, :k]
            idx[s + t:s + t + rr.size] = np.take_along_axis(cc, sel, axis=1)
            dist[s + t:s + t + rr.size] = np.take_along_axis(d, sel, axis=1)
    return idx, dist


def knn_graph(features: Any, k: int = 5, method: str = "auto", *, rows: Any = None, nbits: int = 1024,
              candidates: int = 48, seed: int = 0, block_rows: int | None = None,
              return_distance: bool = False, nthreads: int | None = None):
    """The ``k`` nearest other rows of each row of ``features`` by Euclidean distance.

    Parameters
    ----------
    features : array (n, d)
        Float features (NumPy, PyTorch or CuPy; computed in float32 on the host).
    k : int
        Neighbours per row, ``1 <= k <= n - 1``.
    method : {"auto", "exact", "hamming"}
        See the module docstring. ``"exact"`` is brute force; ``"hamming"`` shortlists with
        ``nbits``-bit sign-random-projection sketches and the Hamming top-k kernel, then
        re-ranks exactly; ``"auto"`` picks by size (:data:`AUTO_HAMMING_MIN_N`).
    rows : int array, optional
        Only compute the neighbours of these rows (default: all rows). Neighbours are still
        searched among all ``n`` rows.
    nbits : int
        Sketch length for ``"hamming"``.
    candidates : int
        Shortlist length for ``"hamming"``, in multiples of ``k`` (48: recall@10 >= 0.99 up to
        200,000 rows in the benchmark).
    seed : int
        Seed of the random projection (``"hamming"``): same seed, same graph.
    block_rows : int, optional
        Query rows per block for ``"exact"`` (default: about 64 MiB of distances per block).
    return_distance : bool
        Also return the squared distances.
    nthreads : int, optional
        Threads for the Hamming kernel (default: every core).

    Returns
    -------
    idx : int64 ``(len(rows), k)``
        Neighbour indices ordered by (squared distance, index); a row never lists itself.
    dist : float32 ``(len(rows), k)``
        Squared Euclidean distances (clipped at 0), only with ``return_distance=True``.

    Raises
    ------
    TypeError, ValueError
        Not a 2-D finite numeric array, ``k`` outside ``[1, n - 1]``, unknown ``method``, bad
        ``rows``, ``nbits``, ``candidates`` or ``seed``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [3.0], [7.0]], dtype=np.float32)
    >>> knn_graph(x, k=2, method="exact").tolist()
    [[1, 2], [0, 2], [1, 0], [2, 1]]
    """
    x = _as_features(features, "features")
    n = x.shape[0]
    k = V.check_int(k, "k", min_value=1, max_value=n - 1,
                    what=f"a neighbour count between 1 and n - 1 = {n - 1}")
    method = V.check_choice(method, ("auto", "exact", "hamming"), "method")
    r = _as_rows(rows, n)
    nbits = V.check_positive_int(nbits, "nbits")
    candidates = V.check_positive_int(candidates, "candidates")
    seed = V.check_int(seed, "seed", min_value=0, what="a non-negative integer")
    if block_rows is not None:
        block_rows = V.check_positive_int(block_rows, "block_rows")
    if method == "auto":
        method = "hamming" if n >= AUTO_HAMMING_MIN_N else "exact"
    sq = np.einsum("nd,nd->n", x, x)
    if method == "exact" or candidates * k + 1 >= n:
        idx, dist = _exact(x, r, k, sq, block_rows)
    else:
        idx, dist = _hamming(x, r, k, sq, nbits, candidates, seed, nthreads)
    if return_distance:
        return idx, np.maximum(dist, 0.0)
    return idx
