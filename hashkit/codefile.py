"""Code files: the formats in which the field saves query/database codes and labels.

:func:`load_code_file` reads

- hashkit's own ``.npz`` (:func:`save_code_file`; what ``hashkit train`` and ``hashkit encode``
  write), and a hashkit run folder (``OUT/32bits/`` holding ``codes.npz``);
- research ``.npz``, ``.mat`` (v5 and v7.3) and ``.pt`` files (tensors only, loaded with
  ``weights_only=True``) with ``qBX``/``rBX``/``query_L``-style keys, matched by :data:`ALIASES`
  or named explicitly (``keys=``);
- DeepHash-pytorch's four ``.npy`` files (``tst_binary``, ``trn_binary``, ``tst_label``,
  ``trn_label``), given as their folder or as any one of them;

and :func:`code_sets` says which code sets a path stands for (a folder of runs holds several).
:class:`CodeFile` is what ``hashkit eval`` evaluates.

Nothing is misread quietly. Codes packed into integers (MATLAB ``compactbit`` / FAISS bytes,
``np.packbits``, int64 words) are unpacked with :meth:`Codes.from_bytes` when the file says how
many bits they hold (a scalar ``nbits``/``bit``/``bits`` ... key) or ``packed_bits=`` does, and are
otherwise an error naming ``--packed-bits``; labels must be 0/1 or class ids; a single 0/1 label
column, which could be either, needs ``labels="class-ids"`` or ``"multi-hot"``.

Only the arrays that are used are read, and only after their declared shapes agree with each
other and fit the read limit (:data:`READ_LIMIT_ENV`, shared with every ``.mat`` / HDF5 read);
a member that declares more data than it holds, and a truncated or corrupt file, are one-line
``ValueError`` s naming the file. MATLAB and HDF5 files go through hashkit's one safe MAT
reader (:mod:`hashkit.data._matfile`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import _validate as V
from ._io import NPZ_ERRORS, atomic_path, npz_declarations, read_npz
from .codes import BIT_ORDER, BITORDERS, FORMAT, Codes, _existing, as_codes, as_labels, from_bytes, pack

__all__ = ["CodeFile", "save_code_file", "load_code_file", "code_sets", "parse_keys", "CODE_FILE_KEYS",
           "ALIASES", "LABEL_READINGS"]

CODE_FILE_KEYS = ("query_image", "query_text", "db_image", "db_text")
ROLES = CODE_FILE_KEYS + ("query_labels", "db_labels", "nbits")

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
                     "l_q", "q_l", "querylabels", "querylabel"),
    "db_labels": ("db_labels", "retrieval_l", "rl", "re_l", "retrieval_label", "retrieval_labels",
                  "trn_label", "db_l", "database_l", "l_r", "r_l", "db_label", "database_labels",
                  "retrievallabel"),
    # the code length of packed codes (DCMH's param.bit; any scalar of these names)
    "nbits": ("nbits", "bits", "bit", "nbit", "n_bits", "code_length", "code_len", "codelen",
              "hash_bits", "bit_length"),
}

#: How a single label column of 0 and 1 is read (``labels=``): ``"auto"`` refuses it (it is as
#: likely a column of two class ids as one binary label), ``"class-ids"`` reads it as classes 0
#: and 1, ``"multi-hot"`` as one label that rows with 0 lack.
LABEL_READINGS = ("auto", "class-ids", "multi-hot")

#: Environment variable: the most bytes the arrays read from one code file may declare
#: together (default 8 GiB; the same limit as every ``.mat`` / HDF5 read, docs/DATA.md).
READ_LIMIT_ENV = "HASHKIT_MAX_ARRAY_BYTES"

DEEPHASH_FILES = ("tst_binary.npy", "trn_binary.npy", "tst_label.npy", "trn_label.npy")


@dataclass
class CodeFile:
    """The contents of a code file: query and database codes per modality, and labels.

    ``query_image`` / ``db_image`` / ``query_text`` / ``db_text`` are :class:`Codes` or None;
    ``query_labels`` / ``db_labels`` are uint8 multi-hot ``(n, nlabels)`` arrays, or both None
    for a file of codes only (``hashkit encode`` without ``--labels``): it can be searched, not
    evaluated. ``meta`` holds what the file says about itself (hashkit files: method, dataset,
    nbits, seed, config; research files: the keys that were read).
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

    def sets(self) -> dict[str, Codes]:
        """The code sets present, by role (``query_image`` ... ``db_text``)."""
        return {k: getattr(self, k) for k in CODE_FILE_KEYS if getattr(self, k) is not None}


