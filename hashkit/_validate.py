"""Argument validation, in one place.

Every public function checks its arguments here, once, at the boundary, so that a message
always names the argument, what was expected and what arrived. Kernels below this layer may
assume validated input (the C++ bindings still re-check cheaply, so nothing can crash).
"""

from __future__ import annotations

import numbers
import sys
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "array_kind", "describe", "to_numpy", "as_codes", "as_labels", "check_k", "check_radius",
    "check_nthreads", "check_choice", "check_same_nbits", "check_count", "check_int",
    "check_ks", "check_positive_int",
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


def is_device_array(x: Any) -> bool:
    """True for a CUDA-resident PyTorch tensor or any CuPy array."""
    kind = array_kind(x)
    if kind == "torch":
        return bool(x.is_cuda)
    return kind == "cupy"


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
        return x.detach().cpu().numpy()
    if kind == "cupy":
        return x.get()
    if isinstance(x, (list, tuple)) or np.isscalar(x):
        try:
            return np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name}: expected an array, got {describe(x)} ({exc})") from None
    if hasattr(x, "__array__"):
        return np.asarray(x)
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
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
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


def check_radius(r: Any, name: str = "r") -> int:
    """A Hamming radius: an integer >= 0 (inclusive: items at distance <= r)."""
    return check_int(r, name, min_value=0, what="a non-negative integer radius")


def check_nthreads(nthreads: Any, name: str = "nthreads") -> int:
    """``None`` or 0 means every core; otherwise a positive integer."""
    if nthreads is None:
        return 0
    return check_int(nthreads, name, min_value=0, what="None or a non-negative integer")


def check_choice(value: Any, allowed: Iterable[str], name: str) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
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


def as_codes(x: Any, name: str, nbits: int | None = None):
    """Return :class:`hashkit.Codes` for codes in any accepted form.

    Accepted: a ``Codes``; a 2-D ``uint64`` array of packed words (``nbits`` defaults to
    64 * words); any other 2-D numeric or bool array of shape ``(n, nbits)`` holding ±1,
    {0, 1} or real values (bit = value > 0) from NumPy, PyTorch (CPU or CUDA) or CuPy.

    Raises
    ------
    TypeError
        Not an array, or an unsupported dtype.
    ValueError
        Wrong number of dimensions, no rows, NaN values, or ``nbits`` inconsistent with the words.
    """
    from .codes import Codes, pack

    if isinstance(x, Codes):
        if nbits is not None and x.nbits != nbits:
            raise ValueError(f"{name}: expected codes of {nbits} bits, got {x.nbits}")
        if x.n == 0:
            raise ValueError(f"{name}: expected at least one code, got 0")
        return x
    return pack(x, nbits=nbits, name=name)


def as_labels(x: Any, name: str, n: int | None = None) -> tuple[np.ndarray, int]:
    """Pack multi-hot labels into uint64 words (the caller's array is never modified).

    Accepted: a 2-D {0, 1} / bool array ``(n, nlabels)`` (any numeric dtype holding only 0 and
    1), or a 1-D array of non-negative integer class ids (turned into one-hot rows).

    Returns
    -------
    (packed, nlabels): ``uint64 (n, ceil(nlabels/64))`` and the number of labels.

    Raises
    ------
    TypeError, ValueError
        Wrong dtype or shape, values other than 0/1 (or negative class ids), NaN, or a row count
        different from ``n``.
    """
    from .codes import pack_bits

    arr = to_numpy(x, name)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name}: expected a numeric or bool label array, got {describe(x)}")
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name}: a 1-D label array must hold integer class ids, got {describe(x)}")
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name}: class ids must be >= 0, got minimum {arr.min()}")
        nl = int(arr.max()) + 1 if arr.size else 1
        onehot = np.zeros((arr.shape[0], nl), dtype=np.uint8)
        onehot[np.arange(arr.shape[0]), arr] = 1
        arr = onehot
    elif arr.ndim != 2:
        raise ValueError(f"{name}: expected multi-hot labels of shape (n, nlabels), got {describe(x)}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one row of labels, got 0")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one label column, got shape {tuple(arr.shape)}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows of labels (one per code), got {arr.shape[0]}")
    if arr.dtype == np.bool_:
        return pack_bits(arr), int(arr.shape[1])
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise ValueError(f"{name}: labels contain NaN")
    # Unsigned integers hold only 0 and 1 iff their maximum is at most 1 (one pass, no
    # temporaries: this check and the packing were most of MAP's fixed cost per call).
    if np.issubdtype(arr.dtype, np.unsignedinteger) and arr.size and arr.max() <= 1:
        return pack_bits(arr.view(np.bool_) if arr.dtype == np.uint8 else arr != 0), int(arr.shape[1])
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        vals = np.unique(arr[bad])[:5]
        raise ValueError(f"{name}: expected labels of 0 and 1 only, got values such as {vals.tolist()}")
    return pack_bits(arr != 0), int(arr.shape[1])
