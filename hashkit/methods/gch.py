"""GCH -- Graph Convolutional Network Hashing (Xu, Li, Yan, Deng, Liu, IJCAI 2019) and the two
variants of its reproduction, ``gch-try1`` (Eq. 11) and ``gch-try2`` (Eq. 12).

Notation: ``H^l`` semantic (label) encoder codes, ``H^x`` / ``H^y`` image / text codes (``H^*``
either), ``H^b`` the GCN's beacon codes, ``S`` the 0/1 label similarity, ``f^x`` / ``f^y`` the
encoders' feature layers, ``L`` the multi-hot labels, ``L^*_hat`` a network's predicted labels.
``alpha``, ``beta``, ``gamma`` are the paper's symbols (Eq. 3, 5, 8). Equations: the paper notes
in seeds/000 and seeds/001 (they agree).

Paper (default) and the authors' release (DeXie0808/GCH, TensorFlow), term by term; the
release's choices are options:

==============================  ===================================  ==================================
what                            paper (default here)                 release (option)
==============================  ===================================  ==================================
L^l (Eq. 3)                     alpha NLL + beta label               the same, NLL squared
                                                                     (``likelihood="squared"``)
quantisation in L^l             none                                 none (``quant`` > 0 adds one)
L^* (Eq. 5), both passes        alpha NLL(1/2 H^l H^*^T)             pass 1: anchor + label;
                                + beta ||H^b - H^*||^2               pass 2: ||H^b - H^*||^2 + anchor
                                + gamma label                        (``anchor`` > 0 adds the anchor)
anchor                          none                                 ``||H^* - sign(H^l)||^2``
inner product                   ``1/2 H_i^T H_j``                    ``H_i^T H_j`` (``theta_scale=1``)
graph (Eq. 7)                   ``A = L L^T + I``                    ``L L^T`` (``self_loops=false``)
fusion (Eq. 6)                  d x d, see cross_modal_fusion        b x b / max (``fusion="authors"``)
learning rates                  one Adam rate, constant              per network, halved every epoch
                                                                     (:attr:`GCH.AUTHORS_LR`)
==============================  ===================================  ==================================

The GCN in the release's reading does nothing: with the ``b x b`` max-normalised fusion every
fused row of a batch is nearly one vector (mean off-diagonal cosine 0.998-1.0, 20-80x the
feature norm), tanh saturates and all training items share one beacon code. Here the fusion
keeps items distinct (:func:`cross_modal_fusion`), a row LayerNorm puts the GCN input at one
scale, and beacon codes follow the label sets (``results.json`` reports their count).

Every term is averaged over its entries (the release's ``reduce_mean``), so the weights compare
per-entry means. Memory: the label similarity is formed per batch, ``(b, n)`` against the code
buffers of the whole training set and ``(b, b)`` inside the batch; the GCN runs on the batch's
affinity graph (``b x b``), as in the release, never on an ``n x n`` one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn

from .. import losses
from ..nn import CNNF, MLP, GCNLayer, normalize_adjacency
from . import register_method
from .base import Method, TrainData, lr_step_decay, make_optimizer, sign

__all__ = ["GCH", "GCHTry1", "GCHTry2", "label_adjacency", "cross_modal_fusion", "FUSIONS",
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


FUSIONS = ("feature", "batch", "authors")


def cross_modal_fusion(fx: torch.Tensor, fy: torch.Tensor, mode: str = "feature",
                       temperature: float = 0.1) -> torch.Tensor:
    """Self-attention fusion of paired features (GCH Eq. 6): ``f_r = 1/2 (f^x_sa + f^y_sa)``.

    The paper writes ``f^x_sa = f^x x W~`` and ``f^y_sa = f^y x W~`` with
    ``W~ = norm(f^x x f^y^T)``; for a batch stacked as rows (``f^x, f^y`` of shape ``(b, d)``)
    the two formulas do not type-check together, so every reading changes one of them:

    ``"feature"`` (default)
        ``W~ = C / ||C||_F`` with ``C = (f^x - mean f^x)^T (f^y - mean f^y)``, the ``(d, d)``
        cross-covariance of the batch, and ``f^*_sa = f^* W~`` as written. Each fused row is
        a linear map of its own item's features, so items stay distinct; centring keeps the
        positive mean of the LeakyReLU features from making ``C`` nearly rank one (uncentred,
        every fused row points one way: mean off-diagonal cosine 0.9998 on mfeat at
        initialisation, 0.35 centred), and the Frobenius norm makes ``W~`` a contraction.
    ``"batch"``
        A row-normalised ``(b, b)`` affinity acting from the left:
        ``W_ij = cos(f^x_i - mean, f^y_j - mean)``, ``f^x_sa = softmax(W^T / T) f^x``,
        ``f^y_sa = softmax(W / T) f^y`` (``T`` = ``temperature``). Rows are convex
        combinations of the batch: the features' scale is kept but items are averaged together
        (cosine 0.99 at initialisation on mfeat).
    ``"authors"``
        The release (DeXie0808/GCH ``GH_itpair.py``): ``W = f^x f^y^T`` ``(b, b)`` divided by
        its largest entry (``matrix_norm``), ``f^x_sa = W^T f^x``, ``f^y_sa = W f^y``. With
        positive-leaning features every row is nearly the same vector at 20-80x the feature
        norm (cosine 0.998-1.0): the GCN saturates and all training items end with one beacon.

    Parameters
    ----------
    fx, fy : torch.Tensor float (b, d)
        Image and text features of the same ``b`` items.
    mode : {"feature", "batch", "authors"}
    temperature : float
        ``"batch"`` only.

    Returns
    -------
    torch.Tensor float (b, d)

    Examples
    --------
    >>> cross_modal_fusion(torch.eye(2), torch.eye(2), "authors")
    tensor([[1., 0.],
            [0., 1.]])
    """
    if fx.ndim != 2 or fx.shape != fy.shape:
        raise ValueError(f"fx and fy: expected two 2-D tensors of one shape (b, d), got "
                         f"{tuple(fx.shape)} and {tuple(fy.shape)}")
    if mode == "feature":
        c = (fx - fx.mean(0, keepdim=True)).T @ (fy - fy.mean(0, keepdim=True))
        w = c / c.norm().clamp_min(1e-12)
        return 0.5 * (fx @ w + fy @ w)
    if mode == "batch":
        xc = Fn.normalize(fx - fx.mean(0, keepdim=True), dim=1)
        yc = Fn.normalize(fy - fy.mean(0, keepdim=True), dim=1)
        w = (xc @ yc.T) / float(temperature)
        return 0.5 * (torch.softmax(w.T, dim=1) @ fx + torch.softmax(w, dim=1) @ fy)
    if mode == "authors":
        w = fx @ fy.T
        w = w / w.abs().max().clamp_min(1e-12)
        return 0.5 * (w.T @ fx + w @ fy)
    raise ValueError(f"fusion: expected one of {', '.join(repr(m) for m in FUSIONS)}, got {mode!r}")


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

    Implements, with ``alpha``, ``beta``, ``gamma`` the paper's symbols (``S`` the label
    similarity, every term a per-entry mean):

    * Eq. 2-3, semantic encoder: ``L^l = alpha NLL(S | 1/2 H^l H^l^T) + beta ||L^l_hat - L||^2``;
    * Eq. 4-5, image and text encoders: ``L^* = alpha NLL(S | Gamma^{l*} = 1/2 H^l H^*^T)
      + beta ||H^b - H^*||^2 + gamma ||L^*_hat - L||^2`` in both ``L^*`` passes of procedure 1;
    * Eq. 6, the fusion (:func:`cross_modal_fusion`), then a row LayerNorm so that the GCN's
      input has the same scale whatever the features' (``gcn_input``);
    * Eq. 7-8, the GCN over ``A = L L^T + I`` (:func:`label_adjacency`), beacon codes ``H^b``:
      ``L^GCN = alpha NLL(S | 1/2 H^b H^b^T) + beta ||L^G_hat - L||^2``;
    * procedure 1, per batch ``L^l -> L^* -> L^GCN -> L^*``; the first ``L^*`` pass takes
      ``H^b`` from the GCN before its step, the second from the GCN after it (both held fixed:
      each step moves one network);
    * Eq. 10, codes of unseen items: ``sign`` of the encoders' hash heads.

    Options beside the paper (defaults in brackets): ``fusion`` ["feature"], "batch",
    "authors" (see :func:`cross_modal_fusion`); ``gcn_input`` ["layer_norm"], "none";
    ``anchor`` [0] weight of the release's ``||H^* - sign(H^l)||^2`` in both passes;
    ``quant`` [0] weight of ``||H^l - sign(H^l)||^2`` in ``L^l`` (in neither the paper nor
    the release); ``likelihood`` ["nll"], "squared" (the release squares each pair's
    log-likelihood); ``theta_scale`` [0.5] (release 1); ``self_loops`` [true] (release
    false); ``beacon_loss`` ["mse"] or "likelihood" (an earlier reading: no beacon term in the
    first pass, ``H^b`` in place of ``H^l`` inside the second pass's likelihood); per-network
    learning rates ``lr_lab``, ``lr_img``, ``lr_txt``, ``lr_gcn`` [0 = ``lr``] and
    ``lr_decay`` [1] (the release: 0.01, 1e-4, 0.01, 1e-3, halved every epoch:
    :attr:`AUTHORS_LR`). Ablations: ``gcn`` [true] (false: no fusion, no GCN step, no beacon
    term, no second ``L^*`` pass); ``teacher`` [true] (false: no semantic encoder; ``H^l`` in
    ``Gamma^{l*}`` is replaced by the other modality's codes, DCMH-style). Networks:
    ``embed_dim``, ``hidden_dim``, ``gcn_hidden``; ``backbone_weights`` (``imagenet-vgg-f.mat``
    for raw-pixel datasets; "" = random).
    """

    defaults = {
        "epochs": 30, "batch_size": 128, "lr": 1e-3, "weight_decay": 0.0, "lr_decay": 1.0,
        "lr_lab": 0.0, "lr_img": 0.0, "lr_txt": 0.0, "lr_gcn": 0.0,
        "embed_dim": 512, "hidden_dim": 1024, "gcn_hidden": 512,
        "alpha": 1.0, "beta": 1.0, "gamma": 1.0, "anchor": 0.0, "quant": 0.0,
        "likelihood": "nll", "theta_scale": 0.5, "self_loops": True,
        "fusion": "feature", "fusion_temperature": 0.1, "gcn_input": "layer_norm",
        "beacon_loss": "mse", "gcn": True, "teacher": True, "backbone_weights": "",
    }
    # mfeat (1,000 training pairs, 10 single-label classes): 40 epochs of 8 batches; MAP is
    # flat from about 30 epochs on.
    dataset_defaults: dict = {"mfeat": {"epochs": 40}}
    buffer_names = ("H_l", "H_b", "H_x", "H_y")
    #: The release's learning rates (DeXie0808/GCH ``setting.py``), each halved every epoch.
    AUTHORS_LR = {"lr_lab": 0.01, "lr_txt": 0.01, "lr_img": 1e-4, "lr_gcn": 1e-3, "lr_decay": 0.5}
    #: gch-try2 shares one hash layer between the image and text encoders.
    shared_hash = False
    #: gch-try1 replaces Gamma^{l*} by Gamma^* = 1/2 H^* H^*^T and needs the modality buffers.
    own_codes_likelihood = False

    _CHOICES = {"likelihood": ("nll", "squared"), "fusion": FUSIONS, "gcn_input": ("layer_norm", "none"),
                "beacon_loss": ("mse", "likelihood")}

    # ------------------------------------------------------------ networks
    def build(self) -> None:
        from .._validate import check_choice

        c = self.config
        for key, allowed in self._CHOICES.items():
            check_choice(c[key], allowed, f"config[{key!r}]")
        e = int(c["embed_dim"])
        own = not self._shares_hash()
        self.lab = _Branch(_mlp([self.nlabels, int(c["hidden_dim"]), e]), e, self.nbits, self.nlabels,
                           label_from_hash=True)
        self.img = _Branch(self._image_body(e), e, self.nbits, self.nlabels, own_hash=own)
        self.txt = _Branch(_mlp([self.text_dim, int(c["hidden_dim"]), e]), e, self.nbits, self.nlabels,
                           own_hash=own)
        if not own:
            self.hash = nn.Linear(e, self.nbits)
        self.gcn = _BeaconGCN([e, int(c["gcn_hidden"]), self.nbits], self.nlabels)
        self.H_l = self.H_b = self.H_x = self.H_y = None

    def _shares_hash(self) -> bool:
        return bool(self.config.get("shared_hash", self.shared_hash))

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
        return self.hash if self._shares_hash() else None

    def _branch_params(self, branch: _Branch) -> list:
        shared = list(self.hash.parameters()) if self._shares_hash() else []
        return list(branch.parameters()) + shared

    def _uses_modality_buffers(self) -> bool:
        return self.own_codes_likelihood or not self.config["teacher"]

    def setup(self, train: TrainData) -> None:
        c = self.config
        self.H_l = torch.zeros(train.n, self.nbits, device=self.device)
        self.H_b = torch.zeros(train.n, self.nbits, device=self.device)

        def adam(params, key):
            return make_optimizer(params, "adam", self._base_lr(key), c["weight_decay"])

        self.opt_lab = adam(self.lab.parameters(), "lr_lab")
        self.opt_img = adam(self._branch_params(self.img), "lr_img")
        self.opt_txt = adam(self._branch_params(self.txt), "lr_txt")
        self.opt_gcn = adam(self.gcn.parameters(), "lr_gcn")
        if self._uses_modality_buffers():
            # Gamma^* (gch-try1) or the teacher-free ablation pairs a batch with the codes of the
            # whole training set, kept as buffers (as DCMH's F and G) from the initial networks.
            self.train_mode(False)
            with torch.no_grad():
                rows = [np.arange(i, min(i + 1024, train.n)) for i in range(0, train.n, 1024)]
                self.H_x = torch.cat([self.img(train.image_batch(r), self._hash_layer())[1] for r in rows])
                self.H_y = torch.cat([self.txt(train.text_batch(r), self._hash_layer())[1] for r in rows])
            self.train_mode(True)

    def _base_lr(self, key: str) -> float:
        value = float(self.config[key])
        return value if value > 0 else float(self.config["lr"])

    def begin_epoch(self, epoch: int, train: TrainData) -> None:
        # The release halves every rate each epoch (decay 0.5); the paper gives no schedule, so
        # the default factor is 1 (constant).
        for key, opt in (("lr_lab", self.opt_lab), ("lr_img", self.opt_img), ("lr_txt", self.opt_txt),
                         ("lr_gcn", self.opt_gcn)):
            self.set_learning_rate(lr_step_decay(self._base_lr(key), self.config["lr_decay"], epoch), opt)

    # ------------------------------------------------------------ loss terms
    def _likelihood(self, h: torch.Tensor, guide: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of ``S`` under ``T = theta_scale * h guide^T``, per-entry mean."""
        scale = float(self.config["theta_scale"])
        if self.config["likelihood"] == "squared":
            # The release squares the log-likelihood of each pair (mse_criterion(S T, softplus T)).
            theta = losses.pairwise_theta(h, guide, scale)
            return ((s * theta - Fn.softplus(theta)) ** 2).mean()
        return losses.pairwise_likelihood(h, guide, s, scale=scale, reduction="mean")

    @staticmethod
    def _label_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((torch.sigmoid(logits) - y) ** 2).mean()

    def j1_guide(self, ctx: dict, mod: str, h: torch.Tensor) -> torch.Tensor:
        """The codes ``h`` is paired with in ``J1``: ``H^l`` (Eq. 5), the other modality's buffer
        (``teacher=false``) or, in gch-try1, the modality's own buffer with the batch rows
        replaced by ``h`` (detached)."""
        if self.config["teacher"] and not self.own_codes_likelihood:
            return self.H_l
        own = mod if self.own_codes_likelihood else ("txt" if mod == "img" else "img")
        buf = self.H_x if own == "img" else self.H_y
        if own == mod:
            buf = buf.clone()
            buf[ctx["idx"]] = h.detach()
        return buf

    def modality_terms(self, ctx: dict, mod: str, f: torch.Tensor, h: torch.Tensor, logits: torch.Tensor,
                       beacons: torch.Tensor | None, second_pass: bool) -> dict:
        """The unweighted terms of ``L^*`` for modality ``mod`` ("img" or "txt") on the batch.

        ``j1`` the likelihood term, ``beacon`` ``||H^b - H^*||^2``, ``label``, ``anchor``
        (``||H^* - sign(H^l)||^2``) and whatever :meth:`variant_terms` adds. Weights are
        applied by :meth:`modality_loss`.
        """
        c, idx = self.config, ctx["idx"]
        out = {"label": self._label_loss(logits, ctx["y"])}
        if c["beacon_loss"] == "likelihood" and second_pass:
            out["j1"] = self._likelihood(h, self.H_b, ctx["s_all"])
        else:
            out["j1"] = self._likelihood(h, self.j1_guide(ctx, mod, h), ctx["s_all"])
        if beacons is not None and c["beacon_loss"] == "mse":
            out["beacon"] = losses.quantization(h, beacons, reduction="mean")
        if float(c["anchor"]):
            out["anchor"] = losses.quantization(h, sign(self.H_l[idx]), reduction="mean")
        out.update(self.variant_terms(ctx, mod, f, h))
        return out

    def variant_terms(self, ctx: dict, mod: str, f: torch.Tensor, h: torch.Tensor) -> dict:
        """Terms a variant adds to ``L^*`` (name -> unweighted tensor). GCH adds none."""
        return {}

    def term_weights(self) -> dict:
        """Weight of each term of :meth:`modality_terms`."""
        c = self.config
        return {"j1": float(c["alpha"]), "beacon": float(c["beta"]), "label": float(c["gamma"]),
                "anchor": float(c["anchor"])}

    def modality_loss(self, terms: dict) -> torch.Tensor:
        w = self.term_weights()
        return sum(w[k] * v for k, v in terms.items())

    # ------------------------------------------------------------ the four phases
    def label_phase(self, ctx: dict) -> float:
        """``L^l`` (Eq. 3) on the batch; refresh the ``H^l`` buffer."""
        c, idx = self.config, ctx["idx"]
        _, h, logits = self.lab(ctx["y"])
        loss = (float(c["alpha"]) * self._likelihood(h, self.H_l, ctx["s_all"])
                + float(c["beta"]) * self._label_loss(logits, ctx["y"]))
        if float(c["quant"]):
            loss = loss + float(c["quant"]) * losses.quantization(h, sign(h.detach()), reduction="mean")
        value = self.step(self.opt_lab, loss)
        with torch.no_grad():
            self.H_l[idx] = self.lab(ctx["y"])[1]
        return value

    def modality_phase(self, ctx: dict, mod: str, beacons: torch.Tensor | None, second_pass: bool = False) -> float:
        """One step of ``L^*`` (Eq. 5) for ``mod`` against the batch's ``beacons`` (or none)."""
        branch, opt = (self.img, self.opt_img) if mod == "img" else (self.txt, self.opt_txt)
        f, h, logits = branch(ctx[mod], self._hash_layer())
        loss = self.modality_loss(self.modality_terms(ctx, mod, f, h, logits, beacons, second_pass))
        value = self.step(opt, loss)
        if self._uses_modality_buffers():
            with torch.no_grad():
                (self.H_x if mod == "img" else self.H_y)[ctx["idx"]] = h.detach()
        return value

    def fused_features(self, ctx: dict) -> torch.Tensor:
        """Eq. 6 on the batch (encoders in their current mode, no gradient), scaled for the GCN."""
        with torch.no_grad():
            fx = self.img(ctx["img"], self._hash_layer())[0]
            fy = self.txt(ctx["txt"], self._hash_layer())[0]
            fused = cross_modal_fusion(fx, fy, self.config["fusion"], float(self.config["fusion_temperature"]))
            if self.config["gcn_input"] == "layer_norm":
                # One scale for the GCN whatever the features' (the release's fused rows reach
                # 20-80x the feature norm and saturate tanh); a per-row map, items stay distinct.
                fused = Fn.layer_norm(fused, fused.shape[1:])
        return fused

    def gcn_phase(self, ctx: dict) -> float:
        """``L^GCN`` (Eq. 8) on the fused features of the batch; refresh the ``H^b`` buffer."""
        c, idx = self.config, ctx["idx"]
        fused = self.fused_features(ctx)  # the GCN step updates the GCN only (the release's var_list)
        h_b, logits = self.gcn(fused, ctx["adj"])
        loss = (float(c["alpha"]) * self._likelihood(h_b, h_b, ctx["s_bb"])
                + float(c["beta"]) * self._label_loss(logits, ctx["y"]))
        value = self.step(self.opt_gcn, loss)
        with torch.no_grad():
            self.H_b[idx] = self.gcn(fused, ctx["adj"])[0]
        return value

    def batch_context(self, idx, train: TrainData) -> dict:
        """Everything the phases of one batch share (labels, similarities, inputs, graph)."""
        idx = np.asarray(idx, dtype=np.int64)
        y = train.label_batch(idx)
        s_all = train.similarity(idx, None)
        return {"idx": torch.as_tensor(idx, device=self.H_l.device), "y": y, "s_all": s_all,
                "s_bb": s_all[:, idx], "img": train.image_batch(idx), "txt": train.text_batch(idx),
                "adj": label_adjacency(y, bool(self.config["self_loops"]))}

    def train_step(self, batch, epoch: int, train: TrainData) -> dict:
        """Procedure 1 on one batch: ``L^l -> L^* (image, text) -> L^GCN -> L^*``."""
        ctx = self.batch_context(batch, train)
        use_gcn = bool(self.config["gcn"])
        out = {}
        if self.config["teacher"]:
            out["loss_l"] = self.label_phase(ctx)
        beacons = None
        if use_gcn and self.config["beacon_loss"] == "mse":
            with torch.no_grad():
                beacons = self.gcn(self.fused_features(ctx), ctx["adj"])[0]
        out["loss_x"] = self.modality_phase(ctx, "img", beacons)
        out["loss_y"] = self.modality_phase(ctx, "txt", beacons)
        if use_gcn:
            out["loss_gcn"] = self.gcn_phase(ctx)
            beacons = self.H_b[ctx["idx"]]
            out["loss_xb"] = self.modality_phase(ctx, "img", beacons, second_pass=True)
            out["loss_yb"] = self.modality_phase(ctx, "txt", beacons, second_pass=True)
        return out

    def diagnostics(self, train: TrainData) -> dict:
        """Distinct beacon codes ``sign(H^b)`` over the training set, beside its label sets."""
        if not self.config["gcn"] or self.H_b is None:
            return {}
        from .diagnostics import distinct_rows

        return {"beacon_distinct": distinct_rows(self.H_b), "train_label_sets": distinct_rows(train.labels)}

    # ------------------------------------------------------------ Eq. 10
    def encode_images(self, x):
        return self.img(self.tensor(x), self._hash_layer())[1]

    def encode_texts(self, y):
        return self.txt(self.tensor(y), self._hash_layer())[1]


@register_method("gch-try1")
class GCHTry1(GCH):
    """GCH with Gamma^* = 1/2 H^* H^*^T in J1 and the pull lambda sum S_ij ||H^l_i - H^*_j||^2 (reproduction Eq. 11).

    ``J1`` pairs the batch's codes with the modality's own codes over the training set
    (a buffer refreshed every step, as DCMH's ``F`` and ``G``), replacing ``Gamma^{l*}``; the
    semantic encoder enters ``L^*`` only through ``lambda * mean_ij S_ij ||H^l_i - H^*_j||^2``
    over every training ``i`` and batch ``j`` (:func:`label_code_pull`). Everything else is
    :class:`GCH`'s (the ``beta`` beacon and ``gamma`` label terms of Eq. 11 included).
    """

    defaults = {"lam": 0.1}
    own_codes_likelihood = True

    def variant_terms(self, ctx, mod, f, h):
        if not float(self.config["lam"]):
            return {}
        return {"pull": label_code_pull(self.H_l, h, ctx["s_all"].T, reduction="mean")}

    def term_weights(self) -> dict:
        return {**super().term_weights(), "pull": float(self.config["lam"])}


@register_method("gch-try2")
class GCHTry2(GCH):
    """GCH + feature alignment ||f^x - f^y||^2 and one hash layer for both modalities (reproduction Eq. 12).

    The image and text encoders map their features through the same hash layer (``self.hash``,
    stepped by both encoders' optimisers; ``shared_hash=false`` gives each its own, for the
    ablation) and ``L^*`` gains ``delta * mean_i ||f^x_i - f^y_i||^2 / d``
    (:func:`feature_alignment`), the other modality's features held fixed during each
    encoder's step. The reproduction (seeds/001, sections 4.1.2 and 4.3) adds Eq. 12 to the
    encoders' loss and rewires ``img_net_itpair`` / ``txt_net_itpair`` into one hash layer.
    """

    defaults = {"delta": 0.1, "shared_hash": True}
    shared_hash = True

    def variant_terms(self, ctx, mod, f, h):
        if not float(self.config["delta"]):
            return {}
        other, key = (self.txt, "txt") if mod == "img" else (self.img, "img")
        with torch.no_grad():
            f_other = other(ctx[key], self._hash_layer())[0]
        # per-entry mean like every other term (mean over rows and feature dimensions): summed
        # over the 512 feature dimensions it outweighs the rest of L^* a hundredfold and
        # pulls the two encoders onto each other (mfeat 16 bits: MAP 0.64 instead of 0.88)
        return {"align": feature_alignment(f, f_other, reduction="mean") / f.shape[1]}

    def term_weights(self) -> dict:
        return {**super().term_weights(), "align": float(self.config["delta"])}
