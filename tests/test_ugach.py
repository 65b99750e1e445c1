"""UGACH: the policy-gradient step, the discriminator's hinge, the correlation graph, and that
training never reads labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashkit.methods.base import TrainData
from hashkit.methods.ugach import (UGACH, TwoBranch, correlation_graph, generator_logits,
                                   policy_gradient_loss, triplet_hinge)


def test_triplet_hinge_by_hand():
    hq = torch.tensor([[1.0, 0.0]])
    hp = torch.tensor([[1.0, 1.0]])    # ||q - p||^2 = 1
    hn = torch.tensor([[0.0, 0.0]])    # ||q - n||^2 = 1
    assert float(triplet_hinge(hq, hp, hn, 0.5)) == pytest.approx(0.5)
    hn = torch.tensor([[-1.0, 1.0]])   # ||q - n||^2 = 5
    assert float(triplet_hinge(hq, hp, hn, 0.5)) == 0.0


def test_generator_logits_are_negative_squared_distances():
    rng = np.random.default_rng(0)
    hq, hc = rng.random((3, 5)), rng.random((4, 5))
    expect = -((hq[:, None, :] - hc[None, :, :]) ** 2).sum(-1)
    got = generator_logits(torch.tensor(hq), torch.tensor(hc)).numpy()
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_policy_gradient_moves_log_probability_with_the_advantage(sign):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    g = TwoBranch(6, 5, 8, 16).double()
    q = torch.tensor(rng.normal(size=(1, 6)))
    cand = torch.tensor(rng.normal(size=(7, 5)))
    sampled = torch.tensor([[3]])

    def logp():
        with torch.no_grad():
            return float(torch.log_softmax(generator_logits(g.img(q), g.txt(cand)), 1)[0, 3])

    before = logp()
    opt = torch.optim.SGD(g.parameters(), lr=0.05)
    loss = policy_gradient_loss(generator_logits(g.img(q), g.txt(cand)), sampled, torch.tensor([[sign]]))
    opt.zero_grad()
    loss.backward()
    opt.step()
    after = logp()
    assert (after - before) * sign > 0


def test_policy_gradient_two_samples_opposite_advantages():
    torch.manual_seed(2)
    rng = np.random.default_rng(3)
    g = TwoBranch(4, 4, 8, 16).double()
    q = torch.tensor(rng.normal(size=(1, 4)))
    cand = torch.tensor(rng.normal(size=(6, 4)))
    sampled = torch.tensor([[1, 4]])
    adv = torch.tensor([[0.7, -0.7]])    # reward minus the mean reward (pg_baseline="mean")

    def logps():
        with torch.no_grad():
            return torch.log_softmax(generator_logits(g.img(q), g.txt(cand)), 1)[0, [1, 4]]

    before = logps()
    opt = torch.optim.SGD(g.parameters(), lr=0.05)
    opt.zero_grad()
    policy_gradient_loss(generator_logits(g.img(q), g.txt(cand)), sampled, adv).backward()
    opt.step()
    after = logps()
    # to first order the step raises log p(1) - log p(4) (softmax couples the two)
    assert after[0] - after[1] > before[0] - before[1]


def test_correlation_graph_is_image_then_text_neighbours():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 4, size=(40, 3)).astype(np.float32)
    txt = rng.integers(0, 4, size=(40, 5)).astype(np.float32)
    g = correlation_graph(img, txt, knn=3, method="exact")
    assert g.shape == (40, 6)
    for x, cols in ((img, slice(0, 3)), (txt, slice(3, 6))):
        for i in range(40):
            d = ((x.astype(np.float64) - x[i]) ** 2).sum(1)
            order = [j for j in np.argsort(d, kind="stable") if j != i][:3]
            assert g[i, cols].tolist() == order


class _NoLabels(TrainData):
    """Training data whose labels raise: an unsupervised method must never touch them."""

    @property
    def labels(self):
        raise AssertionError("UGACH read the labels")

    @labels.setter
    def labels(self, value):
        pass

    def label_batch(self, idx=None):
        raise AssertionError("UGACH read the labels")

    def similarity(self, idx_a=None, idx_b=None):
        raise AssertionError("UGACH read the labels")


def _train(seed=0, n=40):
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 3, n)
    img = rng.normal(size=(3, 8))[cls] + 0.3 * rng.normal(size=(n, 8))
    txt = rng.normal(size=(3, 6))[cls] + 0.3 * rng.normal(size=(n, 6))
    return _NoLabels(img.astype(np.float32), txt.astype(np.float32), np.zeros((n, 3), np.uint8))


SMALL = {"epochs": 2, "pretrain_epochs": 1, "hidden": 16, "batch_size": 16, "candidates": 10, "knn": 2}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def test_every_phase_runs_without_labels():
    torch.manual_seed(0)
    train = _train()
    m = UGACH(8, 8, 6, 3, config=SMALL)
    assert not UGACH.supervised
    m.rng = np.random.default_rng(0)
    m.setup(train)
    assert m.graph.shape == (40, 5)                   # the pair itself + 2 image + 2 text neighbours
    np.testing.assert_array_equal(m.graph[:, 0], np.arange(40))
    for epoch in range(2):
        m.begin_epoch(epoch, train)
        phases = {b[0] for b in m.batches(epoch, train)}
        assert phases == ({"pre"} if epoch == 0 else {"d", "g"})
        for batch in m.batches(epoch, train):
            out = m.train_step(batch, epoch, train)
            assert all(np.isfinite(v) for v in out.values())
    assert m.opt_d.param_groups[0]["lr"] == m.config["adv_lr"]
    with torch.no_grad():
        codes = m.encode_images(train.images)
    assert codes.shape == (40, 8) and float(codes.abs().max()) <= 0.5


def test_pretraining_lowers_the_hinge_on_graph_neighbours():
    torch.manual_seed(1)
    train = _train(1)
    m = UGACH(8, 8, 6, 3, config={**SMALL, "pretrain_epochs": 20, "epochs": 20})
    m.rng = np.random.default_rng(1)
    m.setup(train)
    losses = []
    for epoch in range(20):
        m.begin_epoch(epoch, train)
        losses += [m.train_step(b, epoch, train)["d_loss"] for b in m.batches(epoch, train)]
    assert np.mean(losses[-6:]) < np.mean(losses[:6])


def test_raw_pixels_are_rejected():
    with pytest.raises(ValueError, match="image_dim: UGACH takes image features"):
        UGACH(8, None, 6, 3, config=SMALL)


def test_codes_on_non_negative_sparse_inputs_are_not_collapsed():
    # MIRFLICKR-shaped synthetic set: non-negative image features, binary BoW. On raw inputs
    # every sigmoid unit starts on one side and the retrieval codes collapse (1-2 distinct
    # codes among 720 items, 15-16 of 16 bits constant); standardised inputs do not.
    import hashkit.data
    from hashkit.methods.diagnostics import code_diagnostics
    from hashkit.train import Trainer

    ds = hashkit.data.load("synthetic", n=800, image_dim=256, seed=0)
    t = Trainer("ugach", ds, 16, None, config={"epochs": 2, "pretrain_epochs": 2, "hidden": 128},
                progress=False, eval_every=0, log=lambda m: None)
    res = t.fit()
    for key in ("db_image", "db_text"):
        d = code_diagnostics(t.codes[key], ds.nlabels)
        assert d["distinct"] >= 100 and d["constant_bits"] == 0, (key, d["distinct"], d["constant_bits"])
    assert not res["diagnostics"]["collapsed"]


def test_preprocessing_is_applied_at_encoding_and_checkpointed():
    torch.manual_seed(3)
    train = _train(3)
    m = UGACH(8, 8, 6, 3, config={**SMALL, "preprocess": "standardize"})
    m.rng = np.random.default_rng(3)
    m.setup(train)
    np.testing.assert_allclose(m.x_mean.numpy()[0], train.images.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.y_std.numpy()[0], train.texts.std(0), rtol=1e-5)
    x = train.images[:5]
    with torch.no_grad():
        got = m.encode_images(x)
        want = m.dis.img(torch.tensor((x - train.images.mean(0)) / train.images.std(0), dtype=torch.float32)) - 0.5
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    state = m.state_dict()
    assert {"x_mean", "x_std", "y_mean", "y_std", "graph"} <= set(state["buffers"])
    c = UGACH(8, 8, 6, 3, config={**SMALL, "preprocess": "center"})
    c.rng = np.random.default_rng(3)
    c.setup(train)
    assert c.x_std is None and c.y_std is None


def test_release_pretraining_regime():
    torch.manual_seed(4)
    train = _train(4)
    m = UGACH(8, 8, 6, 3, config={**SMALL, **UGACH.RELEASE_PRETRAIN, "pretrain_epochs": 2, "epochs": 2})
    m.rng = np.random.default_rng(4)
    m.setup(train)
    assert isinstance(m.opt_pre, torch.optim.SGD)
    assert m.opt_pre.param_groups[0]["weight_decay"] == 0.01
    m.begin_epoch(0, train)
    assert m.opt_pre.param_groups[0]["lr"] == 0.01
    batches = m.batches(0, train)
    assert {len(b[-1]) for b in batches} == {20}                       # 40 items, batch 20
    seen = []
    orig = m._batch

    def spy(direction, tr, q, items):
        seen.append((np.asarray(q).copy(), np.asarray(items).copy()))
        return orig(direction, tr, q, items)

    m._batch = spy
    before = [p.detach().clone() for p in m.dis.parameters()]
    m.train_step(batches[0], 0, train)
    (q, pos), (_, neg) = seen
    np.testing.assert_array_equal(pos, q)                             # the pair itself is the positive
    assert len(neg) == len(q) and not (neg == q).any()                # one other item as the negative
    assert any(not torch.equal(a, b) for a, b in zip(before, m.dis.parameters()))
    assert m.opt_d.state == {}                                        # the adversarial optimiser is idle


# ----------------------------------------------------------------------------- the release graph
def test_release_graph_positives_are_its_distinct_members_uniformly():
    """graph='release': the positives of row i are the distinct members of the release's
    KNN_cross5 row i (utils.make_train_dict: ``j in KNN_cross[i]``, each j once), drawn
    uniformly; the feature kNN graph is not built."""
    torch.manual_seed(0)
    train = _train(n=30)
    rng = np.random.default_rng(7)
    rel = rng.integers(0, 30, (30, 10))
    rel[:, 0] = rel[:, 5] = np.arange(30)          # the item itself heads both halves
    rel[3] = [3, 9, 9, 9, 9, 3, 9, 9, 9, 1]        # three distinct members: 3, 9, 1
    train.graph = rel.astype(np.float64)           # as np.load reads the release file
    m = UGACH(8, 8, 6, 3, config={**SMALL, "graph": "release"})
    m.rng = np.random.default_rng(0)
    m.setup(train)
    for i in range(30):
        assert set(m.graph[i].tolist()) == set(rel[i].tolist())
    draws = m._positives(np.full(6000, 3), 1).ravel()
    assert set(draws.tolist()) == {1, 3, 9}
    freq = np.bincount(draws, minlength=10)[[1, 3, 9]] / draws.size
    np.testing.assert_allclose(freq, 1 / 3, atol=0.03)   # uniform, not 1/10, 2/10, 7/10
    for epoch in range(2):                               # every phase runs on it
        m.begin_epoch(epoch, train)
        for batch in m.batches(epoch, train):
            assert all(np.isfinite(v) for v in m.train_step(batch, epoch, train).values())


def test_release_graph_missing_is_one_clear_error():
    train = _train(n=30)
    m = UGACH(8, 8, 6, 3, config={**SMALL, "graph": "release"})
    m.rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"config\['graph'\]: 'release' trains on the neighbour "
                                         r"graph a UGACH release ships.*KNN_cross5.npy"):
        m.setup(train)
    with pytest.raises(ValueError, match=r"config\['graph'\]"):
        UGACH(8, 8, 6, 3, config={**SMALL, "graph": "releases"})


def test_release_graph_out_of_range_is_one_clear_error():
    train = _train(n=30)
    train.graph = np.full((30, 10), 30.0)        # an index past the training rows
    m = UGACH(8, 8, 6, 3, config={**SMALL, "graph": "release"})
    m.rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"config\['graph'\]: the release graph: expected "
                                         r"whole-number indices in \[0, 30\)"):
        m.setup(train)
