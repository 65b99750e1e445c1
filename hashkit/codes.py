"""Binary codes in one canonical form, and the files they are kept in.

In memory, ``n`` codes of ``nbits`` bits are a C-contiguous ``uint64`` array of shape
``(n, ceil(nbits / 64))``: bit ``j`` lives in word ``j // 64`` at bit ``j % 64`` (least
significant first) and padding bits are zero. :class:`Codes` holds that array (NumPy, or a
PyTorch CUDA tensor / CuPy array for device-resident codes) with ``nbits`` beside it.

Packing rule: **bit = value > 0**. A ±1 code's -1 becomes 0 and +1 becomes 1; a {0, 1} code
maps to itself; a 0 produced by ``sign(0)`` becomes bit 0, exactly like -1 (the research code's
``0.5 * (K - b @ B.T)`` distance is not an integer in that case; hashkit's distance is).

This module does not import torch or cupy; it recognises their arrays by type.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _validate as V
from ._io import atomic_path

__all__ = ["Codes", "pack", "unpack", "pack_bits", "save_codes", "load_codes", "CodeFile",
           "save_code_file", "load_code_file", "CODE_FILE_KEYS"]

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
        return V.array_kind(self.words) != "numpy"

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


def _pack_numpy(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.bool_:
        bits = arr
    else:
        if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
            raise ValueError(f"{name}: codes contain NaN")
        bits = arr > 0
    return pack_bits(bits)


def _pack_torch(x, name: str):
    import torch

    if x.dtype.is_floating_point and torch.isnan(x).any():
        raise ValueError(f"{name}: codes contain NaN")
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
        ±1 values, {0, 1} values, bools or real values (bit = value > 0), from NumPy, PyTorch
        (CPU or CUDA) or CuPy; device arrays stay on their device. A 2-D ``uint64`` array is
        taken as already-packed words (then ``nbits`` defaults to ``64 * words``).
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
        Not 2-D, no rows or no bits, NaN values.

    Examples
    --------
    >>> import numpy as np, hashkit
    >>> hashkit.pack(np.array([[0.3, -2.0, 0.0]])).words
    array([[1]], dtype=uint64)
    """
    if isinstance(x, Codes):
        if nbits is not None and nbits != x.nbits:
            raise ValueError(f"{name}: expected codes of {nbits} bits, got {x.nbits}")
        return x
    kind = V.array_kind(x)
    if kind == "other":
        x = V.to_numpy(x, name)
        kind = "numpy"
    dtype_name = str(x.dtype).split(".")[-1]
    if dtype_name in ("object", "complex64", "complex128") or dtype_name.startswith(("str", "<U")):
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
    c = V.as_codes(codes, name)
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


# -- single code sets ---------------------------------------------------------------------
def save_codes(path: str | os.PathLike, codes: Any) -> None:
    """Save one code set to ``.npz`` (packed words, ``nbits``, format and bit order recorded).

    The file is written atomically.
    """
    c = V.as_codes(codes, "codes").numpy()
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, format=FORMAT, bit_order=BIT_ORDER, nbits=c.nbits, words=c.words)


def load_codes(path: str | os.PathLike) -> Codes:
    """Load a code set written by :func:`save_codes` (or :meth:`Codes.save`)."""
    with np.load(_existing(path), allow_pickle=False) as z:
        _check_format(z, path)
        if "words" not in z:
            raise ValueError(f"{path}: missing key 'words' (packed uint64 codes); keys present: {sorted(z.files)}")
        return Codes(z["words"], int(z["nbits"]))


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


# -- code files (what `hashkit eval` reads) ----------------------------------------------
CODE_FILE_KEYS = ("query_image", "query_text", "db_image", "db_text")

