"""A slow, obviously-correct reference for every kernel, written from the definitions.

Nothing here imports hashkit: bits are unpacked with this file's own code, distances are counted
on unpacked {0, 1} matrices, and rankings come from ``np.argsort(kind="stable")`` (a stable sort
on distance is exactly the (distance, database index) order of the kernel contract). Float sums
use ``math.fsum`` (correctly rounded), so the oracle does not depend on summation order; compare
backends against it with a relative tolerance and backends against each other exactly.

The ranking helpers (:func:`stable_ranking`, :func:`positions`, :func:`relevance`,
:func:`gains`) are meant to be reused by the metric tests: they take plain arrays and return
plain arrays, one row per query.

Sizes are meant to be small: :func:`hamming_ref` builds a ``(Q, N, nbits)`` boolean array.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "unpack_bits", "pack_bits", "random_codes", "random_labels",
    "hamming_ref", "stable_ranking", "positions", "relevance", "gains",
    "topk_ref", "radius_ref", "hist_ref", "rank_stats_ref",
]


# ----------------------------------------------------------------------------- bits

def unpack_bits(words, nbits: int) -> np.ndarray:
    """Unpack ``(n, W)`` uint64 words into an ``(n, nbits)`` uint8 {0, 1} matrix.

    Bit ``j`` is bit ``j % 64`` (least significant first) of word ``j // 64``.

    >>> unpack_bits(np.array([[0b101]], np.uint64), 4)
    array([[1, 0, 1, 0]], dtype=uint8)
    """
    words = np.asarray(words, dtype=np.uint64)
    out = np.zeros((words.shape[0], nbits), np.uint8)
    for j in range(nbits):
        out[:, j] = (words[:, j // 64] >> np.uint64(j % 64)) & np.uint64(1)
    return out


def pack_bits(bits) -> np.ndarray:
    """Inverse of :func:`unpack_bits`: ``(n, nbits)`` {0, 1} -> ``(n, ceil(nbits / 64))`` uint64,
    padding bits zero."""
    bits = np.asarray(bits)
    n, nbits = bits.shape
    words = np.zeros((n, max(1, -(-nbits // 64))), np.uint64)
    for j in range(nbits):
        words[:, j // 64] |= (bits[:, j] != 0).astype(np.uint64) << np.uint64(j % 64)
    return words


def random_codes(rng: np.random.Generator, n: int, nbits: int, p_one: float = 0.5,
                 distinct: int | None = None):
    """Random codes as ``(packed uint64 (n, W), bits uint8 (n, nbits))``.

    Parameters
    ----------
    p_one : probability of a 1 bit. Values near 0 or 1 (low entropy) give many equal distances.
    distinct : if given, rows are drawn (with replacement) from a pool of this many random codes,
        so that many items are exact duplicates: ties at every distance.
    """
    pool = n if distinct is None else distinct
    bits = (rng.random((pool, nbits)) < p_one).astype(np.uint8)
    if distinct is not None:
        bits = bits[rng.integers(0, pool, n)]
    return pack_bits(bits), bits


def random_labels(rng: np.random.Generator, n: int, nlabels: int, density: float = 0.2,
                  p_empty: float = 0.15):
    """Random multi-hot labels as ``(packed uint64 (n, LW), bits uint8 (n, nlabels))``.

    Each label is on with probability ``density``; then a ``p_empty`` fraction of rows is cleared,
    so some items (and queries) have no label and hence no relevant item.
    """
    bits = (rng.random((n, nlabels)) < density).astype(np.uint8)
    bits[rng.random(n) < p_empty] = 0
    return pack_bits(bits), bits


# ----------------------------------------------------------------------------- rankings

def hamming_ref(qbits, dbbits) -> np.ndarray:
    """``(Q, N)`` int64: the number of positions where the unpacked codes differ."""
    qbits = np.asarray(qbits, bool)
    dbbits = np.asarray(dbbits, bool)
    return (qbits[:, None, :] != dbbits[None, :, :]).sum(axis=2).astype(np.int64)


def stable_ranking(dist) -> np.ndarray:
    """``(Q, N)`` database indices of each row ranked by (distance, index) ascending."""
    return np.argsort(np.asarray(dist), axis=1, kind="stable")


def positions(order) -> np.ndarray:
    """``(Q, N)`` 1-based position of every database item in each row's ranking ``order``."""
    order = np.asarray(order)
    pos = np.empty_like(order)
    rows = np.arange(order.shape[0])[:, None]
    pos[rows, order] = np.arange(1, order.shape[1] + 1)
    return pos


def gains(qlbits, dblbits) -> np.ndarray:
    """``(Q, N)`` int64 number of labels each query shares with each item (graded relevance)."""
    return np.asarray(qlbits, np.int64) @ np.asarray(dblbits, np.int64).T


