"""Every kernel of every backend against the slow oracle in tests/oracle.py.

Inputs are small and odd on purpose: code lengths around word boundaries (1, 7, 63, 64, 65, 130),
N = 1, k = 1 and k = N, r = 0 and r >= nbits, cut-off N, and code sets with many ties (16 bits,
low-entropy codes, exact duplicates). Integers must be equal; floats match the oracle to
rtol 1e-12 and are bitwise equal between the two CPU backends and across thread counts.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle import (hamming_ref, hist_ref, pack_bits, radius_ref, random_codes, random_labels,
                    rank_stats_ref, stable_ranking, topk_ref)

NBITS = [1, 7, 16, 63, 64, 65, 130]
THREADS = [1, 2]
# (p_one, distinct): uniform, low entropy, and a handful of distinct codes (ties everywhere).
KINDS = {"uniform": (0.5, None), "lowent": (0.06, None), "dup": (0.5, 3)}
SHAPES = [(1, 1), (1, 9), (5, 1), (3, 17), (7, 31)]
RANK_KEYS = ("hist_all", "hist_rel", "ap_sum", "rel_at", "ap_sum_at", "ap_first")
GRADED_KEYS = ("gain_at", "dcg_at", "gain_hist")
FLOAT_KEYS = ("ap_sum", "ap_sum_at", "ap_first", "dcg_at")
HYPOTHESIS = settings(max_examples=25, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


def codes(rng, q, n, nbits, kind):
    p_one, distinct = KINDS[kind]
    qw, qb = random_codes(rng, q, nbits, p_one, distinct)
    dw, db = random_codes(rng, n, nbits, p_one, distinct)
    if distinct is not None:  # queries are database items: distance-0 ties as well
        rows = rng.integers(0, n, q)
        qw, qb = dw[rows], db[rows]
    return qw, qb, dw, db


def seed_of(*parts) -> int:
    # crc32, not hash(): str hashes change from run to run, a failing case must replay.
    return zlib.crc32("/".join(map(str, parts)).encode())


def check_csr(got, want):
    lims, idx, dist = got
    assert lims.dtype == np.int64 and idx.dtype == np.int64 and dist.dtype == np.int32
    np.testing.assert_array_equal(lims, want[0])
    np.testing.assert_array_equal(idx, want[1])
    np.testing.assert_array_equal(dist, want[2])


def check_rank_stats(got, want, graded, exact=False):
    keys = RANK_KEYS + (GRADED_KEYS if graded else ())
    assert set(got) == set(keys)
    for key in keys:
        g, w = got[key], want[key]
        assert g.shape == w.shape, key
        if key in FLOAT_KEYS:
            assert g.dtype == np.float64, key
            if exact:
                np.testing.assert_array_equal(g, w, err_msg=key)
            else:
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=0, err_msg=key)
        else:
            assert g.dtype == np.int64, key
            np.testing.assert_array_equal(g, w, err_msg=key)


def assert_same(a, b, float_rtol=0.0):
    """Equality of nested kernel outputs (tuples / dicts of arrays); floats bitwise unless
    ``float_rtol`` is given."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            assert_same(a[k], b[k], float_rtol)
    elif isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            assert_same(x, y, float_rtol)
    else:
        assert a.dtype == b.dtype
        if float_rtol and a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=float_rtol, atol=0)
        else:
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- against the oracle

@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("nbits", NBITS)
def test_hamming_matches_oracle(backend, nbits, kind, nthreads):
    rng = np.random.default_rng(seed_of("hamming", nbits, kind, nthreads))
    for q, n in SHAPES:
        qw, qb, dw, db = codes(rng, q, n, nbits, kind)
        got = backend.hamming(qw, dw, nthreads)
        assert got.dtype == np.int32 and got.shape == (q, n)
        np.testing.assert_array_equal(got, hamming_ref(qb, db))


