"""HammingIndex as a store: concurrency, ids, empty batches, files, and FAISS's result order.

Every expected value comes from the unpacked-bits oracle (tests/oracle.py) or from the codes
the test itself added, never from the index under test.
"""

import sys
import threading
import time

import numpy as np
import pytest

import hashkit
from oracle import hamming_ref, pack_bits, random_codes

RNG = np.random.default_rng(16)


def _oracle_topk(q_bits, db_bits, k):
    d = hamming_ref(q_bits, db_bits)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), order


def _race_round(nbits, per, chunks, adders):
    index = hashkit.HammingIndex(nbits)
    index.add(hashkit.Codes(np.zeros((1, 1), np.uint64), nbits))
    stop = threading.Event()
    errors = []

    def adder(t):
        for c in range(chunks):
            base = (t * chunks + c) * per + 1
            rows = np.arange(base, base + per, dtype=np.uint64).reshape(-1, 1)
            index.add(hashkit.Codes(rows, nbits))
            time.sleep(0.0002)

    def searcher():
        q = hashkit.Codes(np.zeros((2, 1), np.uint64), nbits)
        try:
            while not stop.is_set():
                d, i = index.search(q, 1)
                assert i[0, 0] == 0 and d[0, 0] == 0
                res = index.range_search(q, 0)
                assert res.idx.tolist() == [0, 0]
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    threads += [threading.Thread(target=adder, args=(t,)) for t in range(adders)]
    for t in threads:
        t.start()
    for t in threads[4:]:
        t.join()
    stop.set()
    for t in threads[:4]:
        t.join()
    return index, errors


def test_concurrent_add_and_search_lose_nothing():
    # issue 14, item 4: codes() concatenated and then cleared the chunk list unlocked, so an add
    # landing between the two was dropped (200-775 of 3,000 codes). Several rounds with a tiny
    # switch interval make that window likely; each round must keep every code, in add order
    # within each add, and every search must see a consistent prefix.
    nbits, per, chunks, adders = 32, 15, 50, 4
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(4):
            index, errors = _race_round(nbits, per, chunks, adders)
            assert not errors, errors[0]
            words = index.codes().words[:, 0].astype(np.int64)
            total = 1 + adders * chunks * per
            assert index.ntotal == total
            assert sorted(words.tolist()) == list(range(total))
            # each add's rows stay together and in order
            starts = np.flatnonzero((words[1:] - 1) % per == 0) + 1
            for s in starts:
                assert np.array_equal(words[s:s + per], np.arange(words[s], words[s] + per))
    finally:
        sys.setswitchinterval(old)


def test_range_search_unpacks_in_faiss_order():
    # lims, D, I = index.range_search(...) as in FAISS (hashkit 0.1 gave (lims, idx, dist)).
    db, db_bits = random_codes(RNG, 60, 16)
    q, q_bits = random_codes(RNG, 3, 16)
    d = hamming_ref(q_bits, db_bits)
    index = hashkit.HammingIndex(16)
    index.add(hashkit.Codes(db, 16))
    lims, D, I = index.range_search(hashkit.Codes(q, 16), 6)
    assert D.dtype == np.int32 and I.dtype == np.int64
    for i in range(3):
        expect = [j for j in np.argsort(d[i], kind="stable") if d[i, j] <= 6]
        assert I[lims[i]:lims[i + 1]].tolist() == expect
        assert D[lims[i]:lims[i + 1]].tolist() == d[i, expect].tolist()
    res = hashkit.radius_search(hashkit.Codes(q, 16), hashkit.Codes(db, 16), 6)
    lims2, D2, I2 = res
    assert np.array_equal(D2, D) and np.array_equal(I2, I) and res.dist is D2 and res.idx is I2


def test_ids_add_remove_and_ties_by_position():
    db, db_bits = random_codes(RNG, 40, 8, distinct=6)  # few distinct codes: many ties
    q, q_bits = random_codes(RNG, 4, 8)
    ids = RNG.permutation(1000)[:40].astype(np.int64) * 3 + 7
    index = hashkit.HammingIndex(8)
    index.add_with_ids(hashkit.Codes(db[:25], 8), ids[:25])
    index.add_with_ids(hashkit.Codes(db[25:], 8), ids[25:])
    assert index.has_ids and index.ntotal == 40
    od, oi = _oracle_topk(q_bits, db_bits, 40)
    d, i = index.search(hashkit.Codes(q, 8), 40)
    assert np.array_equal(d, od) and np.array_equal(i, ids[oi])   # ties by position, ids out
    lims, D, I = index.range_search(hashkit.Codes(q, 8), 3)
    for r in range(4):
        sel = od[r] <= 3
        assert I[lims[r]:lims[r + 1]].tolist() == ids[oi[r][sel]].tolist()
    with pytest.raises(ValueError, match="add_with_ids"):
        index.add(hashkit.Codes(db[:1], 8))
    gone = ids[[3, 10, 11]]
    assert index.remove_ids(np.concatenate([gone, [123456789]])) == 3
    keep = ~np.isin(np.arange(40), [3, 10, 11])
    od, oi = _oracle_topk(q_bits, db_bits[keep], 37)
    d, i = index.search(hashkit.Codes(q, 8), 37)
    assert np.array_equal(d, od) and np.array_equal(i, ids[keep][oi])
    assert np.array_equal(index.ids(), ids[keep])
    with pytest.raises(ValueError, match=r"ids: expected 3 ids \(one per code\), got 2"):
        index.add_with_ids(hashkit.Codes(db[:3], 8), [1, 2])
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, 2\*\*63\)"):
        index.add_with_ids(hashkit.Codes(db[:1], 8), [-1])
    with pytest.raises(TypeError, match="ids: expected a 1-D array of integer ids"):
        index.remove_ids([1.5])


