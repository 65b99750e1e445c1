"""Shared fixtures: one ``backend`` fixture over every kernel backend that can run here.

``backend`` is parametrised over the names ``hashkit.kernels.available()`` reports as usable
("cpp", "numba", and "cuda" only where a GPU backend loaded; the "cuda" case carries the ``gpu``
marker). It yields a :class:`Kernels` adapter: the kernel contract of docs/INTERNALS.md called
with NumPy arrays and returning NumPy arrays on every backend, so one test body checks every
backend.
"""

from __future__ import annotations

import pytest

from hashkit.kernels import _select as _backend

KERNELS = ("hamming", "topk", "radius", "hist_stats", "rank_stats")


def available_backends() -> list[str]:
    """Names of the kernel backends that loaded in this process, in ``_backend.NAMES`` order."""
    return [name for name, ok in _backend.available().items() if ok]


def _to_host(x):
    if isinstance(x, dict):
        return {k: _to_host(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_to_host(v) for v in x)
    if hasattr(x, "get") and type(x).__module__.split(".")[0] == "cupy":
        return x.get()
    if type(x).__module__.split(".")[0] == "torch":
        return x.detach().cpu().numpy()
    return x


class Kernels:
    """A backend's kernel functions with NumPy in and NumPy out."""

    def __init__(self, name: str):
        self.name = name
        self.module = _backend.get(name)

    def _call(self, fname, *args):
        # NumPy in, NumPy out on every backend (the CUDA backend copies host inputs to the device
        # itself); device outputs, should a backend return them, are brought back to the host.
        return _to_host(getattr(self.module, fname)(*args))

    def __getattr__(self, fname):
        if fname not in KERNELS:
            raise AttributeError(fname)
        return lambda *args: self._call(fname, *args)

    def __repr__(self) -> str:
        return f"Kernels({self.name!r})"


def _backend_params():
    return [pytest.param(name, id=name, marks=[pytest.mark.gpu] if name == "cuda" else [])
            for name in available_backends()]


@pytest.fixture(params=_backend_params())
def backend(request) -> Kernels:
    """Every available backend in turn, as a :class:`Kernels` adapter."""
    return Kernels(request.param)


@pytest.fixture
def cpu_backends() -> dict[str, Kernels]:
    """The CPU backends that loaded (``cpp``, ``numba``), by name."""
    return {n: Kernels(n) for n in available_backends() if n in ("cpp", "numba")}


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test: tiny networks gain nothing from threads, and on a
    loaded 2-core machine OpenMP's spinning makes them ten times slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
