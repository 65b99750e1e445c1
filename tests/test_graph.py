"""knn_graph against a brute-force oracle written from the definition.

The oracle computes every squared distance in float64 with an explicit difference and ranks
with ``np.argsort(kind="stable")`` (ties to the smaller index). Features with small integer
values make float32 and float64 distances exact, so ties are real ties and the exact method
must return the identical neighbour lists, tie order included.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashkit.graph import knn_graph, sign_sketch


def oracle(x: np.ndarray, k: int, rows=None) -> np.ndarray:
    x = x.astype(np.float64)
    rows = np.arange(len(x)) if rows is None else rows
    out = []
    for i in rows:
        d = ((x - x[i]) ** 2).sum(axis=1)
        order = [j for j in np.argsort(d, kind="stable") if j != i]
        out.append(order[:k])
    return np.array(out, dtype=np.int64)


def clustered(rng, n=600, d=64, latent=8, clusters=6):
    c = rng.normal(size=(clusters, latent)) * 3
    z = c[rng.integers(0, clusters, n)] + rng.normal(size=(n, latent))
    return (z @ rng.normal(size=(latent, d)) + 0.05 * rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("block_rows", [None, 7])
def test_exact_matches_oracle_with_ties(block_rows):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(150, 4)).astype(np.float32)   # many exact ties and duplicates
    got = knn_graph(x, 9, "exact", block_rows=block_rows)
    np.testing.assert_array_equal(got, oracle(x, 9))


def test_exact_distances_and_rows_subset():
    rng = np.random.default_rng(1)
    x = rng.integers(-4, 5, size=(80, 6)).astype(np.float32)
    rows = np.array([5, 0, 79, 5])
    idx, dist = knn_graph(x, 4, "exact", rows=rows, return_distance=True)
    np.testing.assert_array_equal(idx, oracle(x, 4, rows))
    expect = ((x[rows][:, None, :].astype(np.float64) - x[idx]) ** 2).sum(-1)
    np.testing.assert_array_equal(dist, expect.astype(np.float32))
    assert idx.dtype == np.int64 and dist.dtype == np.float32 and idx.shape == (4, 4)


def test_self_is_excluded_but_duplicates_are_neighbours():
    x = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [6.0, 5.0]], dtype=np.float32)
    for method in ("exact", "hamming"):
        g = knn_graph(x, 1, method, candidates=1)
        assert g[:, 0].tolist() == [1, 0, 3, 2]


def test_hamming_recall_on_clustered_data_and_shapes():
    rng = np.random.default_rng(2)
    x = clustered(rng)
    k = 10
    exact = oracle(x, k)
    got = knn_graph(x, k, "hamming", nbits=512, candidates=8, seed=3)
    assert got.shape == (len(x), k) and got.dtype == np.int64
    assert not (got == np.arange(len(x))[:, None]).any()
    assert all(len(set(r)) == k for r in got.tolist())
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(got.tolist(), exact.tolist())])
    assert recall >= 0.97
    # neighbours found are ranked exactly: each row is ordered by true distance
    d = ((x[got].astype(np.float64) - x[:, None, :]) ** 2).sum(-1)
    assert (np.diff(d, axis=1) >= -1e-3).all()


def test_hamming_is_deterministic_by_seed():
    rng = np.random.default_rng(4)
    x = clustered(rng, n=300)
    a = knn_graph(x, 5, "hamming", nbits=64, candidates=2, seed=7)
    b = knn_graph(x, 5, "hamming", nbits=64, candidates=2, seed=7)
    np.testing.assert_array_equal(a, b)
    s1, s2 = sign_sketch(x, 64, seed=7), sign_sketch(x, 64, seed=8)
    assert s1 == sign_sketch(x, 64, seed=7) and not (s1 == s2)


def test_sign_sketch_against_definition():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 7)).astype(np.float32)
    codes = sign_sketch(x, 70, seed=11)
    proj = np.random.default_rng(11).standard_normal((7, 70)).astype(np.float32)
    bits = ((x - x.mean(0)) @ proj) > 0
    np.testing.assert_array_equal(codes.unpack(signed=False).astype(bool), bits)


def test_full_shortlist_falls_back_to_exact():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 3, size=(30, 3)).astype(np.float32)
    np.testing.assert_array_equal(knn_graph(x, 5, "hamming", candidates=10), oracle(x, 5))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"features": np.zeros(5), "k": 1}, ValueError, "features: expected a 2-D"),
    ({"features": np.zeros((5, 2)), "k": 5}, ValueError, "k: expected a neighbour count between 1 and n - 1 = 4"),
    ({"features": np.zeros((5, 2)), "k": 0}, ValueError, "k: expected"),
    ({"features": np.zeros((5, 2)), "k": 2, "method": "lsh"}, ValueError, "method: expected one of"),
    ({"features": np.full((5, 2), np.nan), "k": 2}, ValueError, "features: expected finite values"),
    ({"features": np.zeros((5, 2)), "k": 2, "rows": [7]}, ValueError, r"rows: expected indices in \[0, 4\]"),
    ({"features": np.zeros((5, 2)), "k": 2, "rows": [0.5]}, TypeError, "rows: expected a 1-D integer"),
    ({"features": np.zeros((5, 2)), "k": 2, "nbits": 0}, ValueError, "nbits"),
    ({"features": np.array([["a", "b"], ["c", "d"]]), "k": 1}, TypeError, "features: expected a numeric"),
])
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        knn_graph(**kwargs)
