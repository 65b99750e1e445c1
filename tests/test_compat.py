"""Each ``map_compat`` variant against a small NumPy re-implementation of the published loop.

The loops below follow the released code line by line (sources in ``hashkit.metrics.VARIANTS``)
with one declared change: where the original sorts with ``np.argsort``'s default or
``torch.sort`` (not stable), the re-implementation uses ``kind="stable"``, the tie order hashkit
documents. Distances are computed the way each loop computes them (``0.5 * (K - b B^T)`` on
±1 codes, inner products, equal-bit counts), not with hashkit.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashkit import metrics as M
from oracle import random_codes, random_labels


def data(seed, Q=15, N=123, nbits=16, nlabels=5, distinct=40):
    rng = np.random.default_rng(seed)
    _, qb = random_codes(rng, Q, nbits, distinct=distinct)
    _, rb = random_codes(rng, N, nbits, distinct=distinct)
    _, ql = random_labels(rng, Q, nlabels)
    _, rl = random_labels(rng, N, nlabels)
    return 2.0 * qb - 1, 2.0 * rb - 1, ql.astype(np.float64), rl.astype(np.float64)


def ham(b1, b2):
    return 0.5 * (b2.shape[1] - b1 @ b2.T)


# ------------------------------------------------------------------ published loops (re-written)

def dcmh_matlab(qL, rL, qB, rB, topk=None):
    """calcMapTopkMapTopkPreTopkRecLabel.m: map and topkMap."""
    numq = qB.shape[0]
    mp, tmap = 0.0, 0.0
    for ii in range(numq):
        gnd = (qL[ii] @ rL.T) > 0
        tsum = gnd.sum()
        if tsum == 0:
            continue
        hamm = ham(qB[ii:ii + 1], rB)[0]
        index = np.argsort(hamm, kind="stable")      # MATLAB sort is stable
        gnd = gnd[index]
        count = np.arange(1, tsum + 1)
        tindex = np.flatnonzero(gnd) + 1
        mp += np.mean(count / tindex)
        if topk is not None:
            tgnd = gnd[:topk]
            if tgnd.sum() == 0:
                continue
            tmap += np.mean(np.arange(1, tgnd.sum() + 1) / (np.flatnonzero(tgnd) + 1))
    return mp / numq, tmap / numq


def calc_hammingranking(qB, rB, query_L, retrieval_L):
    """DCMH calc_hammingranking.py calc_map (argsort made stable)."""
    num_query = query_L.shape[0]
    mp = 0.0
    for it in range(num_query):
        gnd = (query_L[it] @ retrieval_L.T > 0).astype(np.float32)
        tsum = np.sum(gnd)
        if tsum == 0:
            continue
        hamm = ham(qB[it:it + 1], rB)[0]
        ind = np.argsort(hamm, kind="stable")
        gnd = gnd[ind]
        count = np.linspace(1, tsum, int(tsum))
        tindex = np.asarray(np.where(gnd == 1)) + 1.0
        mp += np.mean(count / tindex)
    return mp / num_query


def calc_top_map(qB, rB, queryL, retrievalL, topk):
    """DAPH calc_topMap / DJSRH calculate_top_map / DeepHash-pytorch CalcTopMap."""
    num_query = queryL.shape[0]
    topkmap = 0.0
    for it in range(num_query):
        gnd = (queryL[it] @ retrievalL.T > 0).astype(np.float32)
        hamm = ham(qB[it:it + 1], rB)[0]
        ind = np.argsort(hamm, kind="stable")
        gnd = gnd[ind]
        tgnd = gnd[0:topk]
        tsum = int(np.sum(tgnd))
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(tgnd == 1)) + 1.0
        topkmap += np.mean(count / tindex)
    return topkmap / num_query


def thulab_get_maps(q_output, q_labels, db_output, db_labels, Rs):
    """thulab/DeepHash get_mAPs with inner-product distance (labels copied, not modified)."""
    dist = -(q_output @ db_output.T)
    APx = []
    for i in range(dist.shape[0]):
        label = q_labels[i, :].copy()
        label[label == 0] = -1
        idx = np.argsort(dist[i], kind="stable")[:Rs]
        imatch = np.sum(np.equal(db_labels[idx, :], label), 1) > 0
        rel = np.sum(imatch)
        Px = np.cumsum(imatch).astype(float) / np.arange(1, Rs + 1)
        if rel != 0:
            APx.append(np.sum(Px * imatch) / rel)
    return np.mean(np.array(APx)) if APx else float("nan")


def calc_map_k(qB, rB, query_L, retrieval_L, k=None, kalenforn=False):
    """torchcmh / WendellGul calc_map_k; kalenforn's copy has no empty-query guard."""
    num_query = query_L.shape[0]
    mp = 0.0
    if k is None:
        k = retrieval_L.shape[0]
    for it in range(num_query):
        gnd = (query_L[it] @ retrieval_L.T > 0).astype(np.float32)
        tsum = np.sum(gnd)
        if tsum == 0 and not kalenforn:
            continue
        hamm = ham(qB[it:it + 1], rB)[0]
        ind = np.argsort(hamm, kind="stable")
        gnd = gnd[ind]
        total = min(k, int(tsum))
        count = np.arange(1, total + 1).astype(np.float32)
        tindex = np.flatnonzero(gnd)[:total].astype(np.float32) + 1.0
        with np.errstate(invalid="ignore"):
            mp += np.mean(count / tindex) if total else np.nan
    return mp / num_query


