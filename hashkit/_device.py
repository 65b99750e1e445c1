"""Device strings for training and encoding: ``cpu``, ``cuda``, ``cuda:N``, ``auto``."""

from __future__ import annotations

import re
from typing import Any

from ._validate import check_device

__all__ = ["resolve_device"]


def resolve_device(device: Any = "cpu", name: str = "device") -> str:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` -> the device string a run records.

    ``auto`` is ``cuda:0`` when torch sees a GPU, else ``cpu``; ``cuda`` is ``cuda:0``.

    Raises
    ------
    ValueError
        Another spelling, no CUDA GPU for ``cuda``, or ``cuda:N`` beyond the GPUs torch sees.
    """
    dev = str(device).strip().lower()
    if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", dev):
        raise ValueError(f"{name}: expected cpu, cuda, cuda:N or auto, got {device!r}")
    if dev == "cpu":
        return "cpu"
    import torch

    if dev == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    check_device(dev, name)
    index = int(dev.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"{name}: expected one of cuda:0 .. cuda:{count - 1} (torch sees {count} GPU"
                         f"{'s' if count != 1 else ''}), got {device!r}")
    return f"cuda:{index}"
