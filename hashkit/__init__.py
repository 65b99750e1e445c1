"""hashkit: cross-modal (image <-> text) hashing with compiled Hamming kernels.

Codes, search and metrics are importable at once; models, data and training load on first use
so that ``import hashkit`` stays light (no PyTorch import).
"""

from __future__ import annotations

import importlib

from ._version import __version__ as __version__

from .codefile import CodeFile, load_code_file, save_code_file  # noqa: E402
from .codes import Codes, load_codes, pack, save_codes, unpack  # noqa: E402
from .search import HammingIndex, RadiusResult, hamming, radius_search, topk  # noqa: E402

# Names re-exported from modules that are imported on first access.
_LAZY = {
    "mean_average_precision": "hashkit.metrics",
    "map_compat": "hashkit.metrics",
    "precision_at_k": "hashkit.metrics",
    "recall_at_k": "hashkit.metrics",
    "pr_curve_radius": "hashkit.metrics",
    "precision_within_radius": "hashkit.metrics",
    "ndcg_at_k": "hashkit.metrics",
    "acg_at_k": "hashkit.metrics",
    "report": "hashkit.metrics",
    "evaluate": "hashkit.eval",
    "MIHIndex": "hashkit.mih",
    # sub-modules, so that ``hashkit.metrics`` works after ``import hashkit`` alone
    "metrics": "hashkit.metrics",
    "data": "hashkit.data",
    "eval": "hashkit.eval",
}
_MODULES = ("metrics", "data", "eval")


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'hashkit' has no attribute {name!r}")
    mod = importlib.import_module(target)
    value = mod if target.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # The lazily imported names are part of the package's surface: show them.
    return sorted(set(globals()) | set(_LAZY))


def info() -> dict:
    """What was built and which kernels run (the same as ``hashkit info --json``)."""
    from .kernels import info as _info

    return _info()


# Functions and classes only: ``from hashkit import *`` must not bind module names (``eval``
# would shadow the builtin).
__all__ = ["Codes", "CodeFile", "pack", "unpack", "save_codes", "load_codes", "save_code_file",
           "load_code_file", "hamming", "topk", "radius_search", "RadiusResult", "HammingIndex",
           "info", *sorted(n for n in _LAZY if n not in _MODULES)]
