"""hashkit.metrics against slow oracles written from the definitions.

The oracles here unpack nothing from hashkit: distances come from ``tests/oracle.py``
(unpacked bits), rankings from ``np.argsort(kind="stable")`` or an explicit order, and AP is
computed from the ranked relevance vector exactly as the definition reads. Tie-aware AP is
checked against exhaustive enumeration of every order within ties (tiny cases) and against
Monte Carlo over random tie orders (larger ones, with and without a cut-off).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashkit.kernels import _select as _backend
from hashkit import metrics as M
from oracle import gains, hamming_ref, random_codes, random_labels, relevance, stable_ranking


# ----------------------------------------------------------------------------- oracles

def ap_ref(rel_sorted, k=None, normalize="hashing") -> float:
    """AP of one ranked 0/1 relevance vector, straight from the definition."""
    rel_sorted = np.asarray(rel_sorted, bool)
    top = rel_sorted if k is None else rel_sorted[:k]
    prec = np.cumsum(top) / np.arange(1, top.size + 1)
    s = prec[top].sum()
    if k is None:
        den = rel_sorted.sum()
    elif normalize == "hashing":
        den = top.sum()
    else:
        den = min(rel_sorted.sum(), k)
    return float(s / den) if den > 0 else 0.0


def order_by(dist_row, rel_row, ties):
    n = dist_row.size
    idx = np.arange(n)
    if ties == "index":
        return np.argsort(dist_row, kind="stable")
    if ties == "optimistic":
        return np.lexsort((idx, ~rel_row, dist_row))
    if ties == "pessimistic":
        return np.lexsort((idx, rel_row, dist_row))
    raise AssertionError(ties)


def data(seed, Q=13, N=101, nbits=16, nlabels=5, distinct=None, p_one=0.5):
    rng = np.random.default_rng(seed)
    _, qb = random_codes(rng, Q, nbits, p_one=p_one, distinct=distinct)
    _, rb = random_codes(rng, N, nbits, p_one=p_one, distinct=distinct)
    _, ql = random_labels(rng, Q, nlabels)
    _, rl = random_labels(rng, N, nlabels)
    return qb, rb, ql, rl


def ref_ap_matrix(qb, rb, ql, rl, k=None, ties="index", normalize="hashing"):
    dist = hamming_ref(qb, rb)
    rel = relevance(ql, rl)
    return np.array([ap_ref(rel[i][order_by(dist[i], rel[i], ties)], k, normalize)
                     for i in range(dist.shape[0])])


def exhaustive_aware(dist_row, rel_row, k=None, normalize="hashing") -> float:
    """Mean AP over every order within ties (each order equally likely)."""
    groups = [np.flatnonzero(dist_row == d) for d in np.unique(dist_row)]
    vals = [ap_ref(rel_row[np.concatenate(perm)], k, normalize)
            for perm in itertools.product(*[list(itertools.permutations(g)) for g in groups])]
    return float(np.mean(vals))


def random_tie_orders(dist_row, rng, trials):
    """(trials, N) orders: ascending distance, uniformly random within ties."""
    keys = rng.random((trials, dist_row.size))
    return np.array([np.lexsort((keys[t], dist_row)) for t in range(trials)])


# ----------------------------------------------------------------------------- MAP, stable ties

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [None, 1, 7, 50, 101])
@pytest.mark.parametrize("normalize", ["hashing", "ir"])
def test_map_index_matches_stable_oracle(seed, k, normalize):
    qb, rb, ql, rl = data(seed)
    ref = ref_ap_matrix(qb, rb, ql, rl, k, "index", normalize)
    got = M.mean_average_precision(qb, rb, ql, rl, k=k, normalize=normalize, per_query=True)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
    assert M.mean_average_precision(qb, rb, ql, rl, k=k, normalize=normalize) == pytest.approx(ref.mean(), rel=1e-12)


def test_map_accepts_pm1_packed_and_odd_lengths():
    qb, rb, ql, rl = data(3, Q=9, N=77, nbits=70)
    ref = ref_ap_matrix(qb, rb, ql, rl).mean()
    pm = M.mean_average_precision(2.0 * qb - 1, 2.0 * rb - 1, ql, rl)
    from hashkit.codes import pack
    packed = M.mean_average_precision(pack(qb), pack(rb), ql, rl)
    assert pm == pytest.approx(ref, rel=1e-12) and packed == pytest.approx(ref, rel=1e-12)


def test_empty_queries_zero_or_skip():
    qb, rb, ql, rl = data(4)
    rel = relevance(ql, rl)
    has = rel.any(1)
    assert (~has).any() and has.any(), "the data must contain empty and non-empty queries"
    ref = ref_ap_matrix(qb, rb, ql, rl)
    assert M.mean_average_precision(qb, rb, ql, rl, empty="zero") == pytest.approx(ref.mean())
    assert M.mean_average_precision(qb, rb, ql, rl, empty="skip") == pytest.approx(ref[has].mean())
    pq = M.mean_average_precision(qb, rb, ql, rl, empty="skip", per_query=True)
    assert np.isnan(pq[~has]).all()


def test_labels_not_modified():
    qb, rb, ql, rl = data(5)
    ql0, rl0 = ql.copy(), rl.copy()
    M.mean_average_precision(qb, rb, ql, rl, k=10)
    M.map_compat(qb, rb, ql, rl, "hits-only", k=10)
    assert (ql == ql0).all() and (rl == rl0).all()


# ----------------------------------------------------------------------------- tie rules

@pytest.mark.parametrize("ties", ["optimistic", "pessimistic"])
@pytest.mark.parametrize("k", [None, 5, 33])
@pytest.mark.parametrize("normalize", ["hashing", "ir"])
def test_extreme_tie_orders_match_oracle(ties, k, normalize):
    qb, rb, ql, rl = data(6, N=67, nbits=16, distinct=20)
    ref = ref_ap_matrix(qb, rb, ql, rl, k, ties, normalize)
    got = M.mean_average_precision(qb, rb, ql, rl, k=k, ties=ties, normalize=normalize, per_query=True)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_aware_equals_exhaustive_enumeration(seed):
    rng = np.random.default_rng(seed)
    N, nbits = 7, 3
    _, qb = random_codes(rng, 2, nbits)
    _, rb = random_codes(rng, N, nbits, distinct=4)
    _, ql = random_labels(rng, 2, 2, density=0.5, p_empty=0.0)
    _, rl = random_labels(rng, N, 2, density=0.5, p_empty=0.1)
    dist, rel = hamming_ref(qb, rb), relevance(ql, rl)
    for k in [None, 1, 2, 3, 5, 7]:
        for normalize in ("hashing", "ir"):
            ref = [exhaustive_aware(dist[i], rel[i], k, normalize) for i in range(2)]
            got = M.mean_average_precision(qb, rb, ql, rl, k=k, ties="aware", normalize=normalize,
                                           per_query=True)
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12, err_msg=f"k={k} {normalize}")


@pytest.mark.parametrize("k", [None, 40, 125])
@pytest.mark.parametrize("normalize", ["hashing", "ir"])
def test_aware_matches_monte_carlo(k, normalize):
    rng = np.random.default_rng(11)
    qb, rb, ql, rl = data(12, Q=4, N=257, nbits=8, distinct=12)
    dist, rel = hamming_ref(qb, rb), relevance(ql, rl)
    got = M.mean_average_precision(qb, rb, ql, rl, k=k, ties="aware", normalize=normalize, per_query=True)
    trials = 1500
    for i in range(4):
        orders = random_tie_orders(dist[i], rng, trials)
        aps = np.array([ap_ref(rel[i][o], k, normalize) for o in orders])
        se = aps.std(ddof=1) / np.sqrt(trials)
        assert abs(aps.mean() - got[i]) <= 5 * se + 1e-9, (i, aps.mean(), got[i], se)


@pytest.mark.parametrize("k", [None, 9, 60])
@pytest.mark.parametrize("normalize", ["hashing", "ir"])
def test_tie_rule_order(k, normalize):
    qb, rb, ql, rl = data(13, Q=20, N=151, nbits=16, distinct=30)
    got = {t: M.mean_average_precision(qb, rb, ql, rl, k=k, ties=t, normalize=normalize, per_query=True)
           for t in M.TIES}
    if k is None or normalize == "ir":
        # Relevant-first / relevant-last bound every order when the normaliser is fixed.
        for t in ("index", "aware"):
            assert (got["optimistic"] >= got[t] - 1e-12).all()
            assert (got[t] >= got["pessimistic"] - 1e-12).all()
    assert (got["optimistic"] != got["pessimistic"]).any()


def test_hashing_cutoff_extremes_are_not_bounds():
    # Documented caveat: with MAP@k divided by the hits inside k, moving a relevant item into
    # the window at low precision lowers AP, so relevant-first can be below relevant-last.
    dist = np.array([[0, 1, 2, 2, 2, 2]])
    qb = np.zeros((1, 2), np.uint8)
    rb = np.array([[0, 0], [1, 0], [1, 1], [1, 1], [1, 1], [1, 1]], np.uint8)
    assert (hamming_ref(qb, rb) == dist).all()
    ql = np.array([[1]])
    rl = np.array([[1], [0], [0], [0], [0], [1]])
    opt = M.mean_average_precision(qb, rb, ql, rl, k=3, ties="optimistic")
    pes = M.mean_average_precision(qb, rb, ql, rl, k=3, ties="pessimistic")
    assert opt == pytest.approx((1 + 2 / 3) / 2) and pes == pytest.approx(1.0)


def test_sixteen_bit_pitfall_spread():
    """METRIC-VARIANTS' pitfall: at 16 bits, MAP moves with the tie order (last < stable < first)."""
    rng = np.random.default_rng(2024)
    nclass, Q, N, nbits = 6, 40, 600, 16
    centers = rng.integers(0, 2, (nclass, nbits))
    def draw(n):
        y = rng.integers(0, nclass, n)
        flip = rng.random((n, nbits)) < 0.2
        return (centers[y] ^ flip).astype(np.uint8), np.eye(nclass, dtype=np.uint8)[y]
    qb, ql = draw(Q)
    rb, rl = draw(N)
    last = M.mean_average_precision(qb, rb, ql, rl, ties="pessimistic")
    first = M.mean_average_precision(qb, rb, ql, rl, ties="optimistic")
    stable = M.mean_average_precision(qb, rb, ql, rl)
    aware = M.mean_average_precision(qb, rb, ql, rl, ties="aware")
    assert last < stable < first and last < aware < first
    assert first - last > 0.01
    assert last == pytest.approx(ref_ap_matrix(qb, rb, ql, rl, None, "pessimistic").mean(), rel=1e-9)
    assert first == pytest.approx(ref_ap_matrix(qb, rb, ql, rl, None, "optimistic").mean(), rel=1e-9)


