"""Binary codes in one canonical form: :class:`Codes`, pack/unpack, and the checks of codes and labels.

In memory, ``n`` codes of ``nbits`` bits are a C-contiguous ``uint64`` array of shape
``(n, ceil(nbits / 64))``: bit ``j`` lives in word ``j // 64`` at bit ``j % 64`` (least
significant first) and padding bits are zero. :class:`Codes` holds that array (NumPy, or a
PyTorch CUDA tensor / CuPy array for device-resident codes) with ``nbits`` beside it.

Packing rule: **bit = value > 0**. A ±1 code's -1 becomes 0 and +1 becomes 1; a {0, 1} code
maps to itself; a 0 produced by ``sign(0)`` becomes bit 0, exactly like -1 (the research code's
``0.5 * (K - b @ B.T)`` distance is not an integer in that case; hashkit's distance is).

This module does not import torch or cupy; it recognises their arrays by type. The code-file
formats of the field (``.mat`` / ``.npz`` with ``qB``/``rB``-style keys) are in
:mod:`hashkit.codefile`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import _validate as V
from ._io import atomic_path, read_npz

__all__ = ["Codes", "pack", "unpack", "from_bytes", "pack_bits", "save_codes", "load_codes", "as_codes",
           "as_labels"]

if sys.byteorder != "little":  # pragma: no cover - every platform hashkit builds for is little-endian
    raise ImportError("hashkit's packed format assumes a little-endian machine")

FORMAT = "hashkit-codes/1"
BIT_ORDER = "uint64-lsb-first"


def n_words(nbits: int) -> int:
    return (nbits + 63) // 64


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a 2-D bool NumPy array ``(n, nbits)`` into ``uint64 (n, ceil(nbits/64))`` words."""
    n, nbits = bits.shape
    w = n_words(nbits)
    nb8 = (nbits + 7) // 8 * 8
    # Rows padded to whole bytes and packed as one flat run: several times faster than
    # packbits along axis 1 (which loops per row), e.g. 0.7 vs 3.4 ms for 193,734 x 24 labels.
    if nb8 != nbits or not bits.flags.c_contiguous:
        padded = np.zeros((n, nb8), dtype=bool)
        padded[:, :nbits] = bits
        bits = padded
    packed = np.packbits(bits.reshape(-1), bitorder="little").reshape(n, nb8 // 8)
    if nb8 == w * 64:
        return packed.view(np.uint64).reshape(n, w)
    out = np.zeros((n, w * 8), dtype=np.uint8)
    out[:, : packed.shape[1]] = packed
    return out.view(np.uint64).reshape(n, w)


class Codes:
    """A set of ``n`` binary codes of ``nbits`` bits in hashkit's packed form.

    Parameters
    ----------
    words : uint64 array ``(n, ceil(nbits/64))``, C-contiguous, padding bits zero
        NumPy for host codes; a PyTorch CUDA tensor (dtype ``torch.uint64``) or CuPy array
        for device codes.
    nbits : int
        Code length in bits (any positive length).

    Examples
    --------
    >>> import numpy as np, hashkit
    >>> c = hashkit.pack(np.array([[1, -1, 1], [-1, -1, 1]]))
    >>> c.nbits, c.words.shape, c.words.dtype
    (3, (2, 1), dtype('uint64'))
    >>> hashkit.unpack(c)
    array([[ 1, -1,  1],
           [-1, -1,  1]], dtype=int8)
    """

    __slots__ = ("words", "nbits")

    def __init__(self, words: Any, nbits: int):
        nbits = V.check_positive_int(nbits, "nbits")
        kind = V.array_kind(words)
        if kind not in ("numpy", "torch", "cupy"):
            raise TypeError(f"words: expected a uint64 array, got {V.describe(words)}")
        if str(words.dtype).split(".")[-1] != "uint64":
            raise TypeError(f"words: expected dtype uint64, got {V.describe(words)}")
        if words.ndim != 2:
            raise ValueError(f"words: expected shape (n, {n_words(nbits)}), got {V.describe(words)}")
        if words.shape[1] != n_words(nbits):
            raise ValueError(f"words: {nbits} bits need {n_words(nbits)} words per code, got {words.shape[1]}")
        if kind == "torch" and not words.is_cuda:
            # Host codes are NumPy, whatever framework held them: a CPU tensor is viewed without a
            # copy, so it is never mistaken for device codes (and routed to CUDA).
            words = words.detach().numpy()
            kind = "numpy"
        if kind == "numpy":
            if not words.flags.c_contiguous:
                words = np.ascontiguousarray(words)
            rem = nbits % 64
            if rem and words.shape[0] and np.any(words[:, -1] >> np.uint64(rem)):
                raise ValueError(f"words: padding bits beyond bit {nbits} must be zero")
        elif not words.is_contiguous() if kind == "torch" else not words.flags.c_contiguous:
            words = words.contiguous() if kind == "torch" else words.copy(order="C")
        self.words = words
        self.nbits = nbits

    # -- shape --------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.words.shape[0])

    @property
    def n_words(self) -> int:
        return int(self.words.shape[1])

    @property
    def device(self) -> str:
        """``"cpu"`` for NumPy codes, else ``"cuda:<i>"``."""
        kind = V.array_kind(self.words)
        if kind == "numpy":
            return "cpu"
        if kind == "torch":
            return str(self.words.device)
        return f"cuda:{self.words.device.id}"

    @property
    def on_device(self) -> bool:
        """True for words in GPU memory (a PyTorch CUDA tensor or a CuPy array)."""
        return V.array_kind(self.words) != "numpy"

    @property
    def device_key(self) -> str:
        """Framework and device, e.g. ``"numpy:cpu"``, ``"torch:cuda:0"``, ``"cupy:cuda:1"``."""
        return f"{V.array_kind(self.words)}:{self.device}"

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows) -> "Codes":
        sub = self.words[rows]
        if sub.ndim == 1:
            sub = sub.reshape(1, -1)
        return Codes(sub, self.nbits)

    def __repr__(self) -> str:
        return f"Codes(n={self.n}, nbits={self.nbits}, device={self.device!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Codes):
            return NotImplemented
        return self.nbits == other.nbits and np.array_equal(self.numpy().words, other.numpy().words)

    __hash__ = None  # mutable array inside

    def __array__(self, dtype=None, copy=None):
        # Without this, NumPy treats Codes as a nested sequence (it has __len__/__getitem__)
        # and fails after 64 levels. Which array is meant (packed words? ±1? bytes?) is the
        # caller's to say.
        raise TypeError("np.asarray(Codes) is ambiguous: use codes.words (packed uint64, LSB first), "
                        "codes.unpack() (±1 int8, (n, nbits)), codes.unpack(signed=False) ({0, 1}) "
                        "or codes.to_bytes() (uint8 bytes)")

    @classmethod
    def from_bytes(cls, data: Any, nbits: int, bitorder: str = "little") -> "Codes":
        """Codes from bits packed into integers: bytes (``uint8``) or words (``uint16/32/64``, ``int*``).

        The field stores packed codes in several ways: DCMH's MATLAB ``compactbit.m`` and FAISS
        write ``uint8`` bytes least significant bit first (``bitorder="little"``);
        ``np.packbits`` writes most significant bit first by default (``"big"``); PyTorch
        code often keeps ``int64`` words. Element ``e`` of a row holds bits ``e*w .. e*w + w-1``
        of the code (``w`` = the element's width in bits, signed types read as their unsigned
        bit pattern); with ``"little"`` bit ``j`` is bit ``j % w`` counted from the least
        significant end, with ``"big"`` from the most significant end.

        Parameters
        ----------
        data : 2-D integer array ``(n, ceil(nbits / w))`` (NumPy, or anything ``np.asarray`` takes;
            device arrays are copied to the host).
        nbits : int, the code length (the padding bits beyond it must be zero).
        bitorder : ``"little"`` (compactbit, FAISS, ``np.packbits(..., bitorder="little")``) or
            ``"big"`` (``np.packbits`` default).

        Returns
        -------
        Codes

        Raises
        ------
        TypeError
            Not an integer array.
        ValueError
            Not 2-D, a width that does not fit ``nbits``, set padding bits (the message suggests
            the other bit order or another ``nbits``), an unknown ``bitorder``.

        Examples
        --------
        >>> import numpy as np
        >>> bits = np.array([[1, 0, 1, 1, 0, 0, 0, 0, 1, 1]])
        >>> c = Codes.from_bytes(np.packbits(bits, axis=1), nbits=10, bitorder="big")
        >>> c.unpack(signed=False).tolist() == bits.tolist()
        True
        """
        return from_bytes(data, nbits, bitorder)

    def to_bytes(self, bitorder: str = "little") -> np.ndarray:
        """The codes as ``uint8 (n, ceil(nbits / 8))`` bytes, the inverse of :meth:`from_bytes`.

        ``"little"`` is MATLAB ``compactbit`` / FAISS order, ``"big"`` is ``np.packbits``'s default.
        """
        V.check_choice(bitorder, BITORDERS, "bitorder")
        c = self.numpy()
        out = c.words.view(np.uint8).reshape(c.n, c.n_words * 8)[:, : (c.nbits + 7) // 8]
        return _REVERSED_BITS[out] if bitorder == "big" else out.copy()

    # -- conversions ----------------------------------------------------------------------
    def numpy(self) -> "Codes":
        """The same codes on the host (no copy when already there)."""
        if not self.on_device:
            return self
        return Codes(V.to_numpy(self.words, "words"), self.nbits)

    def unpack(self, signed: bool = True):
        """Unpack to ``(n, nbits)`` int8: ±1 when ``signed`` else {0, 1}. See :func:`unpack`."""
        return unpack(self, signed=signed)

    def as_uint8(self) -> np.ndarray:
        """A zero-copy ``uint8 (n, 8 * words)`` view for FAISS binary indexes.

        FAISS's binary indexes take ``d = 64 * words`` bits; the padding bits are zero in every
        code, so FAISS's Hamming distances equal hashkit's.
        """
        if self.on_device:
            raise ValueError("as_uint8: FAISS needs host codes; call .numpy() first")
        return self.words.view(np.uint8).reshape(self.n, self.n_words * 8)

    def save(self, path: str | os.PathLike) -> None:
        """Save to ``.npz`` (see :func:`save_codes`)."""
        save_codes(path, self)


BITORDERS = ("little", "big")
# byte -> the same byte with its 8 bits in reverse order (MSB-first <-> LSB-first)
_REVERSED_BITS = np.packbits(np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1,
                                           bitorder="little"), axis=1, bitorder="big")[:, 0]