# ------------------------------------------------------------------------------ writing

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
        c = as_codes(val, key).numpy()
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
    as_labels(arr, name)  # validates (0/1 only, 2-D or class ids)
    if arr.ndim == 1:
        out = np.zeros((arr.shape[0], int(arr.max()) + 1), dtype=np.uint8)
        out[np.arange(arr.shape[0]), arr] = 1
        return out
    return (arr != 0).astype(np.uint8)


# ------------------------------------------------------------------------------ which sets

def code_sets(path: str | os.PathLike) -> list[Path]:
    """The code sets a path stands for, each a path :func:`load_code_file` reads.

    - a file: itself (one of DeepHash-pytorch's four ``.npy`` files: its folder);
    - a folder holding DeepHash-pytorch's ``tst_binary.npy`` ...: the folder;
    - a hashkit run folder (``codes.npz`` inside): its ``codes.npz``;
    - any other folder: every run / DeepHash folder below it (sorted, ``checkpoints`` skipped),
      else the ``.npz`` / ``.mat`` / ``.pt`` files directly inside.

    Raises
    ------
    FileNotFoundError
        No such path.
    ValueError
        A folder holding no code set.
    """
    p = Path(path)
    if p.is_file():
        return [p.parent] if p.name in DEEPHASH_FILES else [p]
    if not p.is_dir():
        raise FileNotFoundError(f"code file or folder not found: {p}")
    own = _set_in_folder(p)
    if own is not None:
        return [own]
    found: list[Path] = []
    for sub in sorted(p.rglob("*")):
        if sub.is_dir() and "checkpoints" not in sub.relative_to(p).parts:
            s = _set_in_folder(sub)
            if s is not None:
                found.append(s)
    if found:
        return found
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in (".npz", ".mat", ".pt"))
    if files:
        return files
    raise ValueError(f"{p}: no code set found in this folder (expected a hashkit run folder with codes.npz, "
                     f"DeepHash-pytorch's {', '.join(DEEPHASH_FILES)}, or .npz/.mat/.pt code files)")


def _set_in_folder(p: Path) -> Path | None:
    if all((p / f).is_file() for f in DEEPHASH_FILES):
        return p
    if (p / "codes.npz").is_file():
        return p / "codes.npz"
    return None


# ------------------------------------------------------------------------------ reading

def parse_keys(text: str | dict | None) -> dict[str, str] | None:
    """``"query_image=Qi,db_image=Di,..."`` (or a dict) -> ``{role: key}``, roles checked."""
    if text is None:
        return None
    if isinstance(text, dict):
        pairs = list(text.items())
    else:
        pairs = []
        for part in str(text).split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"--keys: expected ROLE=KEY pairs separated by commas (roles: "
                                 f"{', '.join(ROLES)}), got {part.strip()!r}")
            role, key = part.split("=", 1)
            pairs.append((role.strip(), key.strip()))
    out = {}
    for role, key in pairs:
        V.check_choice(role, ROLES, "--keys role")
        if not isinstance(key, str) or not key:
            raise ValueError(f"--keys: expected a key name for {role}, got {key!r}")
        out[role] = key
    return out


