"""Every kernel backend implements :class:`hashkit.kernels.KernelBackend` exactly.

The contract is code, not prose: each backend that loads here, and the CUDA backend's Python
module even where no GPU exists, must expose every function of the protocol with the same
parameter names, order and defaults.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from hashkit.kernels import KernelBackend
from hashkit.kernels import _select

FUNCTIONS = [n for n, v in vars(KernelBackend).items() if inspect.isfunction(v) and not n.startswith("_")]


def _params(fn) -> list[tuple[str, str | None]]:
    """[(name, repr(default) or None)], for Python functions and pybind11 builtins alike."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        return [(p.name, None if p.default is inspect.Parameter.empty else repr(p.default))
                for p in sig.parameters.values() if p.name != "self"]
    # pybind11: the first docstring line is "name(a: object, b: object = 0, ...) -> type"
    first = (fn.__doc__ or "").splitlines()[0]
    inner = first[first.index("(") + 1: first.rindex(")")]
    out = []
    for part in filter(None, (s.strip() for s in inner.split(","))):
        m = re.match(r"(\w+)\s*(?::\s*[^=]+)?(?:=\s*(.+))?$", part)
        out.append((m.group(1), None if m.group(2) is None else m.group(2).strip()))
    return out


EXPECTED = {n: _params(getattr(KernelBackend, n)) for n in FUNCTIONS}


def test_protocol_lists_the_five_kernels():
    assert set(FUNCTIONS) == {"hamming", "topk", "radius", "hist_stats", "rank_stats"}
    assert ("out", "None") in EXPECTED["topk"]


def _modules():
    out = []
    for name in _select.NAMES:
        if _select.available()[name]:
            out.append(pytest.param(_select.get(name), id=name))
    # The CUDA backend's Python side imports without a GPU (and without hashkit._cuda built).
    out.append(pytest.param(importlib.import_module("hashkit.kernels._cuda"), id="cuda-python"))
    return out


@pytest.mark.parametrize("module", _modules())
@pytest.mark.parametrize("fname", FUNCTIONS)
def test_backend_matches_protocol(module, fname):
    fn = getattr(module, fname, None)
    assert callable(fn), f"{module.__name__} lacks {fname}"
    assert _params(fn) == EXPECTED[fname], f"{module.__name__}.{fname}"


@pytest.mark.parametrize("module", _modules())
def test_backend_is_a_kernel_backend(module):
    assert isinstance(module, KernelBackend)


def test_core_stub_matches_the_module():
    """hashkit/_core.pyi declares exactly what the compiled module exports."""
    core = pytest.importorskip("hashkit._core")
    from pathlib import Path

    import hashkit

    import ast

    stub = ast.parse((Path(hashkit.__file__).parent / "_core.pyi").read_text())
    declared = {f.name: [a.arg for a in f.args.args] for f in stub.body if isinstance(f, ast.FunctionDef)}
    exported = {n for n in dir(core) if not n.startswith("_")}
    assert set(declared) == exported
    for fname in FUNCTIONS:
        assert declared[fname] == [n for n, _ in EXPECTED[fname]], fname