def relevance(qlbits, dblbits) -> np.ndarray:
    """``(Q, N)`` bool: the query and the item share at least one label."""
    return gains(qlbits, dblbits) > 0


# ----------------------------------------------------------------------------- kernels

def topk_ref(qbits, dbbits, k: int):
    """``(dist (Q, k), idx (Q, k))``: the first ``k`` items of the stable ranking."""
    dist = hamming_ref(qbits, dbbits)
    order = stable_ranking(dist)[:, :k]
    return np.take_along_axis(dist, order, axis=1), order


def radius_ref(qbits, dbbits, r: int):
    """CSR ``(lims, idx, dist)`` of items with distance <= r, each row in stable ranking order."""
    dist = hamming_ref(qbits, dbbits)
    order = stable_ranking(dist)
    lims, idx, dd = [0], [], []
    for row, o in zip(dist, order):
        keep = o[row[o] <= r]
        idx.extend(keep.tolist())
        dd.extend(row[keep].tolist())
        lims.append(len(idx))
    return np.array(lims, np.int64), np.array(idx, np.int64), np.array(dd, np.int64)


def hist_ref(qbits, dbbits, qlbits, dblbits, nbits: int):
    """``(hist_all, hist_rel)``, each ``(Q, nbits + 1)``: items / relevant items per distance."""
    dist = hamming_ref(qbits, dbbits)
    rel = relevance(qlbits, dblbits)
    hist_all = np.array([np.bincount(d, minlength=nbits + 1) for d in dist], np.int64)
    hist_rel = np.array([np.bincount(d[m], minlength=nbits + 1) for d, m in zip(dist, rel)],
                        np.int64)
    return hist_all, hist_rel


def rank_stats_ref(qbits, dbbits, qlbits, dblbits, nbits: int, cutoffs, first_m: int,
                   graded: bool, nlabels: int) -> dict:
    """Every output of the ``rank_stats`` kernel, computed directly from stable positions.

    For each query: rank items with ``np.argsort(kind="stable")``; walk the ranking; the ``j``-th
    relevant item seen (its relrank) at position ``p`` contributes ``j / p``. Sums are
    ``math.fsum`` over the qualifying items, straight from the definitions:

    - ``ap_sum``: all relevant items; ``ap_first``: relevant items with relrank <= first_m;
    - ``rel_at[c]`` / ``ap_sum_at[c]``: relevant items at positions <= cutoffs[c];
    - graded: ``gain_at[c]`` = sum of gains, ``dcg_at[c]`` = sum of gain / log2(p + 1) over the
      first cutoffs[c] positions; ``gain_hist[g]`` = number of items with gain g.
    """
    cutoffs = [int(c) for c in np.asarray(cutoffs).ravel()]
    dist = hamming_ref(qbits, dbbits)
    gain = gains(qlbits, dblbits)
    hist_all, hist_rel = hist_ref(qbits, dbbits, qlbits, dblbits, nbits)
    nq, ncut = dist.shape[0], len(cutoffs)
    out = {
        "hist_all": hist_all, "hist_rel": hist_rel,
        "ap_sum": np.zeros(nq), "rel_at": np.zeros((nq, ncut), np.int64),
        "ap_sum_at": np.zeros((nq, ncut)), "ap_first": np.zeros(nq),
    }
    if graded:
        out["gain_at"] = np.zeros((nq, ncut), np.int64)
        out["dcg_at"] = np.zeros((nq, ncut))
        out["gain_hist"] = np.array([np.bincount(g, minlength=nlabels + 1) for g in gain], np.int64)
    for qi, order in enumerate(stable_ranking(dist)):
        ranked_gain = gain[qi, order]
        relevant_terms = []  # (position, relrank, relrank / position)
        for p, g in enumerate(ranked_gain, start=1):
            if g > 0:
                j = len(relevant_terms) + 1
                relevant_terms.append((p, j, j / p))
        out["ap_sum"][qi] = math.fsum(t for _, _, t in relevant_terms)
        out["ap_first"][qi] = math.fsum(t for _, j, t in relevant_terms if j <= first_m)
        for c, cut in enumerate(cutoffs):
            out["rel_at"][qi, c] = sum(1 for p, _, _ in relevant_terms if p <= cut)
            out["ap_sum_at"][qi, c] = math.fsum(t for p, _, t in relevant_terms if p <= cut)
            if graded:
                out["gain_at"][qi, c] = int(ranked_gain[:cut].sum())
                out["dcg_at"][qi, c] = math.fsum(
                    int(g) / math.log2(p + 1) for p, g in enumerate(ranked_gain[:cut], start=1))
    return out
