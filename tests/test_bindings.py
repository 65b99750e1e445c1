"""The compiled module ``hashkit._core``: its binding layer never crashes and never converts.

Every entry point gets a table of bad inputs (wrong dtype, non-contiguous, wrong ndim, empty,
mismatched widths or rows, out-of-range k / r / nbits / cut-offs / nlabels, padding bits) and
must raise TypeError/ValueError whose message names the offending argument. A second group runs
the kernels on inputs large enough to cross the database tiles, the top-k candidate compaction
and the full-ranking path (the oracle tests in test_kernels.py use small N), checked against the
slow oracle in tests/oracle.py, and on every SIMD path this CPU has (``HASHKIT_SIMD``, in a
subprocess because the path is chosen once per process).

Set ``HASHKIT_REQUIRE_CPP=1`` (CI does) to fail instead of skip when ``hashkit._core`` is not
importable, e.g. when a source checkout without the compiled module shadows an installed wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import simd_paths
from oracle import hamming_ref, radius_ref, topk_ref

try:
    from hashkit import _core as core
except ImportError as exc:  # pragma: no cover - depends on how hashkit was installed
    if os.environ.get("HASHKIT_REQUIRE_CPP") == "1":
        raise
    pytest.skip(f"hashkit._core not built: {exc}", allow_module_level=True)


def _codes(rng, n, w=1):
    return rng.integers(0, 2**63, (n, w), dtype=np.uint64)


def _good(seed=0):
    rng = np.random.default_rng(seed)
    q, db = _codes(rng, 3), _codes(rng, 10)
    ql = rng.integers(0, 8, (3, 1), dtype=np.uint64)
    dbl = rng.integers(0, 8, (10, 1), dtype=np.uint64)
    return dict(q=q, db=db, ql=ql, dbl=dbl, nbits=64,
                cutoffs=np.array([1, 5], np.int64), first_m=2, graded=True, nlabels=3)


# Argument lists of every entry point, built from the good kwargs (None = use the default).
SIGNATURES = {
    "hamming": ("q", "db"),
    "topk": ("q", "db", "nbits", "k"),
    "radius": ("q", "db", "nbits", "r"),
    "hist_stats": ("q", "db", "ql", "dbl", "nbits"),
    "rank_stats": ("q", "db", "ql", "dbl", "nbits", "cutoffs", "first_m", "graded", "nlabels"),
}


def _call(fname, **override):
    kw = _good()
    kw.update(k=3, r=2)
    kw.update(override)
    return getattr(core, fname)(*[kw[a] for a in SIGNATURES[fname]],
                                nthreads=kw.get("nthreads", 1))


def _code_cases():
    """(argument, bad value, exception, words the message must contain) for a codes array."""
    rng = np.random.default_rng(1)
    base = _codes(rng, 4, 2)
    return [
        (base.astype(np.float64), TypeError, ["dtype", "uint64", "float64"]),
        (base.astype(np.int64), TypeError, ["dtype", "uint64", "int64"]),
        (base.view(np.uint32), TypeError, ["dtype", "uint32"]),
        (base.astype(">u8"), TypeError, ["dtype"]),
        (base.tolist(), TypeError, ["NumPy array", "list"]),
        (base[:, :1], ValueError, ["C-contiguous"]),
        (base[::2], ValueError, ["C-contiguous"]),
        (np.asfortranarray(np.concatenate([base, base], 1)), ValueError, ["C-contiguous"]),
        (base.ravel(), ValueError, ["2-D", "shape (8,)"]),
        (base[None], ValueError, ["2-D"]),
        (np.zeros((0, 2), np.uint64), ValueError, ["non-empty", "(0, 2)"]),
        (np.zeros((3, 0), np.uint64), ValueError, ["non-empty", "(3, 0)"]),
    ]


def _misaligned():
    buf = np.zeros(8 * 6 + 1, np.uint8)
    return np.frombuffer(buf.data, np.uint64, 6, offset=1).reshape(3, 2)


ARRAY_ARGS = [(f, a) for f, args in SIGNATURES.items() for a in ("q", "db", "ql", "dbl") if a in args]


@pytest.mark.parametrize("fname, arg", ARRAY_ARGS)
@pytest.mark.parametrize("case", range(len(_code_cases())))
def test_bad_arrays_name_the_argument(fname, arg, case):
    value, exc, words = _code_cases()[case]
    with pytest.raises(exc) as info:
        _call(fname, **{arg: value})
    msg = str(info.value)
    assert msg.startswith(f"{arg}:"), msg
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("fname", list(SIGNATURES))
def test_misaligned_buffer_is_refused(fname):
    bad = _misaligned()
    with pytest.raises(ValueError, match=r"^q: .*aligned"):
        _call(fname, q=bad, db=np.zeros((4, 2), np.uint64), nbits=128)


@pytest.mark.parametrize("fname", list(SIGNATURES))
def test_mismatched_widths(fname):
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match=r"^db: expected 1 words per row .*got shape \(10, 2\)"):
        _call(fname, db=_codes(rng, 10, 2))


@pytest.mark.parametrize("fname", ["hist_stats", "rank_stats"])
def test_label_rows_and_widths(fname):
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match=r"^ql: expected 3 rows .*got shape \(2, 1\)"):
        _call(fname, ql=rng.integers(0, 8, (2, 1), dtype=np.uint64))
    with pytest.raises(ValueError, match=r"^dbl: expected 10 rows .*got shape \(9, 1\)"):
        _call(fname, dbl=rng.integers(0, 8, (9, 1), dtype=np.uint64))
    with pytest.raises(ValueError, match=r"^dbl: expected 1 words per row"):
        _call(fname, dbl=rng.integers(0, 8, (10, 2), dtype=np.uint64))


@pytest.mark.parametrize(
    "fname, override, exc, pattern",
    [
        ("topk", dict(k=0), ValueError, r"^k: expected an integer in \[1, 10\], got 0"),
        ("topk", dict(k=11), ValueError, r"^k: expected an integer in \[1, 10\], got 11"),
        ("topk", dict(k=-1), ValueError, r"^k: "),
        ("topk", dict(k=2.0), TypeError, r"^k: expected an integer, got float"),
        ("topk", dict(k=True), TypeError, r"^k: expected an integer, got bool"),
        ("topk", dict(k=2**70), ValueError, r"^k: expected an integer in \[1, 10\], got 1180591620717411303424$"),
        ("topk", dict(k=-(2**70)), ValueError, r"^k: expected an integer in \[1, 10\], got -1180591620717411303424$"),
        ("radius", dict(r=-1), ValueError, r"^r: expected a non-negative integer radius, got -1$"),
        ("radius", dict(r=-(2**70)), ValueError,
         r"^r: expected a non-negative integer radius, got -1180591620717411303424$"),
        ("radius", dict(r="2"), TypeError, r"^r: expected a non-negative integer radius, got str$"),
        ("radius", dict(r=np.array(2.0)), TypeError, r"^r: expected a non-negative integer radius, got ndarray$"),
        ("topk", dict(nbits=0), ValueError, r"^nbits: expected an integer in \[1, 64\], got 0"),
        ("hist_stats", dict(nbits=65), ValueError, r"^nbits: expected an integer in \[1, 64\]"),
        ("radius", dict(nbits=None), TypeError, r"^nbits: expected an integer, got NoneType"),
        ("hamming", dict(nthreads=-1), ValueError, r"^nthreads: expected an integer in \[0, "),
        ("topk", dict(nthreads=1.5), TypeError, r"^nthreads: "),
        ("rank_stats", dict(cutoffs=np.array([0, 3], np.int64)), ValueError,
         r"^cutoffs: expected strictly increasing values in \[1, 10\]"),
        ("rank_stats", dict(cutoffs=np.array([3, 11], np.int64)), ValueError, r"^cutoffs: "),
        ("rank_stats", dict(cutoffs=np.array([3, 3], np.int64)), ValueError, r"^cutoffs: "),
        ("rank_stats", dict(cutoffs=np.array([5, 3], np.int64)), ValueError, r"^cutoffs: "),
        ("rank_stats", dict(cutoffs=np.array([1, 5], np.int32)), TypeError,
         r"^cutoffs: expected dtype int64 .*got dtype int32"),
        ("rank_stats", dict(cutoffs=np.array([1.0, 5.0])), TypeError, r"^cutoffs: expected dtype int64"),
        ("rank_stats", dict(cutoffs=np.array([[1, 5]], np.int64)), ValueError, r"^cutoffs: expected a 1-D"),
        ("rank_stats", dict(cutoffs=np.array([1, 2, 3, 4], np.int64)[::2]), ValueError,
         r"^cutoffs: expected a C-contiguous"),
        ("rank_stats", dict(cutoffs=[1, 5]), TypeError, r"^cutoffs: expected a NumPy array"),
        ("rank_stats", dict(first_m=-1), ValueError, r"^first_m: "),
        ("rank_stats", dict(graded=1), TypeError, r"^graded: expected a bool, got int"),
        ("rank_stats", dict(nlabels=65), ValueError, r"^nlabels: expected an integer in \[0, 64\]"),
        ("rank_stats", dict(nlabels=-1), ValueError, r"^nlabels: "),
    ],
)
def test_bad_scalars_name_the_argument(fname, override, exc, pattern):
    with pytest.raises(exc, match=pattern):
        _call(fname, **override)


def test_padding_bits_are_refused():
    rng = np.random.default_rng(4)
    db = _codes(rng, 10) & np.uint64(2**40 - 1)
    db[7, 0] |= np.uint64(1) << np.uint64(40)
    q = np.zeros((3, 1), np.uint64)
    for fname in ("topk", "radius", "hist_stats", "rank_stats"):
        with pytest.raises(ValueError, match=r"^db: .*nbits = 40 must be zero.*row 7"):
            _call(fname, q=q, db=db, nbits=40)
    # graded statistics index a gain histogram by the label count: stray label bits are refused
    dbl = rng.integers(0, 8, (10, 1), dtype=np.uint64)
    dbl[2, 0] |= np.uint64(1) << np.uint64(5)
    with pytest.raises(ValueError, match=r"^dbl: label bits beyond nlabels = 3 must be zero.*row 2"):
        _call("rank_stats", dbl=dbl)


def test_no_silent_copy_and_owned_outputs():
    kw = _good(5)
    d = core.hamming(kw["q"], kw["db"], 1)
    assert d.dtype == np.int32 and d.shape == (3, 10) and d.flags.owndata and d.flags.c_contiguous
    dist, idx = core.topk(kw["q"], kw["db"], 64, 10, 1)
    assert dist.dtype == np.int32 and idx.dtype == np.int64 and dist.shape == idx.shape == (3, 10)
    lims, ridx, rdist = core.radius(kw["q"], kw["db"], 64, 64, 1)
    assert lims.dtype == ridx.dtype == np.int64 and rdist.dtype == np.int32
    assert lims.tolist() == [0, 10, 20, 30]
    # the radius buffers outlive the call (they are owned through a capsule, not borrowed)
    del kw
    assert ridx.sum() == 3 * sum(range(10))


def test_rank_stats_keys_and_shapes():
    kw = _good(6)
    for graded in (False, True):
        out = core.rank_stats(kw["q"], kw["db"], kw["ql"], kw["dbl"], 64,
                              np.zeros(0, np.int64), 0, graded, 3, 1)
        expect = {"hist_all", "hist_rel", "ap_sum", "rel_at", "ap_sum_at", "ap_first"}
        if graded:
            expect |= {"gain_at", "dcg_at", "gain_hist"}
        assert set(out) == expect
        assert out["rel_at"].shape == (3, 0) and out["hist_all"].shape == (3, 65)
        if graded:
            assert out["gain_hist"].shape == (3, 4)
            assert (out["gain_hist"].sum(1) == 10).all()


def test_info_functions():
    assert core.simd_path() in ("avx512-vpopcntdq", "avx512bw", "avx2", "popcnt", "scalar")
    info = core.build_info()
    assert info["simd_path"] == core.simd_path()
    assert {"version", "compiler", "flags"} <= set(info)
    assert "-march=native" not in info["flags"]


# --- the tiled / compacting paths, which small oracle inputs never reach ----------------------

def _tie_heavy(rng, n, nbits, distinct):
    w = (nbits + 63) // 64
    bits = rng.integers(0, 2, (distinct, nbits)).astype(bool)
    rows = bits[rng.integers(0, distinct, n)]
    out = np.zeros((n, w), np.uint64)
    for j in range(nbits):
        out[:, j // 64] |= rows[:, j].astype(np.uint64) << np.uint64(j % 64)
    return out, rows


@pytest.mark.parametrize("nbits, distinct", [(16, 40), (64, 5000), (130, 300)])
def test_large_n_against_oracle(nbits, distinct):
    rng = np.random.default_rng(nbits)
    n = 21_000  # several database tiles for every width
    db, dbb = _tie_heavy(rng, n, nbits, distinct)
    q, qb = db[[3, 17, 20_500]].copy(), dbb[[3, 17, 20_500]]
    ref = hamming_ref(qb, dbb)
    assert np.array_equal(core.hamming(q, db, 2), ref)
    for k in (1, 7, 500, 2_000, 2_624, 2_626, n):  # candidate path, its compaction, full path
        d, i = core.topk(q, db, nbits, k, 2)
        rd, ri = topk_ref(qb, dbb, k)
        assert np.array_equal(d, rd) and np.array_equal(i, ri), k
    for r in (0, 3, nbits // 3):
        got = core.radius(q, db, nbits, r, 2)
        want = radius_ref(qb, dbb, r)
        assert all(np.array_equal(g, w) for g, w in zip(got, want)), r


SIMD_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    from hashkit import _core as core
    rng = np.random.default_rng(7)
    out = {"path": core.simd_path()}
    for w in (1, 2, 3, 4, 9):
        q = rng.integers(0, 2**63, (5, w), dtype=np.uint64)
        db = rng.integers(0, 2**63, (9000, w), dtype=np.uint64)
        db[::7] = db[0]
        ql = rng.integers(0, 16, (5, 1), dtype=np.uint64)
        dbl = rng.integers(0, 16, (9000, 1), dtype=np.uint64)
        nb = 64 * w - 1
        q[:, -1] &= np.uint64(2**63 - 1); db[:, -1] &= np.uint64(2**63 - 1)
        cut = np.array([10, 100, 9000], np.int64)  # 9000: past the per-position table threshold
        r = core.rank_stats(q, db, ql, dbl, nb, cut, 5, True, 4, 2)
        rb = core.rank_stats(q, db, ql, dbl, nb, cut, 5, False, 4, 2)  # binary: other tile path
        out[w] = [core.hamming(q, db, 2), *core.topk(q, db, nb, 50, 2), *core.radius(q, db, nb, nb // 3, 2),
                  *[r[k] for k in sorted(r)], *[rb[k] for k in sorted(rb)]]
    np.save(sys.argv[1], np.array([out], dtype=object), allow_pickle=True)
""")


