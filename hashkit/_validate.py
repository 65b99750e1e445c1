"""Argument validation, in one place.

Every public function checks its arguments here, once, at the boundary, so that a message
always names the argument, what was expected and what arrived. Kernels below this layer may
assume validated input (the C++ bindings still re-check cheaply, so nothing can crash).

A leaf: this module imports nothing from hashkit (tests/test_imports.py checks it). The
validators of codes and labels, which need the packed format, are ``hashkit.codes.as_codes``
and ``as_labels``.
"""

from __future__ import annotations

import numbers
import operator
import sys
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "array_kind", "describe", "to_numpy", "check_k", "check_radius", "check_nthreads",
    "check_choice", "check_same_nbits", "check_count", "check_int", "check_ks",
    "check_positive_int", "check_topk_out", "check_device", "check_bool",
]


def array_kind(x: Any) -> str:
    """Return ``"numpy"``, ``"torch"``, ``"cupy"`` or ``"other"`` without importing torch/cupy."""
    if isinstance(x, np.ndarray):
        return "numpy"
    mod = type(x).__module__.split(".")[0]
    if mod == "torch" and "torch" in sys.modules:
        return "torch"
    if mod == "cupy" and "cupy" in sys.modules:
        return "cupy"
    return "other"


def describe(x: Any) -> str:
    """A short description of what arrived, for error messages."""
    kind = array_kind(x)
    if kind in ("numpy", "torch", "cupy"):
        dev = ""
        if kind == "torch":
            dev = f" on {x.device}"
        elif kind == "cupy":
            dev = " on cuda"
        return f"{kind} array of dtype {x.dtype} and shape {tuple(x.shape)}{dev}"
    if isinstance(x, (list, tuple)):
        return f"{type(x).__name__} of length {len(x)}"
    return f"{type(x).__name__} {x!r}" if isinstance(x, (numbers.Number, str)) else type(x).__name__


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Return a NumPy view or copy of an array-like (NumPy, PyTorch on any device, CuPy, lists)."""
    kind = array_kind(x)
    if kind == "numpy":
        return x
    if kind == "torch":
        t = x.detach().cpu()
        if str(t.dtype) in ("torch.bfloat16", "torch.float16"):
            t = t.float()  # NumPy has no bfloat16; float32 holds every bfloat16/float16 value exactly
        try:
            return t.numpy()
        except (TypeError, RuntimeError) as exc:  # dtypes NumPy lacks (complex32, float8, quantised)
            raise TypeError(f"{name}: expected a PyTorch tensor of a NumPy-compatible dtype, got "
                            f"{describe(x)} ({exc})") from None
    if kind == "cupy":
        return x.get()
    if isinstance(x, (list, tuple)) or np.isscalar(x) or hasattr(x, "__array__"):
        try:
            return np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name}: expected an array, got {describe(x)} ({exc})") from None
    raise TypeError(f"{name}: expected a NumPy, PyTorch or CuPy array, got {describe(x)}")


def check_int(x: Any, name: str, *, min_value: int | None = None, max_value: int | None = None,
              what: str = "an integer") -> int:
    """Return ``x`` as a Python int after checking type and range."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name}: expected {what}, got {describe(x)}")
    x = int(x)
    if min_value is not None and x < min_value or max_value is not None and x > max_value:
        lo = "-inf" if min_value is None else min_value
        hi = "inf" if max_value is None else max_value
        raise ValueError(f"{name}: expected {what} in [{lo}, {hi}], got {x}")
    return x


def check_positive_int(x: Any, name: str) -> int:
    return check_int(x, name, min_value=1, what="a positive integer")


def check_k(k: Any, n: int, name: str = "k") -> int:
    """A result count: an integer in ``[1, n]`` where ``n`` is the database size."""
    k = check_int(k, name, what=f"an integer between 1 and the database size {n}")
    if not 1 <= k <= n:
        raise ValueError(f"{name}: expected an integer between 1 and the database size {n}, got {k}")
    return k


def check_ks(ks: Any, n: int, name: str = "ks") -> np.ndarray:
    """One or more cut-offs in ``[1, n]``; returns them sorted, unique, as int64."""
    arr = np.atleast_1d(to_numpy(ks, name))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected one or more integer cut-offs, got {describe(ks)}")
    if not np.issubdtype(arr.dtype, np.integer):
        # whole floats are cut-offs too; cast only after the range check (1e300 would not fit)
        if not (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr))
                and np.all(arr == np.round(arr))):
            raise TypeError(f"{name}: expected integer cut-offs, got {describe(arr)}")
    if arr.min() < 1 or arr.max() > n:
        raise ValueError(f"{name}: expected cut-offs between 1 and the database size {n}, "
                         f"got values from {arr.min()} to {arr.max()}")
    return np.unique(arr.astype(np.int64))


