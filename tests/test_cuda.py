"""CUDA backend: parity with the slow oracle (tests/oracle.py) and the CPU backends.

Every test needs a GPU and the compiled ``hashkit._cuda``; without them the whole module is
skipped with the reason ``hashkit.kernels._cuda.REASON`` gives. Inputs are PyTorch CUDA tensors
and CuPy arrays (each framework skipped when absent); outputs must come back from the same
framework on the same device. Integer outputs must equal the oracle exactly; float sums to a
relative 1e-12 (the GPU sums per database chunk, see docs/CUDA.md).

``HASHKIT_CUDA_CHUNK`` forces the database chunk size: tiny chunks make every query cross many
chunk boundaries (the per-chunk offsets must carry the stable order across them), 32768-item
chunks are the largest the 16-bit packed counters allow. Run under compute-sanitizer with
``csrc/cuda/sanitize.sh`` (docs/CUDA.md).
"""

from __future__ import annotations

import numpy as np

from hashkit._validate import to_numpy
import pytest

import oracle as O
from hashkit.kernels import _cuda as cb

pytestmark = pytest.mark.gpu

if not cb.AVAILABLE:
    pytest.skip(f"CUDA backend unavailable: {cb.REASON}", allow_module_level=True)

ODD_NBITS = (1, 7, 16, 63, 64, 65, 130, 256)   # W = 1, 1, 1, 1, 1, 2, 3 (generic path), 4


def _framework_params():
    params = []
    for name in ("torch", "cupy"):
        try:
            mod = __import__(name)
            ok = mod.cuda.is_available() if name == "torch" else mod.cuda.runtime.getDeviceCount() > 0
            why = "" if ok else f"{name} sees no CUDA device"
        except Exception as exc:  # ImportError, or a CUDA runtime error inside the framework
            ok, why = False, f"{name} unusable: {exc}"
        params.append(pytest.param(name, id=name,
                                   marks=[] if ok else [pytest.mark.skip(reason=why)]))
    return params


@pytest.fixture(params=_framework_params())
def fw(request) -> str:
    return request.param


def dev(fw_name: str, a: np.ndarray):
    if fw_name == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(a)).cuda()
    import cupy

    return cupy.asarray(a)


def host(x) -> np.ndarray:
    return to_numpy(x, "array")


def check_same_framework(fw_name: str, x, ref_device_input) -> None:
    """Output lives in the caller's framework, on the caller's device."""
    mod = type(x).__module__.split(".")[0]
    assert mod == fw_name, f"output came back as {type(x)}, input was {fw_name}"
    if fw_name == "torch":
        assert x.is_cuda and x.device == ref_device_input.device
    else:
        assert x.device.id == ref_device_input.device.id