def load_code_file(path: str | os.PathLike, *, keys: dict[str, str] | str | None = None,
                   packed_bits: int | None = None, bitorder: str = "little",
                   labels: str = "auto", require_labels: bool = True) -> CodeFile:
    """Read one code set: a hashkit ``.npz`` or run folder, a research ``.npz`` / ``.mat`` / ``.pt``,
    or DeepHash-pytorch's ``.npy`` folder.

    Research files are recognised by the key names the field's code uses (``qBX``/``rBX``/
    ``qBY``/``rBY``, ``qB``/``rB``, ``qu_BI``/``re_BT``, ``query_L``/``retrieval_L``,
    ``tst_binary``/``trn_label`` ...; see :data:`ALIASES`), holding one value per bit (±1,
    {0, 1}, bool, real: bit = value > 0) or packed bits (see below). MATLAB v7.3 files are HDF5,
    stored column-major: arrays are transposed back. A code array whose rows do not match its
    labels but whose columns do is transposed too.

    Parameters
    ----------
    path : file or folder (see :func:`code_sets`; a folder must hold exactly one set).
    keys : explicit ``{role: key}`` (or ``"query_image=Qi,db_labels=DL"``) for names outside the
        alias list; roles: query_image, query_text, db_image, db_text, query_labels, db_labels,
        nbits. Roles not named are still matched by alias.
    packed_bits : the code length of codes stored packed in integers (compactbit / FAISS bytes,
        ``np.packbits``, int64 words): every integer code array is then read with
        :meth:`Codes.from_bytes`. Without it, integer codes holding values other than -1/0/1
        are read as packed when the file has an ``nbits``-like scalar, else refused.
    bitorder : ``"little"`` (compactbit, FAISS; the default) or ``"big"`` (``np.packbits``), for
        packed codes.
    labels : how a single 0/1 label column is read (:data:`LABEL_READINGS`).
    require_labels : a research file without labels is an error (the default: it cannot be
        evaluated); ``False`` reads its codes alone (for search).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Unknown, truncated or corrupt file; no labels, no code set, keys whose declared shapes
        disagree or exceed the read limit; labels that are not 0/1 or class ids; packed codes
        without a known bit count. The message names the file and the key.
    """
    V.check_choice(bitorder, BITORDERS, "bitorder")
    V.check_choice(labels, LABEL_READINGS, "labels")
    if packed_bits is not None:
        packed_bits = V.check_positive_int(packed_bits, "packed_bits")
    keys = parse_keys(keys)
    p = Path(path)
    if p.is_dir() or (p.is_file() and p.name in DEEPHASH_FILES):
        sets = code_sets(p)
        if len(sets) != 1:
            raise ValueError(f"{p}: holds {len(sets)} code sets ({', '.join(str(s) for s in sets[:4])}"
                             f"{' ...' if len(sets) > 4 else ''}); name one, or use hashkit report")
        p = sets[0]
    else:
        p = _existing(p)
    src = _open_arrays(p)
    try:
        if "format" in src.keys() and p.suffix.lower() == ".npz":
            if keys:
                raise ValueError(f"{p}: a hashkit code file has fixed keys; --keys is for research files")
            cf = _from_hashkit_npz(src, p)
            cf.meta = {**_run_config(p), **cf.meta}
            return cf
        return _from_research(src, p, keys or {}, packed_bits, bitorder, labels, require_labels)
    finally:
        src.close()


def _run_config(p: Path) -> dict:
    """``config.json`` beside a run's ``codes.npz`` (written by ``hashkit train``), if any."""
    cfg = p.parent / "config.json"
    if p.name != "codes.npz" or not cfg.is_file():
        return {}
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{cfg}: not readable JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def _read_limit() -> int:
    # One limit for every array file hashkit reads whole (HASHKIT_MAX_ARRAY_BYTES, 8 GiB by
    # default), the MAT reader's; here it bounds the code and label arrays of one file together.
    from .data._matfile import max_bytes_default

    return max_bytes_default()


