"""DAPH: every loss term against hand-computed small cases or a loop oracle from the definition;
the stage schedule, the proxy buffers and the proxy file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashkit.methods.base import TrainData
from hashkit.methods.daph import (DAPH, class_proxy_loss, class_separation, proxy_margin_loss, proxy_nll,
                                  proxy_selection, proxy_terms, quantization_tf, weighted_proxy_loss)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731


# ------------------------------------------------------------------ stage 1 losses, by hand
def test_l1_class_separation_by_hand():
    # C C^T - I = [[0, .6], [.6, 0]] -> relu^2 sum = 2 * .36
    c = T([[1.0, 0.0], [0.6, 0.8]])
    assert float(class_separation(c)) == pytest.approx(0.72)
    # orthogonal or opposite codes cost nothing
    assert float(class_separation(T([[1.0, 0.0], [0.0, 1.0]]))) == 0.0
    assert float(class_separation(T([[1.0, 0.0], [-1.0, 0.0]]))) == 0.0


def test_lqtf_by_hand():
    # b = [1, 1]/sqrt2, b.h = 1.4/sqrt2
    h = T([[0.6, 0.8]])
    assert float(quantization_tf(h)) == pytest.approx((1.4 / math.sqrt(2) - 1) ** 2)
    # a unit-norm scaled ±1 vector is already quantised
    assert float(quantization_tf(T([[0.5, -0.5, 0.5, -0.5]]))) == pytest.approx(0.0, abs=1e-15)


def test_l3_proxy_margin_by_hand():
    h = T([[1.0, 0.0]])
    c = T([[1.0, 0.0], [0.0, 1.0]])
    lab = T([[1.0, 0.0]])
    # s = [1, 0]; -log e^{g(1-s)} / (e^{g(1-s)} + e^{0}) with g = 1, sigma = .2 -> log(1 + e^-0.8)
    assert float(proxy_margin_loss(h, c, lab, sigma=0.2, gamma=1.0)) == pytest.approx(math.log1p(math.exp(-0.8)))
    # two classes for one item, no negatives: each term -log(1) = 0
    assert float(proxy_margin_loss(h, c, T([[1.0, 1.0]]), 0.2, 1.0)) == pytest.approx(0.0, abs=1e-12)


def _oracle_l3(h, c, lab, sigma, gamma):
    total = 0.0
    for i in range(h.shape[0]):
        s = c @ h[i]
        neg = sum(math.exp(gamma * s[k]) for k in range(c.shape[0]) if lab[i, k] == 0)
        pos = [k for k in range(c.shape[0]) if lab[i, k] == 1]
        total += sum(-math.log(math.exp(gamma * (s[j] - sigma)) / (math.exp(gamma * (s[j] - sigma)) + neg))
                     for j in pos) / len(pos)
    return total


def test_l3_against_loop_oracle():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(6, 8))
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    c = rng.normal(size=(4, 8))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    lab = (rng.random((6, 4)) < 0.4).astype(float)
    lab[np.arange(6), rng.integers(0, 4, 6)] = 1
    got = float(proxy_margin_loss(T(h), T(c), T(lab), 0.2, 20.0))
    assert got == pytest.approx(_oracle_l3(h, c, lab, 0.2, 20.0), rel=1e-9)


def _release_l3(h, c, lab, sigma, gamma):
    """The release's L3 as DAPH_proxy_code.py writes it (exp of the masked logits), eps = 0."""
    logit = h @ c.T
    our = np.exp((logit - sigma) * gamma) * lab
    mu = np.exp(logit * (1 - lab) * gamma).sum(1, keepdims=True) + our
    return float(-(np.log(our / mu + 1 - lab).sum(1) / lab.sum(1)).sum())


