"""CCA-ITQ: canonical correlation analysis followed by an iterative-quantisation rotation.

Yunchao Gong, Svetlana Lazebnik, Albert Gordo and Florent Perronnin, "Iterative Quantization:
A Procrustean Approach to Learning Binary Codes for Large-Scale Image Retrieval", IEEE TPAMI
35(12), 2013 (Sec. 2 ITQ, Sec. 4 CCA-ITQ), used in the cross-modal papers as an unsupervised
baseline: both modalities are projected onto their top-c canonical directions and a single
rotation R, shared by the two modalities, is learned by ITQ so that the codes
``sign((x - mu_x) W_x R)`` and ``sign((y - mu_y) W_y R)`` live in one Hamming space.

Closed form, NumPy/SciPy only (no gradients): the "training" is one step in the first epoch.

* CCA (TPAMI Eq. 12-13 via the usual whitening): with ridge-regularised covariances
  ``C_xx + r I``, ``C_yy + r I`` and cross-covariance ``C_xy``, take the SVD
  ``C_xx^-1/2 C_xy C_yy^-1/2 = U Sigma V^T``; ``W_x = C_xx^-1/2 U_c``, ``W_y = C_yy^-1/2 V_c``,
  optionally scaled by the canonical correlations ``Sigma_c^p`` (``scale_power``, TPAMI Sec. 4).
* ITQ (TPAMI Eq. 2-4): alternate ``B = sign(V R)`` and the orthogonal Procrustes step
  ``R = (U W^T)^T`` for ``svd(B^T V) = U Omega W^T``, where ``V`` stacks both modalities'
  projected training rows (one rotation for the two modalities).

Labels are never read (unsupervised): this is the floor every learned method must clear.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from . import register_method
from .base import Method, TrainData, sign


@register_method("cca-itq")
class CCAITQ(Method):
    """CCA-ITQ (Gong et al., TPAMI 2013): CCA projection + shared ITQ rotation; unsupervised, closed form."""

    defaults = {"epochs": 1, "batch_size": 0, "lr": 0.0, "reg": 1e-4, "itq_iters": 50,
                "scale_power": 1.0, "eval_every": 1}
    buffer_names = ("x_mean", "y_mean", "Wx", "Wy", "R")
    uses_torch = False
    supervised = False

    def build(self) -> None:
        if self.image_dim is None:
            raise ValueError("cca-itq: expected image features (image_dim), got a raw-pixel dataset")
        if self.nbits > min(self.image_dim, self.text_dim):
            raise ValueError(f"nbits: cca-itq needs nbits <= min(image_dim, text_dim) = "
                             f"{min(self.image_dim, self.text_dim)}, got {self.nbits}")
        self.x_mean = self.y_mean = self.Wx = self.Wy = self.R = None

    def batches(self, epoch: int, train: TrainData):
        return [None]

    def train_step(self, batch, epoch: int, train: TrainData):
        x = train.images.astype(np.float64)
        y = train.texts.astype(np.float64)
        self.x_mean, self.y_mean = x.mean(0), y.mean(0)
        x = x - self.x_mean
        y = y - self.y_mean
        self.Wx, self.Wy, corr = cca(x, y, self.nbits, reg=float(self.config["reg"]))
        p = float(self.config["scale_power"])
        if p:
            self.Wx, self.Wy = self.Wx * corr ** p, self.Wy * corr ** p
        v = np.concatenate([x @ self.Wx, y @ self.Wy], axis=0)
        self.R, qerr = itq_rotation(v, int(self.config["itq_iters"]), self.rng)
        return {"quantization_error": qerr, "mean_correlation": float(corr.mean())}

    def encode_images(self, x):
        return (np.asarray(x, np.float64) - self.x_mean) @ self.Wx @ self.R

    def encode_texts(self, y):
        return (np.asarray(y, np.float64) - self.y_mean) @ self.Wy @ self.R


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = scipy.linalg.eigh(c)
    return (v / np.sqrt(np.maximum(w, np.finfo(np.float64).tiny))) @ v.T


def cca(x: np.ndarray, y: np.ndarray, k: int, reg: float = 1e-4):
    """Top-``k`` canonical directions of centred ``x`` (n, dx) and ``y`` (n, dy).

    ``reg`` is relative: ``r = reg * trace(C) / d`` is added to each covariance's diagonal.

    Returns
    -------
    (W_x (dx, k), W_y (dy, k), correlations (k,)) with correlations in decreasing order.
    """
    n = x.shape[0]
    cxx = x.T @ x / n
    cyy = y.T @ y / n
    cxy = x.T @ y / n
    cxx += reg * np.trace(cxx) / cxx.shape[0] * np.eye(cxx.shape[0])
    cyy += reg * np.trace(cyy) / cyy.shape[0] * np.eye(cyy.shape[0])
    ix, iy = _inv_sqrt(cxx), _inv_sqrt(cyy)
    u, s, vt = np.linalg.svd(ix @ cxy @ iy, full_matrices=False)
    return ix @ u[:, :k], iy @ vt[:k].T, s[:k]


def itq_rotation(v: np.ndarray, iters: int, rng: np.random.Generator):
    """ITQ: an orthogonal ``R`` (k, k) minimising ``||sign(V R) - V R||_F^2``.

    Returns ``(R, final quantisation error per row)``; ``R`` starts from a random orthogonal
    matrix drawn with ``rng``.
    """
    k = v.shape[1]
    r, _ = np.linalg.qr(rng.standard_normal((k, k)))
    for _ in range(max(int(iters), 0)):
        b = sign(v @ r)
        u, _, wt = np.linalg.svd(b.T @ v)
        r = (u @ wt).T
    z = v @ r
    err = float(((sign(z) - z) ** 2).sum() / v.shape[0])
    return r, err
