"""DAPH: Data-Aware Proxy Hashing (Tu, Mao, Ji, Wei, Huang, SIGIR 2023).

Two stages, both epochs of one training run (the stage is derived from the epoch number, so
``--resume`` lands in the right one):

1. **Data-aware proxy network** (epochs ``[0, proxy_epochs)``). Class-based proxy codes
   ``c_k = norm(MLP(e_k))`` from the rows ``e_k`` of the identity; label-fused image-aware
   codes ``u_i = norm(W (norm(f_img(x_i)) + norm(f_lab(l_i))))`` and text-aware codes
   ``v_i`` likewise with a text MLP. Loss ``L_D = L1 + alpha L2 + L3 + beta L_qtf``:

   * ``L1 = sum_jk relu(c_j . c_k - I_jk)^2`` pushes class codes apart (:func:`class_separation`);
   * ``L2 = ||sum_i u_i||^2 + ||sum_i v_i||^2 + ||sum_k c_k||^2`` bit balance
     (:func:`hashkit.losses.bit_balance`);
   * ``L3``: each item near the codes of its classes with margin ``sigma`` and away from the
     others, a scaled softmax per positive class (:func:`proxy_margin_loss`), for ``u`` and ``v``;
   * ``L_qtf = sum_i (b_i . h_i - 1)^2`` with ``b_i = sign(h_i)/||sign(h_i)||`` for ``u``, ``v``
     and ``c`` (:func:`quantization_tf`).

   At the end of the stage the sign codes of every training item (``proxy_image``,
   ``proxy_text``) and of every class (``proxy_class``) are stored as method buffers, so the
   Trainer's checkpoint (``RUN_DIR/checkpoints/last.pt``) carries them as CPU tensors. A Trainer
   with an output folder sets ``method.run_dir``, and they are also written to
   ``RUN_DIR/proxy_codes.pt``
   (``torch.load`` gives a dict of CPU tensors: ``image_code``, ``text_code``, ``class_code``,
   ``label``).

2. **Modality-specific hashing networks** (epochs ``[proxy_epochs, epochs)``): an image
   network (a feature MLP, or AlexNet from :mod:`hashkit.nn` for raw pixels) and a two-layer
   text MLP, both ending in tanh, trained against the fixed proxies. Each epoch trains the
   image network over the training set, then the text network (the authors' alternation).
   With ``s_ij = h_i . a_j / K`` (``K`` bits) the loss is
   ``L^m = L_same(image proxies) + L_same(text proxies) + L_class
   + eta (L_similar(image proxies) + L_similar(text proxies))``:

   * ``L_same`` (:func:`proxy_nll`): positives are proxies of items with the same label set,
     negatives those sharing no label; ``-log e^{g(s_ij - sigma)} / (e^{g(s_ij - sigma)} +
     sum_neg e^{g s_in})`` averaged over each item's positives;
   * ``L_class`` (:func:`class_proxy_loss`): the same form with the mean similarity to the
     class codes of the item's labels against the other class codes;
   * ``L_similar`` (:func:`weighted_proxy_loss`): positives are items that share some but not
     all labels (supersets and partial overlaps), their similarities averaged with weights
     proportional to the number of shared labels.

Defaults follow the authors' release (github.com/rongchengtu1/DAPH) where the paper is
silent: ``sigma = 0.2`` margin, ``gamma = 20`` scale, ``alpha = beta = 0.2``, ``eta = 1``,
proxy batch 90, 4096-unit label MLP, 512-d fused space, dropout 0.5/0.1/0.2.

Where this file differs from the release, on purpose:

* Adam (fused kernel: ten times faster than the per-tensor loop on CPU) instead of plain SGD
  (same loss scale: sums over the batch in stage 1 as released),
  and narrower feature MLPs (``proxy_hidden``, ``hidden``) so that CPU epochs stay short.
* The release selects positives differently for its two networks (identical label sets for
  the image network, any superset for the text network); here both use identical label sets
  for ``L_same`` and put supersets into ``L_similar``, as the paper's text describes.
* ``L_similar``'s weights are normalised over the partial positives (a weighted mean); the
  release divides by the overlap with *all* items, which shrinks the term for items with many
  exact matches. Its ``1e-5`` guards against ``log 0`` are replaced by log-sum-exp.
* ``L3``'s denominator follows the paper: the release adds 1 per positive class (its
  ``exp(logit * (1 - label) * gamma)`` is ``e^0`` there); ``l3_denominator="release"`` does
  the same (:func:`proxy_margin_loss`).
* The schedule is 20 proxy + 40 hashing epochs on CPU; the release runs 80 + 220
  (:attr:`DAPH.RELEASE_SCHEDULE`, ``--set proxy_epochs=80 --epochs 300``).

Ablation weights (the paper's Table of loss combinations): ``w_same`` (``L_same``), ``w_class``
(``L_class``) and ``eta`` (``L_similar``); 0 switches a term off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as Fn
from torch import nn

from .. import losses
from ..nn import MLP, AlexNet
from . import register_method
from .base import Method, TrainData, make_optimizer, sign

__all__ = ["DAPH", "class_separation", "proxy_margin_loss", "quantization_tf", "proxy_nll",
           "class_proxy_loss", "weighted_proxy_loss", "proxy_terms", "proxy_selection"]


# --------------------------------------------------------------------------- loss terms
def class_separation(c: torch.Tensor) -> torch.Tensor:
    """``L1 = sum_jk relu(C C^T - I)_jk^2`` for (unit-norm) class codes ``c`` ``(L, K)``.

    Only positive off-diagonal inner products (and a diagonal above 1) are penalised.
    """
    eye = torch.eye(c.shape[0], dtype=c.dtype, device=c.device)
    return torch.relu(c @ c.T - eye).pow(2).sum()


def quantization_tf(h: torch.Tensor) -> torch.Tensor:
    """``L_qtf = sum_i (b_i . h_i - 1)^2`` with ``b_i = sign(h_i) / ||sign(h_i)||`` (no gradient).

    For unit-norm ``h_i`` it is 0 exactly when ``h_i`` is a scaled ±1 vector.
    """
    b = Fn.normalize(torch.sign(h.detach()), dim=1)
    return ((b * h).sum(dim=1) - 1.0).pow(2).sum()


def _softmax_margin(pos_logit: torch.Tensor, neg_logits: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
    """``-log e^{p} / (e^{p} + sum_{neg} e^{n})`` per entry of ``pos_logit`` (stable form).

    ``pos_logit`` ``(b, m)``; ``neg_logits``/``neg_mask`` ``(b, n)`` (negatives of each row).
    """
    neg = torch.where(neg_mask > 0, neg_logits, torch.full_like(neg_logits, float("-inf")))
    lse_neg = torch.logsumexp(neg, dim=1, keepdim=True)
    return torch.logaddexp(lse_neg, pos_logit) - pos_logit


def proxy_margin_loss(h: torch.Tensor, c: torch.Tensor, labels: torch.Tensor, sigma: float = 0.2,
                      gamma: float = 20.0, reduction: str = "sum", denominator: str = "paper") -> torch.Tensor:
    """``L3``: items near the codes of their classes and away from the others.

    With ``s_ik = h_i . c_k``, for every item ``i`` and each of its classes ``j``:
    ``-log e^{g(s_ij - sigma)} / (e^{g(s_ij - sigma)} + sum_{k not in l_i} e^{g s_ik})``,
    averaged over the item's classes; summed (release) or averaged over items.

    ``denominator="release"`` adds ``|l_i|`` (the item's number of classes) to the
    denominator, as the release computes it (DAPH_proxy_code.py: ``exp(logit * (1 - label) *
    gamma).sum(1)`` counts ``e^0 = 1`` for every positive class); the paper's formula has no
    such term (the default). The two agree up to that constant, which weakens the push for
    items with many labels.

    Parameters
    ----------
    h : (b, K) item codes; c : (L, K) class codes; labels : (b, L) multi-hot {0, 1}.
    denominator : {"paper", "release"}
    """
    s = h @ c.T
    neg = 1.0 - labels
    if denominator == "release":
        # log of (sum_neg e^{g s} + |l_i|): the positives' e^0 as one more "negative" per class
        extra = torch.log(labels.sum(dim=1, keepdim=True).clamp_min(1.0))
        lse = torch.logaddexp(_neg_lse(gamma * s, neg), extra)
        per = torch.logaddexp(lse, gamma * (s - sigma)) - gamma * (s - sigma)
    elif denominator == "paper":
        per = _softmax_margin(gamma * (s - sigma), gamma * s, neg)
    else:
        raise ValueError(f"denominator: expected 'paper' or 'release', got {denominator!r}")
    per_item = (per * labels).sum(dim=1) / labels.sum(dim=1).clamp_min(1.0)
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction: expected 'sum' or 'mean', got {reduction!r}")
    return per_item.sum() if reduction == "sum" else per_item.mean()


def proxy_selection(labels: torch.Tensor, anchor_labels: torch.Tensor):
    """Positive, partial and negative proxies of each item, from shared-label counts.

    Returns ``(same, weights, neg)``, each ``(b, n)`` float: ``same`` = identical label sets,
    ``neg`` = no shared label, ``weights`` = the other items (supersets, subsets and partial
    overlaps) weighted by the number of shared labels, each row summing to 1 (or 0 if none).
    """
    overlap = labels @ anchor_labels.T
    mine = labels.sum(dim=1, keepdim=True)
    theirs = anchor_labels.sum(dim=1)[None, :]
    same = ((overlap == mine) & (overlap == theirs) & (overlap > 0)).to(labels.dtype)
    neg = (overlap == 0).to(labels.dtype)
    partial = overlap * (1.0 - same) * (1.0 - neg)
    weights = partial / partial.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return same, weights, neg


def _neg_lse(scaled: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """``log sum_{n in neg_i} e^{scaled_in}`` per row, ``(b, 1)`` (``-inf`` without negatives)."""
    return torch.logsumexp(scaled.masked_fill(neg <= 0, float("-inf")), dim=1, keepdim=True)


def _same_term(s, lse, pos, sigma, gamma):
    # -log e^t / (e^t + e^lse) = softplus(lse - t), one pass over the (b, n) matrix
    per = Fn.softplus(lse - gamma * (s - sigma))
    npos = pos.sum(dim=1)
    has = npos > 0
    if not bool(has.any()):
        return s.sum() * 0.0
    return ((per * pos).sum(dim=1)[has] / npos[has]).mean()


def _weighted_term(s, lse, weights, sigma, gamma):
    has = weights.sum(dim=1) > 0
    if not bool(has.any()):
        return s.sum() * 0.0
    m = (s * weights).sum(dim=1, keepdim=True)
    return Fn.softplus(lse - gamma * (m - sigma))[:, 0][has].mean()


def proxy_nll(h: torch.Tensor, anchors: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
              sigma: float = 0.2, gamma: float = 20.0) -> torch.Tensor:
    """``L_same``: every positive proxy against all negative ones (scaled softmax with margin).

    ``s_ij = h_i . a_j / K``; per positive pair ``-log e^{g(s_ij - sigma)} /
    (e^{g(s_ij - sigma)} + sum_{n in neg_i} e^{g s_in})``, averaged over the row's positives,
    then over the rows that have a positive.

    Parameters
    ----------
    h : (b, K) relaxed codes; anchors : (n, K) ±1 proxies; pos, neg : (b, n) {0, 1} masks.
    """
    s = h @ anchors.T / h.shape[1]
    return _same_term(s, _neg_lse(gamma * s, neg), pos, sigma, gamma)


def class_proxy_loss(h: torch.Tensor, class_codes: torch.Tensor, labels: torch.Tensor,
                     sigma: float = 0.2, gamma: float = 20.0) -> torch.Tensor:
    """``L_class``: the mean similarity to the item's class proxies against the other classes.

    ``m_i = mean_{k in l_i} s_ik`` (``s = h c^T / K``); loss ``-log e^{g(m_i - sigma)} /
    (e^{g(m_i - sigma)} + sum_{k not in l_i} e^{g s_ik})`` averaged over items with a label.
    """
    s = h @ class_codes.T / h.shape[1]
    w = labels / labels.sum(dim=1, keepdim=True).clamp_min(1.0)
    return _weighted_term(s, _neg_lse(gamma * s, 1.0 - labels), w, sigma, gamma)


def weighted_proxy_loss(h: torch.Tensor, anchors: torch.Tensor, weights: torch.Tensor, neg: torch.Tensor,
                        sigma: float = 0.2, gamma: float = 20.0) -> torch.Tensor:
    """``L_similar``: the overlap-weighted mean similarity to partial positives vs. negatives.

    ``m_i = sum_j w_ij s_ij`` (``w`` rows sum to 1, see :func:`proxy_selection`); loss
    ``-log e^{g(m_i - sigma)} / (e^{g(m_i - sigma)} + sum_{n in neg_i} e^{g s_in})``, averaged
    over the rows that have partial positives.
    """
    s = h @ anchors.T / h.shape[1]
    return _weighted_term(s, _neg_lse(gamma * s, neg), weights, sigma, gamma)


def proxy_terms(h, anchors, same, weights, neg, sigma=0.2, gamma=20.0):
    """``(L_same, L_similar)`` against one proxy set, sharing the similarities and the negatives'
    log-sum-exp (the same values as :func:`proxy_nll` and :func:`weighted_proxy_loss`)."""
    s = h @ anchors.T / h.shape[1]
    lse = _neg_lse(gamma * s, neg)
    return _same_term(s, lse, same, sigma, gamma), _weighted_term(s, lse, weights, sigma, gamma)


# --------------------------------------------------------------------------- networks
class LabelFused(nn.Module):
    """``norm(W (norm(branch(x)) + norm(label_mlp(l))))``: a label-fused proxy code."""

    def __init__(self, branch: nn.Module, nlabels: int, nbits: int, fused: int = 512):
        super().__init__()
        self.branch = branch
        self.label = MLP([nlabels, fused, fused], activation="relu", dropout=0.1)
        self.code = nn.Linear(fused, nbits)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        f = Fn.normalize(self.branch(x), dim=1) + Fn.normalize(self.label(labels), dim=1)
        return Fn.normalize(self.code(f), dim=1)


class ClassCodes(nn.Module):
    """``norm(MLP(e_k))`` for the identity rows ``e_k``: one unit-norm code per class."""

    def __init__(self, nlabels: int, nbits: int, hidden: int = 4096):
        super().__init__()
        self.mlp = MLP([nlabels, hidden, nbits], activation="relu", dropout=0.2)
        for lin in (self.mlp[0], self.mlp[-1]):
            nn.init.normal_(lin.weight, 0.0, 0.2)          # the release's initialisation

    def forward(self, eye: torch.Tensor) -> torch.Tensor:
        return Fn.normalize(self.mlp(eye), dim=1)


# --------------------------------------------------------------------------- the method
@register_method("daph")
class DAPH(Method):
    """DAPH (Tu et al., SIGIR 2023): data-aware proxy codes, then proxy-supervised hashing nets."""

    defaults = {
        "epochs": 60, "proxy_epochs": 20, "batch_size": 128, "proxy_batch_size": 90,
        "lr": 1e-3, "proxy_lr": 1e-3, "weight_decay": 1e-5,
        "sigma": 0.2, "gamma": 20.0, "alpha": 0.2, "beta": 0.2, "eta": 1.0,
        "hidden": 1024, "proxy_hidden": 1024, "label_hidden": 4096, "fused": 512,
        "image_weights": "", "l3_denominator": "paper", "w_class": 1.0, "w_same": 1.0,
    }
    #: The release's schedule (DAPH_proxy_code.py: 80 proxy epochs; DAPH.py: 220 hashing
    #: epochs): ``hashkit train --method daph --set proxy_epochs=80 --epochs 300``.
    RELEASE_SCHEDULE = {"proxy_epochs": 80, "epochs": 300}
    # mfeat (1,000 single-label training pairs, 240-d pixels / 76-d Fourier): 15 proxy epochs
    # already separate the ten class codes; the hashing stage needs a higher rate and a wider
    # hidden layer than the defaults to get past MAP 0.80 on the weaker Fourier -> pixel
    # direction within ~45 epochs (measured at 32 bits: lr 1e-3 / 40 epochs gave T->I 0.76,
    # lr 3e-3 / hidden 1024 / 60 epochs 0.82); 10-15 s on 2 shared cores.
    dataset_defaults = {"mfeat": {"epochs": 60, "proxy_epochs": 15, "lr": 3e-3, "hidden": 1024}}
    buffer_names = ("proxy_image", "proxy_text", "proxy_class")


    def build(self) -> None:
        from .._validate import check_choice

        cfg = self.config
        check_choice(cfg["l3_denominator"], ("paper", "release"), "config['l3_denominator']")
        fused = int(cfg["fused"])
        if self.image_dim is None:
            img_branch = AlexNet(fused, weights=cfg["image_weights"] or None)
            self.img_net = nn.Sequential(AlexNet(self.nbits, weights=cfg["image_weights"] or None), nn.Tanh())
        else:
            img_branch = MLP([self.image_dim, int(cfg["proxy_hidden"]), fused], dropout=0.5)
            self.img_net = MLP([self.image_dim, int(cfg["hidden"]), self.nbits], dropout=0.2,
                               final_activation="tanh")
        txt_branch = MLP([self.text_dim, int(cfg["proxy_hidden"]), fused], dropout=0.5)
        self.class_net = ClassCodes(self.nlabels, self.nbits, int(cfg["label_hidden"]))
        self.img_proxy = LabelFused(img_branch, self.nlabels, self.nbits, fused)
        self.txt_proxy = LabelFused(txt_branch, self.nlabels, self.nbits, fused)
        self.txt_net = MLP([self.text_dim, int(cfg["hidden"]), self.nbits], dropout=0.2, final_activation="tanh")
        nn.init.normal_(self.txt_net[-2].weight, 0.0, 0.3)   # the release's TxtNet initialisation
        self.proxy_image = self.proxy_text = self.proxy_class = None
        self.stage = "proxy"

    def setup(self, train: TrainData) -> None:
        cfg = self.config
        wd = float(cfg["weight_decay"])
        proxy_params = [p for m in (self.class_net, self.img_proxy, self.txt_proxy) for p in m.parameters()]
        self.opt_proxy = make_optimizer(proxy_params, "adam", cfg["proxy_lr"], wd, fused=True)
        self.opt_img = make_optimizer(self.img_net.parameters(), "adam", cfg["lr"], wd, fused=True)
        self.opt_txt = make_optimizer(self.txt_net.parameters(), "adam", cfg["lr"], wd, fused=True)

    # ------------------------------------------------------------ stages
    def stage_of(self, epoch: int) -> str:
        return "proxy" if epoch < int(self.config["proxy_epochs"]) else "hash"

    def begin_epoch(self, epoch: int, train: TrainData) -> None:
        self.stage = self.stage_of(epoch)
        if self.stage == "hash" and self.proxy_image is None:
            self.compute_proxies(train)

    def end_epoch(self, epoch: int, train: TrainData):
        if epoch + 1 == int(self.config["proxy_epochs"]):
            self.compute_proxies(train)
        return None

    def batches(self, epoch: int, train: TrainData):
        if self.stage_of(epoch) == "proxy":
            return self.permuted_batches(train.n, int(self.config["proxy_batch_size"]), ("proxy",))
        return self.permuted_batches(train.n, int(self.config["batch_size"]), ("image", "text"))

    # ------------------------------------------------------------ stage 1
    def _eye(self) -> torch.Tensor:
        return torch.eye(self.nlabels, device=self.device)

    def train_step(self, batch, epoch: int, train: TrainData):
        phase, idx = batch
        if phase == "proxy":
            return self._proxy_step(idx, train)
        return self._hash_step(phase, idx, train)

    def _proxy_step(self, idx, train: TrainData):
        cfg = self.config
        sigma, gamma = float(cfg["sigma"]), float(cfg["gamma"])
        lab = train.label_batch(idx)
        c = self.class_net(self._eye())
        u = self.img_proxy(train.image_batch(idx), lab)
        v = self.txt_proxy(train.text_batch(idx), lab)
        l1 = class_separation(c)
        l2 = losses.bit_balance(u) + losses.bit_balance(v) + losses.bit_balance(c)
        den = cfg["l3_denominator"]
        l3 = (proxy_margin_loss(u, c, lab, sigma, gamma, denominator=den)
              + proxy_margin_loss(v, c, lab, sigma, gamma, denominator=den))
        lq = quantization_tf(u) + quantization_tf(v) + quantization_tf(c)
        loss = l1 + float(cfg["alpha"]) * l2 + l3 + float(cfg["beta"]) * lq
        return {"loss": self.step(self.opt_proxy, loss), "L1": l1.item(), "L3": l3.item()}

    @torch.no_grad()
    def compute_proxies(self, train: TrainData) -> None:
        """Sign codes of every training item (image- and text-aware) and of every class."""
        nets = (self.class_net, self.img_proxy, self.txt_proxy)
        modes = [m.training for m in nets]
        for m in nets:
            m.eval()
        try:
            self.proxy_class = sign(self.class_net(self._eye()))
            ui, vi = [], []
            for s in range(0, train.n, 256):
                idx = list(range(s, min(s + 256, train.n)))
                lab = train.label_batch(idx)
                ui.append(sign(self.img_proxy(train.image_batch(idx), lab)))
                vi.append(sign(self.txt_proxy(train.text_batch(idx), lab)))
            self.proxy_image, self.proxy_text = torch.cat(ui), torch.cat(vi)
        finally:
            for m, mode in zip(nets, modes):
                m.train(mode)
        if self.run_dir is not None:
            self.save_proxies(self.run_dir, train)

    def save_proxies(self, run_dir, train: TrainData) -> None:
        """Write ``run_dir/proxy_codes.pt`` (CPU tensors, the release's pickle keys) atomically."""
        from .._io import atomic_path

        state = {"image_code": self.proxy_image.cpu(), "text_code": self.proxy_text.cpu(),
                 "class_code": self.proxy_class.cpu(), "label": train.label_batch(None).cpu()}
        from pathlib import Path

        with atomic_path(Path(run_dir) / "proxy_codes.pt") as tmp:
            torch.save(state, tmp)

    # ------------------------------------------------------------ stage 2
    def _hash_step(self, phase: str, idx, train: TrainData):
        cfg = self.config
        sigma, gamma, eta = float(cfg["sigma"]), float(cfg["gamma"]), float(cfg["eta"])
        lab = train.label_batch(idx)
        if phase == "image":
            opt, h = self.opt_img, self.img_net(train.image_batch(idx))
        else:
            opt, h = self.opt_txt, self.txt_net(train.text_batch(idx))
        same, weights, neg = proxy_selection(lab, train.label_batch(None))
        same_i, sim_i = proxy_terms(h, self.proxy_image, same, weights, neg, sigma, gamma)
        same_t, sim_t = proxy_terms(h, self.proxy_text, same, weights, neg, sigma, gamma)
        l_class = class_proxy_loss(h, self.proxy_class, lab, sigma, gamma)
        loss = (float(cfg["w_same"]) * (same_i + same_t) + float(cfg["w_class"]) * l_class
                + eta * (sim_i + sim_t))
        return {"loss": self.step(opt, loss)}

    # ------------------------------------------------------------ encoding
    def encode_images(self, x):
        return self.img_net(self.tensor(x))

    def encode_texts(self, y):
        return self.txt_net(self.tensor(y))