def test_remove_without_ids_renumbers_like_faiss_flat():
    db, db_bits = random_codes(RNG, 30, 12)
    q, q_bits = random_codes(RNG, 2, 12)
    index = hashkit.HammingIndex(12)
    index.add(hashkit.Codes(db, 12))
    assert index.remove_ids(np.arange(0, 30, 3)) == 10
    keep = np.arange(30) % 3 != 0
    od, oi = _oracle_topk(q_bits, db_bits[keep], 20)
    d, i = index.search(hashkit.Codes(q, 12), 20)
    assert np.array_equal(i, oi) and np.array_equal(d, od)   # positions in the shrunk index
    index.add(hashkit.Codes(db[:1], 12))
    assert index.ntotal == 21 and not index.has_ids


def test_empty_query_batch_gives_empty_results():
    index = hashkit.HammingIndex(70)
    index.add(np.ones((5, 70)))
    d, i = index.search(np.zeros((0, 70)), 3)
    assert d.shape == (0, 3) and d.dtype == np.int32 and i.shape == (0, 3) and i.dtype == np.int64
    lims, D, I = index.range_search(np.zeros((0, 2), np.uint64), 4)
    assert lims.tolist() == [0] and D.size == 0 and I.size == 0
    with pytest.raises(ValueError, match="expected codes of 70 bits"):
        index.search(np.zeros((0, 71)), 3)
    with pytest.raises(ValueError, match="k: expected an integer between 1 and the database size 5"):
        index.search(np.zeros((0, 70)), 6)


def test_add_then_search_does_not_copy_the_database():
    # The codes live in one buffer with spare capacity: add + search + add + search must not
    # rebuild it (the old index concatenated every chunk into a new array on each search).
    index = hashkit.HammingIndex(64)
    a = RNG.integers(0, 2**63, (300, 1), dtype=np.uint64)
    q = hashkit.Codes(a[:2], 64)
    index.add(hashkit.Codes(a[:100], 64))
    index.search(q, 1)
    first = index.codes().words
    for lo in (100, 200):
        index.add(hashkit.Codes(a[lo:lo + 100], 64))
        index.search(q, 1)
    assert np.shares_memory(first, index.codes().words)
    assert np.array_equal(index.codes().words, a)
    with pytest.raises(ValueError):
        index.codes().words[0, 0] = 1   # a read-only view of the index's own buffer


def test_save_load_memory_mapped(tmp_path):
    db, db_bits = random_codes(RNG, 500, 100)
    q, q_bits = random_codes(RNG, 5, 100)
    ids = np.arange(500, dtype=np.int64)[::-1] * 2
    index = hashkit.HammingIndex(100)
    index.add_with_ids(hashkit.Codes(db, 100), ids)
    index.save(tmp_path / "ix.hki")
    again = hashkit.HammingIndex.load(tmp_path / "ix.hki")
    assert isinstance(again.codes().words, np.memmap) or isinstance(again.codes().words.base, np.memmap)
    od, oi = _oracle_topk(q_bits, db_bits, 7)
    d, i = again.search(hashkit.Codes(q, 100), 7)
    assert np.array_equal(d, od) and np.array_equal(i, ids[oi])
    before = (tmp_path / "ix.hki").read_bytes()
    again.add_with_ids(hashkit.Codes(db[:3], 100), [1, 3, 5])   # copied out of the map first
    assert again.ntotal == 503 and (tmp_path / "ix.hki").read_bytes() == before


def test_old_npz_index_still_loads(tmp_path):
    db, _ = random_codes(RNG, 20, 64)
    np.savez(tmp_path / "old.npz", format="hashkit-index/1", nbits=64, words=db)
    index = hashkit.HammingIndex.load(tmp_path / "old.npz")
    assert np.array_equal(index.codes().words, db)


@pytest.mark.parametrize("damage", ["truncate", "flip-data", "flip-header", "empty"])
def test_damaged_index_file_is_a_one_line_error(tmp_path, damage):
    db, _ = random_codes(RNG, 200, 64)
    index = hashkit.HammingIndex(64)
    index.add(hashkit.Codes(db, 64))
    path = tmp_path / "ix.hki"
    index.save(path)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[:-100]
    elif damage == "flip-data":
        raw[-50] ^= 0x10
    elif damage == "flip-header":
        raw[20] ^= 0x01
    else:
        raw = raw[:0]
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=str(path)) as err:
        hashkit.HammingIndex.load(path)
    assert "\n" not in str(err.value)


def test_pack_bits_oracle_roundtrip():
    # the oracle's packing is the index's format (guards the tests above against a mismatch)
    _, bits = random_codes(RNG, 3, 70)
    assert np.array_equal(hashkit.pack(bits).words, pack_bits(bits))