def ugach_map(qB, rB, qL, rL):
    """UGACH map.py: sort by the number of equal bits (Python sorted, stable), IRGAN-style AP."""
    def average_precision(r):
        r = np.asarray(r)
        out = [np.mean(r[:k + 1]) for k in range(r.size) if r[k]]
        return np.mean(out) if out else 0.0
    aps = []
    for i in range(qB.shape[0]):
        score = np.sum(np.equal(qB[i], rB), axis=1)
        ranked = sorted(zip(range(rB.shape[0]), score), key=lambda x: x[1], reverse=True)
        r = [1 if (qL[i] @ rL[j]) > 0 else 0 for j, _ in ranked]
        aps.append(average_precision(r))
    return np.mean(aps)


# ------------------------------------------------------------------ tests

@pytest.mark.parametrize("seed", [0, 1])
def test_dcmh_matlab(seed):
    qB, rB, qL, rL = data(seed)
    for topk in (None, 1, 20, 123):
        mp, tmap = dcmh_matlab(qL, rL, qB, rB, topk)
        assert M.map_compat(qB, rB, qL, rL, "dcmh-matlab") == pytest.approx(mp, rel=1e-12)
        if topk is not None:
            assert M.map_compat(qB, rB, qL, rL, "dcmh-matlab", k=topk) == pytest.approx(tmap, rel=1e-12)


def test_dcmh_python():
    qB, rB, qL, rL = data(2)
    assert M.map_compat(qB, rB, qL, rL, "dcmh-python") == pytest.approx(
        calc_hammingranking(qB, rB, qL, rL), rel=1e-12)


@pytest.mark.parametrize("k", [1, 17, 50, 123])
def test_topk(k):
    qB, rB, qL, rL = data(3)
    assert M.map_compat(qB, rB, qL, rL, "topk", k=k) == pytest.approx(calc_top_map(qB, rB, qL, rL, k), rel=1e-12)
    assert M.map_compat(qB, rB, qL, rL, "deephash-pytorch", k=k) == pytest.approx(
        calc_top_map(qB, rB, qL, rL, k), rel=1e-12)


def test_deephash_pytorch_minus_one_drops_last_item():
    qB, rB, qL, rL = data(4)
    quirk = calc_top_map(qB, rB, qL, rL, -1)
    assert M.map_compat(qB, rB, qL, rL, "deephash-pytorch") == pytest.approx(quirk, rel=1e-12)
    # and it differs from the full ranking whenever the last item is relevant for some query
    full = calc_top_map(qB, rB, qL, rL, rB.shape[0])
    assert M.map_compat(qB, rB, qL, rL, "topk", k=rB.shape[0]) == pytest.approx(full, rel=1e-12)