def test_l3_release_denominator_matches_the_release_formula():
    rng = np.random.default_rng(1)
    h = rng.normal(size=(7, 8))
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    c = rng.normal(size=(5, 8))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    lab = (rng.random((7, 5)) < 0.5).astype(float)
    lab[np.arange(7), rng.integers(0, 5, 7)] = 1
    got = float(proxy_margin_loss(T(h), T(c), T(lab), 0.2, 5.0, denominator="release"))
    assert got == pytest.approx(_release_l3(h, c, lab, 0.2, 5.0), rel=1e-9)
    # the paper's form is smaller by exactly the |l_i| added to each denominator
    paper = float(proxy_margin_loss(T(h), T(c), T(lab), 0.2, 5.0))
    assert paper == pytest.approx(_oracle_l3(h, c, lab, 0.2, 5.0), rel=1e-9) and paper < got
    with pytest.raises(ValueError, match="denominator"):
        proxy_margin_loss(T(h), T(c), T(lab), denominator="both")


def test_l2_bit_balance_is_squared_column_sums():
    from hashkit import losses

    u = T([[0.5, -1.0], [0.25, 0.5]])
    assert float(losses.bit_balance(u)) == pytest.approx(0.75 ** 2 + 0.5 ** 2)


# ------------------------------------------------------------------ stage 2 losses
def test_proxy_selection_same_superset_partial_negative():
    lab = T([[1, 1, 0, 0]])
    anchors = T([[1, 1, 0, 0],    # same label set
                 [1, 1, 1, 0],    # superset (2 shared)
                 [1, 0, 0, 0],    # subset (1 shared)
                 [0, 0, 1, 1]])   # no shared label
    same, w, neg = proxy_selection(lab, anchors)
    assert same.tolist() == [[1, 0, 0, 0]]
    assert neg.tolist() == [[0, 0, 0, 1]]
    np.testing.assert_allclose(w.numpy(), [[0, 2 / 3, 1 / 3, 0]])


def test_lsame_by_hand():
    # K = 2 bits; s = h.a / 2 = [1, -1] for anchors a0 = h, a1 = -h; pos a0, neg a1; g = 1
    h = T([[1.0, 1.0]])
    a = T([[1.0, 1.0], [-1.0, -1.0]])
    got = float(proxy_nll(h, a, T([[1.0, 0.0]]), T([[0.0, 1.0]]), sigma=0.2, gamma=1.0))
    expect = -math.log(math.exp(0.8) / (math.exp(0.8) + math.exp(-1.0)))
    assert got == pytest.approx(expect)


def _oracle_lsame(h, a, pos, neg, sigma, gamma):
    K = h.shape[1]
    rows = []
    for i in range(h.shape[0]):
        s = a @ h[i] / K
        nsum = sum(math.exp(gamma * s[n]) for n in range(a.shape[0]) if neg[i, n])
        terms = [-math.log(math.exp(gamma * (s[j] - sigma)) / (math.exp(gamma * (s[j] - sigma)) + nsum))
                 for j in range(a.shape[0]) if pos[i, j]]
        if terms:
            rows.append(sum(terms) / len(terms))
    return sum(rows) / len(rows)


def _oracle_weighted(h, a, w, neg, sigma, gamma):
    K = h.shape[1]
    rows = []
    for i in range(h.shape[0]):
        if w[i].sum() == 0:
            continue
        s = a @ h[i] / K
        m = sum(w[i, j] * s[j] for j in range(a.shape[0]))
        nsum = sum(math.exp(gamma * s[n]) for n in range(a.shape[0]) if neg[i, n])
        rows.append(-math.log(math.exp(gamma * (m - sigma)) / (math.exp(gamma * (m - sigma)) + nsum)))
    return sum(rows) / len(rows)