def from_bytes(data: Any, nbits: int, bitorder: str = "little") -> "Codes":
    """Codes from packed bytes or integer words; see :meth:`Codes.from_bytes`."""
    nbits = V.check_positive_int(nbits, "nbits")
    V.check_choice(bitorder, BITORDERS, "bitorder")
    arr = V.to_numpy(data, "data")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"data: expected packed bits in an integer array (uint8 bytes or integer words), "
                        f"got {V.describe(arr)}")
    if arr.ndim != 2:
        raise ValueError(f"data: expected a 2-D array (n, words) of packed codes, got {V.describe(arr)}")
    if not arr.dtype.isnative:  # a big-endian file: its bytes, read in memory order, would be swapped
        arr = arr.astype(arr.dtype.newbyteorder("="))
    width = arr.dtype.itemsize * 8
    need = -(-nbits // width)
    if arr.shape[1] != need:
        raise ValueError(f"data: {nbits} bits packed in {arr.dtype} ({width} bits each) need {need} "
                         f"per code, got {arr.shape[1]} (shape {tuple(arr.shape)}); check nbits")
    n = arr.shape[0]
    # Little-endian memory: an element's bytes come least significant first, so the bytes of a
    # row, in memory order, hold bits 0, 1, 2 ... LSB first: hashkit's own byte order.
    u8 = np.ascontiguousarray(arr).view(np.uint8).reshape(n, need, width // 8)
    if bitorder == "big":
        # MSB-first inside an element = reverse its bytes and the bits of each byte
        u8 = _REVERSED_BITS[u8[:, :, ::-1]]
    u8 = u8.reshape(n, need * (width // 8))
    nbytes = (nbits + 7) // 8
    extra = u8[:, nbytes:]
    rem = nbits % 8
    if (extra.size and extra.any()) or (rem and n and np.any(u8[:, nbytes - 1] >> rem)):
        other = "big" if bitorder == "little" else "little"
        raise ValueError(f"data: bits beyond bit {nbits} are set in packed {arr.dtype} codes read with "
                         f"bitorder={bitorder!r}: the codes are longer than nbits={nbits}, or packed "
                         f"in the other order (bitorder={other!r})")
    w = n_words(nbits)
    out = np.zeros((n, w * 8), dtype=np.uint8)
    out[:, :nbytes] = u8[:, :nbytes]
    return Codes(out.view(np.uint64).reshape(n, w), nbits)


def _integer_range_error(name: str, lo, hi) -> ValueError:
    return ValueError(
        f"{name}: integer codes must hold one value per bit, -1/0/1, got values from {lo} to {hi}; "
        "for packed bytes or words (np.packbits, MATLAB compactbit, FAISS uint8, int64 words) use "
        "hashkit.Codes.from_bytes(x, nbits, bitorder='little'|'big')")


def _bfloat16_as_float32(x: Any) -> Any:
    """bfloat16 (PyTorch, or NumPy via ml_dtypes) as float32: the sign, all a code needs, is kept.

    NumPy has no bfloat16 of its own, so PyTorch refuses ``.numpy()`` on it."""
    kind = V.array_kind(x)
    if kind == "torch" and str(x.dtype) == "torch.bfloat16":
        return x.float()
    if kind == "numpy" and x.dtype.name == "bfloat16":
        return x.astype(np.float32)
    return x


def _pack_numpy(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.bool_:
        bits = arr
    else:
        if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
            raise ValueError(f"{name}: codes contain NaN")
        if np.issubdtype(arr.dtype, np.integer) and arr.size:
            lo, hi = arr.min(), arr.max()
            if lo < -1 or hi > 1:
                raise _integer_range_error(name, lo, hi)
        bits = arr > 0
    return pack_bits(bits)


def _pack_torch(x, name: str):
    import torch

    if x.dtype.is_floating_point and torch.isnan(x).any():
        raise ValueError(f"{name}: codes contain NaN")
    if not x.dtype.is_floating_point and x.dtype != torch.bool and x.numel():
        lo, hi = int(x.min()), int(x.max())
        if lo < -1 or hi > 1:
            raise _integer_range_error(name, lo, hi)
    n, nbits = x.shape
    w = n_words(nbits)
    bits = torch.zeros((n, w * 64), dtype=torch.int64, device=x.device)
    bits[:, :nbits] = (x > 0).to(torch.int64)
    shifts = torch.arange(64, dtype=torch.int64, device=x.device)
    # Distinct powers of two: their int64 sum is the bitwise OR, bit 63 included (two's complement).
    words = (bits.view(n, w, 64) << shifts).sum(dim=2)
    return words.view(torch.uint64).contiguous()


def _pack_cupy(x, name: str):
    import cupy as cp

    if x.dtype.kind == "f" and bool(cp.isnan(x).any()):
        raise ValueError(f"{name}: codes contain NaN")
    if x.dtype.kind in "iu" and x.size:
        lo, hi = int(x.min()), int(x.max())
        if lo < -1 or hi > 1:
            raise _integer_range_error(name, lo, hi)
    n, nbits = x.shape
    w = n_words(nbits)
    bits = cp.zeros((n, w * 64), dtype=cp.uint64)
    bits[:, :nbits] = (x > 0).astype(cp.uint64)
    shifts = cp.arange(64, dtype=cp.uint64)
    return cp.ascontiguousarray((bits.reshape(n, w, 64) << shifts).sum(axis=2, dtype=cp.uint64))


def pack(x: Any, nbits: int | None = None, *, name: str = "x") -> Codes:
    """Pack codes into hashkit's canonical form.

    Parameters
    ----------
    x : array ``(n, nbits)`` or ``Codes``
        One value per bit: ±1 values, {0, 1} values, bools or real values (bit = value > 0),
        from NumPy, PyTorch (CPU or CUDA, bfloat16 included) or CuPy; device arrays stay on their
        device. A 2-D ``uint64`` array is taken as hashkit's own packed words (then ``nbits``
        defaults to ``64 * words``). Other integer arrays must hold only -1, 0 and 1: packed
        bytes or words (``np.packbits``, MATLAB ``compactbit``, FAISS) go through
        :meth:`Codes.from_bytes`, which knows their bit order and length.
    nbits : int, optional
        Only for packed ``uint64`` input, to state the true code length.
    name : str
        Argument name used in error messages.

    Returns
    -------
    Codes

    Raises
    ------
    TypeError
        Unsupported type or dtype.
    ValueError
        Not 2-D, no rows or no bits, NaN values, integers outside {-1, 0, 1} (the message names
        :meth:`Codes.from_bytes`: reading packed bytes one value per bit would give wrong distances).

    Examples
    --------
    >>> import numpy as np, hashkit
    >>> hashkit.pack(np.array([[0.3, -2.0, 0.0]])).words
    array([[1]], dtype=uint64)
    """
    if nbits is not None:
        nbits = V.check_positive_int(nbits, "nbits")
    if isinstance(x, Codes):
        if nbits is not None and nbits != x.nbits:
            raise ValueError(f"{name}: expected codes of {nbits} bits, got {x.nbits}")
        return x
    kind = V.array_kind(x)
    if kind == "other":
        x = V.to_numpy(x, name)
        kind = "numpy"
    x = _bfloat16_as_float32(x)
    dtype_name = str(x.dtype).split(".")[-1]
    if (dtype_name in ("object", "complex64", "complex128") or dtype_name.startswith(("str", "<U"))
            or (kind == "numpy" and x.dtype.kind in "mMSUV")):
        # dates, times and bytes are not codes, even where NumPy would compare them with 0
        raise TypeError(f"{name}: expected a numeric or bool code array, got {V.describe(x)}")
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array of codes (n, nbits), got {V.describe(x)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one code, got {V.describe(x)}")
    if x.shape[1] == 0:
        raise ValueError(f"{name}: expected codes of at least one bit, got {V.describe(x)}")
    if dtype_name == "uint64":
        nb = 64 * int(x.shape[1]) if nbits is None else V.check_positive_int(nbits, "nbits")
        try:
            return Codes(x, nb)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}: {exc}") from None
    if nbits is not None and nbits != x.shape[1]:
        raise ValueError(f"{name}: expected codes of {nbits} bits, got {x.shape[1]}")
    if kind == "numpy":
        words = _pack_numpy(np.asarray(x), name)
    elif kind == "torch":
        words = _pack_torch(x, name) if x.is_cuda else _pack_numpy(x.detach().numpy(), name)
    else:
        words = _pack_cupy(x, name)
    return Codes(words, int(x.shape[1]))


def unpack(codes: Any, signed: bool = True, *, name: str = "codes"):
    """Unpack codes to an ``(n, nbits)`` int8 array: ±1 if ``signed`` (default) else {0, 1}.

    Host codes give a NumPy array; device codes give an array of the same framework on the
    same device.

    Examples
    --------
    >>> import numpy as np, hashkit
    >>> hashkit.unpack(hashkit.pack(np.array([[1, 0, 1]])), signed=False)
    array([[1, 0, 1]], dtype=int8)
    """
    signed = V.check_bool(signed, "signed")
    c = as_codes(codes, name)
    kind = V.array_kind(c.words)
    if kind == "numpy":
        bytes_ = c.words.view(np.uint8).reshape(c.n, c.n_words * 8)
        bits = np.unpackbits(bytes_, axis=1, count=c.nbits, bitorder="little").view(np.int8)
    elif kind == "torch":
        import torch

        w = c.words.view(torch.int64)
        shifts = torch.arange(64, dtype=torch.int64, device=w.device)
        bits = ((w.unsqueeze(2) >> shifts) & 1).reshape(c.n, -1)[:, : c.nbits].to(torch.int8)
    else:
        import cupy as cp

        shifts = cp.arange(64, dtype=cp.uint64)
        bits = ((c.words[:, :, None] >> shifts) & cp.uint64(1)).reshape(c.n, -1)[:, : c.nbits].astype(cp.int8)
    return bits * 2 - 1 if signed else bits


# -- validation of codes and labels (every public entry point) --------------------------
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
    arr = V.to_numpy(_bfloat16_as_float32(x), name)
    # timedelta64 is an integer subtype to NumPy; neither it nor datetime64 is a label
    if arr.dtype == object or arr.dtype.kind in "mM" or not (np.issubdtype(arr.dtype, np.number)
                                                            or arr.dtype == np.bool_):
        raise TypeError(f"{name}: expected a numeric or bool label array, got {V.describe(x)}")
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name}: a 1-D label array must hold integer class ids, got {V.describe(x)}")
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name}: class ids must be >= 0, got minimum {arr.min()}")
        nl = int(arr.max()) + 1 if arr.size else 1
        onehot = np.zeros((arr.shape[0], nl), dtype=np.uint8)
        onehot[np.arange(arr.shape[0]), arr] = 1
        arr = onehot
    elif arr.ndim != 2:
        raise ValueError(f"{name}: expected multi-hot labels of shape (n, nlabels), got {V.describe(x)}")
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


# -- single code sets ---------------------------------------------------------------------
def save_codes(path: str | os.PathLike, codes: Any) -> None:
    """Save one code set to ``.npz`` (packed words, ``nbits``, format and bit order recorded).

    The file is written atomically.
    """
    c = as_codes(codes, "codes").numpy()
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, format=FORMAT, bit_order=BIT_ORDER, nbits=c.nbits, words=c.words)


def load_codes(path: str | os.PathLike) -> Codes:
    """Load a code set written by :func:`save_codes` (or :meth:`Codes.save`).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A damaged or truncated file, another format, missing keys, words that are not valid
        codes (the message names the file).
    """
    z = read_npz(_existing(path))
    _check_format(z, path)
    for key in ("words", "nbits"):
        if key not in z:
            raise ValueError(f"{path}: missing key {key!r} (packed uint64 codes and their length); "
                             f"keys present: {sorted(z)}")
    try:
        return Codes(z["words"], int(z["nbits"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def _existing(path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"code file not found: {p}")
    return p


def _check_format(z, path) -> None:
    fmt = str(z["format"]) if "format" in z else None
    if fmt != FORMAT:
        raise ValueError(f"{path}: key 'format' is {fmt!r}, expected {FORMAT!r}")
    order = str(z["bit_order"]) if "bit_order" in z else BIT_ORDER
    if order != BIT_ORDER:
        raise ValueError(f"{path}: key 'bit_order' is {order!r}, expected {BIT_ORDER!r}")