def check_topk_out(out: Any, q_n: int, k: int, name: str = "out") -> tuple[np.ndarray, np.ndarray]:
    """``out=(dist, idx)`` for a top-k: NumPy int32 and int64 arrays of shape ``(Q, k)``,
    C-contiguous, writeable, not sharing memory (they are written in place)."""
    want = f"a tuple (dist, idx) of NumPy arrays: int32 and int64, shape ({q_n}, {k}), C-contiguous, writeable"
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"{name}: expected {want}, got {describe(out)}")
    for part, arr, dtype in (("dist", out[0], np.int32), ("idx", out[1], np.int64)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} ({part}): expected a NumPy {np.dtype(dtype).name} array, got {describe(arr)}")
        if arr.dtype != dtype:
            raise TypeError(f"{name} ({part}): expected dtype {np.dtype(dtype).name}, got {arr.dtype}")
        if arr.shape != (q_n, k):
            raise ValueError(f"{name} ({part}): expected shape ({q_n}, {k}), got {arr.shape}")
        if not arr.flags.c_contiguous or not arr.flags.writeable:
            raise ValueError(f"{name} ({part}): expected a C-contiguous, writeable array, got "
                             f"{'a read-only' if not arr.flags.writeable else 'a non-contiguous'} one")
    if np.may_share_memory(out[0], out[1]):
        raise ValueError(f"{name}: dist and idx must not share memory")
    return out[0], out[1]


def check_radius(r: Any, name: str = "r", nbits: int | None = None) -> int:
    """A Hamming radius (inclusive: items at distance <= r), with ``nbits`` clamped to it.

    One rule on every backend (issue 14): any non-negative integer of any size is accepted
    (anything with ``__index__`` except a bool, so NumPy integers and 0-d integer arrays too);
    ``r >= nbits`` selects every item, so with ``nbits`` given the result is ``min(r, nbits)``
    (``2**64`` is a valid radius, not an overflow). The C++ binding's ``take_radius``
    (csrc/bindings.cpp) applies the same rule with the same messages.
    """
    if isinstance(r, (bool, np.bool_)) or not hasattr(type(r), "__index__"):
        raise TypeError(f"{name}: expected a non-negative integer radius, got {describe(r)}")
    try:
        r = operator.index(r)
    except TypeError:  # e.g. a 0-d float array: __index__ exists but refuses
        raise TypeError(f"{name}: expected a non-negative integer radius, got {describe(r)}") from None
    if r < 0:
        raise ValueError(f"{name}: expected a non-negative integer radius, got {r}")
    return r if nbits is None else min(r, nbits)


def check_nthreads(nthreads: Any, name: str = "nthreads") -> int:
    """``None`` or 0 means every core; otherwise a positive integer."""
    if nthreads is None:
        return 0
    return check_int(nthreads, name, min_value=0, what="None or a non-negative integer")


def check_bool(value: Any, name: str) -> bool:
    """A flag: ``True`` or ``False`` (NumPy bools too); never a truthy string, array or tensor."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {describe(value)}")
    return bool(value)


def check_choice(value: Any, allowed: Iterable[str], name: str) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        # describe(), not repr(): an array's repr spans lines, and a message is one line
        got = repr(value) if isinstance(value, str) else describe(value)
        raise ValueError(f"{name}: expected one of {', '.join(repr(a) for a in allowed)}, got {got}")
    return value


def check_count(n_a: int, n_b: int, names: Sequence[str]) -> None:
    """Two arrays that must describe the same items (codes and their labels)."""
    if n_a != n_b:
        raise ValueError(f"{names[0]} and {names[1]}: expected the same number of rows, "
                         f"got {n_a} and {n_b}")


def check_same_nbits(a, b, names: Sequence[str]) -> None:
    """Query and database codes must have the same length."""
    if a.nbits != b.nbits:
        raise ValueError(f"{names[0]} and {names[1]}: expected codes of the same length, "
                         f"got {a.nbits} and {b.nbits} bits")


def check_device(device: Any, name: str = "device") -> str:
    """A torch device string: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, available here (torch imported
    only for CUDA)."""
    dev = str(device)
    check_choice(dev.split(":")[0], ("cpu", "cuda"), name)
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"{name}: expected an available device, got {dev!r} but torch sees no CUDA GPU")
    return dev