# Key names found in the field's saved results, mapped onto hashkit's roles. Matched without
# regard to case. A file with a single modality (qB / rB) is read as image codes.
ALIASES: dict[str, tuple[str, ...]] = {
    "query_image": ("query_image", "qbx", "qb_x", "qb_img", "qb_i", "qbi", "qu_bi", "q_img",
                    "query_img", "img_query", "qb", "query_b", "tst_binary", "query_codes"),
    "db_image": ("db_image", "rbx", "rb_x", "rb_img", "rb_i", "rbi", "re_bi", "r_img", "retrieval_img",
                 "retrieval_image", "img_db", "rb", "retrieval_b", "db_b", "trn_binary", "database_codes",
                 "retrieval_codes", "db_codes"),
    "query_text": ("query_text", "qby", "qb_y", "qb_txt", "qb_t", "qbt", "qu_bt", "q_txt", "query_txt"),
    "db_text": ("db_text", "rby", "rb_y", "rb_txt", "rb_t", "rbt", "re_bt", "r_txt", "retrieval_txt",
                "retrieval_text"),
    "query_labels": ("query_labels", "query_l", "ql", "qu_l", "query_label", "tst_label", "test_l",
                     "l_q", "q_l", "querylabels"),
    "db_labels": ("db_labels", "retrieval_l", "rl", "re_l", "retrieval_label", "retrieval_labels",
                  "trn_label", "db_l", "database_l", "l_r", "r_l", "db_label", "database_labels"),
}


@dataclass
class CodeFile:
    """The contents of a code file: query and database codes per modality, and labels.

    ``query_image`` / ``db_image`` / ``query_text`` / ``db_text`` are :class:`Codes` or None;
    ``query_labels`` / ``db_labels`` are uint8 multi-hot ``(n, nlabels)`` arrays, or both None
    for a file of codes only (``hashkit encode`` without ``--labels``): it can be searched, not
    evaluated.
    """

    query_labels: np.ndarray | None
    db_labels: np.ndarray | None
    query_image: Codes | None = None
    query_text: Codes | None = None
    db_image: Codes | None = None
    db_text: Codes | None = None
    meta: dict = field(default_factory=dict)
    path: str | None = None

    def directions(self) -> dict[str, tuple[Codes, Codes]]:
        """The retrieval directions present: ``i2t``, ``t2i`` and, when both sides of one
        modality exist, ``i2i`` / ``t2t``."""
        out = {}
        if self.query_image is not None and self.db_text is not None:
            out["i2t"] = (self.query_image, self.db_text)
        if self.query_text is not None and self.db_image is not None:
            out["t2i"] = (self.query_text, self.db_image)
        if self.query_image is not None and self.db_image is not None:
            out["i2i"] = (self.query_image, self.db_image)
        if self.query_text is not None and self.db_text is not None:
            out["t2t"] = (self.query_text, self.db_text)
        return out


def save_code_file(path: str | os.PathLike, *, query_labels: Any = None, db_labels: Any = None,
                   query_image: Any = None,
                   query_text: Any = None, db_image: Any = None, db_text: Any = None,
                   meta: dict | None = None) -> None:
    """Write a code file (``.npz``, atomically) that :func:`load_code_file` and ``hashkit eval`` read.

    Codes are stored packed (``uint64`` words) with their ``nbits``; labels as uint8 multi-hot.
    Labels are optional (give both or neither): a file without them holds codes for search
    only, and ``hashkit eval`` refuses it with a message saying so. ``meta`` (JSON-serialisable)
    records where the codes came from (method, bits, seed ...).

    Raises
    ------
    ValueError
        No code set given, only one of the two label sets, codes and labels of different
        counts, code lengths that differ.
    """
    import json

    sets = {"query_image": query_image, "query_text": query_text, "db_image": db_image, "db_text": db_text}
    if all(v is None for v in sets.values()):
        raise ValueError("save_code_file: expected at least one of query_image, query_text, db_image, db_text")
    if (query_labels is None) != (db_labels is None):
        raise ValueError("save_code_file: expected both query_labels and db_labels or neither, got "
                         + ("only query_labels" if db_labels is None else "only db_labels"))
    arrays: dict[str, Any] = {"format": FORMAT, "bit_order": BIT_ORDER,
                              "meta": json.dumps(meta or {}, sort_keys=True)}
    ql = dl = None
    if query_labels is not None:
        ql = _labels_uint8(query_labels, "query_labels")
        dl = _labels_uint8(db_labels, "db_labels")
        if ql.shape[1] != dl.shape[1]:
            raise ValueError(f"query_labels and db_labels: expected the same number of labels, "
                             f"got {ql.shape[1]} and {dl.shape[1]}")
        arrays["query_labels"], arrays["db_labels"] = ql, dl
    nbits = None
    counts: dict[str, tuple[int, str]] = {}  # side -> (items, the key that set it)
    for key, val in sets.items():
        if val is None:
            continue
        c = V.as_codes(val, key).numpy()
        side = "query" if key.startswith("query") else "db"
        if ql is not None:
            V.check_count(c.n, (ql if side == "query" else dl).shape[0],
                          (key, f"{side}_labels"))
        elif side in counts:
            V.check_count(c.n, counts[side][0], (key, counts[side][1]))
        counts.setdefault(side, (c.n, key))
        if nbits is not None and c.nbits != nbits:
            raise ValueError(f"{key}: expected {nbits} bits like the other code sets, got {c.nbits}")
        nbits = c.nbits
        arrays[key] = c.words
    arrays["nbits"] = nbits
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def _labels_uint8(x: Any, name: str) -> np.ndarray:
    arr = V.to_numpy(x, name)
    V.as_labels(arr, name)  # validates (0/1 only, 2-D or class ids)
    if arr.ndim == 1:
        out = np.zeros((arr.shape[0], int(arr.max()) + 1), dtype=np.uint8)
        out[np.arange(arr.shape[0]), arr] = 1
        return out
    return (arr != 0).astype(np.uint8)


