"""hashkit.faiss against faiss-cpu on the same inputs: same D and I, same conventions.

Where the peer's order is not defined by the index (FAISS's multi-hash range search returns
each query's hits in hash-table order), results are compared as sets of (distance, id) per
query; everywhere else arrays must be equal, dtypes included.
"""

import numpy as np
import pytest

from hashkit import faiss as hf

faiss = pytest.importorskip("faiss")
RNG = np.random.default_rng(1984)


def codes(n, d, distinct=None):
    pool = RNG.integers(0, 256, (distinct or n, d // 8), dtype=np.uint8)
    return pool if distinct is None else pool[RNG.integers(0, distinct, n)]


def same(a, b):
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    np.testing.assert_array_equal(a, b)


def as_sets(lims, D, I):
    return [set(zip(D[lims[i]:lims[i + 1]].tolist(), I[lims[i]:lims[i + 1]].tolist()))
            for i in range(len(lims) - 1)]


@pytest.mark.parametrize("d,distinct", [(8, None), (64, 30), (72, None), (128, None), (256, 50)])
def test_flat_search_and_range_search_equal_faiss(d, distinct):
    xb, xq = codes(300, d, distinct), codes(9, d)
    xq[:3] = xb[:3]
    ours, theirs = hf.IndexBinaryFlat(d), faiss.IndexBinaryFlat(d)
    for ix in (ours, theirs):
        ix.add(xb[:200])
        ix.add(xb[200:])
    assert ours.ntotal == theirs.ntotal == 300 and ours.code_size == theirs.code_size
    for k in (1, 7, 300, 305):          # k > ntotal: -1 and INT32_MAX padding
        Do, Io = ours.search(xq, k)
        Dt, It = theirs.search(xq, k)
        same(Do, Dt)
        same(Io, It)
    for radius in (0, 1, 3, d // 3, d + 1):   # strict: distance < radius
        lo, Do, Io = ours.range_search(xq, radius)
        lt, Dt, It = theirs.range_search(xq, radius)
        same(lo, lt)
        same(Do, Dt)
        same(Io, It)
    for key in (0, 5, 299):
        same(ours.reconstruct(key), theirs.reconstruct(key))
    same(ours.reconstruct_n(10, 4), theirs.reconstruct_n(10, 4))


def test_flat_remove_reset_and_empty_inputs_as_faiss():
    d = 32
    xb, xq = codes(100, d, 20), codes(5, d)
    ours, theirs = hf.IndexBinaryFlat(d), faiss.IndexBinaryFlat(d)
    ours.add(xb)
    theirs.add(xb)
    sel = np.array([0, 3, 3, 50, 99, 1000], np.int64)
    assert ours.remove_ids(sel) == theirs.remove_ids(sel) == 4
    for k in (5, 96, 99):
        for a, b in zip(ours.search(xq, k), theirs.search(xq, k)):
            same(a, b)
    for a, b in zip(ours.range_search(xq, 12), theirs.range_search(xq, 12)):
        same(a, b)
    for a, b in zip(ours.search(xq[:0], 3), theirs.search(xq[:0], 3)):
        same(a, b)
    for a, b in zip(ours.range_search(xq[:0], 3), theirs.range_search(xq[:0], 3)):
        same(a, b)
    ours.reset()
    theirs.reset()
    for a, b in zip(ours.search(xq, 2), theirs.search(xq, 2)):   # empty index: all padding
        same(a, b)
    ours.add(xb[:0])
    assert ours.ntotal == 0
    with pytest.raises(RuntimeError, match="add_with_ids not implemented"):
        ours.add_with_ids(xb, np.arange(100))
    with pytest.raises(RuntimeError):
        theirs.add_with_ids(xb, np.arange(100))


@pytest.mark.parametrize("inner", ["flat", "multihash"])
def test_idmap_equals_faiss(inner):
    d = 64
    xb, xq = codes(400, d, 60), codes(8, d)
    ids = RNG.permutation(10_000)[:400].astype(np.int64) - 100    # negative ids too, as FAISS allows
    ours = hf.IndexBinaryIDMap(hf.IndexBinaryFlat(d) if inner == "flat" else hf.IndexBinaryMultiHash(d, 4))
    theirs = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(d))
    ours.add_with_ids(xb[:150], ids[:150])
    ours.add_with_ids(xb[150:], ids[150:])
    theirs.add_with_ids(xb, ids)
    for k in (1, 10, 405):
        for a, b in zip(ours.search(xq, k), theirs.search(xq, k)):
            same(a, b)
    for a, b in zip(ours.range_search(xq, 20), theirs.range_search(xq, 20)):
        same(a, b)
    gone = ids[[0, 7, 399]]
    assert ours.remove_ids(gone) == theirs.remove_ids(gone) == 3
    same(ours.id_map, faiss.vector_to_array(theirs.id_map))
    for a, b in zip(ours.search(xq, 30), theirs.search(xq, 30)):
        same(a, b)
    with pytest.raises(RuntimeError, match="add does not make sense"):
        ours.add(xb)
    with pytest.raises(RuntimeError, match="reconstruct not implemented"):
        ours.reconstruct(int(ids[5]))
    two = hf.IndexBinaryIDMap2(hf.IndexBinaryFlat(d))
    two.add_with_ids(xb, ids)
    ref = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(d))
    ref.add_with_ids(xb, ids)
    same(two.reconstruct(int(ids[17])), ref.reconstruct(int(ids[17])))


@pytest.mark.parametrize("d,nhash,b", [(64, 4, 16), (128, 6, 21), (48, 3, 16)])
def test_multihash_is_exact(d, nhash, b):
    # FAISS's multi-hash index is exact for range search when every substring is searched with
    # nflip >= (radius - 1) // nhash flips and nhash * b = d bits are hashed: compare as
    # (distance, id) sets per query, its order being the hash tables'. Its k-NN is approximate,
    # so ours is compared with FAISS's exact flat index (same D and I).
    xb, xq = codes(2000, d, 1500), codes(10, d)
    xq[:2] = xb[:2]
    ours = hf.IndexBinaryMultiHash(d, nhash, b)
    ours.add(xb)
    flat = faiss.IndexBinaryFlat(d)
    flat.add(xb)
    for k in (1, 10, 2000, 2001):
        for a, c in zip(ours.search(xq, k), flat.search(xq, k)):
            same(a, c)
    bits = nhash * b
    for radius in (1, 3, 7):
        theirs = faiss.IndexBinaryMultiHash(d, nhash, b)
        theirs.add(xb)
        theirs.nflip = (radius - 1) // nhash
        lo, Do, Io = ours.range_search(xq, radius)
        lt, Dt, It = theirs.range_search(xq, radius)
        if bits == d:
            same(lo, lt)
            assert as_sets(lo, Do, Io) == as_sets(lt, Dt, It)
        for a, c in zip((lo, Do, Io), flat.range_search(xq, radius)):
            same(a, c)      # and in the flat order exactly
    ours.nflip = 3          # accepted, changes nothing
    for a, c in zip(ours.search(xq, 5), flat.search(xq, 5)):
        same(a, c)
    assert ours.remove_ids(np.arange(10)) == 10     # beyond FAISS's multi-hash: supported
    same(ours.reconstruct(0), xb[10])


@pytest.mark.parametrize("kind", ["flat", "multihash", "idmap", "idmap2"])
def test_write_read_memory_mapped(tmp_path, kind):
    d = 64
    xb, xq = codes(500, d), codes(6, d)
    ids = np.arange(500, dtype=np.int64) * 7 + 3
    if kind == "flat":
        ix = hf.IndexBinaryFlat(d)
        ix.add(xb)
    elif kind == "multihash":
        ix = hf.IndexBinaryMultiHash(d, 3, 21)
        ix.add(xb)
    else:
        ix = (hf.IndexBinaryIDMap if kind == "idmap" else hf.IndexBinaryIDMap2)(hf.IndexBinaryFlat(d))
        ix.add_with_ids(xb, ids)
    path = tmp_path / "ix.hki"
    hf.write_index_binary(ix, str(path))
    back = hf.read_index_binary(str(path), hf.IO_FLAG_MMAP)
    assert type(back) is type(ix) and back.ntotal == 500 and back.d == d
    words = back._index.codes().words
    assert isinstance(words, np.memmap) or isinstance(words.base, np.memmap)
    for a, b in zip(back.search(xq, 9), ix.search(xq, 9)):
        same(a, b)
    for a, b in zip(back.range_search(xq, 25), ix.range_search(xq, 25)):
        same(a, b)
    if kind in ("flat", "multihash"):
        back.add(xb[:2])
    else:
        back.add_with_ids(xb[:2], ids[:2])
    assert back.ntotal == 502


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="d: expected a number of bits that is a multiple of 8, got 12"):
        hf.IndexBinaryFlat(12)
    ix = hf.IndexBinaryFlat(16)
    with pytest.raises(TypeError, match="x: expected dtype uint8"):
        ix.add(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 2\) for d = 16 bits, got \(2, 3\)"):
        ix.add(np.zeros((2, 3), np.uint8))
    ix.add(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="k: expected a positive number of neighbours"):
        ix.search(np.zeros((1, 2), np.uint8), 0)
    with pytest.raises(TypeError, match="sel: hashkit.faiss takes the ids to remove as an integer array"):
        ix.remove_ids(faiss.IDSelectorRange(0, 1))
    with pytest.raises(ValueError, match="nhash: expected a number of hash tables"):
        hf.IndexBinaryMultiHash(256, 2)
    with pytest.raises(ValueError, match="index: must be empty when wrapped"):
        hf.IndexBinaryIDMap(ix)