def test_every_simd_path_gives_identical_results(tmp_path):
    paths = simd_paths.up_to_running(core)
    results = {}
    for path in paths:
        f = tmp_path / f"{path}.npy"
        env = dict(os.environ, HASHKIT_SIMD=path)
        # run outside the source tree so an installed build is what gets imported
        subprocess.run([sys.executable, "-c", SIMD_SCRIPT, str(f)], check=True, env=env,
                       cwd=tmp_path)
        results[path] = np.load(f, allow_pickle=True)[0]
        assert results[path]["path"] == path
    ref = results[paths[0]]
    for path in paths[1:]:
        for w in (1, 2, 3, 4, 9):
            for a, b in zip(ref[w], results[path][w]):
                assert a.dtype == b.dtype and np.array_equal(a, b), (path, w)


FILTER_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    from hashkit import _core as core
    data = np.load(sys.argv[1])
    out = {"path": np.array(core.simd_path())}
    for w in (1, 2, 3, 4):
        q, db, nb = data[f"q{w}"], data[f"db{w}"], int(data[f"nb{w}"])
        for r in data["radii"]:
            for k, a in enumerate(core.radius(q, db, nb, int(r), 1)):
                out[f"r{w}_{r}_{k}"] = a
        for kk in data["ks"]:
            for k, a in enumerate(core.topk(q, db, nb, int(kk), 1)):
                out[f"t{w}_{kk}_{k}"] = a
    np.savez(sys.argv[2], **out)
