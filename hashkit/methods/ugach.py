"""UGACH: Unsupervised Generative Adversarial Cross-modal Hashing (Zhang, Peng, Yuan, AAAI 2018).

Unsupervised: labels are never read. Inputs are features.

* **Networks.** Generator and discriminator share one shape, per modality
  ``phi_c(x) = tanh(W_c x + b_c)``, ``h(x) = sigmoid(W_h phi_c(x) + b_h)`` (Eq. 1-2); codes
  ``b = sgn(h - 0.5)`` (Eq. 3). The discriminator's codes are the ones used for retrieval.
* **Inputs** are standardised with training-set moments (``preprocess``: "standardize",
  "center" or "none"). Non-negative sparse inputs (BoW, ReLU image features) put every
  sigmoid unit on one side from the first step: raw, the synthetic set's retrieval codes
  collapse to 1-22 distinct codes among 1,800 items with 15-16 of 16 bits constant and MAP at
  chance, although the kNN graph is informative; standardised they do not (``results.json``
  diagnostics). The release feeds raw features.
* **Correlation graph.** For every training pair, its ``knn`` nearest neighbours by image
  features and its ``knn`` nearest by text features, built once in :meth:`UGACH.setup` with
  :func:`hashkit.graph.knn_graph` on the raw features (exact or sketch-shortlisted,
  ``graph_method``), plus the pair itself (``pair_positive``). The release publishes its
  graph (``KNN/mir/KNN_cross5.npy``, ``KNN/nus/KNN_cross5.npy``, made by
  ``KNN/knn_mir_cross5.py``): the first 5 rows of an ``argsort`` of Euclidean distances by
  image features and the first 5 by text features, each including the item itself at distance
  0 -- i.e. the pair itself and 4 + 4 neighbours, which is ``knn=4`` with ``pair_positive``
  here. For an image query ``i``, the texts of its graph neighbours are positives (and the
  other way round). ``graph="release"`` trains on the release's own file instead (the release
  layout reads it into ``Dataset.knn_graph``; the Trainer hands it on only for the release's
  split): the positives of row ``i`` are then the distinct members of its row, drawn uniformly,
  as the release's ``utils.make_train_dict`` lists them (``j in KNN_cross[i]``, each ``j``
  once); ``knn``, ``graph_method`` and ``pair_positive`` do not apply. Ties in the release's
  ``argsort`` (NumPy's default, not stable) and its float features can make its rows differ
  from the graph built here; the default (``"hashkit"``) keeps the published numbers.
* **Generator** (Eq. 4-6). Over a set of sampled candidates ``x``, the generator's
  distribution is ``p(x | q) = softmax(-||h_G(q) - h_G(x)||^2)``; it is trained by policy
  gradient, ``-mean log p(x^G | q) * A`` with the discriminator's reward
  ``r = sigmoid(f(q, x^M, x^G))`` (:func:`policy_gradient_loss`).
* **Discriminator** (Eq. 7-8). Hinge triplet ``f = max(0, m + ||h(q) - h(x^M)||^2 -
  ||h(q) - h(x^G)||^2)`` with a graph neighbour ``x^M`` and a generated ``x^G``
  (:func:`triplet_hinge`); margin ``m = nbits / 8`` (the release's ``BETA``).
* **Schedule.** Epochs ``[0, pretrain_epochs)`` pre-train the discriminator; every later
  epoch is one of the release's "whole epochs": a discriminator pass on generator-sampled
  negatives, then ``g_passes`` generator passes (``D_EPOCH = 1``, ``G_EPOCH = 2``), each over
  image->text and text->image queries. ``epochs == pretrain_epochs`` skips the adversarial
  stage (the ablation in ``benchmarks/ablation.py``).
* **Pre-training.** The release publishes its script (``unsuper-pretrain-mir-D-beta/train_*.py``):
  30 x 1000 discriminator epochs, batch 20, plain SGD at 0.01 (x0.9 every 20,000 steps), L2
  0.01 on every weight and bias, and one triplet per query whose positive is the query's own
  pair and whose negative is any other item (its ``make_train_dict``). ``pretrain="release"``
  (:attr:`UGACH.RELEASE_PRETRAIN`) trains that way for ``pretrain_epochs`` epochs (the release's
  30,000 are days on a CPU). The default ("hashkit") pre-trains with the adversarial stage's
  Adam at ``lr`` on graph neighbours against uniform negatives, 5 epochs (10 on mfeat).

Protocols: the authors split MIRFLICKR-25K into 2,000 queries / 18,015 retrieval / 15,000
training pairs and NUS-WIDE-10 (186,577 pairs) into 1,865 / 184,712 / 15,000
(PKU-ICST-MIPL/UGACH_AAAI2018 issue 1 and ``KNN/knn_mir_cross5.py``). Splits are data, not
method code: they belong in the datasets' protocol tables (``hashkit.data``), chosen with
``--data-option``; this file does not hard-code them.

Differences from the release, on purpose: mini-batches of queries sharing one candidate set
(the release updates one query at a time over its own ``N / 50`` candidates), Adam (fused)
instead of SGD, a narrower hidden layer (1024, release 8192), PyTorch's default
initialisation (the release's ``N(0, 0.1)`` saturates tanh on 4096-d inputs), standardised
inputs, and a mean-reward baseline in the policy gradient (``pg_baseline="mean"``; the release
uses the raw reward, always in [0.5, 1], which only ever raises the probability of what was
sampled).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..nn import MLP
from . import register_method
from .base import Method, TrainData, apply_moments, make_optimizer

__all__ = ["UGACH", "TwoBranch", "triplet_hinge", "generator_logits", "policy_gradient_loss", "correlation_graph"]

_DIRS = ("i2t", "t2i")


class TwoBranch(nn.Module):
    """Image and text branches ``sigmoid(W_h tanh(W_c x + b_c) + b_h)`` (UGACH Eq. 1-2)."""

    def __init__(self, image_dim: int, text_dim: int, nbits: int, hidden: int):
        super().__init__()
        self.img = MLP([image_dim, hidden, nbits], activation="tanh", final_activation="sigmoid")
        self.txt = MLP([text_dim, hidden, nbits], activation="tanh", final_activation="sigmoid")

    def query_item(self, direction: str):
        """``(query branch, item branch)`` for ``"i2t"`` or ``"t2i"``."""
        return (self.img, self.txt) if direction == "i2t" else (self.txt, self.img)


def sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise squared distances ``||a_i - b_i||^2`` (broadcasting over leading dimensions)."""
    return (a - b).pow(2).sum(dim=-1)


