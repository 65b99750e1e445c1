"""Kernel implementations and the choice between them.

The compiled modules are imported here and nowhere else; when an import fails, the reason is
kept so that asking for that backend explicitly (or ``hashkit info``) can quote it.

Backends, in the order ``"auto"`` prefers them for host (NumPy) codes:

- ``"cpp"``: ``hashkit._core``, C++ with SIMD paths chosen at run time;
- ``"numba"``: ``hashkit.kernels._numba``, the same contract JIT-compiled; identical results;
- ``"cuda"``: ``hashkit.kernels._cuda`` over ``hashkit._cuda``; chosen by ``"auto"`` only for
  device-resident codes (a PyTorch CUDA tensor or a CuPy array).

``HASHKIT_BACKEND`` (``cpp`` / ``numba``) overrides what ``"auto"`` picks for host codes; it
never overrides an explicit request. The placement policy as a whole is written down in
``hashkit/kernels/__init__.py``; :func:`resolve` is where it is decided.
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings
from types import ModuleType

__all__ = ["get", "available", "reasons", "info", "resolve", "NAMES"]

NAMES = ("cpp", "numba", "cuda")
_MODULES = {"cpp": "hashkit._core", "numba": "hashkit.kernels._numba", "cuda": "hashkit.kernels._cuda"}

_lock = threading.Lock()
_loaded: dict[str, ModuleType] = {}
_failed: dict[str, str] = {}
_warned_host_fallback = False


def _load(name: str) -> ModuleType | None:
    if name in _loaded:
        return _loaded[name]
    if name in _failed:
        return None
    with _lock:
        if name in _loaded or name in _failed:
            return _loaded.get(name)
        try:
            mod = importlib.import_module(_MODULES[name])
            ok = getattr(mod, "AVAILABLE", True)
            if not ok:
                raise ImportError(getattr(mod, "REASON", f"{_MODULES[name]} reports it is unavailable"))
            _loaded[name] = mod
            return mod
        except Exception as exc:  # any import-time failure is a reason to record, not to crash
            _failed[name] = f"{type(exc).__name__}: {exc}".strip()
            return None


def available() -> dict[str, bool]:
    """Which backends can run here: ``{"cpp": bool, "numba": bool, "cuda": bool}``."""
    return {n: _load(n) is not None for n in NAMES}


def reasons() -> dict[str, str]:
    """Why each missing backend is missing (empty for those that loaded)."""
    available()
    return dict(_failed)


def resolve(backend: str = "auto", device: bool = False) -> str:
    """The backend name that ``backend`` stands for, for host (``device=False``) or device codes.

    ``"auto"`` for device codes is ``"cuda"`` when it can run, else the host backend, with a
    ``RuntimeWarning`` (once per process) saying that the codes are copied to the host and why.

    Raises
    ------
    ValueError
        Unknown backend name (also for a bad ``HASHKIT_BACKEND``).
    RuntimeError
        The requested backend is not available; the message quotes why.
    """
    if backend not in ("auto",) + NAMES:
        raise ValueError(f"backend: expected one of 'auto', 'cpp', 'numba', 'cuda', got {backend!r}")
    if backend == "auto":
        if device and _load("cuda") is not None:
            backend = "cuda"
        else:
            if device:
                _warn_host_fallback()
            env = os.environ.get("HASHKIT_BACKEND", "").strip().lower()
            if env:
                if env not in ("cpp", "numba"):
                    raise ValueError(f"HASHKIT_BACKEND: expected 'cpp' or 'numba', got {env!r}")
                backend = env
            else:
                backend = "cpp" if _load("cpp") is not None else "numba"
    if _load(backend) is None:
        why = _failed.get(backend, "unknown reason")
        hint = {"cpp": "reinstall hashkit so that its C++ extension is compiled (pip install .)",
                "numba": "pip install numba",
                "cuda": "build hashkit on a machine with nvcc (HASHKIT_CUDA=ON) and run it where a GPU is visible"}
        raise RuntimeError(f"backend {backend!r} is not available: {why}. To get it: {hint[backend]}.")
    return backend


def _warn_host_fallback() -> None:
    global _warned_host_fallback
    if _warned_host_fallback:
        return
    _warned_host_fallback = True
    warnings.warn("hashkit: device codes but no usable CUDA backend "
                  f"({_failed.get('cuda', 'unknown reason')}); copying them to the host and running "
                  "there (pass backend='cuda' to make this an error; this warning is shown once)",
                  RuntimeWarning, stacklevel=4)


def get(backend: str = "auto", device: bool = False) -> ModuleType:
    """The module implementing the kernel contract (:class:`hashkit.kernels.KernelBackend`)."""
    return _loaded[resolve(backend, device)]


def info() -> dict:
    """What was built and what runs: for ``hashkit info`` and bug reports."""
    from .._version import __version__

    out: dict = {"version": __version__, "backends": {}, "default": None}
    for n in NAMES:
        mod = _load(n)
        entry: dict = {"available": mod is not None}
        if mod is None:
            entry["reason"] = _failed.get(n, "")
        else:
            for attr in ("simd_path", "build_info", "device_info", "threading_layer"):
                fn = getattr(mod, attr, None)
                if callable(fn):
                    try:
                        entry[attr] = fn()
                    except Exception as exc:  # report, do not fail the info command
                        entry[attr] = f"error: {exc}"
        out["backends"][n] = entry
    try:
        out["default"] = resolve("auto")
    except (RuntimeError, ValueError) as exc:
        out["default"] = f"none ({exc})"
    out["cpu_count"] = os.cpu_count()
    return out


def format_info(d: dict) -> str:
    lines = [f"hashkit {d['version']}", f"default backend (host codes): {d['default']}"]
    for n, e in d["backends"].items():
        if e["available"]:
            extra = ", ".join(f"{k}={v}" for k, v in e.items() if k != "available")
            lines.append(f"  {n:6s} available" + (f"  ({extra})" if extra else ""))
        else:
            lines.append(f"  {n:6s} missing: {e.get('reason', '')}")
    lines.append(f"cpu cores: {d['cpu_count']}")
    return "\n".join(lines)


def add_info_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_info(args) -> int:
    import json

    d = info()
    print(json.dumps(d, indent=2, default=str) if args.json else format_info(d))
    return 0