# ----------------------------------------------------------------------------- curves

def _topk_counts(qb, rb, ql, rl):
    dist, rel = hamming_ref(qb, rb), relevance(ql, rl)
    order = stable_ranking(dist)
    return np.take_along_axis(rel, order, 1), rel.sum(1)


def test_precision_recall_at_k_match_matlab_loop():
    qb, rb, ql, rl = data(21)
    ranked, R = _topk_counts(qb, rb, ql, rl)
    ks = [1, 10, 57, 101]
    hits = np.stack([ranked[:, :k].sum(1) for k in ks], 1)
    np.testing.assert_allclose(M.precision_at_k(qb, rb, ql, rl, ks), (hits / np.array(ks)).mean(0))
    rec = np.where(R[:, None] > 0, hits / np.maximum(R, 1)[:, None], 0)
    np.testing.assert_allclose(M.recall_at_k(qb, rb, ql, rl, ks), rec.mean(0))
    np.testing.assert_allclose(M.recall_at_k(qb, rb, ql, rl, ks, empty="skip"), rec[R > 0].mean(0))
    assert isinstance(M.precision_at_k(qb, rb, ql, rl, 10), float)


@pytest.mark.parametrize("ties", ["aware", "optimistic", "pessimistic"])
def test_precision_at_k_tie_rules(ties):
    rng = np.random.default_rng(22)
    qb, rb, ql, rl = data(22, Q=5, N=90, nbits=6, distinct=9)
    dist, rel = hamming_ref(qb, rb), relevance(ql, rl)
    ks = [3, 30, 89]
    got = M.precision_at_k(qb, rb, ql, rl, ks, ties=ties, per_query=True)
    for i in range(5):
        for c, k in enumerate(ks):
            if ties == "aware":
                # exact: the expected hits in the top k equal the mean over all tie orders,
                # estimated here by many random orders (the count is bounded, so 6 SE suffice)
                o = random_tie_orders(dist[i], rng, 800)
                h = rel[i][o][:, :k].sum(1) / k
                assert abs(h.mean() - got[i, c]) <= 6 * h.std(ddof=1) / np.sqrt(800) + 1e-12
            else:
                assert got[i, c] == pytest.approx(rel[i][order_by(dist[i], rel[i], ties)][:k].mean())


