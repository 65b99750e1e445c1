"""Bad input is test data: one table of (call, expected error, expected message) over the public API.

Every message must name the argument and say what arrived; none may be a bare assert or a crash.
"""

import numpy as np
import pytest

import hashkit

rng = np.random.default_rng(0)
Q16 = rng.choice([-1, 1], size=(4, 16))
D16 = rng.choice([-1, 1], size=(9, 16))
D8 = rng.choice([-1, 1], size=(9, 8))
QL = np.eye(4, 3, dtype=np.uint8) + np.eye(4, 3, k=-1, dtype=np.uint8)
DL = (rng.random((9, 3)) < 0.5).astype(np.uint8)
NAN = Q16.astype(float)
NAN[1, 2] = np.nan


def _metric(name):
    return lambda *a, **k: getattr(hashkit.metrics, name)(*a, **k)


MAP = _metric("mean_average_precision")

_SHARED = np.zeros((4, 2), np.int64)  # an int64 out and an int32 view of the same memory
CASES = [
    # (id, callable, args, kwargs, exception, message regex)
    ("pack-str", hashkit.pack, (np.array([["a", "b"]]),), {}, TypeError, r"x: expected a numeric or bool"),
    ("pack-1d", hashkit.pack, (np.ones(5),), {}, ValueError, r"x: expected a 2-D array of codes .*shape \(5,\)"),
    ("pack-empty", hashkit.pack, (np.ones((0, 8)),), {}, ValueError, r"x: expected at least one code"),
    ("pack-nobits", hashkit.pack, (np.ones((3, 0)),), {}, ValueError, r"at least one bit"),
    ("pack-nan", hashkit.pack, (NAN,), {}, ValueError, r"x: codes contain NaN"),
    ("pack-object", hashkit.pack, (object(),), {}, TypeError, r"x: expected"),
    ("unpack-1d", hashkit.unpack, (np.ones(3),), {}, ValueError, r"codes: expected a 2-D"),
    ("hamming-ndim", hashkit.hamming, (np.ones(16), D16), {}, ValueError, r"q: expected a 2-D array"),
    ("hamming-nbits", hashkit.hamming, (Q16, D8), {}, ValueError, r"q and db: .*same length, got 16 and 8 bits"),
    ("hamming-empty-db", hashkit.hamming, (Q16, np.ones((0, 16))), {}, ValueError, r"db: expected at least one code"),
    ("hamming-backend", hashkit.hamming, (Q16, D16), {"backend": "gpu"}, ValueError, r"backend: expected one of"),
    ("hamming-threads", hashkit.hamming, (Q16, D16), {"nthreads": -1}, ValueError, r"nthreads: expected"),
    ("topk-k0", hashkit.topk, (Q16, D16, 0), {}, ValueError, r"k: expected an integer between 1 and the database size 9, got 0"),  # noqa: E501
    ("topk-kbig", hashkit.topk, (Q16, D16, 10), {}, ValueError, r"k: .*database size 9, got 10"),
    ("topk-kfloat", hashkit.topk, (Q16, D16, 2.5), {}, TypeError, r"k: expected an integer"),
    ("topk-kbool", hashkit.topk, (Q16, D16, True), {}, TypeError, r"k: expected an integer"),
    ("topk-nan", hashkit.topk, (NAN, D16, 2), {}, ValueError, r"q: codes contain NaN"),
    ("topk-out-list", hashkit.topk, (Q16, D16, 2), {"out": [1, 2]}, TypeError, r"out: expected a tuple \(dist, idx\)"),
    ("topk-out-dtype", hashkit.topk, (Q16, D16, 2), {"out": (np.zeros((4, 2), np.int64), np.zeros((4, 2), np.int64))},
     TypeError, r"out \(dist\): expected dtype int32, got int64"),
    ("topk-out-shape", hashkit.topk, (Q16, D16, 2), {"out": (np.zeros((3, 3), np.int32), np.zeros((4, 2), np.int64))},
     ValueError, r"out \(dist\): expected shape \(4, 2\), got \(3, 3\)"),
    ("topk-out-strided", hashkit.topk, (Q16, D16, 2),
     {"out": (np.zeros((4, 4), np.int32)[:, ::2], np.zeros((4, 2), np.int64))}, ValueError, r"non-contiguous"),
    ("topk-out-shared", hashkit.topk, (Q16, D16, 2),
     {"out": (_SHARED.view(np.int32).reshape(-1)[:8].reshape(4, 2), _SHARED)}, ValueError,
     r"must not share memory"),
    ("radius-neg", hashkit.radius_search, (Q16, D16, -1), {}, ValueError, r"r: expected a non-negative integer radius, got -1$"),  # noqa: E501
    ("radius-float", hashkit.radius_search, (Q16, D16, 1.5), {}, TypeError, r"r: expected a non-negative integer"),
    ("index-nbits", hashkit.HammingIndex, (0,), {}, ValueError, r"nbits: expected a positive integer"),
    ("map-nbits", MAP, (Q16, D8, QL, DL), {}, ValueError, r"same length, got 16 and 8 bits"),
    ("map-labels-not-01", MAP, (Q16, D16, QL * 2, DL), {}, ValueError, r"qL: expected labels of 0 and 1"),
    ("map-label-count", MAP, (Q16, D16, QL[:3], DL), {}, ValueError, r"qL.*4.*3|3.*4"),
    ("map-db-label-count", MAP, (Q16, D16, QL, DL[:5]), {}, ValueError, r"rL.*9.*5|5.*9"),
    ("map-k0", MAP, (Q16, D16, QL, DL), {"k": 0}, ValueError, r"k: expected"),
    ("map-kbig", MAP, (Q16, D16, QL, DL), {"k": 100}, ValueError, r"k: expected"),
    ("map-ties", MAP, (Q16, D16, QL, DL), {"ties": "random"}, ValueError, r"ties: expected one of"),
    # an array's repr spans lines; the message must stay one line (found by test_fuzz_api.py)
    ("map-ties-array", MAP, (Q16, D16, QL, DL), {"ties": np.ones((3, 3))}, ValueError,
     r"^ties: expected one of .*, got numpy array of dtype float64 and shape \(3, 3\)$"),
    ("map-nan", MAP, (NAN, D16, QL, DL), {}, ValueError, r"NaN"),
    ("map-label-nan", MAP, (Q16, D16, np.where(QL, np.nan, 0.0), DL), {}, ValueError, r"qL: labels contain NaN"),
    ("map-labels-3d", MAP, (Q16, D16, QL[None], DL), {}, ValueError, r"qL: expected multi-hot labels"),
    ("map-empty-queries", MAP, (np.ones((0, 16)), D16, QL[:0], DL), {}, ValueError, r"at least one"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_message(case):
    _, fn, args, kwargs, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        fn(*args, **kwargs)


def test_caller_labels_not_modified():
    ql, dl = QL.astype(float), DL.astype(float)
    before = (ql.copy(), dl.copy())
    hashkit.metrics.mean_average_precision(Q16, D16, ql, dl)
    np.testing.assert_array_equal(ql, before[0])
    np.testing.assert_array_equal(dl, before[1])


# Careless use: several Python threads calling the Numba backend at once. Under Numba's
# workqueue threading layer (its fallback where neither TBB nor OpenMP loads, e.g. macOS without
# libomp) concurrent parallel launches abort the whole process (SIGABRT), so it runs in a child.
_WORKQUEUE_SCRIPT = """
import threading, numpy as np, hashkit
from hashkit.kernels import _numba
_numba._MIN_WORK_PER_THREAD = 1  # several Numba threads even on these small inputs
rng = np.random.default_rng(0)
q = rng.choice([-1, 1], size=(64, 64)); db = rng.choice([-1, 1], size=(3000, 64))
L = (rng.random((64, 5)) < 0.3).astype(np.uint8); DL = (rng.random((3000, 5)) < 0.3).astype(np.uint8)
want = [hashkit.topk(q, db, 10, backend="numba"), hashkit.radius_search(q, db, 28, backend="numba").idx,
        hashkit.metrics.mean_average_precision(q, db, L, DL, backend="numba")]
assert _numba.threading_layer() == "workqueue", _numba.threading_layer()
wrong = []
def work():
    for _ in range(15):
        got = [hashkit.topk(q, db, 10, backend="numba"), hashkit.radius_search(q, db, 28, backend="numba").idx,
               hashkit.metrics.mean_average_precision(q, db, L, DL, backend="numba")]
        if not (all(np.array_equal(a, b) for a, b in zip(got[0], want[0]))
                and np.array_equal(got[1], want[1]) and got[2] == want[2]):
            wrong.append(1)
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("wrong", len(wrong))
"""


def test_numba_backend_from_threads_under_workqueue_layer(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="4")
    res = subprocess.run([sys.executable, "-c", _WORKQUEUE_SCRIPT], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"rc={res.returncode}\n{res.stderr[-2000:]}"
    assert res.stdout.strip() == "wrong 0", res.stdout


# One rule for a radius on every backend and in the public layer (issue 14, item 10): any
# non-negative integer of any size (anything with __index__ but a bool); r >= nbits selects
# every item (so r is clamped to nbits); a negative r is a ValueError and a non-integer a
# TypeError, with the same message everywhere.
_HUGE_R = [2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**40, np.uint64(2**64 - 1), np.int64(2**63 - 1),
           np.array(2**62)]
_NEG_R = [-1, -(2**63), -(2**63) - 1, -(10**40), np.int64(-5)]
_NOT_R = [1.5, True, np.True_, "3", None, np.float64(2.0)]
_RQ = np.array([[0b1011], [0]], np.uint64)
_RDB = np.array([[0], [1], [0b111], [0b1111], [2**12 - 1]], np.uint64)


@pytest.mark.parametrize("r", _HUGE_R, ids=repr)
def test_huge_radius_selects_everything_on_every_backend(backend, r):
    want = backend.radius(_RQ, _RDB, 12, 12)
    got = backend.radius(_RQ, _RDB, 12, r)
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert want[0][-1] == 2 * len(_RDB)


@pytest.mark.parametrize("r", _HUGE_R, ids=repr)
def test_huge_radius_in_the_public_api(r):
    q, db = Q16, D16
    for be in [n for n, ok in hashkit.kernels.available().items() if ok and n != "cuda"]:
        want = hashkit.radius_search(q, db, 16, backend=be)
        got = hashkit.radius_search(q, db, r, backend=be)
        assert np.array_equal(got.lims, want.lims) and np.array_equal(got.idx, want.idx)
        index = hashkit.HammingIndex(16, backend=be)
        index.add(db)
        assert np.array_equal(index.range_search(q, r).idx, want.idx)
        assert hashkit.metrics.precision_within_radius(q, db, QL, DL, r=r, backend=be) == \
            hashkit.metrics.precision_within_radius(q, db, QL, DL, r=16, backend=be)
    assert want.lims[-1] == len(q) * len(db)


@pytest.mark.parametrize("r", _NEG_R, ids=repr)
def test_negative_radius_one_message_everywhere(backend, r):
    msg = f"r: expected a non-negative integer radius, got {int(r)}"
    with pytest.raises(ValueError) as e:
        backend.radius(_RQ, _RDB, 12, r)
    assert str(e.value) == msg
    with pytest.raises(ValueError) as e:
        hashkit.radius_search(Q16, D16, r, backend=backend.name)
    assert str(e.value) == msg


@pytest.mark.parametrize("r", _NOT_R, ids=repr)
def test_non_integer_radius_is_a_type_error_everywhere(backend, r):
    for fn in (lambda: backend.radius(_RQ, _RDB, 12, r),
               lambda: hashkit.radius_search(Q16, D16, r, backend=backend.name)):
        with pytest.raises(TypeError, match=r"^r: expected a non-negative integer radius, got "):
            fn()


@pytest.mark.parametrize("ks", [1e300, 9.223372036854776e18, [2.0, 1e20], np.array([3, 2**64 - 1], np.uint64)],
                         ids=repr)
def test_huge_cut_offs_are_a_clean_error(ks):
    # found by tests/test_fuzz_api.py: a float cut-off beyond int64 was cast before the range
    # check (RuntimeWarning "invalid value encountered in cast", an error in this suite)
    with pytest.raises(ValueError, match=r"^ks: expected cut-offs between 1 and the database size 9"):
        hashkit.metrics.precision_at_k(Q16, D16, QL, DL, ks)


def test_bfloat16_labels_are_read_exactly_and_float8_is_a_clean_error():
    # found by tests/test_fuzz_api.py: NumPy has no bfloat16, so tensor.numpy() raised torch's
    # "Got unsupported ScalarType BFloat16" (no argument name); bfloat16 holds 0/1 exactly
    torch = pytest.importorskip("torch")
    want = hashkit.metrics.mean_average_precision(Q16, D16, QL, DL)
    got = hashkit.metrics.mean_average_precision(Q16, D16, torch.tensor(QL, dtype=torch.bfloat16),
                                                 torch.tensor(DL, dtype=torch.float16))
    assert got == want
    with pytest.raises(TypeError, match=r"^qL: expected a PyTorch tensor of a NumPy-compatible dtype, got "
                                        r"torch array of dtype torch.float8_e4m3fn"):
        hashkit.metrics.mean_average_precision(Q16, D16, torch.tensor(QL).to(torch.float8_e4m3fn), DL)


class _BadArray:
    def __array__(self, dtype=None, copy=None):
        raise ValueError("no")


def test_an_object_whose_array_conversion_fails_is_named():
    with pytest.raises(TypeError, match=r"^qL: expected an array, got _BadArray \(no\)$"):
        hashkit.metrics.mean_average_precision(Q16, D16, _BadArray(), DL)
