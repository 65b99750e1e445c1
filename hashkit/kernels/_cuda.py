"""CUDA implementation of the kernel contract (docs/INTERNALS.md), over ``hashkit._cuda``.

Same functions and signatures as ``hashkit.kernels._numba`` / ``hashkit._core`` (the
``hashkit.kernels.KernelBackend`` protocol, checked by tests/test_contract.py); see docs/CUDA.md.

Arrays in, arrays out:

- PyTorch CUDA tensors and CuPy arrays (and anything with ``__cuda_array_interface__`` when CuPy
  is installed) are used in place: no host round trip. Outputs are allocated by the same
  framework, on the same device, and the kernels run on that framework's *current stream*
  (``torch.cuda.current_stream(dev)`` / ``cupy.cuda.get_current_stream()``), so they are
  ordered with the caller's own work and return without synchronising (``radius`` is the
  exception: it must learn the result size, so it synchronises once).
- A call whose code arrays are all NumPy copies them to the current device (with CuPy if it is
  installed, else PyTorch) and returns **NumPy** arrays: host in, host out.
- Mixed inputs follow the first device array among ``q, db, ql, dbl``; NumPy arrays are copied
  to it and arrays of the other framework are wrapped zero-copy through DLPack.
- ``nthreads`` is accepted for signature compatibility and ignored.

Codes and labels may be ``uint64`` or ``int64`` (the same bits). torch and cupy are imported
lazily, never at ``import hashkit``. Importing this module never touches the CUDA driver:
``AVAILABLE`` / ``REASON`` are computed on first access (extension import + device count).

Scratch memory for the per-chunk histograms is taken from the CUDA stream-ordered allocator,
at most ``HASHKIT_CUDA_SCRATCH_MB`` MiB per call (default 1024; queries are batched to fit).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import numpy as np

from .. import _validate as V

__all__ = ["hamming", "topk", "radius", "hist_stats", "rank_stats", "device_info", "build_info"]

_lock = threading.Lock()
_state: tuple[bool, str] | None = None


def _ext():
    from .. import _cuda  # the compiled module, hashkit._cuda

    return _cuda


def _probe() -> tuple[bool, str]:
    global _state
    if _state is None:
        with _lock:
            if _state is None:
                try:
                    ext = _ext()
                except ImportError as exc:
                    _state = (False, f"hashkit._cuda is not built ({exc}); build hashkit where nvcc is "
                                     "available (HASHKIT_CUDA=ON)")
                else:
                    n = ext.device_count()
                    if isinstance(n, str):
                        _state = (False, f"the CUDA runtime cannot be used: {n}")
                    elif n == 0:
                        _state = (False, "no CUDA device is visible")
                    else:
                        _state = (True, "")
    return _state


def __getattr__(name: str):
    # Lazy module attributes: probing the device at import would initialise the CUDA driver
    # whenever hashkit is imported.
    if name == "AVAILABLE":
        return _probe()[0]
    if name == "REASON":
        return _probe()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _require():
    ok, why = _probe()
    if not ok:
        raise RuntimeError(f"CUDA backend unavailable: {why}")
    return _ext()


def _scratch_bytes() -> int:
    raw = os.environ.get("HASHKIT_CUDA_SCRATCH_MB", "1024")
    try:
        mb = int(raw)
    except ValueError:
        raise ValueError(f"HASHKIT_CUDA_SCRATCH_MB: expected a positive integer, got {raw!r}") from None
    if mb < 1:
        raise ValueError(f"HASHKIT_CUDA_SCRATCH_MB: expected a positive integer, got {raw!r}")
    return mb << 20


def device_info() -> dict:
    """Properties of the current device, for ``hashkit info``."""
    ext = _require()
    return ext.device_properties(_current_device())


def build_info() -> dict:
    """CUDA runtime the extension was compiled against."""
    v = _ext().CUDART_VERSION
    return {"cudart": f"{v // 1000}.{(v % 1000) // 10}"}


# --------------------------------------------------------------------------------------------
# array plumbing

def _kind(x: Any) -> str:
    kind = V.array_kind(x)
    if kind == "other" and hasattr(x, "__cuda_array_interface__"):
        return "cai"
    return kind


def _current_device() -> int:
    if "cupy" in sys.modules:
        import cupy

        return int(cupy.cuda.runtime.getDevice())
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.current_device())
    return 0


class _Ctx:
    """Where a call runs: framework, device, stream; makes outputs and converts inputs."""

    def __init__(self, framework: str, device: int, host: bool):
        self.framework = framework
        self.device = device
        self.host = host
        if framework == "torch":
            import torch

            self._torch = torch
            self.stream = int(torch.cuda.current_stream(device).cuda_stream)
        else:
            import cupy

            self._cupy = cupy
            with cupy.cuda.Device(device):
                self.stream = int(cupy.cuda.get_current_stream().ptr)

    # -- outputs --------------------------------------------------------------------------
    def empty(self, shape, dtype: str):
        if self.framework == "torch":
            t = self._torch
            return t.empty(shape, dtype=getattr(t, dtype), device=t.device("cuda", self.device))
        with self._cupy.cuda.Device(self.device):
            return self._cupy.empty(shape, dtype=dtype)

    def out_pair(self, out, shape):
        """Check ``out=(dist, idx)`` for :func:`topk`: this framework and device, int32 / int64,
        ``shape``, C-contiguous, not sharing memory."""
        want = (f"a tuple (dist, idx) of {self.framework} arrays on cuda:{self.device}: int32 and int64, "
                f"shape {shape}, C-contiguous")
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(f"out: expected {want}, got {V.describe(out)}")
        for part, a, dtype in (("dist", out[0], "int32"), ("idx", out[1], "int64")):
            kind = _kind(a)
            if kind != self.framework or (kind == "torch" and not a.is_cuda):
                raise TypeError(f"out ({part}): expected a {self.framework} CUDA array, got {V.describe(a)}")
            if str(a.dtype).replace("torch.", "") != dtype:
                raise TypeError(f"out ({part}): expected dtype {dtype}, got {V.describe(a)}")
            if tuple(a.shape) != tuple(shape):
                raise ValueError(f"out ({part}): expected shape {tuple(shape)}, got {tuple(a.shape)}")
            dev = int(a.device.index) if kind == "torch" else int(a.device.id)
            if dev != self.device:
                raise ValueError(f"out ({part}): expected an array on cuda:{self.device}, got {V.describe(a)}")
            contiguous = a.is_contiguous() if kind == "torch" else a.flags.c_contiguous
            if not contiguous:
                raise ValueError(f"out ({part}): expected a C-contiguous array")
        d, i = out
        lo_d, lo_i = self.ptr(d), self.ptr(i)
        if lo_d < lo_i + 8 * int(i.numel() if self.framework == "torch" else i.size) and \
                lo_i < lo_d + 4 * int(d.numel() if self.framework == "torch" else d.size):
            raise ValueError("out: dist and idx must not share memory")
        return d, i

    def ptr(self, a) -> int:
        if self.framework == "torch":
            return int(a.data_ptr())
        return int(a.data.ptr)

    def result(self, a):
        if not self.host:
            return a
        if self.framework == "torch":
            return a.cpu().numpy()
        with self._cupy.cuda.Device(self.device):
            return a.get()

    # -- inputs ---------------------------------------------------------------------------
    def words(self, x, name: str, width: int | None = None):
        """``x`` as a C-contiguous 2-D 64-bit device array of this framework/device."""
        kind = _kind(x)
        if kind == "numpy":
            a = np.ascontiguousarray(x)
            if a.dtype == np.int64:
                a = a.view(np.uint64)
            self._check(a, str(a.dtype), a.shape, name, width, x)
            if self.framework == "torch":
                t = self._torch
                return t.from_numpy(a).to(t.device("cuda", self.device))
            with self._cupy.cuda.Device(self.device):
                return self._cupy.asarray(a)
        if self.framework == "torch":
            t = self._torch
            if kind != "torch":
                x = t.from_dlpack(x)
            if not x.is_cuda:
                raise TypeError(f"{name}: expected a CUDA tensor or a NumPy array, got {V.describe(x)}")
            self._check(x, str(x.dtype).replace("torch.", ""), tuple(x.shape), name, width, x)
            if x.device.index != self.device:
                raise ValueError(f"{name}: expected an array on cuda:{self.device} like the other inputs, "
                                 f"got {V.describe(x)}")
            return x.contiguous()
        cp = self._cupy
        if kind == "torch":
            if not x.is_cuda:
                raise TypeError(f"{name}: expected a CUDA tensor or a NumPy array, got {V.describe(x)}")
            x = cp.from_dlpack(x)
        elif kind != "cupy":
            x = cp.asarray(x)
        self._check(x, str(x.dtype), tuple(x.shape), name, width, x)
        if x.device.id != self.device:
            raise ValueError(f"{name}: expected an array on cuda:{self.device} like the other inputs, "
                             f"got {V.describe(x)}")
        with cp.cuda.Device(self.device):
            return cp.ascontiguousarray(x)

    @staticmethod
    def _check(a, dtype: str, shape, name: str, width, orig):
        if dtype not in ("uint64", "int64"):
            raise TypeError(f"{name}: expected packed 64-bit words (uint64), got {V.describe(orig)}")
        if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"{name}: expected a non-empty 2-D array of packed words (n, W), got shape {tuple(shape)}")
        if width is not None and shape[1] != width:
            raise ValueError(f"{name}: expected {width} words per row, got shape {tuple(shape)}")


def _context(*arrays) -> _Ctx:
    for x in arrays:
        kind = _kind(x)
        if kind == "torch" and x.is_cuda:
            return _Ctx("torch", int(x.device.index), host=False)
        if kind == "cupy":
            return _Ctx("cupy", int(x.device.id), host=False)
        if kind == "cai":
            try:
                import cupy
            except ImportError:
                raise TypeError("arrays with __cuda_array_interface__ need CuPy installed "
                                "(pip install cupy-cuda12x) or pass PyTorch tensors") from None

            return _Ctx("cupy", int(cupy.asarray(x).device.id), host=False)
    try:
        import cupy  # noqa: F401

        return _Ctx("cupy", _current_device(), host=True)
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        return _Ctx("torch", int(torch.cuda.current_device()), host=True)
    raise RuntimeError("CUDA backend: NumPy inputs must be copied to the GPU, which needs CuPy "
                       "(pip install cupy-cuda12x) or a CUDA build of PyTorch")


def _prepare(q, db, ql=None, dbl=None):
    ext = _require()
    ctx = _context(q, db, ql, dbl)
    qa = ctx.words(q, "q")
    da = ctx.words(db, "db", width=int(qa.shape[1]))
    if ql is None:
        return ext, ctx, qa, da, None, None
    qla = ctx.words(ql, "ql")
    dla = ctx.words(dbl, "dbl", width=int(qla.shape[1]))
    if int(qla.shape[0]) != int(qa.shape[0]):
        raise ValueError(f"ql: expected {int(qa.shape[0])} label rows (one per query), got {int(qla.shape[0])}")
    if int(dla.shape[0]) != int(da.shape[0]):
        raise ValueError(f"dbl: expected {int(da.shape[0])} label rows (one per database code), "
                         f"got {int(dla.shape[0])}")
    return ext, ctx, qa, da, qla, dla


def _int(x, name: str, lo: int, hi: int | None = None) -> int:
    return V.check_int(x, name, min_value=lo, max_value=hi)


# --------------------------------------------------------------------------------------------
# the kernel contract

def hamming(q, db, nthreads=0):
    """All distances: ``int32 (Q, N)``. See :func:`hashkit.kernels._numba.hamming`."""
    ext, ctx, qa, da, _, _ = _prepare(q, db)
    nq, w = (int(s) for s in qa.shape)
    n = int(da.shape[0])
    out = ctx.empty((nq, n), "int32")
    ext.hamming(ctx.ptr(qa), ctx.ptr(da), nq, n, w, 64 * w, ctx.ptr(out), ctx.stream, ctx.device)
    return ctx.result(out)


def topk(q, db, nbits, k, nthreads=0, out=None):
    """``(dist int32 (Q, k), idx int64 (Q, k))`` sorted by (distance, index).

    ``out=(dist, idx)``: device arrays of the inputs' framework and device (int32 and int64,
    shape ``(Q, k)``, C-contiguous, not overlapping) to write into and return, as the CPU
    backends' ``out=`` does with NumPy arrays.
    """
    ext, ctx, qa, da, _, _ = _prepare(q, db)
    nq, w = (int(s) for s in qa.shape)
    n = int(da.shape[0])
    nbits = _int(nbits, "nbits", 1, 64 * w)
    k = _int(k, "k", 1, n)
    if out is None:
        dist = ctx.empty((nq, k), "int32")
        idx = ctx.empty((nq, k), "int64")
    else:
        dist, idx = ctx.out_pair(out, (nq, k))
    ext.topk(ctx.ptr(qa), ctx.ptr(da), nq, n, w, nbits, k, ctx.ptr(dist), ctx.ptr(idx), ctx.stream, ctx.device,
             _scratch_bytes())
    return ctx.result(dist), ctx.result(idx)


def radius(q, db, nbits, r, nthreads=0):
    """``(lims int64 (Q+1,), idx int64 (M,), dist int32 (M,))``; synchronises once (result size)."""
    ext, ctx, qa, da, _, _ = _prepare(q, db)
    nq, w = (int(s) for s in qa.shape)
    n = int(da.shape[0])
    nbits = _int(nbits, "nbits", 1, 64 * w)
    r = V.check_radius(r, "r", nbits)  # the one radius rule (any size; clamped to nbits)
    lims = ctx.empty((nq + 1,), "int64")
    scratch = _scratch_bytes()
    total = ext.radius_count(ctx.ptr(qa), ctx.ptr(da), nq, n, w, nbits, r, ctx.ptr(lims), ctx.stream, ctx.device,
                             scratch)
    idx = ctx.empty((total,), "int64")
    dist = ctx.empty((total,), "int32")
    if total:
        ext.radius_fill(ctx.ptr(qa), ctx.ptr(da), nq, n, w, nbits, r, ctx.ptr(lims), total, ctx.ptr(idx),
                        ctx.ptr(dist), ctx.stream, ctx.device, scratch)
    return ctx.result(lims), ctx.result(idx), ctx.result(dist)


def hist_stats(q, db, ql, dbl, nbits, nthreads=0):
    """``(hist_all int64 (Q, nbits+1), hist_rel int64 (Q, nbits+1))``."""
    ext, ctx, qa, da, qla, dla = _prepare(q, db, ql, dbl)
    nq, w = (int(s) for s in qa.shape)
    n, lw = int(da.shape[0]), int(qla.shape[1])
    nbits = _int(nbits, "nbits", 1, 64 * w)
    ha = ctx.empty((nq, nbits + 1), "int64")
    hr = ctx.empty((nq, nbits + 1), "int64")
    ext.hist_stats(ctx.ptr(qa), ctx.ptr(da), ctx.ptr(qla), ctx.ptr(dla), nq, n, w, lw, nbits, ctx.ptr(ha),
                   ctx.ptr(hr), ctx.stream, ctx.device, _scratch_bytes())
    return ctx.result(ha), ctx.result(hr)


def rank_stats(q, db, ql, dbl, nbits, cutoffs, first_m, graded, nlabels, nthreads=0):
    """Dict of per-query ranking statistics (contract in docs/INTERNALS.md).

    Float sums are formed per database chunk in index order, then over chunks in order, so they
    may differ from the CPU backends in the last bits (see docs/CUDA.md).
    """
    ext, ctx, qa, da, qla, dla = _prepare(q, db, ql, dbl)
    nq, w = (int(s) for s in qa.shape)
    n, lw = int(da.shape[0]), int(qla.shape[1])
    nbits = _int(nbits, "nbits", 1, 64 * w)
    cut = np.asarray(V.to_numpy(cutoffs, "cutoffs")).reshape(-1)
    if cut.size and cut.dtype.kind not in "iu":
        raise TypeError(f"cutoffs: expected integers, got {V.describe(cutoffs)}")
    cut_list = [int(c) for c in cut]
    first_m = _int(first_m, "first_m", 0)
    graded = bool(graded)
    nlabels = _int(nlabels, "nlabels", 0, 64 * lw)
    C = len(cut_list)
    out = {
        "hist_all": ctx.empty((nq, nbits + 1), "int64"),
        "hist_rel": ctx.empty((nq, nbits + 1), "int64"),
        "ap_sum": ctx.empty((nq,), "float64"),
        "rel_at": ctx.empty((nq, C), "int64"),
        "ap_sum_at": ctx.empty((nq, C), "float64"),
        "ap_first": ctx.empty((nq,), "float64"),
    }
    if graded:
        out["gain_at"] = ctx.empty((nq, C), "int64")
        out["dcg_at"] = ctx.empty((nq, C), "float64")
        out["gain_hist"] = ctx.empty((nq, nlabels + 1), "int64")
    ptrs = {key: ctx.ptr(a) for key, a in out.items()}  # empty (C = 0) buffers are never touched
    ext.rank_stats(ctx.ptr(qa), ctx.ptr(da), ctx.ptr(qla), ctx.ptr(dla), nq, n, w, lw, nbits, cut_list, first_m,
                   graded, nlabels, ptrs, ctx.stream, ctx.device, _scratch_bytes())
    return {key: ctx.result(a) for key, a in out.items()}
