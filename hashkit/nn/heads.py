"""MLP heads for precomputed features and the BoW text networks of the papers."""

from __future__ import annotations

from typing import Sequence

from torch import nn

__all__ = ["MLP", "TextMLP"]

_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}


def _act(name: str | None, leaky_slope: float = 0.01) -> nn.Module | None:
    if name is None:
        return None
    if name not in _ACT:
        raise ValueError(f"activation: expected one of {', '.join(sorted(_ACT))} or None, got {name!r}")
    if name == "leaky_relu":
        return nn.LeakyReLU(leaky_slope)
    return _ACT[name]()


class MLP(nn.Sequential):
    """Fully connected layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Hidden layers use ``activation`` (and ``dropout`` after it when > 0); the last layer is
    linear unless ``final_activation`` is given (``"tanh"`` for relaxed codes). With
    ``batch_norm`` every layer that has an activation is Linear -> BatchNorm1d -> activation
    (GCH's feature layers: ``MLP(dims, "leaky_relu", final_activation="leaky_relu",
    batch_norm=True, leaky_slope=0.2)``).

    Parameters
    ----------
    sizes : sequence of int, length >= 2
    activation : str, default "relu"
    dropout : float, default 0
    final_activation : str or None
    batch_norm : bool, default False
    leaky_slope : float, default 0.01
        Negative slope of ``"leaky_relu"`` (PyTorch's default).

    Examples
    --------
    >>> head = MLP([4096, 512, 32])        # image features -> 32 real outputs
    >>> head(torch.zeros(2, 4096)).shape
    torch.Size([2, 32])
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", dropout: float = 0.0,
                 final_activation: str | None = None, batch_norm: bool = False,
                 leaky_slope: float = 0.01):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes: expected at least two positive layer sizes, got {sizes}")
        _act(activation), _act(final_activation)  # validate both even when a layer does not use one
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            last = i == len(sizes) - 2
            act = _act(final_activation if last else activation, leaky_slope)
            if act is not None:
                if batch_norm:
                    layers.append(nn.BatchNorm1d(b))
                layers.append(act)
            if not last and dropout > 0:
                layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
        self.sizes = sizes


class TextMLP(MLP):
    """The DCMH text network: bag-of-words ``text_dim -> hidden (ReLU) -> nbits`` (linear).

    DCMH (Jiang & Li, CVPR 2017, Sec. 3.1) uses one hidden layer of 8192 units; GCH and DAPH
    use the same shape with their own widths.
    """

    def __init__(self, text_dim: int, nbits: int, hidden: int | Sequence[int] = 8192,
                 dropout: float = 0.0, final_activation: str | None = None):
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        super().__init__([text_dim, *hidden, nbits], activation="relu", dropout=dropout,
                         final_activation=final_activation)
