"""GCH, gch-try1, gch-try2: the graph, the fusion, the update order and the variants' terms.

Every expected value comes from a hand computation or a NumPy loop written from the equations,
never from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashkit.methods import get_method
from hashkit.methods.base import TrainData
from hashkit.methods.gch import (GCH, GCHTry1, GCHTry2, cross_modal_fusion, feature_alignment,
                                 label_adjacency, label_code_pull)

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
    # W = fx fy^T = diag(2, 1), W~ = W / 2; f_r = 1/2 (W~^T fx + W~ fy) = 1/2 (diag(1, .5) + diag(2, .5))
    np.testing.assert_allclose(cross_modal_fusion(fx, fy).numpy(), [[1.5, 0.0], [0.0, 0.5]])


@pytest.mark.parametrize("norm", ["max", "softmax"])
def test_fusion_shapes_and_loops(norm):
    rng = np.random.default_rng(2)
    b, d = 5, 3
    fx, fy = rng.normal(size=(b, d)), rng.normal(size=(b, d))
    w = np.array([[fx[i] @ fy[j] for j in range(b)] for i in range(b)])
    if norm == "max":
        wy = w / np.abs(w).max()
        wx = wy.T
    else:
        wy = np.exp(w) / np.exp(w).sum(1, keepdims=True)
        wx = np.exp(w.T) / np.exp(w.T).sum(1, keepdims=True)
    want = np.zeros((b, d))
    for i in range(b):
        for j in range(b):
            want[i] += 0.5 * (wx[i, j] * fx[j] + wy[i, j] * fy[j])
    got = cross_modal_fusion(torch.tensor(fx), torch.tensor(fy), norm).numpy()
    assert got.shape == (b, d)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_fusion_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="fx and fy"):
        cross_modal_fusion(torch.zeros(3, 4), torch.zeros(3, 5))


# --------------------------------------------------------------------------- procedure 1
PHASE = {"opt_lab": "L^l", "opt_img": "L^*", "opt_txt": "L^*", "opt_gcn": "L^GCN"}


@pytest.mark.parametrize("name", ["gch", "gch-try1", "gch-try2"])
def test_update_order(name):
    m, train = _method(name, np.random.default_rng(3))
    steps = []
    for attr, opt in m.optimizers().items():
        opt.register_step_post_hook(lambda o, a, k, attr=attr: steps.append(attr))
    m.train_step(m.batches(0, train)[0], 0, train)
    assert steps == ["opt_lab", "opt_img", "opt_txt", "opt_gcn", "opt_img", "opt_txt"]
    phases = [PHASE[s] for s in steps]
    collapsed = [p for k, p in enumerate(phases) if k == 0 or p != phases[k - 1]]
    assert collapsed == ["L^l", "L^*", "L^GCN", "L^*"]


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


# --------------------------------------------------------------------------- gch-try1 (Eq. 11)
def test_label_code_pull_hand_case():
    h_l = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    h = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # every pair is at squared distance 1; three pairs are similar
    assert float(label_code_pull(h_l, h, s)) == pytest.approx(3.0)
    assert float(label_code_pull(h_l, h, s, reduction="mean")) == pytest.approx(0.75)


def _nll_mean(a, b, s):
    theta = 0.5 * a @ b.T
    return np.mean(np.log1p(np.exp(theta)) - s * theta)


def test_try1_extra_term_matches_the_equation():
    rng = np.random.default_rng(5)
    m, train = _method("gch-try1", rng, lam=0.3, intra=0.7)
    idx = np.arange(6)
    h = torch.tensor(rng.uniform(-1, 1, (6, m.nbits)), dtype=torch.float32)
    m.H_l[:6] = torch.tensor(rng.uniform(-1, 1, (6, m.nbits)), dtype=torch.float32)
    lab = train.labels[idx].astype(np.float64)
    s = (lab @ lab.T > 0).astype(np.float64)
    ctx = {"idx": torch.as_tensor(idx), "s_bb": torch.tensor(s, dtype=torch.float32)}
    got = float(m.modality_extra_loss(ctx, "img", None, h))
    hn, hl = h.numpy().astype(np.float64), m.H_l[:6].numpy().astype(np.float64)
    pull = sum(s[i, j] * np.sum((hl[i] - hn[j]) ** 2) for i in range(6) for j in range(6)) / 36
    assert got == pytest.approx(0.7 * _nll_mean(hn, hn, s) + 0.3 * pull, rel=1e-5)
    assert float(GCH.modality_extra_loss(m, ctx, "img", None, h)) == 0.0


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


def test_try2_alignment_term_is_wired():
    rng = np.random.default_rng(7)
    m, train = _method("gch-try2", rng, delta=0.25)
    idx = np.arange(5)
    ctx = {"idx": torch.as_tensor(idx), "img": train.image_batch(idx), "txt": train.text_batch(idx)}
    f = torch.tensor(rng.normal(size=(5, TINY["embed_dim"])), dtype=torch.float32)
    with torch.no_grad():
        fy = m.txt(ctx["txt"], m.hash)[0].numpy().astype(np.float64)
        got = float(m.modality_extra_loss(ctx, "img", f, None))
    want = 0.25 * sum(np.sum((f.numpy()[i] - fy[i]) ** 2) for i in range(5)) / 5
    assert got == pytest.approx(want, rel=1e-5)


# --------------------------------------------------------------------------- misc
# Two training steps, encode, save/load and exact resume: tests/test_methods.py (MethodContract).
def test_bad_option_is_named():
    with pytest.raises(ValueError, match="fusion_norm"):
        GCH(8, 4, 4, 2, config={"fusion_norm": "mean"})


def test_registered_classes():
    assert get_method("gch") is GCH and get_method("gch-try1") is GCHTry1 and get_method("gch-try2") is GCHTry2