@pytest.mark.parametrize("R", [1, 10, 60])
def test_hits_only(R):
    qB, rB, qL, rL = data(5)
    qL0 = qL.copy()
    assert M.map_compat(qB, rB, qL, rL, "hits-only", k=R) == pytest.approx(
        thulab_get_maps(qB, qL, rB, rL, R), rel=1e-12)
    assert (qL == qL0).all()


def test_hits_only_nan_when_no_query_has_a_hit():
    qB, rB, qL, rL = data(6, Q=3)
    qL[:] = 0
    assert np.isnan(M.map_compat(qB, rB, qL, rL, "hits-only", k=5))


@pytest.mark.parametrize("k", [None, 1, 5, 40])
def test_first_min_k_r(k):
    qB, rB, qL, rL = data(7)
    # the original computes count / tindex in float32 (torch's default); hashkit in float64
    assert M.map_compat(qB, rB, qL, rL, "first-min-k-r", k=k) == pytest.approx(
        calc_map_k(qB, rB, qL, rL, k), rel=1e-6)


def test_first_min_k_r_kalenforn_nan():
    qB, rB, qL, rL = data(8)
    assert ((qL @ rL.T) > 0).sum(1).min() == 0, "needs a query without relevant items"
    assert np.isnan(calc_map_k(qB, rB, qL, rL, 10, kalenforn=True))
    assert np.isnan(M.map_compat(qB, rB, qL, rL, "first-min-k-r", k=10, nan_on_empty=True))
    keep = ((qL @ rL.T) > 0).sum(1) > 0
    qB, qL = qB[keep], qL[keep]
    assert M.map_compat(qB, rB, qL, rL, "first-min-k-r", k=10, nan_on_empty=True) == pytest.approx(
        calc_map_k(qB, rB, qL, rL, 10, kalenforn=True), rel=1e-6)


def test_ugach():
    qB, rB, qL, rL = data(9, Q=8, N=70)
    assert M.map_compat(qB, rB, qL, rL, "ugach") == pytest.approx(ugach_map(qB, rB, qL, rL), rel=1e-12)


def test_unstable_sort_is_what_differs():
    # With ties, np.argsort's default (quicksort/introsort) can reorder equal distances; the
    # stable loop is what hashkit matches. With no ties both loops agree with hashkit.
    rng = np.random.default_rng(10)
    nbits = 64
    qB = np.ones((1, nbits))
    rB = np.ones((nbits + 1, nbits))
    for j in range(nbits + 1):            # item j at distance j: every distance distinct
        rB[j, :j] = -1
    perm = rng.permutation(nbits + 1)
    rB = rB[perm]
    qL = np.array([[1.0, 0.0]])
    rL = (rng.random((nbits + 1, 2)) < 0.5).astype(float)
    rL[0] = [1, 0]
    got = M.map_compat(qB, rB, qL, rL, "dcmh-python")
    assert got == pytest.approx(calc_hammingranking(qB, rB, qL, rL), rel=1e-12)
    gnd = ((qL[0] @ rL.T) > 0)[np.argsort(ham(qB, rB)[0])]       # the original, default sort
    ref = np.mean(np.arange(1, gnd.sum() + 1) / (np.flatnonzero(gnd) + 1))
    assert got == pytest.approx(ref, rel=1e-12)


# ------------------------------------------------------------------ DCMH MATLAB as released
# A line-by-line transcription of jiangqy/DCMH-CVPR2017 DCMH_matlab/DCMH_matlab/utils/
# compactbit.m, hammingDist.m, calcMapTopkMapTopkPreTopkRecLabel.m and calcPreRecRadiusLabel.m,
# MATLAB's integer arithmetic included (uint8 saturates), written without hashkit.