def test_lsame_lsimilar_lclass_against_loop_oracles():
    rng = np.random.default_rng(1)
    n, b, L, K = 10, 5, 4, 8
    anchor_lab = (rng.random((n, L)) < 0.4).astype(float)
    anchor_lab[np.arange(n), rng.integers(0, L, n)] = 1
    lab = anchor_lab[:b].copy()
    a = np.where(rng.random((n, K)) < 0.5, 1.0, -1.0)
    h = np.tanh(rng.normal(size=(b, K)))
    same, w, neg = proxy_selection(T(lab), T(anchor_lab))
    same, w, neg = same.numpy(), w.numpy(), neg.numpy()
    assert same[np.arange(b), np.arange(b)].all(), "an item's own proxy is a positive"
    got = float(proxy_nll(T(h), T(a), T(same), T(neg), 0.2, 20.0))
    assert got == pytest.approx(_oracle_lsame(h, a, same, neg, 0.2, 20.0), rel=1e-9)
    got = float(weighted_proxy_loss(T(h), T(a), T(w), T(neg), 0.2, 20.0))
    assert got == pytest.approx(_oracle_weighted(h, a, w, neg, 0.2, 20.0), rel=1e-9)
    both = proxy_terms(T(h), T(a), T(same), T(w), T(neg), 0.2, 20.0)
    assert float(both[0]) == pytest.approx(_oracle_lsame(h, a, same, neg, 0.2, 20.0), rel=1e-9)
    assert float(both[1]) == pytest.approx(_oracle_weighted(h, a, w, neg, 0.2, 20.0), rel=1e-9)
    # L_class: the class codes are the "anchors", the mean over the item's classes is m_i
    cc = np.where(rng.random((L, K)) < 0.5, 1.0, -1.0)
    wl = lab / lab.sum(1, keepdims=True)
    got = float(class_proxy_loss(T(h), T(cc), T(lab), 0.2, 20.0))
    assert got == pytest.approx(_oracle_weighted(h, cc, wl, 1 - lab, 0.2, 20.0), rel=1e-9)


def test_lclass_by_hand():
    # classes c0 = [1, 1], c1 = [1, -1]; h = [1, 1] of class 0: s = [1, 0]; g = 1
    got = float(class_proxy_loss(T([[1.0, 1.0]]), T([[1.0, 1.0], [1.0, -1.0]]), T([[1.0, 0.0]]), 0.2, 1.0))
    assert got == pytest.approx(math.log1p(math.exp(-0.8)))


def test_losses_are_finite_at_saturation():
    # gamma * s up to 20 * K / K and many anchors: a naive exp-sum is fine here, but the
    # log-sum-exp form must stay finite even for much larger scales
    h = torch.ones(2, 4, dtype=torch.float32, requires_grad=True)
    a = torch.ones(50, 4)
    pos = torch.zeros(2, 50)
    pos[:, 0] = 1
    neg = 1 - pos
    loss = proxy_nll(h, a, pos, neg, 0.2, 500.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(h.grad).all()


# ------------------------------------------------------------------ the method: stages and proxies
def _train_data(seed=0, n=24, L=3):
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, L), np.uint8)
    labels[np.arange(n), rng.integers(0, L, n)] = 1
    images = rng.normal(size=(n, 6)).astype(np.float32) + labels @ rng.normal(size=(L, 6)).astype(np.float32)
    texts = rng.normal(size=(n, 5)).astype(np.float32) + labels @ rng.normal(size=(L, 5)).astype(np.float32)
    return TrainData(images, texts, labels)


SMALL = {"epochs": 3, "proxy_epochs": 1, "hidden": 16, "proxy_hidden": 16, "label_hidden": 16, "fused": 8,
         "batch_size": 8, "proxy_batch_size": 8}