def data(seed: int, nq: int, n: int, nbits: int, nlabels: int = 24, ties: bool = False):
    rng = np.random.default_rng(seed)
    # ties: rows drawn from a small pool (exact duplicates) with low-entropy bits
    distinct = max(4, n // 20) if ties else None
    qw, qb = O.random_codes(rng, nq, nbits, p_one=0.3 if ties else 0.5, distinct=distinct)
    dw, dbb = O.random_codes(rng, n, nbits, p_one=0.3 if ties else 0.5, distinct=distinct)
    qlw, qlb = O.random_labels(rng, nq, nlabels)
    dlw, dlb = O.random_labels(rng, n, nlabels)
    return (qw, dw, qlw, dlw), (qb, dbb, qlb, dlb)


def assert_rank_stats(got: dict, ref: dict, graded: bool) -> None:
    ints = ["hist_all", "hist_rel", "rel_at"] + (["gain_at", "gain_hist"] if graded else [])
    floats = ["ap_sum", "ap_sum_at", "ap_first"] + (["dcg_at"] if graded else [])
    assert set(got) == set(ints + floats)
    for key in ints:
        np.testing.assert_array_equal(host(got[key]), ref[key], err_msg=key)
    for key in floats:
        np.testing.assert_allclose(host(got[key]), ref[key], rtol=1e-12, atol=0, err_msg=key)


# ------------------------------------------------------------------------------ parity

@pytest.mark.parametrize("nbits", ODD_NBITS)
def test_hamming_matches_oracle(fw, nbits):
    (qw, dw, _, _), (qb, dbb, _, _) = data(1, 37, 1001, nbits)
    q = dev(fw, qw)
    out = cb.hamming(q, dev(fw, dw))
    check_same_framework(fw, out, q)
    assert str(out.dtype).endswith("int32")
    np.testing.assert_array_equal(host(out), O.hamming_ref(qb, dbb))


@pytest.mark.parametrize("nbits", ODD_NBITS)
@pytest.mark.parametrize("ties", [False, True])
def test_topk_matches_oracle(fw, nbits, ties):
    n = 1500
    (qw, dw, _, _), (qb, dbb, _, _) = data(2, 29, n, nbits, ties=ties)
    q, d = dev(fw, qw), dev(fw, dw)
    for k in (1, 10, 100, 1025, n):
        dist, idx = cb.topk(q, d, nbits, k)
        check_same_framework(fw, dist, q)
        check_same_framework(fw, idx, q)
        ref_d, ref_i = O.topk_ref(qb, dbb, k)
        np.testing.assert_array_equal(host(idx), ref_i, err_msg=f"k={k}")
        np.testing.assert_array_equal(host(dist), ref_d, err_msg=f"k={k}")


@pytest.mark.parametrize("nbits", (7, 16, 64, 130))
def test_radius_matches_oracle(fw, nbits):
    (qw, dw, _, _), (qb, dbb, _, _) = data(3, 23, 1300, nbits, ties=True)
    q, d = dev(fw, qw), dev(fw, dw)
    for r in (0, 1, nbits // 3, nbits, nbits + 5):
        lims, idx, dist = cb.radius(q, d, nbits, r)
        for x in (lims, idx, dist):
            check_same_framework(fw, x, q)
        ref = O.radius_ref(qb, dbb, r)
        np.testing.assert_array_equal(host(lims), ref[0], err_msg=f"r={r}")
        np.testing.assert_array_equal(host(idx), ref[1], err_msg=f"r={r}")
        np.testing.assert_array_equal(host(dist), ref[2], err_msg=f"r={r}")


@pytest.mark.parametrize("nbits,nlabels", [(16, 24), (64, 24), (65, 100), (130, 7), (256, 81)])
def test_hist_stats_matches_oracle(fw, nbits, nlabels):
    (qw, dw, qlw, dlw), (qb, dbb, qlb, dlb) = data(4, 31, 1200, nbits, nlabels, ties=True)
    q = dev(fw, qw)
    ha, hr = cb.hist_stats(q, dev(fw, dw), dev(fw, qlw), dev(fw, dlw), nbits)
    check_same_framework(fw, ha, q)
    ref_a, ref_r = O.hist_ref(qb, dbb, qlb, dlb, nbits)
    np.testing.assert_array_equal(host(ha), ref_a)
    np.testing.assert_array_equal(host(hr), ref_r)


@pytest.mark.parametrize("nbits,nlabels", [(16, 24), (1, 5), (63, 24), (65, 100), (130, 24)])
@pytest.mark.parametrize("graded", [False, True])
def test_rank_stats_matches_oracle(fw, nbits, nlabels, graded):
    n = 1400
    (qw, dw, qlw, dlw), (qb, dbb, qlb, dlb) = data(5, 21, n, nbits, nlabels, ties=True)
    cutoffs = np.array([1, 5, 50, 257, 1000, n], np.int64)
    q = dev(fw, qw)
    got = cb.rank_stats(q, dev(fw, dw), dev(fw, qlw), dev(fw, dlw), nbits, cutoffs, 10, graded, nlabels)
    for v in got.values():
        check_same_framework(fw, v, q)
    ref = O.rank_stats_ref(qb, dbb, qlb, dlb, nbits, cutoffs, 10, graded, nlabels)
    assert_rank_stats(got, ref, graded)


def test_rank_stats_without_cutoffs(fw):
    (qw, dw, qlw, dlw), (qb, dbb, qlb, dlb) = data(6, 9, 700, 32)
    got = cb.rank_stats(dev(fw, qw), dev(fw, dw), dev(fw, qlw), dev(fw, dlw), 32,
                        np.zeros(0, np.int64), 0, True, 24)
    ref = O.rank_stats_ref(qb, dbb, qlb, dlb, 32, [], 0, True, 24)
    assert host(got["rel_at"]).shape == (9, 0)
    assert_rank_stats(got, ref, True)
    assert not host(got["ap_first"]).any()   # first_m == 0


@pytest.mark.parametrize("chunk", ["256", "32768"])
def test_chunk_boundaries(fw, chunk, monkeypatch):
    """Tiny chunks: many boundaries to carry the stable order across; huge chunks: the 16-bit
    packed counters hold 32768 equal items (all database codes identical, all relevant)."""
    monkeypatch.setenv("HASHKIT_CUDA_CHUNK", chunk)
    rng = np.random.default_rng(7)
    n = 33000 if chunk == "32768" else 2000
    nbits = 16
    qw, qb = O.random_codes(rng, 5, nbits)
    dbb = np.repeat(O.random_codes(rng, 3, nbits)[1], [n - 40, 20, 20], axis=0)
    dw = O.pack_bits(dbb)
    dlb = np.ones((n, 3), np.uint8)
    qlb = np.ones((5, 3), np.uint8)
    q, d = dev(fw, qw), dev(fw, dw)
    ql, dl = dev(fw, O.pack_bits(qlb)), dev(fw, O.pack_bits(dlb))
    for k in (1, 40, n - 1):
        dist, idx = cb.topk(q, d, nbits, k)
        ref_d, ref_i = O.topk_ref(qb, dbb, k)
        np.testing.assert_array_equal(host(idx), ref_i)
        np.testing.assert_array_equal(host(dist), ref_d)
    cut = np.array([3, 100, n], np.int64)
    got = cb.rank_stats(q, d, ql, dl, nbits, cut, 7, True, 3)
    assert_rank_stats(got, O.rank_stats_ref(qb, dbb, qlb, dlb, nbits, cut, 7, True, 3), True)


def test_query_batches(fw, monkeypatch):
    """A 1 MiB scratch budget splits 300 queries into batches of 128/256."""
    monkeypatch.setenv("HASHKIT_CUDA_SCRATCH_MB", "1")
    monkeypatch.setenv("HASHKIT_CUDA_CHUNK", "256")
    (qw, dw, qlw, dlw), (qb, dbb, qlb, dlb) = data(8, 300, 2100, 130, 30, ties=True)
    q, d = dev(fw, qw), dev(fw, dw)
    dist, idx = cb.topk(q, d, 130, 17)
    ref_d, ref_i = O.topk_ref(qb, dbb, 17)
    np.testing.assert_array_equal(host(idx), ref_i)
    np.testing.assert_array_equal(host(dist), ref_d)
    lims, ridx, rdist = cb.radius(q, d, 130, 45)
    for got, want in zip((lims, ridx, rdist), O.radius_ref(qb, dbb, 45)):
        np.testing.assert_array_equal(host(got), want)
    cut = np.array([10, 2000], np.int64)
    got = cb.rank_stats(q, d, dev(fw, qlw), dev(fw, dlw), 130, cut, 5, True, 30)
    assert_rank_stats(got, O.rank_stats_ref(qb, dbb, qlb, dlb, 130, cut, 5, True, 30), True)


def test_matches_cpu_backends(fw):
    """Integer outputs identical to every CPU backend that loaded; floats within 1e-12."""
    from hashkit.kernels import _select as _backend

    cpus = [n for n, ok in _backend.available().items() if ok and n != "cuda"]
    if not cpus:
        pytest.skip("no CPU backend loaded")
    (qw, dw, qlw, dlw), _ = data(9, 40, 3000, 16, 24, ties=True)
    cut = np.array([1, 10, 100, 3000], np.int64)
    got = cb.rank_stats(dev(fw, qw), dev(fw, dw), dev(fw, qlw), dev(fw, dlw), 16, cut, 50, True, 24)
    gd, gi = cb.topk(dev(fw, qw), dev(fw, dw), 16, 333)
    for name in cpus:
        be = _backend.get(name)
        ref = be.rank_stats(qw, dw, qlw, dlw, 16, cut, 50, True, 24, 0)
        assert_rank_stats(got, {k: np.asarray(v) for k, v in ref.items()}, True)
        rd, ri = be.topk(qw, dw, 16, 333, 0)
        np.testing.assert_array_equal(host(gi), ri, err_msg=name)
        np.testing.assert_array_equal(host(gd), rd, err_msg=name)


def test_numpy_in_numpy_out():
    try:
        import cupy  # noqa: F401
    except ImportError:
        try:
            import torch
        except ImportError:
            pytest.skip("neither CuPy nor PyTorch to copy NumPy inputs to the device")
        if not torch.cuda.is_available():
            pytest.skip("PyTorch without CUDA and no CuPy")
    (qw, dw, qlw, dlw), (qb, dbb, qlb, dlb) = data(10, 12, 500, 48)
    dist, idx = cb.topk(qw, dw, 48, 20)
    assert isinstance(dist, np.ndarray) and isinstance(idx, np.ndarray)
    ref_d, ref_i = O.topk_ref(qb, dbb, 20)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_array_equal(dist, ref_d)
    ha, hr = cb.hist_stats(qw, dw, qlw, dlw, 48)
    assert isinstance(ha, np.ndarray)
    np.testing.assert_array_equal(ha, O.hist_ref(qb, dbb, qlb, dlb, 48)[0])


def test_torch_side_stream():
    """Work is enqueued on the caller's current stream, ordered with its other work."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    (qw, dw, _, _), (qb, dbb, _, _) = data(11, 64, 4000, 64)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        q = torch.from_numpy(qw).cuda(non_blocking=True)
        d = torch.from_numpy(dw).cuda(non_blocking=True)
        dist, idx = cb.topk(q, d, 64, 50)
        h = cb.hamming(q, d)
        idx_host = idx.to("cpu", non_blocking=False)
    s.synchronize()
    ref_d, ref_i = O.topk_ref(qb, dbb, 50)
    np.testing.assert_array_equal(idx_host.numpy(), ref_i)
    np.testing.assert_array_equal(h.cpu().numpy(), O.hamming_ref(qb, dbb))


def test_int64_words_accepted(fw):
    (qw, dw, _, _), (qb, dbb, _, _) = data(12, 5, 300, 64)
    out = cb.hamming(dev(fw, qw.view(np.int64)), dev(fw, dw.view(np.int64)))
    np.testing.assert_array_equal(host(out), O.hamming_ref(qb, dbb))


# ------------------------------------------------------------------------------ errors

def _ext():
    from hashkit import _cuda

    return _cuda


def test_host_pointer_is_rejected():
    ext = _ext()
    qw = np.zeros((4, 1), np.uint64)
    with pytest.raises(ValueError, match="q: expected device memory"):
        ext.hamming(qw.ctypes.data, qw.ctypes.data, 4, 4, 1, 64, qw.ctypes.data, 0, 0)


def test_garbage_pointer_is_rejected():
    ext = _ext()
    with pytest.raises(ValueError, match="q:"):
        ext.topk(0x1234560, 0x1234560, 1, 1, 1, 64, 1, 0x1234560, 0x1234560, 0, 0)
    with pytest.raises(ValueError, match="q: expected a device pointer, got NULL"):
        ext.topk(0, 0, 1, 1, 1, 64, 1, 0, 0, 0, 0)


def test_shape_larger_than_allocation_is_rejected(fw):
    """A shape claiming more rows than the buffer holds is caught before any kernel runs."""
    ext = _ext()
    qw = dev(fw, np.zeros((4, 1), np.uint64))
    dw = dev(fw, np.zeros((8, 1), np.uint64))
    out = dev(fw, np.zeros((4, 8), np.int32))
    ptr = (lambda a: a.data_ptr()) if fw == "torch" else (lambda a: a.data.ptr)
    stream = 0
    # A caching allocator may hand out a bigger block than asked for; a billion rows is not in it.
    with pytest.raises(ValueError, match="db: the shape needs"):
        ext.hamming(ptr(qw), ptr(dw), 4, 1 << 30, 1, 64, ptr(out), stream, 0)


@pytest.mark.parametrize("call,match", [
    (lambda q, d: cb.topk(q, d, 64, 0), "k"),
    (lambda q, d: cb.topk(q, d, 64, 9), "k"),
    (lambda q, d: cb.topk(q, d, 65, 1), "nbits"),
    (lambda q, d: cb.radius(q, d, 64, -1), "r"),
])
def test_bad_arguments(fw, call, match):
    q = dev(fw, np.zeros((2, 1), np.uint64))
    d = dev(fw, np.zeros((8, 1), np.uint64))
    with pytest.raises(ValueError, match=match):
        call(q, d)


def test_bad_arrays(fw):
    q = dev(fw, np.zeros((2, 1), np.uint64))
    with pytest.raises(TypeError, match="db: expected packed 64-bit words"):
        cb.hamming(q, dev(fw, np.zeros((8, 1), np.float32)))
    with pytest.raises(ValueError, match="db: expected 1 words per row"):
        cb.hamming(q, dev(fw, np.zeros((8, 2), np.uint64)))
    with pytest.raises(ValueError, match="q: expected a non-empty 2-D array"):
        cb.hamming(dev(fw, np.zeros(3, np.uint64)), q)


def test_rank_stats_bad_cutoffs(fw):
    (qw, dw, qlw, dlw), _ = data(13, 3, 50, 16)
    args = [dev(fw, a) for a in (qw, dw, qlw, dlw)]
    with pytest.raises(ValueError, match="cutoffs"):
        cb.rank_stats(*args, 16, np.array([5, 5], np.int64), 0, False, 24)
    with pytest.raises(ValueError, match="cutoffs"):
        cb.rank_stats(*args, 16, np.array([51], np.int64), 0, False, 24)