# hammingDist.m's look-up table, copied as released
BIT_IN_CHAR = np.array([
    0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 1, 2, 2, 3, 2, 3,
    3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4,
    3, 4, 4, 5, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 1, 2,
    2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 2, 3, 3, 4, 3, 4, 4, 5,
    3, 4, 4, 5, 4, 5, 5, 6, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5,
    5, 6, 3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6, 6, 7, 1, 2, 2, 3,
    2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4,
    4, 5, 4, 5, 5, 6, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6,
    3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6, 6, 7, 2, 3, 3, 4, 3, 4,
    4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6,
    5, 6, 6, 7, 3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6, 6, 7, 4, 5,
    5, 6, 5, 6, 6, 7, 5, 6, 6, 7, 6, 7, 7, 8], dtype=np.uint16)


def compactbit(b):
    """compactbit.m: cb(:,w) = bitset(cb(:,w), mod(j-1,8)+1, b(:,j)); bitset position 1 = LSB."""
    n, nbits = b.shape
    cb = np.zeros((n, -(-nbits // 8)), dtype=np.uint8)
    for j in range(1, nbits + 1):
        w = -(-j // 8)
        pos = (j - 1) % 8 + 1
        cb[:, w - 1] = np.where(b[:, j - 1], cb[:, w - 1] | (1 << (pos - 1)), cb[:, w - 1] & ~np.uint8(1 << (pos - 1)))
    return cb


def hamming_dist(B1, B2, saturate=True):
    """hammingDist.m: Dh(j,:) += bit_in_char(y+1) with y = bitxor(...) a uint8."""
    n1, (n2, nwords) = B1.shape[0], B2.shape
    Dh = np.zeros((n1, n2), dtype=np.uint16)
    for j in range(n1):
        for n in range(nwords):
            y = np.bitwise_xor(B1[j, n], B2[:, n])                  # uint8
            idx = y.astype(np.int64) + 1
            if saturate:
                idx = np.minimum(idx, 255)                          # MATLAB uint8 arithmetic
            Dh[j, :] = Dh[j, :] + BIT_IN_CHAR[idx - 1]              # 1-based indexing
    return Dh


def calc_map_topk_label(queryLabel, retrievalLabel, qB, rB, topk=None, saturate=True):
    """calcMapTopkMapTopkPreTopkRecLabel.m."""
    numQuery = qB.shape[0]
    mp = 0.0
    nt = 0 if topk is None else len(topk)
    topkPre, topkRec, topkMap = np.zeros(nt), np.zeros(nt), np.zeros(nt)
    for ii in range(numQuery):
        gnd = (queryLabel[ii, :] @ retrievalLabel.T) > 0
        tsum = gnd.sum()
        if tsum == 0:
            continue
        hamm = hamming_dist(qB[ii:ii + 1, :], rB, saturate)[0]
        index = np.argsort(hamm, kind="stable")                     # [~, index] = sort(hamm)
        gnd = gnd[index]
        count = np.arange(1, tsum + 1)
        tindex = np.flatnonzero(gnd) + 1
        mp = mp + np.mean(count / tindex)
        for jj in range(nt):
            tgnd = gnd[:topk[jj]]
            if tgnd.sum() == 0:
                continue
            tcount = np.arange(1, tgnd.sum() + 1)
            tindex = np.flatnonzero(tgnd) + 1
            topkMap[jj] += np.mean(tcount / tindex)
            topkPre[jj] += tgnd.sum() / topk[jj]
            topkRec[jj] += tgnd.sum() / tsum
    return {"map": mp / numQuery, "topkMap": topkMap / numQuery, "topkPre": topkPre / numQuery,
            "topkRec": topkRec / numQuery}


def calc_pre_rec_radius_label(queryLabel, retrievalLabel, qB, rB, saturate=True):
    """calcPreRecRadiusLabel.m."""
    Wtrue = queryLabel @ retrievalLabel.T > 0
    Dhamm = hamming_dist(qB, rB, saturate)
    maxHamm = int(Dhamm.max())
    totalGoodPairs = Wtrue.sum()
    precision, recall = np.zeros(maxHamm), np.zeros(maxHamm)
    for n in range(1, maxHamm + 1):
        j = Dhamm <= ((n - 1) + 0.001)
        retrievalGoodPairs = Wtrue[j].sum()
        retrievalPairs = j.sum()
        precision[n - 1] = retrievalGoodPairs / (retrievalPairs + np.finfo(float).eps)
        recall[n - 1] = retrievalGoodPairs / totalGoodPairs
    return {"Pre": precision, "Rec": recall}


def complement_heavy(seed, Q=23, N=211, nbits=24, nlabels=4):
    """Codes drawn from a few base codes, their complements and near-complements, so that many
    query/database bytes differ in all 8 bits (the case hammingDist.m miscounts)."""
    rng = np.random.default_rng(seed)
    base = rng.random((4, nbits)) < 0.5
    pool = np.concatenate([base, ~base])
    def draw(n):
        b = pool[rng.integers(0, len(pool), n)].copy()
        flip = rng.random((n, nbits)) < 0.06
        return b ^ flip
    _, ql = random_labels(rng, Q, nlabels)
    _, rl = random_labels(rng, N, nlabels)
    return draw(Q), draw(N), ql.astype(np.float64), rl.astype(np.float64)


@pytest.mark.parametrize("seed,nbits", [(0, 24), (1, 16), (2, 20), (3, 64)])
def test_dcmh_matlab_bug_reproduces_the_released_code(seed, nbits):
    qb, rb, ql, rl = complement_heavy(seed, nbits=nbits)
    qc, rc = compactbit(qb), compactbit(rb)
    topk = [1, 10, 50, 211]
    ref = calc_map_topk_label(ql, rl, qc, rc, topk)
    ref.update(calc_pre_rec_radius_label(ql, rl, qc, rc))
    fixed = calc_map_topk_label(ql, rl, qc, rc, topk, saturate=False)
    fixed.update(calc_pre_rec_radius_label(ql, rl, qc, rc, saturate=False))
    # the data must exercise the bug, or this test could not fail
    assert ref["map"] != fixed["map"] and not np.array_equal(ref["Pre"], fixed["Pre"][:len(ref["Pre"])])
    pm_q, pm_r = np.where(qb, 1.0, -1.0), np.where(rb, 1.0, -1.0)
    from hashkit.codes import Codes
    for q, r in ((pm_q, pm_r), (Codes.from_bytes(qc, nbits), Codes.from_bytes(rc, nbits))):
        got = M.dcmh_matlab(q, r, ql, rl, topk=topk)
        cor = M.dcmh_matlab(q, r, ql, rl, topk=topk, hammingdist="correct")
        for key in ("map", "topkMap", "topkPre", "topkRec", "Pre", "Rec"):
            np.testing.assert_allclose(got[key], ref[key], rtol=1e-12, atol=0, err_msg=key)
            np.testing.assert_allclose(cor[key], fixed[key], rtol=1e-12, atol=0, err_msg=key)
        assert M.map_compat(q, r, ql, rl, "dcmh-matlab-bug") == pytest.approx(ref["map"], rel=1e-12)
        assert M.map_compat(q, r, ql, rl, "dcmh-matlab-bug", k=50) == pytest.approx(ref["topkMap"][2], rel=1e-12)
        assert M.map_compat(q, r, ql, rl, "dcmh-matlab") == pytest.approx(fixed["map"], rel=1e-12)


def test_dcmh_matlab_bug_small_blocks_and_errors(monkeypatch):
    from hashkit.metrics import compat

    qb, rb, ql, rl = complement_heavy(4, Q=9, N=50, nbits=32)
    whole = M.dcmh_matlab(qb, rb, ql, rl, topk=[5, 50])
    monkeypatch.setattr(compat, "_BLOCK_PAIRS", 60)        # one query per block
    part = M.dcmh_matlab(qb, rb, ql, rl, topk=[5, 50])
    for key in whole:
        np.testing.assert_allclose(part[key], whole[key], rtol=1e-13)
    with pytest.raises(ValueError, match="topk: expected ascending"):
        M.dcmh_matlab(qb, rb, ql, rl, topk=[50, 5])
    with pytest.raises(ValueError, match="hammingdist"):
        M.dcmh_matlab(qb, rb, ql, rl, hammingdist="fixed")