def test_stage_follows_epoch_and_proxies_are_buffers(tmp_path):
    torch.manual_seed(0)
    train = _train_data()
    m = DAPH(8, 6, 5, 3, config=SMALL)
    m.rng = np.random.default_rng(0)
    m.run_dir = tmp_path
    m.setup(train)
    assert m.stage_of(0) == "proxy" and m.stage_of(1) == "hash"
    assert all(b[0] == "proxy" for b in m.batches(0, train))
    phases = [b[0] for b in m.batches(1, train)]
    assert phases == ["image"] * 3 + ["text"] * 3
    m.begin_epoch(0, train)
    for batch in m.batches(0, train):
        m.train_step(batch, 0, train)
    assert m.proxy_image is None
    m.end_epoch(0, train)
    assert m.proxy_image.shape == (24, 8) and m.proxy_class.shape == (3, 8)
    assert set(torch.unique(m.proxy_text).tolist()) <= {-1.0, 1.0}
    state = m.state_dict()
    assert set(state["buffers"]) == {"proxy_image", "proxy_text", "proxy_class"}
    assert all(v.device.type == "cpu" for v in state["buffers"].values())
    saved = torch.load(tmp_path / "proxy_codes.pt", weights_only=True)
    torch.testing.assert_close(saved["image_code"], m.proxy_image)
    torch.testing.assert_close(saved["label"], torch.as_tensor(train.labels, dtype=torch.float32))
    # a fresh instance restored from the state dict trains the hashing stage without recomputing
    m2 = DAPH(8, 6, 5, 3, config=SMALL)
    m2.rng = np.random.default_rng(0)
    m2.setup(train)
    m2.load_state_dict(state)
    m2.begin_epoch(1, train)
    torch.testing.assert_close(m2.proxy_image, m.proxy_image)
    out = m2.train_step(m2.batches(1, train)[0], 1, train)
    assert math.isfinite(out["loss"])


def test_hashing_steps_separate_positive_from_negative_proxies():
    torch.manual_seed(0)
    train = _train_data(1)
    m = DAPH(8, 6, 5, 3, config={**SMALL, "lr": 1e-2})
    m.rng = np.random.default_rng(0)
    m.setup(train)
    m.begin_epoch(1, train)              # hashing stage: proxies from the untrained proxy net
    idx = np.arange(train.n)
    same, _, neg = proxy_selection(train.label_batch(idx), train.label_batch(None))

    def gap():
        with torch.no_grad():
            s = m.img_net(train.image_batch(idx)) @ m.proxy_image.T
            return float((s * same).sum() / same.sum() - (s * neg).sum() / neg.sum())

    first = gap()
    for _ in range(20):
        m.train_step(("image", idx), 1, train)
    assert gap() > first + 0.3


@pytest.mark.parametrize("off", ["w_same", "w_class", "eta"])
def test_ablation_weights_switch_one_hashing_term_off(off):
    # The hashing loss is w_same (L_same_img + L_same_txt) + w_class L_class + eta (L_similar...);
    # with one weight 0 the step's loss equals the other terms, computed from the public functions.
    torch.manual_seed(0)
    train = _train_data(2)
    m = DAPH(8, 6, 5, 3, config={**SMALL, off: 0.0})
    m.rng = np.random.default_rng(0)
    m.setup(train)
    m.begin_epoch(1, train)
    idx = np.arange(8)
    lab = train.label_batch(idx)
    m.img_net.eval()                     # no dropout: the forward pass below is the step's
    with torch.no_grad():
        h = m.img_net(train.image_batch(idx))
    same, weights, neg = proxy_selection(lab, train.label_batch(None))
    same_i, sim_i = proxy_terms(h, m.proxy_image, same, weights, neg)
    same_t, sim_t = proxy_terms(h, m.proxy_text, same, weights, neg)
    parts = {"w_same": float(same_i + same_t), "w_class": float(class_proxy_loss(h, m.proxy_class, lab)),
             "eta": float(sim_i + sim_t)}
    got = m.train_step(("image", idx), 1, train)["loss"]
    assert got == pytest.approx(sum(v for k, v in parts.items() if k != off), rel=1e-5)


def test_release_schedule_and_denominator_options():
    assert DAPH.RELEASE_SCHEDULE == {"proxy_epochs": 80, "epochs": 300}
    cfg = DAPH.resolve_config(DAPH.RELEASE_SCHEDULE)
    assert cfg["epochs"] - cfg["proxy_epochs"] == 220
    with pytest.raises(ValueError, match="l3_denominator"):
        DAPH(8, 6, 5, 3, config={**SMALL, "l3_denominator": "both"})
