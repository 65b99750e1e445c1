"""Code files: the formats in which the field saves query/database codes and labels.

:func:`load_code_file` reads hashkit's own ``.npz`` (:func:`save_code_file`) and the research
files (``.mat`` v5 / v7.3 and ``.npz`` with ``qBX``/``rBX``/``query_L``-style keys, matched by
:data:`ALIASES`); :class:`CodeFile` is what ``hashkit eval`` evaluates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _validate as V
from ._io import atomic_path
from .codes import BIT_ORDER, FORMAT, Codes, _existing, as_codes, as_labels, pack

__all__ = ["CodeFile", "save_code_file", "load_code_file", "CODE_FILE_KEYS", "ALIASES"]

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
    from .data._matfile import read_arrays

    return read_arrays(p)