class _Arrays:
    """Named arrays of one file: declared shapes first, data only when asked for."""

    def __init__(self, path: Path):
        self.path = path
        self.shapes: dict[str, tuple] = {}
        self.itemsize: dict[str, int] = {}

    def keys(self) -> list[str]:
        return list(self.shapes)

    def read(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def fail(self, exc: BaseException) -> ValueError:
        return ValueError(f"{self.path}: not a readable {self.kind} file ({type(exc).__name__}: {exc})")

    kind = "code"


_CORRUPT = NPZ_ERRORS


class _NpzArrays(_Arrays):
    kind = ".npz"

    def __init__(self, path: Path):
        super().__init__(path)
        for name, (shape, dtype) in npz_declarations(path).items():
            self.shapes[name] = shape
            self.itemsize[name] = int(dtype.itemsize)

    def read(self, keys):
        return read_npz(self.path, keys)


class _MatArrays(_Arrays):
    """A ``.mat`` (v5 / v7.3) or HDF5 file, through hashkit's one safe MAT reader
    (:func:`hashkit.data.inspect_arrays` / :func:`hashkit.data.read_arrays`): declarations
    first, then only the keys asked for, each checked against what the file holds."""

    kind = "MATLAB / HDF5"

    def __init__(self, path: Path):
        super().__init__(path)
        from .data._matfile import inspect_arrays

        try:
            self.infos = inspect_arrays(path)
        except (FileNotFoundError, ValueError):
            raise
        except _CORRUPT as exc:
            raise self.fail(exc) from None
        for k, info in self.infos.items():
            if info.kind in ("numeric", "logical"):
                # MATLAB's shape (v7.3 axes reversed back), as read_arrays returns the array
                self.shapes[k] = tuple(int(s) for s in info.shape)
                self.itemsize[k] = max(1, int(info.nbytes // max(info.elements, 1)))

    def read(self, keys):
        from .data._matfile import read_arrays

        keys = list(keys)
        try:
            return read_arrays(self.path, keys=keys, shapes={k: self.shapes[k] for k in keys})
        except (FileNotFoundError, ValueError):
            raise
        except _CORRUPT as exc:
            raise self.fail(exc) from None


class _PtArrays(_Arrays):
    """A ``.pt`` file of tensors (a dict, possibly one level nested), loaded with ``weights_only=True``."""

    kind = ".pt"

    def __init__(self, path: Path):
        super().__init__(path)
        try:
            import torch
        except ImportError:
            raise ValueError(f"{path}: reading .pt files needs PyTorch, which is not installed: "
                             "pip install 'hashkit[train]' (or save the codes as .npz)") from None
        try:
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # files from torch < 1.6 (not zip-based) cannot be memory-mapped
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError for anything but tensors and plain types
            if isinstance(exc, MemoryError):
                raise
            raise ValueError(f"{path}: not a .pt file of tensors hashkit can load safely "
                             f"(weights_only=True; {type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: expected a dict of tensors (e.g. {{'qB': ..., 'rB': ..., 'qL': ..., "
                             f"'rL': ...}}), got {type(obj).__name__}")
        self.values: dict[str, Any] = {}
        for k, v in obj.items():
            items = v.items() if isinstance(v, dict) else [(None, v)]
            for sub, x in items:
                name = str(k) if sub is None else f"{k}.{sub}"
                if isinstance(x, torch.Tensor):
                    self.values[name] = x
                    self.shapes[name] = tuple(int(s) for s in x.shape)
                    self.itemsize[name] = int(x.element_size())
                elif isinstance(x, (int, float, bool, np.ndarray)):
                    arr = np.asarray(x)
                    self.values[name] = arr
                    self.shapes[name] = arr.shape
                    self.itemsize[name] = arr.dtype.itemsize

    def read(self, keys):
        out = {}
        for k in keys:
            v = self.values[k]
            if hasattr(v, "detach"):
                v = v.detach()
                if str(v.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
                    v = v.float()
                v = v.numpy()
            out[k] = np.asarray(v)
        return out


class _NpySetArrays(_Arrays):
    """DeepHash-pytorch's folder: tst_binary.npy, trn_binary.npy, tst_label.npy, trn_label.npy."""

    kind = ".npy"

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.files = {f[:-4]: folder / f for f in DEEPHASH_FILES}
        for k, f in self.files.items():
            try:
                # mmap reads the header only, and refuses a file shorter than its header says
                arr = np.load(f, mmap_mode="r", allow_pickle=False)
            except _CORRUPT as exc:
                raise ValueError(f"{f}: not a readable .npy file ({type(exc).__name__}: {exc})") from None
            self.shapes[k] = tuple(int(s) for s in arr.shape)
            self.itemsize[k] = int(arr.dtype.itemsize)
            del arr

    def read(self, keys):
        out = {}
        for k in keys:
            try:
                out[k] = np.load(self.files[k], allow_pickle=False)
            except _CORRUPT as exc:
                raise ValueError(f"{self.files[k]}: not a readable .npy file ({type(exc).__name__}: {exc})") from None
        return out


def _open_arrays(p: Path) -> _Arrays:
    if p.is_dir():
        return _NpySetArrays(p)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return _NpzArrays(p)
    if suffix == ".mat":
        return _MatArrays(p)
    if suffix in (".pt", ".pth"):
        return _PtArrays(p)
    raise ValueError(f"{p}: unknown code file type {suffix!r}; expected .npz, .mat, .pt, a DeepHash-pytorch "
                     "folder of .npy files, or a hashkit run folder")


def _check_budget(src: _Arrays, keys: Iterable[str]) -> None:
    keys = list(keys)
    total = sum(int(np.prod(src.shapes[k], dtype=np.float64)) * src.itemsize.get(k, 8) for k in keys)
    limit = _read_limit()
    if total > limit:
        raise ValueError(f"{src.path}: the arrays to read ({', '.join(keys)}) declare {total / 2**30:.1f} GiB, "
                         f"above the read limit of {limit / 2**30:.1f} GiB (set {READ_LIMIT_ENV} to change it)")


def _scalar_int(arr, p: Path, key: str) -> int:
    a = np.asarray(arr)
    if a.size != 1 or not (np.issubdtype(a.dtype, np.number)):
        raise ValueError(f"{p}: key {key!r}: expected one integer (the code length), got {V.describe(a)}")
    v = a.reshape(()).item()
    if float(v) != int(v) or int(v) < 1:
        raise ValueError(f"{p}: key {key!r}: expected a positive integer code length, got {v!r}")
    return int(v)


def _from_hashkit_npz(src: _Arrays, p: Path) -> CodeFile:
    names = src.keys()
    if "nbits" not in names:
        raise ValueError(f"{p}: missing key 'nbits'; keys present: {sorted(names)}")
    if ("query_labels" in names) != ("db_labels" in names):
        missing = "db_labels" if "query_labels" in names else "query_labels"
        raise ValueError(f"{p}: missing key {missing!r} (labels come in pairs); keys present: {sorted(names)}")
    codes = [k for k in CODE_FILE_KEYS if k in names]
    for key in codes + [k for k in ("query_labels", "db_labels") if k in names]:
        if len(src.shapes[key]) != 2:
            raise ValueError(f"{p}: key {key!r}: expected a 2-D array, declared shape {src.shapes[key]}")
    _check_sides(src, p, {k: k for k in codes}, "query_labels" if "query_labels" in names else None,
                 "db_labels" if "db_labels" in names else None)
    wanted = [k for k in ("format", "bit_order", "nbits", "meta", "query_labels", "db_labels") if k in names] + codes
    _check_budget(src, wanted)
    raw = src.read(wanted)
    fmt = str(np.asarray(raw["format"]))
    if fmt != FORMAT:
        raise ValueError(f"{p}: key 'format' is {fmt!r}, expected {FORMAT!r}")
    if "bit_order" in raw and str(np.asarray(raw["bit_order"])) != BIT_ORDER:
        raise ValueError(f"{p}: key 'bit_order' is {str(np.asarray(raw['bit_order']))!r}, expected {BIT_ORDER!r}")
    nbits = _scalar_int(raw["nbits"], p, "nbits")
    kw = {}
    for key in codes:
        try:
            kw[key] = Codes(np.ascontiguousarray(raw[key]), nbits)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{p}: key {key!r}: {exc}") from None
    meta = {}
    if "meta" in raw:
        try:
            meta = json.loads(str(np.asarray(raw["meta"])))
        except ValueError as exc:
            raise ValueError(f"{p}: key 'meta': not JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{p}: key 'meta': expected a JSON object, got {type(meta).__name__}")
    ql = dl = None
    if "query_labels" in raw:
        ql = _check_multi_hot(raw["query_labels"], p, "query_labels")
        dl = _check_multi_hot(raw["db_labels"], p, "db_labels")
    return _finish(p, ql, dl, kw, meta)


def _check_multi_hot(arr, p: Path, key: str) -> np.ndarray:
    """hashkit writes uint8 0/1 labels; anything else (256, 0.5, -1) is refused, never cast."""
    arr = np.asarray(arr)
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{p}: key {key!r}: expected 0/1 multi-hot labels (n, nlabels), got {V.describe(arr)}")
    if arr.dtype != np.bool_:
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            raise ValueError(f"{p}: key {key!r}: expected labels of 0 and 1 only, got values such as "
                             f"{np.unique(arr[bad])[:5].tolist()}")
    return (arr != 0).astype(np.uint8)


def _match_roles(src: _Arrays, p: Path, keys: dict[str, str]) -> dict[str, str]:
    names = src.keys()
    lower: dict[str, str] = {}
    for k in names:
        lower.setdefault(k.lower(), k)
    found: dict[str, str] = {}
    for role, key in keys.items():
        if key not in names:
            raise ValueError(f"{p}: --keys {role}={key}: no key {key!r} in the file; keys present: {sorted(names)}")
        found[role] = key
    taken = set(found.values())
    # A unimodal file (qB/rB) and a cross-modal one (qBX/rBX) could both match "query_image";
    # the cross-modal names come first in ALIASES, so they win.
    for role, aliases in ALIASES.items():
        if role in found:
            continue
        for a in aliases:
            if a in lower and lower[a] not in taken:
                found[role] = lower[a]
                taken.add(lower[a])
                break
    return found


def _label_rows(shape: tuple) -> tuple[int, ...]:
    """The item counts a declared label shape allows (a (1, m) array is one multi-hot row, or a
    MATLAB row of m class ids: which one shows only in its values)."""
    if len(shape) == 1:
        return (shape[0],)
    if len(shape) == 2 and shape[0] == 1 and shape[1] > 1:
        return (1, shape[1])
    return (shape[0],) if shape else ()


def _check_sides(src: _Arrays, p: Path, found: dict[str, str], qkey: str | None, dkey: str | None) -> None:
    """Declared shapes of codes and labels must agree before anything is read."""
    nq = _label_rows(src.shapes[qkey]) if qkey else None
    nd = _label_rows(src.shapes[dkey]) if dkey else None
    for role in CODE_FILE_KEYS:
        if role not in found:
            continue
        key = found[role]
        shape = src.shapes[key]
        if len(shape) != 2:
            raise ValueError(f"{p}: key {key!r} ({role}): expected a 2-D array of codes (n, nbits), "
                             f"declared shape {shape}")
        allowed = nq if role.startswith("query") else nd
        if allowed is None:
            continue
        if not any(shape[0] == n or shape[1] == n for n in allowed):
            lab = qkey if role.startswith("query") else dkey
            raise ValueError(f"{p}: {role} has {shape[0]} codes but the "
                             f"{'query' if role.startswith('query') else 'database'} labels "
                             f"({lab!r}) have {' or '.join(map(str, allowed)) or 0} rows "
                             f"(declared shapes {shape} and {src.shapes[lab]})")


def _from_research(src: _Arrays, p: Path, keys: dict, packed_bits, bitorder: str, labels: str,
                   require_labels: bool = True) -> CodeFile:
    found = _match_roles(src, p, keys)
    names = src.keys()
    has_labels = "query_labels" in found and "db_labels" in found
    for role in ("query_labels", "db_labels"):
        if role not in found and (require_labels or role.replace("query", "db") in found
                                  or role.replace("db", "query") in found):
            raise ValueError(f"{p}: no {role.replace('_', ' ')} found; expected one of the keys "
                             f"{', '.join(ALIASES[role][:6])} ... (or name it: --keys {role}=KEY); "
                             f"keys present: {sorted(names)}")
    code_roles = [r for r in CODE_FILE_KEYS if r in found]
    if not code_roles:
        raise ValueError(f"{p}: no code set found; expected keys such as qBX/rBX/qBY/rBY or qB/rB "
                         f"(or name them: --keys query_image=KEY,...); keys present: {sorted(names)}")
    label_roles = ("query_labels", "db_labels") if has_labels else ()
    for role in label_roles:
        shape = src.shapes[found[role]]
        if len(shape) not in (1, 2):
            raise ValueError(f"{p}: key {found[role]!r} ({role}): expected labels (n, nlabels) or class ids (n,), "
                             f"declared shape {shape}")
    _check_sides(src, p, found, found.get("query_labels") if has_labels else None,
                 found.get("db_labels") if has_labels else None)
    wanted = [found[r] for r in label_roles + tuple(code_roles)]
    if "nbits" in found and src.shapes[found["nbits"]] in ((), (1,), (1, 1)):
        wanted.append(found["nbits"])
    elif "nbits" in keys:
        raise ValueError(f"{p}: --keys nbits={keys['nbits']}: expected a scalar, declared shape "
                         f"{src.shapes[keys['nbits']]}")
    _check_budget(src, wanted)
    raw = src.read(list(dict.fromkeys(wanted)))
    file_bits = None
    if "nbits" in found and found["nbits"] in raw:
        file_bits = _scalar_int(raw[found["nbits"]], p, found["nbits"])
    ql = dl = None
    if has_labels:
        ql, dl = _label_pair(raw[found["query_labels"]], raw[found["db_labels"]], p,
                             found["query_labels"], found["db_labels"], labels)
    kw = {}
    for role in code_roles:
        key = found[role]
        arr = np.asarray(raw[key])
        n_expected = None if ql is None else (ql if role.startswith("query") else dl).shape[0]
        if n_expected is not None and arr.ndim == 2 and arr.shape[0] != n_expected and arr.shape[1] == n_expected:
            arr = arr.T
        kw[role] = _codes_from_array(np.ascontiguousarray(arr), p, key, packed_bits, file_bits, found.get("nbits"),
                                     bitorder)
    meta = {"source_keys": {r: found[r] for r in found}}
    packed = {r: c.nbits for r, c in kw.items() if np.issubdtype(np.asarray(raw[found[r]]).dtype, np.integer)
              and (packed_bits is not None or _out_of_bit_range(raw[found[r]]))}
    if packed:
        meta["packed"] = {"bitorder": bitorder, "nbits": next(iter(packed.values()))}
    return _finish(p, ql, dl, kw, meta)


def _out_of_bit_range(arr) -> bool:
    arr = np.asarray(arr)
    return bool(arr.size) and (arr.min() < -1 or arr.max() > 1)


def _codes_from_array(arr: np.ndarray, p: Path, key: str, packed_bits, file_bits, bits_key, bitorder) -> Codes:
    integer = np.issubdtype(arr.dtype, np.integer)
    try:
        if packed_bits is not None:
            if not integer:
                raise ValueError(f"--packed-bits: expected packed integers, got {V.describe(arr)}")
            return from_bytes(arr, packed_bits, bitorder)
        if integer and _out_of_bit_range(arr):
            if file_bits is None:
                raise ValueError(
                    f"holds {arr.dtype} codes with values from {arr.min()} to {arr.max()}: bits packed into "
                    f"integers (MATLAB compactbit, np.packbits, FAISS, int64 words), and the file does not say "
                    f"how many bits they hold; give the code length: --packed-bits N (packed_bits=N), and "
                    f"--bitorder big for np.packbits (compactbit and FAISS are little, the default)")
            try:
                return from_bytes(arr, file_bits, bitorder)
            except ValueError as exc:
                raise ValueError(f"read as {file_bits}-bit packed codes (key {bits_key!r}): {exc}") from None
        if integer:
            # one value per bit: as int8, so that a uint64 array of 0/1 is not taken for
            # hashkit's own packed words (pack's rule for uint64 input)
            arr = arr.astype(np.int8)
        return pack(arr, name=key)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{p}: key {key!r}: {exc}") from None


def _label_pair(qraw, draw, p: Path, qkey: str, dkey: str, reading: str) -> tuple[np.ndarray, np.ndarray]:
    """Query and database labels as uint8 multi-hot with the same columns (class ids one-hot jointly)."""
    q, d = np.asarray(qraw), np.asarray(draw)
    for arr, key in ((q, qkey), (d, dkey)):
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise ValueError(f"{p}: key {key!r}: expected numeric labels, got {V.describe(arr)}")
        if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
            raise ValueError(f"{p}: key {key!r}: labels contain NaN")

    def column(a):
        """The class-id vector a label array may be: 1-D, (n, 1), or a MATLAB row (1, n) of ids
        (a (1, L) array with values above 1; with 0/1 only it is one query's multi-hot row)."""
        if a.ndim == 1:
            return a
        if a.ndim == 2 and a.shape[1] == 1:
            return a[:, 0]
        if a.ndim == 2 and a.shape[0] == 1 and a.shape[1] > 1 and a.size and a.max() > 1:
            return a[0]
        return None

    qc, dc = column(q), column(d)
    if qc is not None and dc is not None:
        vals = np.concatenate([qc.ravel(), dc.ravel()])
        binary = vals.size > 0 and bool(np.all((vals == 0) | (vals == 1)))
        as_ids = reading == "class-ids" or (reading == "auto" and not binary)
        if reading == "auto" and binary:
            raise ValueError(
                f"{p}: keys {qkey!r} and {dkey!r} hold a single column of 0 and 1: class ids 0 and 1 (two classes), "
                "or one binary label that rows with 0 lack? Say which: --class-ids (labels='class-ids') or "
                "--multi-hot (labels='multi-hot')")
        if as_ids:
            return _one_hot_pair(qc, dc, p, qkey, dkey)
        q, d = qc.reshape(-1, 1), dc.reshape(-1, 1)
    elif reading == "class-ids":
        raise ValueError(f"{p}: --class-ids: expected a single column of class ids in {qkey!r} and {dkey!r}, "
                         f"got shapes {q.shape} and {d.shape}")
    out = []
    for arr, key in ((q, qkey), (d, dkey)):
        if arr.ndim != 2:
            raise ValueError(f"{p}: key {key!r}: expected labels (n, nlabels) or a column of class ids, "
                             f"got {V.describe(arr)}")
        out.append(_check_multi_hot(arr, p, key))
    if out[0].shape[1] != out[1].shape[1]:
        raise ValueError(f"{p}: keys {qkey!r} and {dkey!r}: query and database labels must have the same "
                         f"number of labels, got {out[0].shape[1]} and {out[1].shape[1]}")
    return out[0], out[1]


def _one_hot_pair(qc, dc, p, qkey, dkey):
    ids = []
    for a, key in ((qc, qkey), (dc, dkey)):
        if np.issubdtype(a.dtype, np.floating):
            if not np.all(a == np.round(a)):
                raise ValueError(f"{p}: key {key!r}: class ids must be whole numbers, got values such as "
                                 f"{np.unique(a[a != np.round(a)])[:5].tolist()}")
        if a.size and a.min() < 0:
            raise ValueError(f"{p}: key {key!r}: class ids must be >= 0, got minimum {a.min()}")
        ids.append(a.astype(np.int64))
    nl = int(max(int(i.max()) if i.size else 0 for i in ids)) + 1
    if nl > 1 << 20:
        raise ValueError(f"{p}: keys {qkey!r}/{dkey!r}: class ids up to {nl - 1}: not class ids")
    out = []
    for i in ids:
        oh = np.zeros((i.shape[0], nl), dtype=np.uint8)
        oh[np.arange(i.shape[0]), i] = 1
        out.append(oh)
    return out[0], out[1]


def _finish(p: Path, ql, dl, kw: dict, meta: dict) -> CodeFile:
    nbits = {c.nbits for c in kw.values()}
    if len(nbits) > 1:
        raise ValueError(f"{p}: code sets of different lengths: " +
                         ", ".join(f"{k}={c.nbits} bits" for k, c in kw.items()))
    if not kw:
        raise ValueError(f"{p}: no code set in the file")
    if ql is None:  # codes only
        for side in ("query", "db"):
            n = {c.n for k, c in kw.items() if k.startswith(side)}
            if len(n) > 1:
                raise ValueError(f"{p}: the {side} code sets have different counts: " +
                                 ", ".join(f"{k}={c.n}" for k, c in kw.items() if k.startswith(side)))
        return CodeFile(query_labels=None, db_labels=None, meta=meta, path=str(p), **kw)
    if ql.ndim != 2 or dl.ndim != 2 or ql.shape[1] != dl.shape[1]:
        raise ValueError(f"{p}: query and database labels must be (n, nlabels) with the same nlabels; "
                         f"got {ql.shape} and {dl.shape}")
    for role, c in kw.items():
        lab = ql if role.startswith("query") else dl
        if c.n != lab.shape[0]:
            raise ValueError(f"{p}: {role} has {c.n} codes but the "
                             f"{'query' if role.startswith('query') else 'database'} labels have {lab.shape[0]} rows")
    return CodeFile(query_labels=ql, db_labels=dl, meta=meta, path=str(p), **kw)