@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("nbits", NBITS)
def test_topk_matches_oracle(backend, nbits, kind, nthreads):
    rng = np.random.default_rng(seed_of("topk", nbits, kind, nthreads))
    for q, n in SHAPES:
        qw, qb, dw, db = codes(rng, q, n, nbits, kind)
        for k in sorted({1, (n + 1) // 2, n}):
            dist, idx = backend.topk(qw, dw, nbits, k, nthreads)
            assert dist.dtype == np.int32 and idx.dtype == np.int64
            assert dist.shape == idx.shape == (q, k)
            want_d, want_i = topk_ref(qb, db, k)
            np.testing.assert_array_equal(dist, want_d)
            np.testing.assert_array_equal(idx, want_i)


def guess_codes(rng, nbits=128, n=3 * 2048 + 5, k=40):
    """Queries whose near items (within 20 bits: the AVX2 two-word filter's guessed limit) make
    every outcome of top-k's guess happen, over several 2048-code tiles: plenty spread through
    the database (the guess holds), none (given up at the first check), 2k in the last tile only
    (given up early, though it would have held), 0.9 k spread (kept to the end, then wrong), and
    0.3 k in the first tile (given up at the first check with near items already admitted). The
    other items are random, 64 +- 6 bits away."""
    q = rng.integers(0, 2, (5, nbits)).astype(np.uint8)
    db = rng.integers(0, 2, (n, nbits)).astype(np.uint8)
    plans = [rng.choice(n, 4 * k, replace=False), [], rng.integers(n - 2048, n, 2 * k),
             rng.choice(n, 9 * k // 10, replace=False), rng.integers(0, 2048, 3 * k // 10)]
    for i, rows in enumerate(plans):
        for j in rows:
            db[j] = q[i]
            db[j, rng.choice(nbits, rng.integers(0, 21), replace=False)] ^= 1
    return q, db, k


@pytest.mark.parametrize("nbits", [100, 128])
def test_topk_guessed_limit_every_outcome(backend, nbits):
    """Top-k of two-word codes, where the AVX2 path starts from a guessed limit (kernels.cpp,
    topk_select): the guess holding, given up at a check, and found wrong at the end all give
    the oracle's stable top-k (ties at the k-th distance resolved by index), also for k around
    the number of near items."""
    rng = np.random.default_rng(seed_of("guess", nbits))
    qb, dbb, k = guess_codes(rng, nbits)
    qw, dw = pack_bits(qb), pack_bits(dbb)
    for kk in (1, k // 2, k, 2 * k, 200):
        dist, idx = backend.topk(qw, dw, nbits, kk, 1)
        want_d, want_i = topk_ref(qb, dbb, kk)
        np.testing.assert_array_equal(dist, want_d)
        np.testing.assert_array_equal(idx, want_i)


@pytest.mark.parametrize("path", ["select", "full"])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("nbits", [7, 16, 65])
def test_numba_topk_paths_match_oracle(monkeypatch, nbits, kind, path):
    # Numba's topk has two paths (one-pass selection for small k, buffer + walk otherwise);
    # force each on every k, with the selection's candidate list compacting as often as it can.
    from hashkit.kernels import _numba

    monkeypatch.setattr(_numba, "_TOPK_SELECT_RATIO", 1 if path == "select" else 10**9)
    monkeypatch.setattr(_numba, "_TOPK_SPARE", 0)
    rng = np.random.default_rng(seed_of("topk-paths", nbits, kind, path))
    qw, qb, dw, db = codes(rng, 6, 2500, nbits, kind)
    for k in (1, 2, 5, 37, 1000, 2499, 2500):
        dist, idx = _numba.topk(qw, dw, nbits, k, 2)
        want_d, want_i = topk_ref(qb, db, k)
        np.testing.assert_array_equal(dist, want_d)
        np.testing.assert_array_equal(idx, want_i)


@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("nbits", NBITS)
def test_radius_matches_oracle(backend, nbits, kind, nthreads):
    rng = np.random.default_rng(seed_of("radius", nbits, kind, nthreads))
    for q, n in SHAPES:
        qw, qb, dw, db = codes(rng, q, n, nbits, kind)
        for r in sorted({0, 1, nbits // 2, nbits - 1, nbits, nbits + 3}):
            check_csr(backend.radius(qw, dw, nbits, r, nthreads), radius_ref(qb, db, r))


@pytest.mark.parametrize("nbits", [16, 64])
def test_radius_dense_and_sparse_queries(backend, nbits):
    # Enough items and hits that the C++ kernel switches some queries from buffering their hits
    # to a second walk (past N / 8 hits, at least 1024), in the same call as buffered ones:
    # queries that are database items with a wide radius are dense, random ones sparse.
    rng = np.random.default_rng(seed_of("radius-dense", nbits))
    n = 12000
    dw, db = random_codes(rng, n, nbits, 0.5, None)
    rows = rng.integers(0, n, 5)
    qw0, qb0 = random_codes(rng, 5, nbits, 0.5, None)
    qw, qb = np.concatenate([dw[rows], qw0]), np.concatenate([db[rows], qb0])
    for r in (nbits // 4, nbits // 2 - 2, nbits // 2, nbits):
        got = backend.radius(qw, dw, nbits, r, 2)
        check_csr(got, radius_ref(qb, db, r))
        for nthreads in (1, 3):  # the same output however the queries are shared out
            assert_same(got, backend.radius(qw, dw, nbits, r, nthreads))


@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("nlabels", [1, 24, 70])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("nbits", NBITS)
def test_hist_stats_matches_oracle(backend, nbits, kind, nlabels, nthreads):
    rng = np.random.default_rng(seed_of("hist", nbits, kind, nlabels, nthreads))
    for q, n in SHAPES:
        qw, qb, dw, db = codes(rng, q, n, nbits, kind)
        qlw, qlb = random_labels(rng, q, nlabels, 0.1)
        dlw, dlb = random_labels(rng, n, nlabels, 0.1)
        hist_all, hist_rel = backend.hist_stats(qw, dw, qlw, dlw, nbits, nthreads)
        want_all, want_rel = hist_ref(qb, db, qlb, dlb, nbits)
        assert hist_all.dtype == hist_rel.dtype == np.int64
        np.testing.assert_array_equal(hist_all, want_all)
        np.testing.assert_array_equal(hist_rel, want_rel)


def cutoff_sets(n):
    sets = [[], [n], [1], sorted({1, (n + 1) // 2, n}), sorted({2, 3, n - 1} & set(range(1, n)))]
    return [np.array(c, np.int64) for c in sets]


@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("graded", [False, True], ids=["binary", "graded"])
@pytest.mark.parametrize("nlabels", [1, 24, 70])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("nbits", [1, 16, 65])
def test_rank_stats_matches_oracle(backend, nbits, kind, nlabels, graded, nthreads):
    rng = np.random.default_rng(seed_of("rank", nbits, kind, nlabels, graded, nthreads))
    for q, n in SHAPES:
        qw, qb, dw, db = codes(rng, q, n, nbits, kind)
        qlw, qlb = random_labels(rng, q, nlabels, 0.15)
        dlw, dlb = random_labels(rng, n, nlabels, 0.15)
        for cutoffs in cutoff_sets(n):
            for first_m in (0, 1, 3, 10**6):
                got = backend.rank_stats(qw, dw, qlw, dlw, nbits, cutoffs, first_m, graded,
                                         nlabels, nthreads)
                want = rank_stats_ref(qb, db, qlb, dlb, nbits, cutoffs, first_m, graded, nlabels)
                check_rank_stats(got, want, graded)


@pytest.mark.parametrize("graded", [False, True], ids=["binary", "graded"])
@pytest.mark.parametrize("nbits", [7, 64, 130, 300])
def test_rank_stats_matches_oracle_larger(backend, nbits, graded):
    # A few hundred items: many relevant items per tie group, floats summed over long runs.
    # 7 / 64 bits with binary relevance take the C++ one-word tile path; 300 bits (distances
    # past 255) the layout that keeps each item's distance beside its counter.
    rng = np.random.default_rng(seed_of("rank-larger", nbits, graded))
    qw, qb, dw, db = codes(rng, 4, 301, nbits, "lowent")
    qlw, qlb = random_labels(rng, 4, 24, 0.2)
    dlw, dlb = random_labels(rng, 301, 24, 0.2)
    cutoffs = np.array([1, 10, 50, 100, 300, 301], np.int64)
    got = backend.rank_stats(qw, dw, qlw, dlw, nbits, cutoffs, 20, graded, 24, 2)
    want = rank_stats_ref(qb, db, qlb, dlb, nbits, cutoffs, 20, graded, 24)
    check_rank_stats(got, want, graded)


@pytest.mark.parametrize("graded", [False, True], ids=["binary", "graded"])
def test_rank_stats_cutoffs_past_table_threshold(backend, graded):
    # A last cut-off above 4096 makes the C++ kernel bucket positions (and take log2(pos + 1))
    # from per-call tables instead of a search and a log per item: same outputs as the oracle.
    rng = np.random.default_rng(seed_of("rank-tables", graded))
    n = 6000
    qw, qb, dw, db = codes(rng, 4, n, 16, "lowent")
    qlw, qlb = random_labels(rng, 4, 24, 0.2, p_empty=0.0)
    dlw, dlb = random_labels(rng, n, 24, 0.2)
    cutoffs = np.array([1, 7, 4096, 4097, 5000, n], np.int64)
    got = backend.rank_stats(qw, dw, qlw, dlw, 16, cutoffs, 50, graded, 24, 2)
    want = rank_stats_ref(qb, db, qlb, dlb, 16, cutoffs, 50, graded, 24)
    assert (want["rel_at"][:, -1] > 1000).all()  # many relevant items past the threshold
    check_rank_stats(got, want, graded)


def test_rank_stats_distances_far_apart(backend):
    # Distances in clusters far apart (0-ish and ~nbits): the C++ kernel ranks the densest
    # 32 distances from registers and the rest by lookup; both must agree with the oracle.
    rng = np.random.default_rng(seed_of("rank-spread"))
    nbits, n = 200, 500
    base = rng.random((1, nbits)) < 0.5
    db = np.repeat(base, n, axis=0)
    far = rng.random(n) < 0.4
    db[far] = ~db[far]
    db ^= rng.random((n, nbits)) < 0.03  # spread each cluster over a few distances
    qb = np.concatenate([base, ~base, rng.random((2, nbits)) < 0.5])
    qw, dw = pack_bits(qb), pack_bits(db)
    qlw, qlb = random_labels(rng, len(qb), 24, 0.3)
    dlw, dlb = random_labels(rng, n, 24, 0.3)
    for first_m in (0, 7, 10**6):
        got = backend.rank_stats(qw, dw, qlw, dlw, nbits, np.zeros(0, np.int64), first_m, False,
                                 24, 2)
        want = rank_stats_ref(qb, db, qlb, dlb, nbits, np.zeros(0, np.int64), first_m, False, 24)
        check_rank_stats(got, want, False)


# ---------------------------------------------------------------------------- determinism

def _all_kernels(kern, nthreads, rng, nbits=16, q=9, n=57):
    qw, _, dw, _ = codes(rng, q, n, nbits, "lowent")
    qlw, _ = random_labels(rng, q, 24, 0.15)
    dlw, _ = random_labels(rng, n, 24, 0.15)
    cutoffs = np.array(sorted({1, 5, 20, n} & set(range(1, n + 1))), np.int64)
    return (kern.hamming(qw, dw, nthreads), kern.topk(qw, dw, nbits, min(11, n), nthreads),
            kern.radius(qw, dw, nbits, 3, nthreads),
            kern.hist_stats(qw, dw, qlw, dlw, nbits, nthreads),
            kern.rank_stats(qw, dw, qlw, dlw, nbits, cutoffs, 5, True, 24, nthreads))


@pytest.fixture
def force_threads(monkeypatch):
    """Let the Numba backend put several threads on tiny inputs (it normally would not)."""
    from hashkit.kernels import _numba

    monkeypatch.setattr(_numba, "_MIN_WORK_PER_THREAD", 1)


@pytest.mark.parametrize("q, n", [(1, 40), (2, 57), (3, 1), (9, 57), (17, 130)])
def test_identical_across_thread_counts(backend, force_threads, q, n):
    seed = seed_of("threads", q, n)
    one = _all_kernels(backend, 1, np.random.default_rng(seed), q=q, n=n)
    # CPU float sums have a fixed order; the contract promises CUDA only 1e-12 (reduction order).
    rtol = 1e-12 if backend.name == "cuda" else 0.0
    for nthreads in (2, 3, 0):
        other = _all_kernels(backend, nthreads, np.random.default_rng(seed), q=q, n=n)
        assert_same(one, other, rtol)


@pytest.mark.parametrize("nbits", [16, 65])
def test_cpu_backends_bitwise_equal(cpu_backends, nbits):
    if len(cpu_backends) < 2:
        pytest.skip("needs both CPU backends (cpp and numba); only " + ", ".join(cpu_backends))
    rng_seed = seed_of("cpu-equal", nbits)
    outs = [_all_kernels(k, 2, np.random.default_rng(rng_seed), nbits=nbits, n=211)
            for k in cpu_backends.values()]
    assert_same(outs[0], outs[1])


# ---------------------------------------------------------------------------- properties

@st.composite
def code_sets(draw):
    nbits = draw(st.sampled_from([1, 5, 16, 63, 64, 65, 130]))
    q = draw(st.integers(1, 5))
    n = draw(st.integers(1, 40))
    kind = draw(st.sampled_from(list(KINDS)))
    seed = draw(st.integers(0, 2**32 - 1))
    qw, qb, dw, db = codes(np.random.default_rng(seed), q, n, nbits, kind)
    return nbits, qw, dw, seed


@HYPOTHESIS
@given(data=code_sets(), k_frac=st.floats(0, 1))
def test_topk_is_prefix_of_full_ranking(backend, data, k_frac):
    nbits, qw, dw, _ = data
    n = dw.shape[0]
    k = max(1, round(k_frac * n))
    lims, idx, dist = backend.radius(qw, dw, nbits, nbits, 1)
    assert np.all(np.diff(lims) == n)
    tk_d, tk_i = backend.topk(qw, dw, nbits, k, 2)
    np.testing.assert_array_equal(tk_i, idx.reshape(-1, n)[:, :k])
    np.testing.assert_array_equal(tk_d, dist.reshape(-1, n)[:, :k])
    full = backend.hamming(qw, dw, 1)
    np.testing.assert_array_equal(tk_d, np.sort(full, axis=1)[:, :k])
    np.testing.assert_array_equal(tk_i, stable_ranking(full)[:, :k])


@HYPOTHESIS
@given(data=code_sets(), r_frac=st.floats(0, 1))
def test_radius_nested_and_prefix(backend, data, r_frac):
    nbits, qw, dw, _ = data
    r = int(r_frac * nbits)
    small = backend.radius(qw, dw, nbits, r, 2)
    big = backend.radius(qw, dw, nbits, r + 1, 2)
    for i in range(qw.shape[0]):
        s = small[1][small[0][i]:small[0][i + 1]]
        b = big[1][big[0][i]:big[0][i + 1]]
        # Ordered by (distance, index): the smaller ball is exactly the head of the bigger one.
        np.testing.assert_array_equal(b[:s.size], s)
        assert np.all(big[2][big[0][i]:big[0][i + 1]][s.size:] == r + 1)


@HYPOTHESIS
@given(data=code_sets(), nlabels=st.sampled_from([1, 24, 70]))
def test_histograms_consistent_with_distances(backend, data, nlabels):
    nbits, qw, dw, seed = data
    rng = np.random.default_rng(seed)
    qlw, _ = random_labels(rng, qw.shape[0], nlabels, 0.2)
    dlw, _ = random_labels(rng, dw.shape[0], nlabels, 0.2)
    hist_all, hist_rel = backend.hist_stats(qw, dw, qlw, dlw, nbits, 2)
    full = backend.hamming(qw, dw, 2)
    assert np.all(hist_all.sum(axis=1) == dw.shape[0])
    assert np.all(hist_rel <= hist_all)
    for row, h in zip(full, hist_all):
        np.testing.assert_array_equal(h, np.bincount(row, minlength=nbits + 1))


@HYPOTHESIS
@given(data=code_sets(), nlabels=st.sampled_from([1, 24, 70]), first_m=st.integers(0, 50))
def test_rank_stats_at_cutoff_n_equals_full_sums(backend, data, nlabels, first_m):
    nbits, qw, dw, seed = data
    n = dw.shape[0]
    rng = np.random.default_rng(seed)
    qlw, _ = random_labels(rng, qw.shape[0], nlabels, 0.2)
    dlw, _ = random_labels(rng, n, nlabels, 0.2)
    st_ = backend.rank_stats(qw, dw, qlw, dlw, nbits, np.array([n], np.int64), first_m, True,
                             nlabels, 2)
    hist_all, hist_rel = backend.hist_stats(qw, dw, qlw, dlw, nbits, 1)
    np.testing.assert_array_equal(st_["hist_all"], hist_all)
    np.testing.assert_array_equal(st_["hist_rel"], hist_rel)
    np.testing.assert_array_equal(st_["rel_at"][:, 0], hist_rel.sum(axis=1))
    np.testing.assert_allclose(st_["ap_sum_at"][:, 0], st_["ap_sum"], rtol=1e-12)
    assert np.all(st_["ap_first"] <= st_["ap_sum"] * (1 + 1e-12))
    if first_m >= n:
        np.testing.assert_allclose(st_["ap_first"], st_["ap_sum"], rtol=1e-12)
    np.testing.assert_array_equal(st_["gain_hist"].sum(axis=1), n)
    total_gain = (st_["gain_hist"] * np.arange(nlabels + 1)).sum(axis=1)
    np.testing.assert_array_equal(st_["gain_at"][:, 0], total_gain)
    # AP with stable ties lies in [0, 1]: relrank <= pos for every relevant item.
    R = hist_rel.sum(axis=1)
    assert np.all(st_["ap_sum"] <= R * (1 + 1e-12))


@HYPOTHESIS
@given(data=code_sets())
def test_hamming_symmetric_and_zero_diagonal(backend, data):
    nbits, qw, dw, _ = data
    np.testing.assert_array_equal(backend.hamming(qw, dw, 2), backend.hamming(dw, qw, 1).T)
    diag = np.diagonal(backend.hamming(dw, dw, 2))
    assert np.all(diag == 0)
    assert backend.hamming(qw, dw, 1).max(initial=0) <= nbits


# ---------------------------------------------------------------------------- bad input

def test_mismatched_word_count_raises(backend):
    rng = np.random.default_rng(3)
    qw, _ = random_codes(rng, 2, 70)
    dw, _ = random_codes(rng, 3, 16)
    with pytest.raises(ValueError):
        backend.hamming(qw, dw, 1)
    with pytest.raises(ValueError):
        backend.topk(qw, dw, 16, 1, 1)


def test_wrong_dtype_raises(backend):
    rng = np.random.default_rng(4)
    qw, _ = random_codes(rng, 2, 16)
    with pytest.raises((TypeError, ValueError)):
        backend.hamming(qw.astype(np.int64), qw, 1)


def test_numba_rejects_nonzero_padding():
    # Padding bits can push a distance above nbits, which would index past the histograms;
    # the Numba kernels detect that distance and raise instead.
    from hashkit.kernels import _numba

    rng = np.random.default_rng(5)
    qw = np.zeros((2, 1), np.uint64)
    dw, _ = random_codes(rng, 4, 10)
    dw[1, 0] = np.uint64(2**64 - 1)
    ql, _ = random_labels(rng, 2, 3)
    dl, _ = random_labels(rng, 4, 3)
    with pytest.raises(ValueError, match="padding"):
        _numba.topk(qw, dw, 10, 2, 1)
    with pytest.raises(ValueError, match="padding"):
        _numba.radius(qw, dw, 10, 2, 1)
    with pytest.raises(ValueError, match="padding"):
        _numba.hist_stats(qw, dw, ql, dl, 10, 1)
    with pytest.raises(ValueError, match="padding"):
        _numba.rank_stats(qw, dw, ql, dl, 10, np.array([4], np.int64), 1, False, 3, 1)


def test_numba_restores_thread_count():
    import numba

    from hashkit.kernels import _numba

    rng = np.random.default_rng(6)
    qw, _ = random_codes(rng, 3, 16)
    before = numba.get_num_threads()
    _numba.topk(qw, qw, 16, 2, 1)
    assert numba.get_num_threads() == before
