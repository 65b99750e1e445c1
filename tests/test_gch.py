"""GCH, gch-try1, gch-try2: the graph, the fusion, the update order and the variants' terms.

Every expected value comes from a hand computation or a NumPy loop written from the equations,
never from the code under test.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from hashkit.methods import get_method
from hashkit.methods.base import TrainData
from hashkit.methods.gch import (GCH, GCHTry1, GCHTry2, cross_modal_fusion, feature_alignment,
                                 label_adjacency, label_code_pull)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


TINY = {"embed_dim": 16, "hidden_dim": 16, "gcn_hidden": 8, "batch_size": 20, "epochs": 2}


def _tiny_data(rng, n=60, image_dim=12, text_dim=8, nlabels=4):
    labels = np.zeros((n, nlabels), np.uint8)
    labels[np.arange(n), rng.integers(0, nlabels, n)] = 1
    labels[rng.random((n, nlabels)) < 0.15] = 1
    images = (labels @ rng.normal(size=(nlabels, image_dim)) + 0.3 * rng.normal(size=(n, image_dim))).astype(np.float32)
    texts = (labels @ rng.normal(size=(nlabels, text_dim)) + 0.3 * rng.normal(size=(n, text_dim))).astype(np.float32)
    return images, texts, labels


def _method(name, rng, nbits=8, **cfg):
    images, texts, labels = _tiny_data(rng)
    torch.manual_seed(int(rng.integers(1 << 31)))
    m = get_method(name)(nbits, images.shape[1], texts.shape[1], labels.shape[1], config={**TINY, **cfg})
    m.rng = np.random.default_rng(int(rng.integers(1 << 31)))
    train = TrainData(images, texts, labels)
    m.setup(train)
    return m, train


# --------------------------------------------------------------------------- Eq. 7 graph
def test_label_adjacency_hand_case():
    # L = [[1,0],[1,1]]: L L^T + I = [[2,1],[1,3]], degrees 3 and 4.
    got = label_adjacency(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).numpy()
    want = np.array([[2 / 3, 1 / np.sqrt(12)], [1 / np.sqrt(12), 3 / 4]])
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("self_loops", [True, False])
def test_label_adjacency_matches_loops(self_loops):
    rng = np.random.default_rng(1)
    lab = (rng.random((7, 5)) < 0.35).astype(np.float64)
    lab[3] = 0  # an unlabelled item: isolated without self loops
    a = np.zeros((7, 7))
    for i in range(7):
        for j in range(7):
            a[i, j] = sum(lab[i, k] * lab[j, k] for k in range(5)) + (1.0 if self_loops and i == j else 0.0)
    d = a.sum(1)
    want = np.zeros_like(a)
    for i in range(7):
        for j in range(7):
            if d[i] > 0 and d[j] > 0:
                want[i, j] = a[i, j] / np.sqrt(d[i] * d[j])
    got = label_adjacency(torch.tensor(lab), self_loops=self_loops).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    if not self_loops:
        assert not got[3].any() and not got[:, 3].any()


# --------------------------------------------------------------------------- Eq. 6 fusion
def test_fusion_hand_case():
    fx = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    fy = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # authors: W = fx fy^T = diag(2, 1), W~ = W / 2; f_r = 1/2 (W~^T fx + W~ fy) = 1/2 (diag(1, .5) + diag(2, .5))
    np.testing.assert_allclose(cross_modal_fusion(fx, fy, "authors").numpy(), [[1.5, 0.0], [0.0, 0.5]])
    # feature: centred fx = [[.5,-.5],[-.5,.5]], fy = [[1,-.5],[-1,.5]] -> C = [[1,-.5],[-1,.5]],
    # ||C||_F = 1.5811; f_r = 1/2 (fx + fy) C / ||C||_F
    c = np.array([[1.0, -0.5], [-1.0, 0.5]]) / np.sqrt(2.5)
    want = 0.5 * (np.array([[1.0, 0.0], [0.0, 1.0]]) + np.array([[2.0, 0.0], [0.0, 1.0]])) @ c
    np.testing.assert_allclose(cross_modal_fusion(fx, fy, "feature").numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("mode", ["feature", "batch", "authors"])
def test_fusion_shapes_and_loops(mode):
    rng = np.random.default_rng(2)
    b, d = 5, 3
    fx, fy = rng.normal(size=(b, d)) + 0.5, rng.normal(size=(b, d)) + 0.5
    want = np.zeros((b, d))
    if mode == "feature":
        xc, yc = fx - fx.mean(0), fy - fy.mean(0)
        c = np.array([[sum(xc[k, p] * yc[k, q] for k in range(b)) for q in range(d)] for p in range(d)])
        c /= np.sqrt((c ** 2).sum())
        for i in range(b):
            for q in range(d):
                want[i, q] = 0.5 * sum((fx[i, p] + fy[i, p]) * c[p, q] for p in range(d))
    else:
        if mode == "authors":
            w = np.array([[fx[i] @ fy[j] for j in range(b)] for i in range(b)])
            wy = w / np.abs(w).max()
            wx = wy.T
        else:
            xc, yc = fx - fx.mean(0), fy - fy.mean(0)
            cos = np.array([[xc[i] @ yc[j] / np.linalg.norm(xc[i]) / np.linalg.norm(yc[j]) for j in range(b)]
                            for i in range(b)]) / 0.1
            wy = np.exp(cos) / np.exp(cos).sum(1, keepdims=True)
            wx = np.exp(cos.T) / np.exp(cos.T).sum(1, keepdims=True)
        for i in range(b):
            for j in range(b):
                want[i] += 0.5 * (wx[i, j] * fx[j] + wy[i, j] * fy[j])
    got = cross_modal_fusion(torch.tensor(fx), torch.tensor(fy), mode).numpy()
    assert got.shape == (b, d)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_fusion_keeps_items_distinct_where_the_release_does_not():
    # Positive-leaning features, as after BatchNorm + LeakyReLU: the release's b x b fusion maps
    # every item of the batch to nearly one vector, the d x d reading keeps them apart.
    rng = np.random.default_rng(8)
    f = torch.nn.functional.leaky_relu(torch.tensor(rng.normal(size=(64, 256))), 0.2)
    g = torch.nn.functional.leaky_relu(torch.tensor(rng.normal(size=(64, 256))), 0.2)

    def mean_offdiag_cos(z):
        z = torch.nn.functional.normalize(z, dim=1)
        c = z @ z.T
        return float(c[~torch.eye(len(z), dtype=torch.bool)].mean())

    assert mean_offdiag_cos(cross_modal_fusion(f, g, "authors")) > 0.99
    assert mean_offdiag_cos(cross_modal_fusion(f, g, "feature")) < 0.3   # 0.33 before fusion
    assert float(cross_modal_fusion(f, g, "feature").norm(dim=1).max()) <= float(
        (0.5 * (f + g)).norm(dim=1).max()) + 1e-9     # W~ is a contraction


def test_fusion_rejects_mismatched_shapes_and_modes():
    with pytest.raises(ValueError, match="fx and fy"):
        cross_modal_fusion(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="fusion: expected one of"):
        cross_modal_fusion(torch.zeros(3, 4), torch.zeros(3, 4), "max")


# --------------------------------------------------------------------------- procedure 1
PHASE = {"opt_lab": "L^l", "opt_img": "L^*", "opt_txt": "L^*", "opt_gcn": "L^GCN"}


def _steps(m, train):
    steps = []
    for attr, opt in m.optimizers().items():
        opt.register_step_post_hook(lambda o, a, k, attr=attr: steps.append(attr))
    m.train_step(m.batches(0, train)[0], 0, train)
    return steps


@pytest.mark.parametrize("name", ["gch", "gch-try1", "gch-try2"])
def test_update_order(name):
    m, train = _method(name, np.random.default_rng(3))
    steps = _steps(m, train)
    assert steps == ["opt_lab", "opt_img", "opt_txt", "opt_gcn", "opt_img", "opt_txt"]
    phases = [PHASE[s] for s in steps]
    collapsed = [p for k, p in enumerate(phases) if k == 0 or p != phases[k - 1]]
    assert collapsed == ["L^l", "L^*", "L^GCN", "L^*"]


def test_ablations_drop_their_phases():
    rng = np.random.default_rng(3)
    assert _steps(*_method("gch", rng, gcn=False)) == ["opt_lab", "opt_img", "opt_txt"]
    assert _steps(*_method("gch", rng, teacher=False)) == ["opt_img", "opt_txt", "opt_gcn", "opt_img", "opt_txt"]


def test_gcn_step_moves_only_the_gcn():
    m, train = _method("gch", np.random.default_rng(4))
    snap = {}

    def before(opt, args, kwargs):
        snap.update({k: [p.detach().clone() for p in mod.parameters()] for k, mod in m.modules().items()})

    def after(opt, args, kwargs):
        for k, mod in m.modules().items():
            changed = any(not torch.equal(a, p) for a, p in zip(snap[k], mod.parameters()))
            assert changed == (k == "gcn"), k

    m.opt_gcn.register_step_pre_hook(before)
    m.opt_gcn.register_step_post_hook(after)
    m.train_step(m.batches(0, train)[0], 0, train)


# --------------------------------------------------------------------------- Eq. 3, 5, 8 as written
def _nll_mean(a, b, s):
    theta = 0.5 * a @ b.T
    return np.mean(np.log1p(np.exp(theta)) - s * theta)


def _sim(lab_a, lab_b):
    return (lab_a.astype(np.float64) @ lab_b.T.astype(np.float64) > 0).astype(np.float64)


def test_eq5_modality_loss_matches_the_equation():
    rng = np.random.default_rng(11)
    m, train = _method("gch", rng, alpha=0.7, beta=0.3, gamma=0.2)
    idx = np.arange(6)
    ctx = m.batch_context(idx, train)
    m.H_l.copy_(torch.tensor(rng.uniform(-1, 1, m.H_l.shape), dtype=torch.float32))
    h = torch.tensor(rng.uniform(-1, 1, (6, m.nbits)), dtype=torch.float32)
    hb = torch.tensor(rng.uniform(-1, 1, (6, m.nbits)), dtype=torch.float32)
    logits = torch.tensor(rng.normal(size=(6, train.labels.shape[1])), dtype=torch.float32)
    terms = m.modality_terms(ctx, "img", None, h, logits, hb, second_pass=False)
    assert set(terms) == {"j1", "beacon", "label"}          # no anchor, no quantisation by default
    hn, hl, hbn = (t.numpy().astype(np.float64) for t in (h, m.H_l, hb))
    s = _sim(train.labels[idx], train.labels)
    y = train.labels[idx].astype(np.float64)
    want = (0.7 * _nll_mean(hn, hl, s) + 0.3 * np.mean((hbn - hn) ** 2)
            + 0.2 * np.mean((1 / (1 + np.exp(-logits.numpy())) - y) ** 2))
    assert float(m.modality_loss(terms)) == pytest.approx(want, rel=1e-5)
    # both passes use Eq. 5 (the beacon codes stay a target, never the likelihood's partner)
    again = m.modality_terms(ctx, "img", None, h, logits, hb, second_pass=True)
    assert float(again["j1"]) == pytest.approx(float(terms["j1"]))
    # the release's anchor is an option
    m.config["anchor"] = 0.5
    t2 = m.modality_terms(ctx, "img", None, h, logits, hb, second_pass=False)
    assert float(t2["anchor"]) == pytest.approx(np.mean((np.where(hl[idx] > 0, 1, -1) - hn) ** 2), rel=1e-5)


def test_eq3_has_no_quantisation_term():
    rng = np.random.default_rng(12)
    m, train = _method("gch", rng, alpha=0.6, beta=0.4)
    idx = np.arange(8)
    ctx = m.batch_context(idx, train)
    m.H_l.copy_(torch.tensor(rng.uniform(-1, 1, m.H_l.shape), dtype=torch.float32))
    with torch.no_grad():
        _, h, logits = m.lab(ctx["y"])
    hl = m.H_l.numpy().astype(np.float64)
    s = _sim(train.labels[idx], train.labels)
    y = train.labels[idx].astype(np.float64)
    want = 0.6 * _nll_mean(h.numpy().astype(np.float64), hl, s) + 0.4 * np.mean(
        (1 / (1 + np.exp(-logits.numpy().astype(np.float64))) - y) ** 2)
    assert m.label_phase(ctx) == pytest.approx(want, rel=1e-5)


def test_first_pass_beacons_come_from_the_gcn_before_its_step():
    m, train = _method("gch", np.random.default_rng(13))
    seen = []
    orig = m.modality_terms

    def spy(ctx, mod, f, h, logits, beacons, second_pass):
        seen.append((second_pass, beacons.clone()))
        return orig(ctx, mod, f, h, logits, beacons, second_pass)

    m.modality_terms = spy
    batch = m.batches(0, train)[0]
    ctx = m.batch_context(batch, train)
    m.train_step(batch, 0, train)
    assert [p for p, _ in seen] == [False, False, True, True]
    torch.testing.assert_close(seen[2][1], m.H_b[ctx["idx"]])       # after the GCN step
    assert not torch.equal(seen[0][1], seen[2][1])                   # before it
    assert float(seen[0][1].abs().max()) > 0                         # live, not an empty buffer


@pytest.mark.parametrize("name", ["gch", "gch-try1"])
def test_trained_beacon_codes_differ_between_classes(name):
    # The release's reading of Eq. 6 leaves every training item with one beacon code (shipped
    # mfeat, 512-d features: 1 distinct code after 6 epochs before issue 12); the GCN must give
    # the classes codes of their own. Five mfeat classes, 60 training items each.
    import hashkit.data

    tr = hashkit.data.load("mfeat").train
    cls_all = np.asarray(tr.labels).argmax(1)
    rows = np.concatenate([np.flatnonzero(cls_all == c)[:60] for c in range(5)])
    labels = np.asarray(tr.labels)[rows][:, :5]
    cls = labels.argmax(1)
    torch.manual_seed(0)
    m = get_method(name)(16, tr.images.shape[1], tr.texts.shape[1], 5,
                         config={"embed_dim": 512, "hidden_dim": 256, "gcn_hidden": 256, "epochs": 6})
    m.rng = np.random.default_rng(0)
    train = TrainData(np.asarray(tr.images)[rows], np.asarray(tr.texts)[rows], labels)
    m.setup(train)
    for epoch in range(6):
        m.begin_epoch(epoch, train)
        for batch in m.batches(epoch, train):
            m.train_step(batch, epoch, train)
    codes = (m.H_b.numpy() > 0).astype(np.uint8)
    same_code = (codes[:, None, :] == codes[None, :, :]).all(axis=2)
    other_class = cls[:, None] != cls[None, :]
    assert not (same_code & other_class).any(), "items of two classes share a beacon code"
    assert len(np.unique(codes, axis=0)) >= 5
    assert m.diagnostics(train) == {"beacon_distinct": len(np.unique(codes, axis=0)), "train_label_sets": 5}


# --------------------------------------------------------------------------- gch-try1 (Eq. 11)
def test_label_code_pull_hand_case():
    h_l = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    h = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # every pair is at squared distance 1; three pairs are similar
    assert float(label_code_pull(h_l, h, s)) == pytest.approx(3.0)
    assert float(label_code_pull(h_l, h, s, reduction="mean")) == pytest.approx(0.75)


def test_try1_j1_uses_gamma_star_only():
    # Eq. 11: Gamma^* = 1/2 H^* H^*^T replaces Gamma^{l*}; with lambda = 0 the teacher's codes must
    # not reach the encoders at all. Two copies that differ only in H^l (outside the batch, which
    # the label phase rewrites) end one training step with identical encoders.
    rng = np.random.default_rng(15)
    a, train = _method("gch-try1", rng, lam=0.0)
    b = copy.deepcopy(a)
    batch = a.batches(0, train)[0]
    b.H_l.copy_(torch.tensor(rng.uniform(-1, 1, b.H_l.shape), dtype=torch.float32))
    a.train_step(batch, 0, train)
    b.train_step(batch, 0, train)
    for name in ("img", "txt"):
        for pa, pb in zip(getattr(a, name).parameters(), getattr(b, name).parameters()):
            torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_try1_terms_match_the_equation():
    rng = np.random.default_rng(5)
    m, train = _method("gch-try1", rng, lam=0.3, alpha=0.7)
    idx = np.arange(6)
    ctx = m.batch_context(idx, train)
    m.H_l.copy_(torch.tensor(rng.uniform(-1, 1, m.H_l.shape), dtype=torch.float32))
    m.H_x.copy_(torch.tensor(rng.uniform(-1, 1, m.H_x.shape), dtype=torch.float32))
    h = torch.tensor(rng.uniform(-1, 1, (6, m.nbits)), dtype=torch.float32)
    logits = torch.zeros(6, train.labels.shape[1])
    terms = m.modality_terms(ctx, "img", None, h, logits, None, second_pass=False)
    hn, hl = h.numpy().astype(np.float64), m.H_l.numpy().astype(np.float64)
    own = m.H_x.numpy().astype(np.float64)
    own[idx] = hn                                    # the batch's rows are its current codes
    s = _sim(train.labels[idx], train.labels)        # (b, n)
    assert float(terms["j1"]) == pytest.approx(_nll_mean(hn, own, s), rel=1e-5)
    n = train.n
    pull = sum(s[j, i] * np.sum((hl[i] - hn[j]) ** 2) for i in range(n) for j in range(6)) / (n * 6)
    assert float(terms["pull"]) == pytest.approx(pull, rel=1e-5)
    w = m.term_weights()
    assert w["j1"] == 0.7 and w["pull"] == 0.3
    assert "pull" not in GCH.variant_terms(m, ctx, "img", None, h)


def test_teacher_free_ablation_pairs_with_the_other_modality():
    rng = np.random.default_rng(16)
    m, train = _method("gch", rng, teacher=False)
    ctx = m.batch_context(np.arange(4), train)
    h = torch.zeros(4, m.nbits)
    assert m.j1_guide(ctx, "img", h) is m.H_y and m.j1_guide(ctx, "txt", h) is m.H_x


# --------------------------------------------------------------------------- gch-try2 (Eq. 12)
def test_feature_alignment_hand_case():
    fx = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    fy = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    assert float(feature_alignment(fx, fy)) == pytest.approx(4.0 + 25.0)
    assert float(feature_alignment(fx, fy, reduction="mean")) == pytest.approx(14.5)


def test_try2_shares_one_hash_layer():
    rng = np.random.default_rng(6)
    m, train = _method("gch-try2", rng)
    assert m.img.hash is None and m.txt.hash is None
    shared = {id(p) for p in m.hash.parameters()}
    for opt in (m.opt_img, m.opt_txt):
        assert shared <= {id(p) for g in opt.param_groups for p in g["params"]}
    gch, _ = _method("gch", rng)
    assert not {id(p) for p in gch.img.hash.parameters()} & {id(p) for p in gch.txt.hash.parameters()}
    # Zeroing the one shared layer zeroes both modalities' relaxed codes.
    with torch.no_grad():
        for p in m.hash.parameters():
            p.zero_()
    m.train_mode(False)
    with torch.no_grad():
        assert not m.encode_images(train.images[:4]).any()
        assert not m.encode_texts(train.texts[:4]).any()
    unshared, _ = _method("gch-try2", rng, shared_hash=False)       # the ablation
    assert unshared.img.hash is not None and not hasattr(unshared, "hash")


def test_try2_alignment_term_is_wired():
    rng = np.random.default_rng(7)
    m, train = _method("gch-try2", rng, delta=0.25)
    idx = np.arange(5)
    ctx = m.batch_context(idx, train)
    f = torch.tensor(rng.normal(size=(5, TINY["embed_dim"])), dtype=torch.float32)
    with torch.no_grad():
        fy = m.txt(ctx["txt"], m.hash)[0].numpy().astype(np.float64)
        got = float(m.variant_terms(ctx, "img", f, None)["align"])
    # ||f^x - f^y||^2 as a per-entry mean, like every other term of L* (summed over the d
    # feature dimensions it outweighed the rest a hundredfold)
    want = sum(np.sum((f.numpy()[i] - fy[i]) ** 2) for i in range(5)) / (5 * TINY["embed_dim"])
    assert got == pytest.approx(want, rel=1e-5)
    assert m.term_weights()["align"] == 0.25


# --------------------------------------------------------------------------- options
def test_authors_learning_rates_per_network():
    m, train = _method("gch", np.random.default_rng(9), **GCH.AUTHORS_LR)
    for epoch in (0, 2):
        m.begin_epoch(epoch, train)
        got = {k: o.param_groups[0]["lr"] for k, o in m.optimizers().items()}
        assert got == pytest.approx({"opt_lab": 0.01 / 2 ** epoch, "opt_txt": 0.01 / 2 ** epoch,
                                     "opt_img": 1e-4 / 2 ** epoch, "opt_gcn": 1e-3 / 2 ** epoch})
    m, train = _method("gch", np.random.default_rng(9))
    m.begin_epoch(3, train)
    assert {o.param_groups[0]["lr"] for o in m.optimizers().values()} == {1e-3}


# Two training steps, encode, save/load and exact resume: tests/test_methods.py (MethodContract).
def test_bad_option_is_named():
    with pytest.raises(ValueError, match="fusion"):
        GCH(8, 4, 4, 2, config={"fusion": "mean"})
    with pytest.raises(ValueError, match="no option 'fusion_norm'"):
        GCH(8, 4, 4, 2, config={"fusion_norm": "max"})


def test_registered_classes():
    assert get_method("gch") is GCH and get_method("gch-try1") is GCHTry1 and get_method("gch-try2") is GCHTry2