def load_code_file(path: str | os.PathLike) -> CodeFile:
    """Read a code file: hashkit's ``.npz``, a research ``.npz``, or a ``.mat`` (v5 or v7.3).

    Research files are recognised by the key names the field's code uses (``qBX``/``rBX``/
    ``qBY``/``rBY``, ``qB``/``rB``, ``qu_BI``/``re_BT``, ``query_L``/``retrieval_L`` ...; see
    ``hashkit.codes.ALIASES``), holding ±1 or {0, 1} codes ``(n, nbits)``. MATLAB v7.3 files are
    HDF5, stored column-major: arrays are transposed back. A code array whose rows do not match
    its labels but whose columns do is transposed too.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Unknown format, no labels, no code set, or keys whose shapes disagree; the message names
        the file and the key.
    """
    p = _existing(path)
    raw = _read_any(p)
    if "format" in raw:
        fmt = str(np.asarray(raw["format"]))
        if fmt != FORMAT:
            raise ValueError(f"{p}: key 'format' is {fmt!r}, expected {FORMAT!r}")
        return _from_hashkit_npz(raw, p)
    return _from_research(raw, p)


def _from_hashkit_npz(raw: dict, p: Path) -> CodeFile:
    import json

    if "nbits" not in raw:
        raise ValueError(f"{p}: missing key 'nbits'; keys present: {sorted(raw)}")
    if ("query_labels" in raw) != ("db_labels" in raw):
        missing = "db_labels" if "query_labels" in raw else "query_labels"
        raise ValueError(f"{p}: missing key {missing!r} (labels come in pairs); keys present: {sorted(raw)}")
    nbits = int(np.asarray(raw["nbits"]))
    kw = {}
    for key in CODE_FILE_KEYS:
        if key in raw:
            try:
                kw[key] = Codes(np.ascontiguousarray(raw[key]), nbits)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{p}: key {key!r}: {exc}") from None
    meta = json.loads(str(np.asarray(raw["meta"]))) if "meta" in raw else {}
    return _finish(p, raw.get("query_labels"), raw.get("db_labels"), kw, meta)