""")


def _near_codes(rng, q_bits, n, nbits):
    """Codes around the queries, so that every branch of the selection kernels has hits.

    A mixture of far random codes; codes a few flips away from a query (every distance from 0 to
    26, ties included, at random positions: in the vector and the scalar lanes of a block of
    sixteen, and in the tail); and codes whose first or second 64-bit word is near the query's
    word but the other far (the two-word pre-test passes on one word, the full distance fails).
    """
    bits = rng.integers(0, 2, (n, nbits)).astype(np.uint8)
    rows = rng.permutation(n)
    near, half = rows[: n // 6], rows[n // 6: n // 3]
    for i in near:
        qb = q_bits[rng.integers(0, len(q_bits))]
        flip = rng.choice(nbits, rng.integers(0, 27), replace=False)
        bits[i] = qb
        bits[i, flip] ^= 1
    for i in half:
        qb = q_bits[rng.integers(0, len(q_bits))]
        lo, hi = (0, min(64, nbits)) if rng.random() < 0.5 else (64, min(128, nbits))
        if lo >= nbits:
            lo, hi = 0, min(64, nbits)
        bits[i, lo:hi] = qb[lo:hi]
        flip = rng.choice(np.arange(lo, hi), min(hi - lo, rng.integers(0, 12)), replace=False)
        bits[i, flip] ^= 1
    return bits


def test_selection_kernels_on_every_simd_path(tmp_path):
    """topk and radius (distance and selection in one primitive per path) against the oracle.

    Limits on both sides of the two-word pre-test's cut (20 / 21), top-k thresholds that fall
    while a tile is walked, N not a multiple of the 16-code blocks. Each SIMD path in its own
    process, each compared with the oracle (not only with the other paths).
    """
    from oracle import pack_bits as oracle_pack
    rng = np.random.default_rng(17)
    data, bits = {}, {}
    for w, nb in ((1, 64), (2, 128), (3, 150), (4, 256)):
        qb = rng.integers(0, 2, (6, nb)).astype(np.uint8)
        dbb = _near_codes(rng, qb, 5_003 if w > 2 else 9_011, nb)
        data.update({f"q{w}": oracle_pack(qb), f"db{w}": oracle_pack(dbb), f"nb{w}": nb})
        bits[w] = (qb, dbb, nb)
    radii = np.array([0, 1, 2, 5, 13, 19, 20, 21, 22, 30, 70])
    ks = np.array([1, 7, 100, 333])
    np.savez(tmp_path / "in.npz", radii=radii, ks=ks, **data)
    want = {}
    for w, (qb, dbb, _nb) in bits.items():
        for r in radii:
            want[f"r{w}_{r}"] = radius_ref(qb, dbb, int(r))
        for kk in ks:
            want[f"t{w}_{kk}"] = topk_ref(qb, dbb, int(kk))
    for path in simd_paths.up_to_running(core):
        f = tmp_path / f"{path}.npz"
        env = dict(os.environ, HASHKIT_SIMD=path)
        subprocess.run([sys.executable, "-c", FILTER_SCRIPT, str(tmp_path / "in.npz"), str(f)],
                       check=True, env=env, cwd=tmp_path)
        got = np.load(f)
        assert str(got["path"]) == path
        for key, ref in want.items():
            for k, a in enumerate(ref):
                assert np.array_equal(got[f"{key}_{k}"], a), (path, key, k)


def test_radius_with_many_queries_and_a_wide_radius():
    """Q x (r + 1) above the kernel's keep-the-counts limit: the recounting phase runs."""
    rng = np.random.default_rng(11)
    nbits, r = 128, 70
    qb = rng.integers(0, 2, (60_000, nbits)).astype(bool)  # 60k x 71 > 2**22 counts
    dbb = rng.integers(0, 2, (300, nbits)).astype(bool)
    pack = lambda b: np.packbits(b, axis=1, bitorder="little").view(np.uint64)
    lims, idx, dist = core.radius(pack(qb), pack(dbb), nbits, r, 2)
    rows = rng.choice(len(qb), 40, replace=False)
    wl, wi, wd = radius_ref(qb[rows], dbb, r)
    for k, row in enumerate(rows):
        got = slice(lims[row], lims[row + 1])
        want = slice(wl[k], wl[k + 1])
        assert np.array_equal(idx[got], wi[want]) and np.array_equal(dist[got], wd[want])