def test_radius_precision_and_pr_curve():
    qb, rb, ql, rl = data(23, nbits=12)
    dist, rel = hamming_ref(qb, rb), relevance(ql, rl)
    nb = qb.shape[1]
    # thulab get_precision_recall_by_Hamming_Radius: per query, empty bucket -> 0
    for r in (0, 2, 5, 12, 20):
        per = []
        for i in range(dist.shape[0]):
            idx = np.flatnonzero(dist[i] <= r)
            per.append(rel[i][idx].sum() / idx.size if idx.size else 0.0)
        assert M.precision_within_radius(qb, rb, ql, rl, r=r, average="per-query") == pytest.approx(np.mean(per))
    # DCMH calcPreRecRadiusLabel.m: pooled pairs, precision = good / (pairs + eps)
    eps = np.finfo(float).eps
    pre = [(rel & (dist <= r)).sum() / ((dist <= r).sum() + eps) for r in range(nb + 1)]
    rec = [(rel & (dist <= r)).sum() / rel.sum() for r in range(nb + 1)]
    curve = M.pr_curve_radius(qb, rb, ql, rl, average="pooled")
    np.testing.assert_allclose(curve["precision"], pre, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(curve["recall"], rec, rtol=1e-12)
    assert M.precision_within_radius(qb, rb, ql, rl, r=2, average="pooled") == pytest.approx(pre[2])
    R = rel.sum(1)
    cq = M.pr_curve_radius(qb, rb, ql, rl, average="per-query")
    within = np.stack([(rel & (dist <= r)).sum(1) for r in range(nb + 1)], 1)
    ret = np.stack([(dist <= r).sum(1) for r in range(nb + 1)], 1)
    np.testing.assert_allclose(cq["precision"], np.where(ret > 0, within / np.maximum(ret, 1), 0).mean(0))
    np.testing.assert_allclose(cq["recall"], np.where(R[:, None] > 0, within / np.maximum(R, 1)[:, None], 0).mean(0))


def test_radius_one_default_shared_by_api_report_and_curve():
    # One meaning for "precision within radius 2": the scalar, the curve's point at 2 and the
    # report's column agree by default (pooled, DCMH MATLAB), and the column says which it is.
    qb, rb, ql, rl = data(24, nbits=12)
    dist, rel = hamming_ref(qb, rb), relevance(ql, rl)
    pooled = (rel & (dist <= 2)).sum() / (dist <= 2).sum()
    within = [rel[i][dist[i] <= 2].mean() if (dist[i] <= 2).any() else 0.0 for i in range(len(rel))]
    assert abs(pooled - np.mean(within)) > 1e-3, "the data must tell the two averages apart"
    assert M.DEFAULT_AVERAGE == "pooled"
    assert M.precision_within_radius(qb, rb, ql, rl, r=2) == pytest.approx(pooled, rel=1e-12)
    assert M.pr_curve_radius(qb, rb, ql, rl)["precision"][2] == pytest.approx(pooled, rel=1e-12)
    r = M.report(qb, rb, ql, rl, metrics="p@r2,p@r3/query,p@r2/query,pr")
    assert r["p@r2/pooled"] == pytest.approx(pooled, rel=1e-12)
    assert r["p@r2/query"] == pytest.approx(np.mean(within), rel=1e-12)
    assert r["pr"]["precision"][2] == pytest.approx(pooled, rel=1e-12)
    assert "p@r3/query" in r and "p@r2" not in r
    q = M.report(qb, rb, ql, rl, metrics="p@r2,pr", radius_average="per-query")
    assert q["p@r2/query"] == pytest.approx(np.mean(within), rel=1e-12)
    assert q["pr"]["precision"][2] == pytest.approx(np.mean(within), rel=1e-12)
    with pytest.raises(ValueError, match="radius_average"):
        M.report(qb, rb, ql, rl, metrics="p@r2", radius_average="micro")
    with pytest.raises(ValueError, match=r"metrics:.*p@rR.*'p@r2/mean'"):
        M.report(qb, rb, ql, rl, metrics="p@r2/mean")
    with pytest.raises(ValueError, match=r"map@k with k = 50"):
        M.report(qb, rb, ql, rl, metrics="map@50")


def test_report_says_what_was_measured():
    qb, rb, ql, rl = data(25, Q=13, N=70, nbits=10)
    ql[0] = 0                                   # a query with no relevant item
    rel = relevance(ql, rl)
    d = M.report(qb, rb, ql, rl, metrics="map,map@k,p@k,p@r1/query,p@r1/pooled,pk", ks=[5, 70],
                 ties="aware", details=True, per_query=True)
    assert (d["nbits"], d["n_query"], d["n_db"], d["n_labels"]) == (10, 13, 70, ql.shape[1])
    assert d["empty_queries"] == int((rel.sum(1) == 0).sum()) >= 1
    assert d["ties"] == "aware" and d["radius_average"] == "pooled"
    assert set(d["conventions"]) == set(d["metrics"])
    assert d["conventions"]["map@5"].endswith("; k = 5") and "inside the top k" in d["conventions"]["map@5"]
    assert "tie-aware" in d["conventions"]["map"] and "counts 0" in d["conventions"]["map"]
    assert "pooled" in d["conventions"]["p@r1/pooled"] and "per query" in d["conventions"]["p@r1/query"]
    pq = d["per_query"]
    assert "p@r1/pooled" not in pq and pq["map"].shape == (13,)
    for name in ("map", "map@5", "p@70", "p@r1/query"):
        assert pq[name].mean() == pytest.approx(d["metrics"][name], rel=1e-12)
    assert pq["map"][0] == 0.0
    flat = M.report(qb, rb, ql, rl, metrics="map,p@k", ks=5, ties="aware")
    assert flat == {"map": d["metrics"]["map"], "p@5": d["metrics"]["p@5"]}


@pytest.mark.parametrize("n,grid,first,last,count", [
    (193_734, None, 1, 5000, 51), (193_734, "log", 1, 5000, 37), (97, None, 1, 97, None), (3, "log", 1, 3, 3)])
def test_pk_grid_default_is_the_range_papers_plot(n, grid, first, last, count):
    from hashkit.metrics.report import pk_grid

    g = pk_grid(n, grid)
    assert g[0] == first and g[-1] == last and np.all(np.diff(g) > 0)
    if count:
        assert len(g) == count
    if n == 193_734 and grid is None:
        assert g[:4].tolist() == [1, 100, 200, 300]
    assert pk_grid(n, [1, 2, 3]).tolist() == [1, 2, 3]


def test_ndcg_acg_match_oracle():
    qb, rb, ql, rl = data(24, nlabels=6)
    dist = hamming_ref(qb, rb)
    g = gains(ql, rl)
    order = stable_ranking(dist)
    ranked = np.take_along_axis(g, order, 1)
    ideal = -np.sort(-g, axis=1)
    disc = 1 / np.log2(np.arange(2, g.shape[1] + 2))
    ks = [1, 4, 25, 101]
    nd, ac = [], []
    for k in ks:
        dcg = (ranked[:, :k] * disc[:k]).sum(1)
        idcg = (ideal[:, :k] * disc[:k]).sum(1)
        nd.append(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), 0))
        ac.append(ranked[:, :k].sum(1) / k)
    nd, ac = np.stack(nd, 1), np.stack(ac, 1)
    np.testing.assert_allclose(M.ndcg_at_k(qb, rb, ql, rl, ks), nd.mean(0), rtol=1e-12)
    keep = g.max(1) > 0
    np.testing.assert_allclose(M.ndcg_at_k(qb, rb, ql, rl, ks, empty="skip"), nd[keep].mean(0), rtol=1e-12)
    np.testing.assert_allclose(M.acg_at_k(qb, rb, ql, rl, ks), ac.mean(0), rtol=1e-12)