def triplet_hinge(hq: torch.Tensor, hpos: torch.Tensor, hneg: torch.Tensor, margin: float) -> torch.Tensor:
    """``f = max(0, m + ||h_q - h_pos||^2 - ||h_q - h_neg||^2)`` per triplet (UGACH Eq. 7)."""
    return torch.relu(margin + sq_dist(hq, hpos) - sq_dist(hq, hneg))


def generator_logits(hq: torch.Tensor, hc: torch.Tensor) -> torch.Tensor:
    """``-||h(q_i) - h(c_j)||^2`` for queries ``(b, K)`` and candidates ``(C, K)`` -> ``(b, C)``."""
    return -(hq.pow(2).sum(1, keepdim=True) - 2.0 * hq @ hc.T + hc.pow(2).sum(1)[None, :])


def policy_gradient_loss(logits: torch.Tensor, sampled: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """REINFORCE loss ``-mean_{i,s} A_is log softmax(logits_i)[sampled_is]`` (UGACH Eq. 6).

    Parameters
    ----------
    logits : (b, C) generator scores over the candidates
    sampled : (b, S) int64 indices of sampled candidates
    advantage : (b, S) reward (minus a baseline); treated as a constant
    """
    logp = torch.log_softmax(logits, dim=1).gather(1, sampled)
    return -(logp * advantage.detach()).mean()


def correlation_graph(images: np.ndarray, texts: np.ndarray, knn: int = 5, method: str = "auto",
                      seed: int = 0) -> np.ndarray:
    """``(n, 2 knn)`` int64: each row's ``knn`` nearest rows by image features, then by text features.

    Built with :func:`hashkit.graph.knn_graph` (self excluded, ties to the smaller index).
    """
    from ..graph import knn_graph

    k = min(int(knn), images.shape[0] - 1)
    gi = knn_graph(images, k, method, seed=seed)
    gt = knn_graph(texts, k, method, seed=seed)
    return np.concatenate([gi, gt], axis=1)


def _distinct_rows(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distinct members in first-seen order, padded with its first member (so a
    membership test is unchanged), and how many there are per row."""
    out = np.empty_like(g)
    width = np.empty(g.shape[0], np.int64)
    for i, row in enumerate(g):
        _, first = np.unique(row, return_index=True)
        u = row[np.sort(first)]
        out[i, : len(u)] = u
        out[i, len(u):] = u[0]
        width[i] = len(u)
    return out, width


def _sample_rows(p: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` draws (with replacement) from each row's distribution ``p`` ``(b, C)`` -> ``(b, count)``."""
    cdf = np.cumsum(p, axis=1)
    u = rng.random((p.shape[0], count)) * cdf[:, -1:]
    out = np.empty((p.shape[0], count), dtype=np.int64)
    for s in range(count):
        out[:, s] = (cdf < u[:, s:s + 1]).sum(axis=1)
    return np.minimum(out, p.shape[1] - 1)


@register_method("ugach")
class UGACH(Method):
    """UGACH (Zhang et al., AAAI 2018): unsupervised GAN hashing over a kNN correlation graph."""

    supervised = False
    defaults = {
        "epochs": 30, "pretrain_epochs": 5, "g_passes": 2, "batch_size": 64,
        "lr": 1e-3, "adv_lr": 1e-5, "g_lr": 1e-3, "weight_decay": 1e-5,
        "hidden": 1024, "knn": 5, "graph": "hashkit", "graph_method": "auto", "graph_seed": 0,
        "pair_positive": True,
        "margin_per_bit": 0.125, "candidates": 100, "select": 2, "pg_baseline": "mean",
        "preprocess": "standardize", "pretrain": "hashkit",
    }
    #: The released pre-training script (unsuper-pretrain-mir-D-beta/train_*.py): 30 whole
    #: epochs x 1000 discriminator epochs, batch 20, SGD at 0.01 (x0.9 every 20,000 steps),
    #: L2 0.01 on every weight and bias, one (query, own pair, random other) triplet per query.
    RELEASE_PRETRAIN = {"pretrain": "release", "pretrain_epochs": 30_000}
    # mfeat (1,000 pairs, 32 bits, measured): validation MAP still rises after 5 pre-training
    # epochs (0.54/0.59) and is 0.66/0.72 after 10; the adversarial epochs at adv_lr = 1e-5
    # then hold it (0.67/0.72 after 10 more), at 1e-4 they first drop it to 0.34/0.41 and
    # claw back to 0.60/0.64. On test MAP the adversarial epochs move the pre-trained
    # discriminator by at most 0.01 here (seeds 0/1: 0.652/0.685 and 0.686/0.692 after
    # pre-training only, 0.663/0.685 and 0.685/0.687 after all 20). About 10 s on 2 cores.
    dataset_defaults = {"mfeat": {"epochs": 20, "pretrain_epochs": 10}}
    buffer_names = ("graph", "graph_width", "x_mean", "x_std", "y_mean", "y_std")

    def build(self) -> None:
        if self.image_dim is None:
            raise ValueError("image_dim: UGACH takes image features (n, d), got a raw-pixel dataset; "
                             "extract CNN features first")
        from .._validate import check_choice

        check_choice(self.config["pg_baseline"], ("mean", "none"), "config['pg_baseline']")
        check_choice(self.config["preprocess"], ("standardize", "center", "none"), "config['preprocess']")
        check_choice(self.config["pretrain"], ("hashkit", "release"), "config['pretrain']")
        check_choice(self.config["graph"], ("hashkit", "release"), "config['graph']")
        self.x_mean = self.x_std = self.y_mean = self.y_std = None
        h = int(self.config["hidden"])
        self.gen = TwoBranch(self.image_dim, self.text_dim, self.nbits, h)
        self.dis = TwoBranch(self.image_dim, self.text_dim, self.nbits, h)
        self.graph = None
        self.graph_width = None     # graph="release": distinct members per row (rows padded)

    @property
    def margin(self) -> float:
        return float(self.config["margin_per_bit"]) * self.nbits

    def setup(self, train: TrainData) -> None:
        cfg = self.config
        wd = float(cfg["weight_decay"])
        self.opt_d = make_optimizer(self.dis.parameters(), "adam", cfg["lr"], wd, fused=True)
        self.opt_g = make_optimizer(self.gen.parameters(), "adam", cfg["g_lr"], wd, fused=True)
        if cfg["pretrain"] == "release":
            self.opt_pre = make_optimizer(self.dis.parameters(), "sgd", 0.01, 0.01)
        if cfg["preprocess"] != "none":
            # Non-negative sparse inputs (BoW, ReLU features) put every sigmoid unit on one side
            # from the start and the codes collapse (2-22 distinct codes among 1,800 items on the
            # synthetic set); centring, or standardising, with training moments avoids it.
            self.x_mean, self.x_std = _moments(train.images, self.device)
            self.y_mean, self.y_std = _moments(train.texts, self.device)
            if cfg["preprocess"] == "center":
                self.x_std = self.y_std = None
        if cfg["graph"] == "release":
            self.graph, self.graph_width = _distinct_rows(self._release_graph(train))
            return
        g = correlation_graph(train.images, train.texts, int(cfg["knn"]), cfg["graph_method"], int(cfg["graph_seed"]))
        if cfg["pair_positive"]:
            g = np.concatenate([np.arange(train.n)[:, None], g], axis=1)
        self.graph = g

    @staticmethod
    def _release_graph(train: TrainData) -> np.ndarray:
        g = getattr(train, "graph", None)
        if g is None:
            note = getattr(train, "graph_note", "") or (
                "it is read from list/KNN_cross5.npy of the UGACH release layout")
            raise ValueError(f"config['graph']: 'release' trains on the neighbour graph a UGACH "
                             f"release ships, and there is none here ({note}); use 'hashkit'")
        from ..data.releases import check_knn

        return check_knn(g, train.n, "config['graph']: the release graph")

    # ------------------------------------------------------------ schedule
    def begin_epoch(self, epoch: int, train: TrainData) -> None:
        # The discriminator learns at ``lr`` while pre-training and at ``adv_lr`` against the
        # generator: at the pre-training rate, pushing away the generator's (often truly
        # similar) samples collapses every code to one corner within a few epochs.
        adv = epoch >= int(self.config["pretrain_epochs"])
        self.set_learning_rate(float(self.config["adv_lr" if adv else "lr"]), self.opt_d)
        if not adv and self.config["pretrain"] == "release":
            steps = epoch * 2 * -(-train.n // 20)     # the release decays per step: x0.9 / 20,000
            self.set_learning_rate(0.01 * 0.9 ** (steps // 20_000), self.opt_pre)

    def batches(self, epoch: int, train: TrainData):
        # (phase, direction, rows): a pass is image->text queries, then text->image queries
        bs = int(self.config["batch_size"])
        if epoch < int(self.config["pretrain_epochs"]):
            phases = ["pre"]
            if self.config["pretrain"] == "release":
                bs = 20
        else:
            phases = ["d"] + ["g"] * int(self.config["g_passes"])
        return self.permuted_batches(train.n, bs, [(p, d) for p in phases for d in _DIRS])

    def train_step(self, batch, epoch: int, train: TrainData):
        phase, direction, idx = batch
        if phase == "g":
            return self._generator_step(direction, idx, train)
        return self._discriminator_step(phase, direction, idx, train)

    # ------------------------------------------------------------ helpers
    def _images(self, x: torch.Tensor) -> torch.Tensor:
        return apply_moments(x, self.x_mean, self.x_std)

    def _texts(self, y: torch.Tensor) -> torch.Tensor:
        return apply_moments(y, self.y_mean, self.y_std)

    def _batch(self, direction: str, train: TrainData, query_rows, item_rows):
        img = lambda r: self._images(train.image_batch(r))   # noqa: E731
        txt = lambda r: self._texts(train.text_batch(r))     # noqa: E731
        return (img(query_rows), txt(item_rows)) if direction == "i2t" else (txt(query_rows), img(item_rows))

    def _positives(self, idx: np.ndarray, count: int) -> np.ndarray:
        if self.graph_width is not None:
            # uniform over row i's distinct members, which fill its first graph_width[i] slots
            w = np.asarray(self.graph_width)[np.asarray(idx)][:, None]
            cols = np.minimum((self.rng.random((len(idx), count)) * w).astype(np.int64), w - 1)
        else:
            cols = self.rng.integers(0, self.graph.shape[1], size=(len(idx), count))
        return np.asarray(self.graph)[np.asarray(idx)[:, None], cols]

    def _generator_probs(self, direction: str, idx: np.ndarray, cand: np.ndarray, train: TrainData):
        qnet, xnet = self.gen.query_item(direction)
        q, x = self._batch(direction, train, idx, cand)
        return generator_logits(qnet(q), xnet(x))

    # ------------------------------------------------------------ discriminator
    def _discriminator_step(self, phase: str, direction: str, idx: np.ndarray, train: TrainData):
        sel = int(self.config["select"])
        release = phase == "pre" and self.config["pretrain"] == "release"
        if release:
            # the release's pre-training: the pair itself is the positive, one other item drawn
            # uniformly the negative (make_train_dict of its utils.py)
            sel = 1
            pos = np.asarray(idx)[:, None]
            neg = (pos + self.rng.integers(1, train.n, size=(len(idx), 1))) % train.n
        elif phase == "pre":
            pos = self._positives(idx, sel)
            neg = self.rng.integers(0, train.n, size=(len(idx), sel))
        else:
            pos = self._positives(idx, sel)
            cand = self.rng.choice(train.n, size=min(int(self.config["candidates"]), train.n), replace=False)
            with torch.no_grad():
                logits = self._generator_probs(direction, idx, cand, train)
            # negatives for D are generated items that are not graph neighbours (the release
            # redraws until the sample is outside the positive list)
            is_pos = (np.asarray(self.graph)[np.asarray(idx)][:, :, None] == cand[None, None, :]).any(axis=1)
            logits = logits.masked_fill(torch.as_tensor(is_pos, device=logits.device), float("-inf"))
            p = torch.softmax(logits, dim=1).double().cpu().numpy()
            p[~np.isfinite(p)] = 0.0
            p[p.sum(axis=1) == 0] = 1.0
            neg = cand[_sample_rows(p, sel, self.rng)]
        qnet, xnet = self.dis.query_item(direction)
        q, xp = self._batch(direction, train, idx, pos.ravel())
        _, xn = self._batch(direction, train, idx, neg.ravel())
        hq = qnet(q)[:, None, :]
        hp = xnet(xp).view(len(idx), sel, -1)
        hn = xnet(xn).view(len(idx), sel, -1)
        loss = triplet_hinge(hq, hp, hn, self.margin).mean()
        return {"d_loss": self.step(self.opt_pre if release else self.opt_d, loss)}

    # ------------------------------------------------------------ generator
    def _generator_step(self, direction: str, idx: np.ndarray, train: TrainData):
        sel = int(self.config["select"])
        cand = self.rng.choice(train.n, size=min(int(self.config["candidates"]), train.n), replace=False)
        logits = self._generator_probs(direction, idx, cand, train)
        p = torch.softmax(logits.detach(), dim=1).double().cpu().numpy()
        sampled = _sample_rows(p, sel, self.rng)
        pos = self._positives(idx, sel)
        with torch.no_grad():
            qnet, xnet = self.dis.query_item(direction)
            q, xp = self._batch(direction, train, idx, pos.ravel())
            _, xg = self._batch(direction, train, idx, cand[sampled].ravel())
            hq = qnet(q)[:, None, :]
            f = triplet_hinge(hq, xnet(xp).view(len(idx), sel, -1), xnet(xg).view(len(idx), sel, -1), self.margin)
            reward = torch.sigmoid(f)
        adv = reward - reward.mean() if self.config["pg_baseline"] == "mean" else reward
        loss = policy_gradient_loss(logits, torch.as_tensor(sampled, device=logits.device), adv)
        return {"g_loss": self.step(self.opt_g, loss), "reward": reward.mean().item()}

    # ------------------------------------------------------------ encoding: the discriminator's codes
    def encode_images(self, x):
        return self.dis.img(self._images(self.tensor(x))) - 0.5

    def encode_texts(self, y):
        return self.dis.txt(self._texts(self.tensor(y))) - 0.5


def _moments(x: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-set mean and standard deviation per column (1 where a column is constant)."""
    x64 = np.asarray(x, dtype=np.float64)
    std = x64.std(0, keepdims=True)
    std = np.where(std > 1e-6, std, 1.0)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)   # noqa: E731
    return as_t(x64.mean(0, keepdims=True)), as_t(std)


