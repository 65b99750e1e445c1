"""A dense graph-convolution layer (Kipf & Welling, ICLR 2017), as used by GCH."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GCNLayer", "normalize_adjacency"]


def normalize_adjacency(adj: torch.Tensor, add_self_loops: bool = False) -> torch.Tensor:
    """Symmetric normalisation ``D^-1/2 A D^-1/2`` with ``D = diag(A 1)``.

    Parameters
    ----------
    adj : torch.Tensor float (n, n)
        Non-negative (weighted) adjacency.
    add_self_loops : bool
        Use ``A + I`` instead of ``A`` (Kipf & Welling's renormalisation trick).

    Returns
    -------
    torch.Tensor float (n, n)
        Rows/columns of isolated nodes (degree 0) are all zero.

    Raises
    ------
    ValueError
        Not a square 2-D tensor, or negative entries.
    """
    if not isinstance(adj, torch.Tensor) or adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"adj: expected a square 2-D tensor, got "
                         f"{tuple(adj.shape) if isinstance(adj, torch.Tensor) else type(adj).__name__}")
    if bool((adj < 0).any()):
        raise ValueError("adj: expected non-negative weights, got negative entries")
    if add_self_loops:
        adj = adj + torch.eye(adj.shape[0], dtype=adj.dtype, device=adj.device)
    deg = adj.sum(dim=1)
    inv_sqrt = torch.where(deg > 0, deg.clamp_min(torch.finfo(adj.dtype).tiny).rsqrt(), torch.zeros_like(deg))
    return inv_sqrt[:, None] * adj * inv_sqrt[None, :]


class GCNLayer(nn.Module):
    """``H' = A_hat H W (+ b)`` with ``A_hat`` a normalised dense adjacency.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    normalize : bool
        If True (default) ``forward`` normalises the adjacency it receives with
        :func:`normalize_adjacency`; pass ``False`` when handing in a pre-normalised matrix.

    Examples
    --------
    >>> layer = GCNLayer(24, 64)
    >>> out = layer(torch.randn(24, 24).abs(), torch.randn(24, 24))   # (adj, features)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, normalize: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.normalize = normalize
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        a = normalize_adjacency(adj) if self.normalize else adj
        out = a @ (x @ self.weight)
        return out + self.bias if self.bias is not None else out
