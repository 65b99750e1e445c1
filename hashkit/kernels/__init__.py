"""The one door into the kernels: validation, packing, placement and the choice of backend.

Every public entry point that runs a kernel (``hashkit.search``, ``hashkit.metrics``,
``hashkit.eval`` through the metrics, ``hashkit.graph``) calls :func:`prepare`, which

1. checks and packs the codes (and labels, when given) once (``hashkit.codes.as_codes`` /
   ``as_labels``),
2. picks the backend by the **placement policy** below, and
3. places the words where that backend wants them,

and returns a :class:`Prepared` holding the backend module and the placed arrays.

Placement policy (one, here and in :func:`hashkit.kernels._select.resolve`):

- ``backend="auto"`` runs where the data lives: host (NumPy) codes on ``cpp`` (else ``numba``;
  ``HASHKIT_BACKEND`` may name either), device codes (a PyTorch CUDA tensor or a CuPy array)
  on ``cuda``. When device codes meet a machine without a usable CUDA backend, the codes are
  copied to the host, the call runs on the host backend, and a ``RuntimeWarning`` saying why is
  issued once per process.
- An explicit backend is obeyed or refused: ``"cuda"`` without a usable CUDA backend raises
  ``RuntimeError`` quoting the recorded reason; ``"cpp"`` / ``"numba"`` take device codes to the
  host.

The backends are siblings behind one checked contract, :class:`KernelBackend`: the compiled
``hashkit._core`` (C++), :mod:`hashkit.kernels._numba` and :mod:`hashkit.kernels._cuda`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from .. import _validate as V
from ..codes import Codes, as_codes, as_labels
from ._select import NAMES, available, get, info, reasons, resolve

__all__ = ["prepare", "Prepared", "KernelBackend", "place_like", "NAMES", "BACKENDS", "available",
           "reasons", "resolve", "get", "info"]

#: The accepted ``backend=`` values.
BACKENDS = ("auto",) + NAMES


@runtime_checkable
class KernelBackend(Protocol):
    """The kernel contract every backend implements (shapes and dtypes: docs/INTERNALS.md).

    Inputs are validated raw arrays: ``q`` / ``db`` packed ``uint64`` words ``(Q, W)`` /
    ``(N, W)``, ``ql`` / ``dbl`` packed labels ``(Q, LW)`` / ``(N, LW)``; ``nthreads`` 0 = every
    core (ignored by CUDA). tests/test_contract.py checks every backend's signatures against
    this class, parameter names and defaults included.
    """

    def hamming(self, q, db, nthreads=0):
        """``int32 (Q, N)`` distances."""

    def topk(self, q, db, nbits, k, nthreads=0, out=None):
        """``(dist int32 (Q, k), idx int64 (Q, k))`` by (distance, index); into ``out`` when given."""

    def radius(self, q, db, nbits, r, nthreads=0):
        """``(lims int64 (Q+1,), idx int64 (M,), dist int32 (M,))``, each slice by (distance, index)."""

    def hist_stats(self, q, db, ql, dbl, nbits, nthreads=0):
        """``(hist_all, hist_rel)``, int64 ``(Q, nbits + 1)``."""

    def rank_stats(self, q, db, ql, dbl, nbits, cutoffs, first_m, graded, nlabels, nthreads=0):
        """Dict of per-query ranking statistics (docs/INTERNALS.md)."""


class Prepared(NamedTuple):
    """What :func:`prepare` returns: a backend and arrays placed for it."""

    kernels: Any                 #: the backend module (implements :class:`KernelBackend`)
    backend: str                 #: its name: "cpp", "numba" or "cuda"
    q: Codes
    db: Codes
    ql: np.ndarray | None        #: packed query labels (host), or None
    dbl: np.ndarray | None       #: packed database labels (host), or None
    nlabels: int                 #: label columns (0 without labels)
    nthreads: int                #: 0 = every core

    @property
    def nbits(self) -> int:
        return self.q.nbits


def prepare(q: Any, db: Any, ql: Any = None, dbl: Any = None, *, backend: str = "auto",
            nthreads: int | None = None, names: tuple[str, ...] = ("q", "db", "ql", "dbl"),
            db_cache: dict | None = None) -> Prepared:
    """Validate a query/database pair (and labels), choose the backend, place the words.

    Parameters
    ----------
    q, db : codes in any form ``hashkit.codes.as_codes`` accepts.
    ql, dbl : multi-hot labels (both or neither), in any form ``as_labels`` accepts.
    backend : ``"auto"`` | ``"cpp"`` | ``"numba"`` | ``"cuda"`` (placement policy: module docstring).
    nthreads : None / 0 (every core) or a positive integer.
    names : the argument names used in error messages, in the order ``q, db, ql, dbl``.
    db_cache : optional dict owned by the caller (``HammingIndex``) in which device copies of a
        host database are kept, keyed by device, so a database is placed once per device.

    Returns
    -------
    Prepared

    Raises
    ------
    TypeError, ValueError
        Bad codes or labels, different code lengths, label rows that do not match the codes,
        different label widths, an unknown backend.
    RuntimeError
        An explicitly requested backend is not available (the message quotes why).
    """
    qc = as_codes(q, names[0])
    dc = as_codes(db, names[1])
    V.check_same_nbits(qc, dc, names[:2])
    nt = V.check_nthreads(nthreads)
    V.check_choice(backend, BACKENDS, "backend")
    if (ql is None) != (dbl is None):
        raise ValueError(f"{names[2]} and {names[3]}: expected both label sets or neither")
    qlw = dlw = None
    nlabels = 0
    if ql is not None:
        qlw, nlq = as_labels(ql, names[2])
        dlw, nld = as_labels(dbl, names[3])
        V.check_count(qc.n, qlw.shape[0], (names[0], names[2]))
        V.check_count(dc.n, dlw.shape[0], (names[1], names[3]))
        if nlq != nld:
            raise ValueError(f"{names[2]} and {names[3]}: expected the same number of label columns, "
                             f"got {nlq} and {nld}")
        nlabels = nlq
    name = resolve(backend, device=qc.on_device or dc.on_device)
    if name != "cuda":
        qc, dc = qc.numpy(), dc.numpy()
    elif db_cache is not None and qc.on_device and not dc.on_device:
        key = qc.device_key
        if key not in db_cache:
            db_cache[key] = place_like(dc, qc)
        dc = db_cache[key]
    return Prepared(get(name), name, qc, dc, qlw, dlw, nlabels, nt)


def place_like(codes: Codes, like: Codes) -> Codes:
    """A copy of host ``codes`` in the framework and on the device of the device codes ``like``."""
    kind = V.array_kind(like.words)
    if kind == "torch":
        import torch

        words = torch.from_numpy(codes.words).to(like.words.device)
    elif kind == "cupy":
        import cupy

        with cupy.cuda.Device(like.words.device.id):
            words = cupy.asarray(codes.words)
    else:
        return codes
    return Codes(words, codes.nbits)