# ----------------------------------------------------------------------------- backends

def test_backend_parity():
    names = [n for n, ok in _backend.available().items() if ok and n != "cuda"]
    qb, rb, ql, rl = data(31, Q=17, N=211, nbits=40, distinct=60)
    results = {}
    for name in names:
        results[name] = [
            M.mean_average_precision(qb, rb, ql, rl, backend=name, per_query=True),
            M.mean_average_precision(qb, rb, ql, rl, k=50, ties="aware", backend=name, per_query=True),
            M.map_compat(qb, rb, ql, rl, "first-min-k-r", k=20, backend=name),
            M.precision_at_k(qb, rb, ql, rl, [5, 60], backend=name),
            M.ndcg_at_k(qb, rb, ql, rl, [5, 60], backend=name),
            M.pr_curve_radius(qb, rb, ql, rl, backend=name)["precision"],
        ]
    base = results[names[0]]
    for name in names[1:]:
        for a, b in zip(base, results[name]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    assert names, "no CPU backend available"


# ----------------------------------------------------------------------------- bad input

def _ok():
    return data(41, Q=3, N=10, nbits=8)


BAD = [
    (lambda q, r, a, b: M.mean_average_precision(q, r, a, b, k=0), ValueError, "k:"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a, b, k=11), ValueError, "k:"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a, b, k=2.5), TypeError, "k:"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a, b, ties="random"), ValueError, "ties:"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a, b, normalize="x"), ValueError, "normalize:"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a, b, empty="x"), ValueError, "empty:"),
    (lambda q, r, a, b: M.mean_average_precision(q, r[:, :7], a, b), ValueError, "qB and rB"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a[:2], b), ValueError, "qB and qL"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a, b[:, :3]), ValueError, "qL and rL"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a * 2, b), ValueError, "qL:"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a, np.where(b > 0, np.nan, 0.0)), ValueError, "rL:"),
    (lambda q, r, a, b: M.mean_average_precision(q[:0], r, a[:0], b), ValueError, "qB:"),
    (lambda q, r, a, b: M.mean_average_precision(np.where(q > 0, np.nan, 1.0), r, a, b), ValueError, "qB:"),
    (lambda q, r, a, b: M.mean_average_precision("codes", r, a, b), TypeError, "qB:"),
    (lambda q, r, a, b: M.map_compat(q, r, a, b, "matlab"), ValueError, "variant:"),
    (lambda q, r, a, b: M.map_compat(q, r, a, b, "topk"), ValueError, "k:"),
    (lambda q, r, a, b: M.map_compat(q, r, a, b, "dcmh-python", k=3), ValueError, "k:"),
    (lambda q, r, a, b: M.map_compat(q, r, a, b, "topk", k=3, nan_on_empty=True), ValueError, "nan_on_empty:"),
    (lambda q, r, a, b: M.precision_at_k(q, r, a, b, [0, 3]), ValueError, "ks:"),
    (lambda q, r, a, b: M.recall_at_k(q, r, a, b, [3, 11]), ValueError, "ks:"),
    (lambda q, r, a, b: M.ndcg_at_k(q, r, a, b, []), ValueError, "ks:"),
    (lambda q, r, a, b: M.precision_within_radius(q, r, a, b, r=-1), ValueError, "r:"),
    (lambda q, r, a, b: M.precision_within_radius(q, r, a, b, average="micro"), ValueError, "average:"),
    (lambda q, r, a, b: M.pr_curve_radius(q, r, a, b, empty="none"), ValueError, "empty:"),
    (lambda q, r, a, b: M.mean_average_precision(np.packbits(q > 0, axis=1), np.packbits(r > 0, axis=1), a, b),
     ValueError, "qB: integer codes must hold one value per bit.*Codes.from_bytes"),
    (lambda q, r, a, b: M.mean_average_precision(q, r, a, b, backend="gpu"), ValueError, "backend:"),
]


@pytest.mark.parametrize("call,exc,msg", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg.replace("(", r"\(")):
        call(*_ok())
