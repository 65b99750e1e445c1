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
