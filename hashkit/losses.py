"""Loss terms shared by the cross-modal hashing papers, written once.

Notation (DCMH, Jiang & Li, CVPR 2017, Eq. 1-3): ``F`` and ``G`` are real-valued network
outputs of two modalities stacked as rows ``(n, c)``; ``S`` is the 0/1 semantic similarity
``(n_f, n_g)``; ``B`` the ±1 code matrix. Every function returns a scalar tensor and is
differentiable in its real-valued inputs.

* :func:`pairwise_likelihood`  ``sum_ij softplus(Theta_ij) - S_ij Theta_ij`` with
  ``Theta = scale * F G^T`` (DCMH Eq. 3, first term; the negative log-likelihood of
  ``p(S_ij = 1) = sigmoid(Theta_ij)``). ``softplus`` is the numerically stable form of
  ``log(1 + e^Theta)`` (no overflow for large Theta).
* :func:`quantization`          ``||B - H||_F^2`` (DCMH Eq. 3, gamma term).
* :func:`bit_balance`           ``||H^T 1 + r||^2`` (DCMH Eq. 3, eta term), where ``r`` holds the
  column sums of rows outside the batch, treated as constants (the authors' code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as Fn

__all__ = ["pairwise_likelihood", "quantization", "bit_balance", "pairwise_theta"]


def _reduce(x: torch.Tensor, reduction: str, name: str) -> torch.Tensor:
    if reduction == "sum":
        return x.sum()
    if reduction == "mean":
        return x.mean()
    raise ValueError(f"{name}: reduction: expected 'sum' or 'mean', got {reduction!r}")


def _check_2d(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D tensor, got shape {tuple(x.shape)}")


def pairwise_theta(f: torch.Tensor, g: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """Inner products ``Theta = scale * f @ g.T``, shape ``(n_f, n_g)``."""
    _check_2d(f, "f")
    _check_2d(g, "g")
    if f.shape[1] != g.shape[1]:
        raise ValueError(f"f and g: expected the same code length, got {f.shape[1]} and {g.shape[1]}")
    return scale * (f @ g.T)


def pairwise_likelihood(f: torch.Tensor, g: torch.Tensor, s: torch.Tensor, scale: float = 0.5,
                        reduction: str = "sum") -> torch.Tensor:
    """Negative log-likelihood of pairwise similarities (DCMH Eq. 3, first term).

    ``L = sum_ij [ log(1 + exp(Theta_ij)) - S_ij * Theta_ij ]``, ``Theta = scale * f g^T``,
    evaluated as ``softplus(Theta) - S * Theta`` so that large ``|Theta|`` neither overflows
    nor loses precision.

    Parameters
    ----------
    f : torch.Tensor float (n_f, c)
    g : torch.Tensor float (n_g, c)
    s : torch.Tensor float (n_f, n_g)
        Similarities in {0, 1} (soft values in [0, 1] are accepted).
    scale : float
        0.5 in DCMH/GCH (``Theta = 1/2 F^T G``).
    reduction : {"sum", "mean"}

    Returns
    -------
    torch.Tensor scalar

    Raises
    ------
    ValueError
        Shapes that do not match.

    Examples
    --------
    >>> f = torch.tensor([[1.0, -1.0]]); g = torch.tensor([[1.0, -1.0]])
    >>> float(pairwise_likelihood(f, g, torch.ones(1, 1)))   # log(1 + e) - 1
    0.31326...
    """
    theta = pairwise_theta(f, g, scale)
    if tuple(s.shape) != tuple(theta.shape):
        raise ValueError(f"s: expected shape {tuple(theta.shape)} (rows of f x rows of g), got {tuple(s.shape)}")
    return _reduce(Fn.softplus(theta) - s * theta, reduction, "pairwise_likelihood")


def quantization(h: torch.Tensor, b: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Quantisation loss ``||B - H||_F^2`` (DCMH Eq. 3, the gamma term).

    Parameters
    ----------
    h : torch.Tensor float (n, c)   real-valued outputs
    b : torch.Tensor float (n, c)   ±1 codes (no gradient flows into ``b`` in the papers)
    reduction : {"sum", "mean"}
    """
    _check_2d(h, "h")
    if tuple(b.shape) != tuple(h.shape):
        raise ValueError(f"b: expected shape {tuple(h.shape)} like h, got {tuple(b.shape)}")
    return _reduce((b - h) ** 2, reduction, "quantization")


def bit_balance(h: torch.Tensor, rest_sum: torch.Tensor | None = None) -> torch.Tensor:
    """Bit-balance loss ``||H^T 1 + r||^2`` (DCMH Eq. 3, the eta term).

    Each bit should be +1 on half of the training set and -1 on the other half, so the column
    sums of the whole output matrix are pushed to zero. With mini-batches, ``h`` is the batch
    and ``rest_sum`` the (constant) column sums of all other training rows.

    Parameters
    ----------
    h : torch.Tensor float (b, c)
    rest_sum : torch.Tensor float (c,), optional
    """
    _check_2d(h, "h")
    col = h.sum(dim=0)
    if rest_sum is not None:
        if tuple(rest_sum.shape) != (h.shape[1],):
            raise ValueError(f"rest_sum: expected shape ({h.shape[1]},), got {tuple(rest_sum.shape)}")
        col = col + rest_sum
    return (col ** 2).sum()
