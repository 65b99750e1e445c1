"""Public search API and HammingIndex against the unpacked-bits oracle, on every backend."""

import numpy as np
import pytest

import hashkit
from hashkit.kernels import _select as _backend

BACKENDS = [b for b, ok in _backend.available().items() if ok and b != "cuda"]


def oracle_dist(q, db):
    return (q[:, None, :] != db[None, :, :]).sum(-1)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize("nbits", [1, 16, 65])
def test_public_functions_match_oracle(backend, nbits):
    rng = np.random.default_rng(nbits)
    q = rng.choice([-1, 1], size=(7, nbits))
    db = rng.choice([-1, 1], size=(33, nbits))
    d = oracle_dist(q, db)
    np.testing.assert_array_equal(hashkit.hamming(q, db, backend=backend), d)
    order = np.argsort(d, axis=1, kind="stable")
    for k in (1, 5, 33):
        dist, idx = hashkit.topk(q, db, k, backend=backend)
        np.testing.assert_array_equal(idx, order[:, :k])
        np.testing.assert_array_equal(dist, np.take_along_axis(d, order[:, :k], 1))
    for r in (0, 2, nbits):
        res = hashkit.radius_search(q, db, r, backend=backend)
        for i in range(len(q)):
            ids, dd = res.neighbours(i)
            expect = [j for j in order[i] if d[i, j] <= r]
            assert ids.tolist() == expect and dd.tolist() == d[i, expect].tolist()


def test_topk_into_given_arrays(backend):
    # out=(dist, idx): written in place (every element: they start as garbage), returned as
    # they are, reusable across calls; the same answer as the oracle, for small k and k = N.
    rng = np.random.default_rng(5)
    db = rng.choice([-1, 1], size=(300, 24))
    index = hashkit.HammingIndex(24, backend=backend)
    index.add(db)
    for k in (4, 300):
        od = np.full((6, k), -9, np.int32)
        oi = np.full((6, k), -9, np.int64)
        for seed in (1, 2):  # the same buffers twice
            q = np.random.default_rng(seed).choice([-1, 1], size=(6, 24))
            d = oracle_dist(q, db)
            order = np.argsort(d, axis=1, kind="stable")[:, :k]
            got_d, got_i = hashkit.topk(q, db, k, backend=backend, out=(od, oi))
            assert got_d is od and got_i is oi
            np.testing.assert_array_equal(oi, order)
            np.testing.assert_array_equal(od, np.take_along_axis(d, order, 1))
            sd, si = index.search(q, k, out=(od, oi))
            assert sd is od and si is oi
            np.testing.assert_array_equal(oi, order)


def test_core_topk_checks_out_itself():
    # The binding re-checks out (a caller of hashkit._core gets an error, never a stray write).
    core = pytest.importorskip("hashkit._core")
    q, db = np.zeros((2, 1), np.uint64), np.zeros((3, 1), np.uint64)
    ok = (np.zeros((2, 2), np.int32), np.zeros((2, 2), np.int64))
    assert core.topk(q, db, 64, 2, 1, out=ok)[0] is ok[0]
    ro = np.zeros((2, 2), np.int32)
    ro.flags.writeable = False
    for out, exc, msg in [([1, 2], TypeError, "out: expected a tuple"),
                          ((ok[0], ok[0]), TypeError, r"out\[1\] \(idx\).*dtype int32"),
                          ((np.zeros((2, 3), np.int32), ok[1]), ValueError, r"shape \(2, 3\)"),
                          ((ro, ok[1]), ValueError, "read-only"),
                          ((np.zeros((2, 4), np.int32)[:, ::2], ok[1]), ValueError, "not C-contiguous")]:
        with pytest.raises(exc, match=msg):
            core.topk(q, db, 64, 2, 1, out=out)


def test_index_add_search_save_load(tmp_path, backend):
    rng = np.random.default_rng(0)
    a, b = rng.choice([-1, 1], size=(20, 32)), rng.choice([-1, 1], size=(15, 32))
    q = rng.choice([-1, 1], size=(4, 32))
    index = hashkit.HammingIndex(32, backend=backend)
    index.add(a)
    index.add(hashkit.pack(b))
    assert index.ntotal == 35
    db = np.concatenate([a, b])
    d = oracle_dist(q, db)
    dist, idx = index.search(q, 35)
    np.testing.assert_array_equal(idx, np.argsort(d, axis=1, kind="stable"))
    index.save(tmp_path / "ix.npz")
    again = hashkit.HammingIndex.load(tmp_path / "ix.npz", backend=backend)
    np.testing.assert_array_equal(again.search(q, 10)[1], idx[:, :10])
    res = again.range_search(q, 12)
    assert res.lims[-1] == (d <= 12).sum()


def test_index_keeps_its_own_copy():
    a = np.ones((3, 8))
    index = hashkit.HammingIndex(8)
    index.add(a)
    a[:] = -1
    assert index.search(np.ones((1, 8)), 1)[0][0, 0] == 0


def test_index_errors():
    index = hashkit.HammingIndex(16)
    with pytest.raises(ValueError, match="empty"):
        index.search(np.ones((1, 16)), 1)
    with pytest.raises(ValueError, match="expected codes of 16 bits, got 8"):
        index.add(np.ones((2, 8)))


def test_missing_backend_quotes_reason(monkeypatch):
    monkeypatch.setitem(_backend._failed, "cuda", "ImportError: no CUDA here (test)")
    monkeypatch.delitem(_backend._loaded, "cuda", raising=False)
    with pytest.raises(RuntimeError, match="no CUDA here"):
        hashkit.hamming(np.ones((1, 8)), np.ones((1, 8)), backend="cuda")


def test_env_override_and_bad_env(monkeypatch):
    monkeypatch.setenv("HASHKIT_BACKEND", "numba")
    assert _backend.resolve("auto") == "numba"
    monkeypatch.setenv("HASHKIT_BACKEND", "gpu9000")
    with pytest.raises(ValueError, match="HASHKIT_BACKEND"):
        _backend.resolve("auto")


def test_cli_search_and_info(tmp_path, capsys):
    from hashkit.cli import main

    rng = np.random.default_rng(5)
    hashkit.save_codes(tmp_path / "db.npz", rng.choice([-1, 1], size=(30, 16)))
    np.save(tmp_path / "q.npy", rng.choice([-1, 1], size=(3, 16)))
    assert main(["search", str(tmp_path / "db.npz"), str(tmp_path / "q.npy"), "-k", "4",
                 "--out", str(tmp_path / "res.npz")]) == 0
    with np.load(tmp_path / "res.npz") as z:
        assert z["idx"].shape == (3, 4)
    assert main(["info"]) == 0
    assert "default backend" in capsys.readouterr().out
    assert main(["search", str(tmp_path / "nope.npz"), str(tmp_path / "q.npy"), "-k", "1"]) == 1
    assert "not found" in capsys.readouterr().err
