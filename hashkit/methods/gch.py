"""GCH -- Graph Convolutional Network Hashing (Xu, Li, Yan, Deng, Liu, IJCAI 2019) and the two
variants of its reproduction, ``gch-try1`` and ``gch-try2``.

Notation: ``H^l`` semantic (label) encoder codes, ``H^x`` / ``H^y`` image / text codes (``H^*``
either), ``H^b`` the GCN's beacon codes, ``B^l = sign(H^l)``, ``S`` the 0/1 label similarity,
``f^x`` / ``f^y`` the encoders' feature layers, ``Y`` the multi-hot labels.

Where the paper and the authors' released code (DeXie0808/GCH, TensorFlow) differ, the paper is
followed and the difference is stated beside the code; the cheap ones are config options:

==========================  ==========================  =====================================
what                        paper (default here)        authors' code (option)
==========================  ==========================  =====================================
likelihood term             ``sum softplus(T) - S T``   ``mean((S T - softplus(T))^2)``
                                                        (``likelihood="squared"``)
inner product               ``T = 1/2 H_i^T H_j``       ``T = H_i^T H_j`` (``theta_scale=1``)
learning rate               constant                    halved every epoch (``lr_decay=0.5``)
graph                       ``A = L L^T + I``           ``A = L L^T`` (``self_loops=false``)
encoders after the GCN      likelihood to the beacons   ``||H^b - H^*||^2`` (``beacon_loss="mse"``)
==========================  ==========================  =====================================

Every term is averaged over its entries (the authors' ``reduce_mean`` convention), so the
weights compare per-entry means. Memory: the label similarity is formed per batch, ``(b, n)``
against the code buffers of the whole training set and ``(b, b)`` inside the batch; the GCN runs
on the batch's affinity graph (``b x b``), as in the authors' code, never on an ``n x n`` one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn

from .. import losses
from ..nn import CNNF, MLP, GCNLayer, normalize_adjacency
from . import register_method
from .base import Method, TrainData, lr_step_decay, make_optimizer

__all__ = ["GCH", "GCHTry1", "GCHTry2", "label_adjacency", "cross_modal_fusion",
           "label_code_pull", "feature_alignment"]


# --------------------------------------------------------------------------- terms
def label_adjacency(labels: torch.Tensor, self_loops: bool = True) -> torch.Tensor:
    """Symmetrically normalised label affinity of a batch (GCH Eq. 7).

    ``A = L L^T + I`` (``I`` only with ``self_loops``), ``D = diag(A 1)``, returns
    ``D^{-1/2} A D^{-1/2}`` (:func:`hashkit.nn.normalize_adjacency`). ``(L L^T)_ij`` counts the
    labels items ``i`` and ``j`` share.

    Parameters
    ----------
    labels : torch.Tensor float (b, nlabels)
        Multi-hot {0, 1} labels of the batch.
    self_loops : bool
        Add ``I`` (the paper). The authors' code uses ``L L^T`` alone.

    Returns
    -------
    torch.Tensor float (b, b)
        A row with no edge at all (no label and no self loop) is all zeros.

    Examples
    --------
    >>> label_adjacency(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    tensor([[0.6667, 0.2887],
            [0.2887, 0.7500]])
    """
    if labels.ndim != 2:
        raise ValueError(f"labels: expected a 2-D tensor (b, nlabels), got shape {tuple(labels.shape)}")
    return normalize_adjacency(labels @ labels.T, add_self_loops=self_loops)


def cross_modal_fusion(fx: torch.Tensor, fy: torch.Tensor, norm: str = "max") -> torch.Tensor:
    """Self-attention fusion of paired features (GCH Eq. 6): ``f_r = 1/2 (W_x F^x + W_y F^y)``.

    The paper writes ``f_r = 1/2 (W~ f^x + W~ f^y)`` with ``W~`` a normalised cross-modal
    affinity, which does not type-check for single vectors. Stacking the batch's features as
    rows, ``W = F^x (F^y)^T`` is ``(b, b)`` (``W_ij`` = image ``i`` vs text ``j``) and it acts on
    the ``(b, d)`` feature matrices from the left: row ``i`` of ``W_y F^y`` mixes the texts that
    image ``i`` attends to, row ``i`` of ``W_x F^x`` (``W_x`` built from ``W^T``) the images that
    text ``i`` attends to, so both are ``(b, d)`` and add up.

    Parameters
    ----------
    fx, fy : torch.Tensor float (b, d)
        Image and text features of the same ``b`` items.
    norm : {"max", "softmax"}
        ``"max"``: ``W~ = W / max|W|`` (the authors divide by ``max W``; the absolute value keeps
        the sign of ``W`` when it has negative entries). ``"softmax"``: row-wise softmax
        (``W_y = softmax(W)``, ``W_x = softmax(W^T)``).

    Returns
    -------
    torch.Tensor float (b, d)
    """
    if fx.ndim != 2 or fx.shape != fy.shape:
        raise ValueError(f"fx and fy: expected two 2-D tensors of one shape (b, d), got "
                         f"{tuple(fx.shape)} and {tuple(fy.shape)}")
    w = fx @ fy.T
    if norm == "max":
        w = w / w.abs().max().clamp_min(1e-12)
        wx, wy = w.T, w
    elif norm == "softmax":
        wx, wy = torch.softmax(w.T, dim=1), torch.softmax(w, dim=1)
    else:
        raise ValueError(f"fusion_norm: expected 'max' or 'softmax', got {norm!r}")
    return 0.5 * (wx @ fx + wy @ fy)


def label_code_pull(h_l: torch.Tensor, h: torch.Tensor, s: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """``sum_ij S_ij ||H^l_i - H^*_j||^2`` (Eq. 11 of the reproduction, the lambda term).

    Parameters
    ----------
    h_l : torch.Tensor float (m, c)   semantic-encoder codes (the teacher)
    h : torch.Tensor float (b, c)     a modality's codes
    s : torch.Tensor float (m, b)     similarity of row ``i`` of ``h_l`` and row ``j`` of ``h``
    reduction : {"sum", "mean"}       mean divides by ``m * b``

    Returns
    -------
    torch.Tensor scalar
    """
    if tuple(s.shape) != (h_l.shape[0], h.shape[0]):
        raise ValueError(f"s: expected shape {(h_l.shape[0], h.shape[0])}, got {tuple(s.shape)}")
    d2 = (h_l * h_l).sum(1)[:, None] + (h * h).sum(1)[None, :] - 2.0 * (h_l @ h.T)
    out = (s * d2).sum()
    return out / s.numel() if reduction == "mean" else out


def feature_alignment(fx: torch.Tensor, fy: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """``sum_i ||f^x_i - f^y_i||^2`` over paired rows (Eq. 12 of the reproduction).

    ``reduction="mean"`` divides by the number of rows.
    """
    if fx.shape != fy.shape:
        raise ValueError(f"fx and fy: expected one shape, got {tuple(fx.shape)} and {tuple(fy.shape)}")
    out = ((fx - fy) ** 2).sum()
    return out / fx.shape[0] if reduction == "mean" else out


# --------------------------------------------------------------------------- networks
def _mlp(dims) -> nn.Sequential:
    """Linear -> BatchNorm -> LeakyReLU(0.2) for every layer (the authors' feature layers)."""
    return MLP(dims, "leaky_relu", final_activation="leaky_relu", batch_norm=True, leaky_slope=0.2)


class _Branch(nn.Module):
    """A body (input -> feature ``f``) with a hash head (tanh) and a label head (logits).

    ``hash`` is ``None`` when the hash layer is shared and owned by the method (gch-try2).
    """

    def __init__(self, body: nn.Module, embed: int, nbits: int, nlabels: int, own_hash: bool = True,
                 label_from_hash: bool = False):
        super().__init__()
        self.body = body
        self.hash = nn.Linear(embed, nbits) if own_hash else None
        self.label_from_hash = label_from_hash
        self.label = nn.Linear(nbits if label_from_hash else embed, nlabels)

    def forward(self, x: torch.Tensor, hash_layer: nn.Module | None = None):
        f = self.body(x)
        h = torch.tanh((self.hash if self.hash is not None else hash_layer)(f))
        return f, h, self.label(h if self.label_from_hash else f)


class _BeaconGCN(nn.Module):
    """Stacked graph convolutions: ReLU between layers, tanh on the beacon codes (Eq. 7-8)."""

    def __init__(self, dims, nlabels: int):
        super().__init__()
        # No bias, as the authors' GraphConvLayer; A_hat arrives normalised (label_adjacency).
        self.layers = nn.ModuleList(GCNLayer(a, b, bias=False, normalize=False)
                                    for a, b in zip(dims[:-1], dims[1:]))
        self.label = nn.Linear(dims[-1], nlabels)

    def forward(self, x: torch.Tensor, adj: torch.Tensor):
        for k, layer in enumerate(self.layers):
            x = layer(adj, x)
            x = torch.tanh(x) if k == len(self.layers) - 1 else Fn.relu(x)
        return x, self.label(x)


# --------------------------------------------------------------------------- methods
@register_method("gch")
class GCH(Method):
    """GCH: semantic teacher, image/text encoders, cross-modal fusion and a GCN giving beacon codes
    (Xu et al., IJCAI 2019).

    Implements Eq. 2-3 (semantic encoder ``L^l``: likelihood of ``S`` under
    ``T = 1/2 H^l H^l^T``, quantisation ``||H^l - B^l||^2``, label prediction ``||Y^l - Y||^2``,
    ``B^l = sign(H^l)``); Eq. 4-5 (modality encoders ``L^*``: likelihood with
    ``T = 1/2 H^l H^*^T``, ``||H^* - B^l||^2``, ``||Y^* - Y||^2``); Eq. 6 (fusion, see
    :func:`cross_modal_fusion`); Eq. 7-8 (GCN over ``A = L L^T + I``, beacon codes ``H^b`` and
    labels, ``L^GCN`` = likelihood of ``S`` under ``1/2 H^b H^b^T`` + ``||Y^b - Y||^2``);
    procedure 1 (per batch: ``L^l -> L^* -> L^GCN -> L^*``, the second ``L^*`` with the beacon
    codes ``H^b`` as teacher); Eq. 10 (codes of unseen items: ``sign`` of the modality
    encoders' hash heads).

    Config (besides epochs, batch_size, lr): ``embed_dim`` (feature size ``f``), ``hidden_dim``,
    ``gcn_hidden``, ``alpha``/``beta`` (semantic encoder quantisation / label weights),
    ``gamma``/``eta`` (modality quantisation / label weights), ``lr_decay`` (per-epoch factor),
    ``likelihood`` ("nll" | "squared"), ``theta_scale``, ``self_loops``, ``fusion_norm``
    ("max" | "softmax"), ``beacon_loss`` ("likelihood" | "mse"), ``weight_decay``,
    ``backbone_weights`` (path of ``imagenet-vgg-f.mat`` for raw-pixel datasets; "" = random).
    """

    defaults = {
        "epochs": 30, "batch_size": 128, "lr": 1e-3, "weight_decay": 0.0, "lr_decay": 1.0,
        "embed_dim": 512, "hidden_dim": 1024, "gcn_hidden": 512,
        "alpha": 1.0, "beta": 1.0, "gamma": 1.0, "eta": 1.0,
        "likelihood": "nll", "theta_scale": 0.5, "self_loops": True, "fusion_norm": "max",
        "beacon_loss": "likelihood", "backbone_weights": "",
    }
    # mfeat (1,000 training pairs, 10 single-label classes): 40 epochs of 8 batches; MAP is
    # flat from about 30 epochs on, and T->I (Fourier coefficients, the weaker view) gained
    # ~0.02 from 20 to 40 epochs. lr 3e-4 or a 0.95 per-epoch decay made no difference beyond
    # the seed-to-seed spread, so the paper's constant rate is kept.
    dataset_defaults: dict = {"mfeat": {"epochs": 40}}
    buffer_names = ("H_l", "H_b")
    #: gch-try2 shares one hash layer between the image and text encoders.
    shared_hash = False
    #: the phases of one training step, in order (the optimiser attribute each one steps).
    step_order = ("opt_lab", "opt_img", "opt_txt", "opt_gcn", "opt_img", "opt_txt")

    # ------------------------------------------------------------ networks
    def build(self) -> None:
        c = self.config
        e = int(c["embed_dim"])
        for key in ("likelihood", "fusion_norm", "beacon_loss"):
            allowed = {"likelihood": ("nll", "squared"), "fusion_norm": ("max", "softmax"),
                       "beacon_loss": ("likelihood", "mse")}[key]
            if c[key] not in allowed:
                raise ValueError(f"config[{key!r}]: expected one of {', '.join(allowed)}, got {c[key]!r}")
        own = not self.shared_hash
        self.lab = _Branch(_mlp([self.nlabels, int(c["hidden_dim"]), e]), e, self.nbits, self.nlabels,
                           label_from_hash=True)
        self.img = _Branch(self._image_body(e), e, self.nbits, self.nlabels, own_hash=own)
        self.txt = _Branch(_mlp([self.text_dim, int(c["hidden_dim"]), e]), e, self.nbits, self.nlabels,
                           own_hash=own)
        if self.shared_hash:
            self.hash = nn.Linear(e, self.nbits)
        self.gcn = _BeaconGCN([e, int(c["gcn_hidden"]), self.nbits], self.nlabels)

    def _image_body(self, embed: int) -> nn.Module:
        """MLP on precomputed features; CNN-F (hashkit.nn) on raw pixels.

        CNN-F's last linear layer (fc8) is built with ``embed`` outputs and serves as the
        feature layer ``f^x``, followed by BatchNorm + LeakyReLU as the MLP bodies.
        """
        if self.image_dim is not None:
            return _mlp([self.image_dim, int(self.config["hidden_dim"]), embed])
        weights = self.config["backbone_weights"] or None
        return nn.Sequential(CNNF(embed, weights=weights), nn.BatchNorm1d(embed), nn.LeakyReLU(0.2))

    def _hash_layer(self) -> nn.Module | None:
        return self.hash if self.shared_hash else None

    def _branch_params(self, branch: _Branch) -> list:
        shared = list(self.hash.parameters()) if self.shared_hash else []
        return list(branch.parameters()) + shared

    def setup(self, train: TrainData) -> None:
        c = self.config
        self.H_l = torch.zeros(train.n, self.nbits, device=self.device)
        self.H_b = torch.zeros(train.n, self.nbits, device=self.device)

        def adam(params):
            return make_optimizer(params, "adam", c["lr"], c["weight_decay"])

        self.opt_lab = adam(self.lab.parameters())
        self.opt_img = adam(self._branch_params(self.img))
        self.opt_txt = adam(self._branch_params(self.txt))
        self.opt_gcn = adam(self.gcn.parameters())

    def begin_epoch(self, epoch: int, train: TrainData) -> None:
        # The authors halve every rate each epoch (decay 0.5 in their setting_old.py); the paper
        # gives no schedule, so the default factor is 1 (constant).
        self.set_learning_rate(lr_step_decay(self.config["lr"], self.config["lr_decay"], epoch))

    # ------------------------------------------------------------ loss terms
    def _likelihood(self, h: torch.Tensor, guide: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of ``S`` under ``T = theta_scale * h guide^T``, per-entry mean."""
        scale = float(self.config["theta_scale"])
        if self.config["likelihood"] == "squared":
            # The authors' code squares the log-likelihood of each pair (mse_criterion(S T, softplus T)).
            theta = losses.pairwise_theta(h, guide, scale)
            return ((s * theta - Fn.softplus(theta)) ** 2).mean()
        return losses.pairwise_likelihood(h, guide, s, scale=scale, reduction="mean")

    @staticmethod
    def _label_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((torch.sigmoid(logits) - y) ** 2).mean()

    def modality_extra_loss(self, ctx: dict, mod: str, f: torch.Tensor, h: torch.Tensor) -> torch.Tensor | float:
        """Terms a variant adds to ``L^*`` of modality ``mod`` ("img" or "txt"). GCH adds none."""
        return 0.0

    # ------------------------------------------------------------ the four phases
    def label_phase(self, ctx: dict) -> float:
        """``L^l`` (Eq. 2) on the batch; refresh the ``H^l`` buffer (Eq. 3: ``B^l = sign(H^l)``)."""
        c, idx = self.config, ctx["idx"]
        _, h, logits = self.lab(ctx["y"])
        loss = (self._likelihood(h, self.H_l, ctx["s_all"])
                + float(c["alpha"]) * losses.quantization(h, torch.sign(h.detach()), reduction="mean")
                + float(c["beta"]) * self._label_loss(logits, ctx["y"]))
        value = self.step(self.opt_lab, loss)
        with torch.no_grad():
            self.H_l[idx] = self.lab(ctx["y"])[1]
        return value

    def modality_phase(self, ctx: dict, mod: str, teacher: str) -> float:
        """``L^*`` (Eq. 4) for ``mod``; ``teacher`` "label" (``H^l``) or "beacon" (``H^b``)."""
        c, idx = self.config, ctx["idx"]
        branch, opt = (self.img, self.opt_img) if mod == "img" else (self.txt, self.opt_txt)
        f, h, logits = branch(ctx[mod], self._hash_layer())
        b_l = torch.sign(self.H_l[idx])
        if teacher == "beacon" and c["beacon_loss"] == "mse":
            # The authors' J2: pull H^* onto the batch's beacon codes instead of the likelihood.
            guide_term = losses.quantization(h, self.H_b[idx], reduction="mean")
        else:
            guide_term = self._likelihood(h, self.H_l if teacher == "label" else self.H_b, ctx["s_all"])
        loss = (guide_term + float(c["gamma"]) * losses.quantization(h, b_l, reduction="mean")
                + float(c["eta"]) * self._label_loss(logits, ctx["y"])
                + self.modality_extra_loss(ctx, mod, f, h))
        return self.step(opt, loss)

    def gcn_phase(self, ctx: dict) -> float:
        """``L^GCN`` (Eq. 8) on the fused features of the batch; refresh the ``H^b`` buffer."""
        idx = ctx["idx"]
        with torch.no_grad():  # the GCN step updates the GCN only (the authors' var_list)
            fx = self.img(ctx["img"], self._hash_layer())[0]
            fy = self.txt(ctx["txt"], self._hash_layer())[0]
            fused = cross_modal_fusion(fx, fy, self.config["fusion_norm"])
        h_b, logits = self.gcn(fused, ctx["adj"])
        loss = self._likelihood(h_b, h_b, ctx["s_bb"]) + self._label_loss(logits, ctx["y"])
        value = self.step(self.opt_gcn, loss)
        with torch.no_grad():
            self.H_b[idx] = self.gcn(fused, ctx["adj"])[0]
        return value

    def train_step(self, batch, epoch: int, train: TrainData) -> dict:
        """Procedure 1 on one batch: ``L^l -> L^* (image, text) -> L^GCN -> L^*`` (see step_order)."""
        idx = np.asarray(batch, dtype=np.int64)
        y = train.label_batch(idx)
        s_all = train.similarity(idx, None)
        ctx = {"idx": torch.as_tensor(idx, device=self.H_l.device), "y": y, "s_all": s_all,
               "s_bb": s_all[:, idx], "img": train.image_batch(idx), "txt": train.text_batch(idx),
               "adj": label_adjacency(y, bool(self.config["self_loops"]))}
        out = {"loss_l": self.label_phase(ctx)}
        out["loss_x"] = self.modality_phase(ctx, "img", "label")
        out["loss_y"] = self.modality_phase(ctx, "txt", "label")
        out["loss_gcn"] = self.gcn_phase(ctx)
        out["loss_xb"] = self.modality_phase(ctx, "img", "beacon")
        out["loss_yb"] = self.modality_phase(ctx, "txt", "beacon")
        return out

    # ------------------------------------------------------------ Eq. 10
    def encode_images(self, x):
        return self.img(self.tensor(x), self._hash_layer())[1]

    def encode_texts(self, y):
        return self.txt(self.tensor(y), self._hash_layer())[1]


@register_method("gch-try1")
class GCHTry1(GCH):
    """GCH + intra-modal likelihood (T = 1/2 H^* H^*^T) and the label-code pull
    lambda sum S_ij ||H^l_i - H^*_j||^2 (reproduction Eq. 11).

    Everything of :class:`GCH`; ``L^*`` of each modality gains the likelihood of the batch's
    ``S`` under ``Gamma^* = 1/2 H^* H^*^T`` (weight ``intra``) and
    ``lambda * mean_ij S_ij ||H^l_i - H^*_j||^2`` over the batch (:func:`label_code_pull`).
    """

    defaults = {"lam": 0.1, "intra": 1.0}

    def modality_extra_loss(self, ctx, mod, f, h):
        c = self.config
        intra = self._likelihood(h, h, ctx["s_bb"])
        pull = label_code_pull(self.H_l[ctx["idx"]], h, ctx["s_bb"], reduction="mean")
        return float(c["intra"]) * intra + float(c["lam"]) * pull


@register_method("gch-try2")
class GCHTry2(GCH):
    """GCH + feature alignment ||f^x - f^y||^2 and one hash layer shared by both modalities (reproduction Eq. 12).

    Everything of :class:`GCH`, except that the image and text encoders map their features
    through the same hash layer (``self.hash``, stepped by both encoder optimisers), and ``L^*``
    gains ``delta * mean_i ||f^x_i - f^y_i||^2`` (:func:`feature_alignment`), the other
    modality's features held fixed during each encoder's step.
    """

    defaults = {"delta": 0.1}
    shared_hash = True

    def modality_extra_loss(self, ctx, mod, f, h):
        other, key = (self.txt, "txt") if mod == "img" else (self.img, "img")
        with torch.no_grad():
            f_other = other(ctx[key], self.hash)[0]
        return float(self.config["delta"]) * feature_alignment(f, f_other, reduction="mean")