def _from_research(raw: dict, p: Path) -> CodeFile:
    lower = {k.lower(): k for k in raw}
    found: dict[str, str] = {}
    for role, names in ALIASES.items():
        for n in names:
            if n in lower:
                found[role] = lower[n]
                break
    # A unimodal file (qB/rB) and a cross-modal one (qBX/rBX) could both match "query_image";
    # the cross-modal names come first in ALIASES, so they win.
    for role in ("query_labels", "db_labels"):
        if role not in found:
            raise ValueError(f"{p}: no {role.replace('_', ' ')} found; expected one of the keys "
                             f"{', '.join(ALIASES[role][:6])} ...; keys present: {sorted(raw)}")
    ql = _label_matrix(raw[found["query_labels"]], p, found["query_labels"])
    dl = _label_matrix(raw[found["db_labels"]], p, found["db_labels"])
    kw = {}
    for role in CODE_FILE_KEYS:
        if role not in found:
            continue
        key = found[role]
        arr = np.asarray(raw[key])
        n_expected = (ql if role.startswith("query") else dl).shape[0]
        if arr.ndim == 2 and arr.shape[0] != n_expected and arr.shape[1] == n_expected:
            arr = arr.T
        try:
            kw[role] = pack(np.ascontiguousarray(arr), name=f"{p.name}:{key}")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{p}: key {key!r}: {exc}") from None
    if not kw:
        raise ValueError(f"{p}: no code set found; expected keys such as qBX/rBX/qBY/rBY or qB/rB; "
                         f"keys present: {sorted(raw)}")
    return _finish(p, ql, dl, kw, {"source_keys": {r: found[r] for r in found}})


def _label_matrix(arr, p: Path, key: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 2 and 1 in arr.shape and np.issubdtype(arr.dtype, np.number) and arr.size > 1 \
            and np.any(arr > 1):
        arr = arr.reshape(-1)  # a column of class ids as MATLAB saves it
    if arr.ndim == 1 and np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    try:
        return _labels_uint8(arr, f"{p.name}:{key}")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{p}: key {key!r}: {exc}") from None


def _finish(p: Path, ql, dl, kw: dict, meta: dict) -> CodeFile:
    nbits = {c.nbits for c in kw.values()}
    if len(nbits) > 1:
        raise ValueError(f"{p}: code sets of different lengths: " +
                         ", ".join(f"{k}={c.nbits} bits" for k, c in kw.items()))
    if ql is None:  # codes only
        for side in ("query", "db"):
            n = {c.n for k, c in kw.items() if k.startswith(side)}
            if len(n) > 1:
                raise ValueError(f"{p}: the {side} code sets have different counts: " +
                                 ", ".join(f"{k}={c.n}" for k, c in kw.items() if k.startswith(side)))
        return CodeFile(query_labels=None, db_labels=None, meta=meta, path=str(p), **kw)
    ql = np.asarray(ql, dtype=np.uint8)
    dl = np.asarray(dl, dtype=np.uint8)
    if ql.ndim != 2 or dl.ndim != 2 or ql.shape[1] != dl.shape[1]:
        raise ValueError(f"{p}: query and database labels must be (n, nlabels) with the same nlabels; "
                         f"got {ql.shape} and {dl.shape}")
    for role, c in kw.items():
        lab = ql if role.startswith("query") else dl
        if c.n != lab.shape[0]:
            raise ValueError(f"{p}: {role} has {c.n} codes but the "
                             f"{'query' if role.startswith('query') else 'database'} labels have {lab.shape[0]} rows")
    return CodeFile(query_labels=ql, db_labels=dl, meta=meta, path=str(p), **kw)


def _read_any(p: Path) -> dict:
    suffix = p.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError) as exc:
            raise ValueError(f"{p}: not a readable .npz file ({exc})") from None
    if suffix == ".mat":
        return _read_mat(p)
    raise ValueError(f"{p}: unknown code file type {suffix!r}; expected .npz or .mat")


def _read_mat(p: Path) -> dict:
    with open(p, "rb") as fh:
        head = fh.read(128)
    if head[:8] == b"\x89HDF\r\n\x1a\n" or b"MATLAB 7.3" in head:
        import h5py

        out = {}
        with h5py.File(p, "r") as f:
            for k, v in f.items():
                if isinstance(v, h5py.Dataset):
                    arr = v[()]
                    # MATLAB writes column-major: the HDF5 shape is the reverse of MATLAB's.
                    out[k] = arr.T if arr.ndim >= 2 else arr
        return out
    from scipy.io import loadmat

    try:
        return {k: v for k, v in loadmat(p).items() if not k.startswith("__")}
    except Exception as exc:  # scipy raises several types for a corrupt file
        raise ValueError(f"{p}: not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
