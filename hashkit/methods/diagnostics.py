"""Code-collapse diagnostics written into every run's ``results.json``.

A MAP threshold cannot tell a working method from a broken one on an easy set (a label-taught
MLP pair reaches 0.88 on mfeat), but collapsed codes are visible directly: a handful of
distinct codes for thousands of items, or bits that never change. :func:`code_diagnostics`
counts both for the retrieval codes of each modality; :func:`run_diagnostics` adds what a
method reports about its own training state (``Method.diagnostics``: GCH's distinct beacon
codes over the training set) and logs one warning line when the codes collapse.

Collapse rule (issue 12): fewer distinct codes than there are labels (columns of the label
matrix), or at least one constant bit.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["code_diagnostics", "distinct_rows", "run_diagnostics"]


def distinct_rows(codes: Any) -> int:
    """Number of distinct rows of a ``(n, nbits)`` ±1 / {0,1} / bool array (or tensor)."""
    arr = codes.detach().cpu().numpy() if hasattr(codes, "detach") else np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"codes: expected a 2-D array (n, nbits), got shape {arr.shape}")
    if arr.shape[0] == 0:
        return 0
    bits = np.packbits(arr > 0, axis=1)
    return int(np.unique(bits, axis=0).shape[0])


def code_diagnostics(codes: Any, nlabels: int | None = None) -> dict:
    """Distinct codes and per-bit balance of one set of codes.

    Parameters
    ----------
    codes : array-like (n, nbits)
        ±1 (or {0, 1}) codes; ``value > 0`` is bit 1.
    nlabels : int, optional
        Number of labels; with it, ``collapsed`` is also true when there are fewer distinct
        codes than labels.

    Returns
    -------
    dict
        ``n``, ``distinct`` (distinct rows), ``bit_balance`` (fraction of items with bit ``j``
        set, one float per bit), ``balance_min`` / ``balance_max``, ``constant_bits`` (bits
        equal for every item), ``collapsed`` (bool).

    Examples
    --------
    >>> d = code_diagnostics(np.array([[1, -1], [1, 1], [1, -1]]), nlabels=2)
    >>> d["distinct"], d["constant_bits"], d["collapsed"]
    (2, 1, True)
    """
    arr = codes.detach().cpu().numpy() if hasattr(codes, "detach") else np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"codes: expected a 2-D array (n, nbits), got shape {arr.shape}")
    on = arr > 0
    n = int(on.shape[0])
    balance = on.mean(axis=0) if n else np.zeros(on.shape[1])
    constant = int(((balance == 0.0) | (balance == 1.0)).sum()) if n else 0
    distinct = distinct_rows(on)
    collapsed = bool(constant > 0 or (nlabels is not None and distinct < int(nlabels)))
    return {"n": n, "distinct": distinct, "bit_balance": [round(float(b), 4) for b in balance],
            "balance_min": float(balance.min()) if n else 0.0,
            "balance_max": float(balance.max()) if n else 0.0,
            "constant_bits": constant, "collapsed": collapsed}


def run_diagnostics(method: Any, codes: Mapping[str, Any], nlabels: int | None = None, train: Any = None,
                    log: Callable[[str], None] | None = None) -> dict:
    """The diagnostics block of ``results.json`` for a trained run.

    Parameters
    ----------
    method : Method
        The trained method; its ``diagnostics(train)`` (if any) is merged in under ``"method"``.
    codes : mapping
        The Trainer's final codes (``db_image``, ``db_text``, ...); the retrieval codes
        (``db_*``) are examined.
    nlabels : int, optional
    train : TrainData, optional
        The training split, handed to ``method.diagnostics``.
    log : callable, optional
        Receives one warning line per collapsed code set.

    Returns
    -------
    dict
        ``{"image": {...}, "text": {...}, "method": {...}, "collapsed": bool}``.
    """
    out: dict = {}
    for key, name in (("db_image", "image"), ("db_text", "text")):
        if key in codes and codes[key] is not None:
            out[name] = code_diagnostics(codes[key], nlabels)
    extra = {}
    hook = getattr(method, "diagnostics", None)
    if callable(hook) and train is not None:
        extra = dict(hook(train) or {})
    if extra:
        out["method"] = extra
    out["collapsed"] = any(out[k]["collapsed"] for k in ("image", "text") if k in out)
    if log is not None:
        for k in ("image", "text"):
            d = out.get(k)
            if d is not None and d["collapsed"]:
                log(f"warning: {k} retrieval codes collapsed: {d['distinct']} distinct codes among "
                    f"{d['n']} items ({nlabels} labels), {d['constant_bits']} constant bits")
    return out
