"""Shared network parts: CNN backbones, MLP heads, BoW text networks, a dense GCN layer.

Methods compose these instead of defining their own copies.
"""

from .backbones import AlexNet, CNNF, load_cnnf_matconvnet
from .gcn import GCNLayer, normalize_adjacency
from .heads import MLP, TextMLP

__all__ = ["AlexNet", "CNNF", "load_cnnf_matconvnet", "GCNLayer", "normalize_adjacency", "MLP", "TextMLP"]
