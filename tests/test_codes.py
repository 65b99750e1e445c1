"""Codes: packing against an independent bit-by-bit packer, file round trips, readers."""

import json

import h5py
import numpy as np
import pytest
import scipy.io

import hashkit
from hashkit.codefile import load_code_file, save_code_file
from hashkit.codes import Codes

NBITS = [1, 7, 63, 64, 65, 130]


def slow_pack(bits01: np.ndarray) -> np.ndarray:
    """Bit j of code i goes to word j // 64, bit j % 64 — written out one bit at a time."""
    n, nbits = bits01.shape
    out = np.zeros((n, (nbits + 63) // 64), dtype=np.uint64)
    for i in range(n):
        for j in range(nbits):
            if bits01[i, j]:
                out[i, j // 64] |= np.uint64(1) << np.uint64(j % 64)
    return out


@pytest.mark.parametrize("nbits", NBITS)
def test_pack_matches_bitwise_definition(nbits):
    rng = np.random.default_rng(nbits)
    pm = rng.choice([-1.0, 1.0], size=(9, nbits))
    expected = slow_pack(pm > 0)
    for form in (pm, pm.astype(np.float32), pm.astype(np.int8), (pm > 0), (pm > 0).astype(np.uint8)):
        c = hashkit.pack(form)
        assert c.nbits == nbits and c.words.dtype == np.uint64 and c.words.flags.c_contiguous
        np.testing.assert_array_equal(c.words, expected)
    np.testing.assert_array_equal(hashkit.unpack(hashkit.pack(pm)), pm.astype(np.int8))
    np.testing.assert_array_equal(hashkit.unpack(hashkit.pack(pm), signed=False), (pm > 0).astype(np.int8))


def test_zero_becomes_bit_zero_and_caller_array_untouched():
    x = np.array([[0.0, 1.0, -1.0, 0.5]])
    before = x.copy()
    assert hashkit.unpack(hashkit.pack(x), signed=False).tolist() == [[0, 1, 0, 1]]
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("nbits", [7, 64, 130])
def test_torch_input_cpu(nbits):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    pm = rng.choice([-1.0, 1.0], size=(4, nbits))
    np.testing.assert_array_equal(hashkit.pack(torch.tensor(pm)).words, slow_pack(pm > 0))
    # The device path (used for CUDA tensors) is plain torch: check it on the CPU too.
    from hashkit.codes import _pack_torch

    np.testing.assert_array_equal(_pack_torch(torch.tensor(pm), "x").numpy(), slow_pack(pm > 0))


def test_packed_uint64_input_and_padding_check():
    words = slow_pack(np.ones((2, 5), dtype=bool))
    c = hashkit.pack(words, nbits=5)
    assert c.nbits == 5
    with pytest.raises(ValueError, match="padding"):
        hashkit.pack(words, nbits=3)


def test_faiss_view_is_zero_copy_and_distances_agree():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(2)
    q = hashkit.pack(rng.choice([-1, 1], size=(5, 70)))
    db = hashkit.pack(rng.choice([-1, 1], size=(40, 70)))
    view = db.as_uint8()
    assert view.base is not None and np.shares_memory(view, db.words)
    index = faiss.IndexBinaryFlat(view.shape[1] * 8)
    index.add(view)
    d, _ = index.search(q.as_uint8(), 40)
    ours = np.sort(hashkit.hamming(q, db), axis=1)
    np.testing.assert_array_equal(d, ours)


def test_save_load_codes_roundtrip(tmp_path):
    rng = np.random.default_rng(3)
    c = hashkit.pack(rng.choice([-1, 1], size=(6, 65)))
    c.save(tmp_path / "c.npz")
    assert hashkit.load_codes(tmp_path / "c.npz") == c
    assert not list(tmp_path.glob(".c.npz*")), "temporary file left behind"


def _cross_modal(rng, nq=7, nd=11, nbits=24, nl=5):
    return dict(
        qx=rng.choice([-1.0, 1.0], size=(nq, nbits)), qy=rng.choice([-1.0, 1.0], size=(nq, nbits)),
        rx=rng.choice([-1.0, 1.0], size=(nd, nbits)), ry=rng.choice([-1.0, 1.0], size=(nd, nbits)),
        ql=(rng.random((nq, nl)) < 0.4).astype(np.float64), rl=(rng.random((nd, nl)) < 0.4).astype(np.float64))


def _assert_same(cf, d):
    np.testing.assert_array_equal(hashkit.unpack(cf.query_image), d["qx"])
    np.testing.assert_array_equal(hashkit.unpack(cf.query_text), d["qy"])
    np.testing.assert_array_equal(hashkit.unpack(cf.db_image), d["rx"])
    np.testing.assert_array_equal(hashkit.unpack(cf.db_text), d["ry"])
    np.testing.assert_array_equal(cf.query_labels, d["ql"])
    np.testing.assert_array_equal(cf.db_labels, d["rl"])
    assert set(cf.directions()) == {"i2t", "t2i", "i2i", "t2t"}


def test_hashkit_code_file_roundtrip(tmp_path):
    d = _cross_modal(np.random.default_rng(4))
    save_code_file(tmp_path / "codes.npz", query_image=d["qx"], query_text=d["qy"], db_image=d["rx"],
                   db_text=d["ry"], query_labels=d["ql"], db_labels=d["rl"], meta={"method": "x"})
    cf = load_code_file(tmp_path / "codes.npz")
    _assert_same(cf, d)
    assert cf.meta == {"method": "x"}


def test_research_mat_v5(tmp_path):
    d = _cross_modal(np.random.default_rng(5))
    scipy.io.savemat(tmp_path / "r.mat", {"qBX": d["qx"], "qBY": d["qy"], "rBX": d["rx"], "rBY": d["ry"],
                                          "query_L": d["ql"], "retrieval_L": d["rl"]})
    _assert_same(load_code_file(tmp_path / "r.mat"), d)


def test_research_mat_v73_is_transposed_back(tmp_path):
    d = _cross_modal(np.random.default_rng(6))
    path = tmp_path / "r73.mat"
    names = {"qBX": "qx", "qBY": "qy", "rBX": "rx", "rBY": "ry", "query_L": "ql", "retrieval_L": "rl"}
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, src in names.items():
            f.create_dataset(key, data=d[src].T)  # what MATLAB's column-major storage looks like
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, written by a test")
    _assert_same(load_code_file(path), d)


def test_research_npz_unimodal_and_class_ids(tmp_path):
    rng = np.random.default_rng(7)
    qB, rB = rng.choice([-1, 1], size=(4, 16)), rng.choice([-1, 1], size=(9, 16))
    np.savez(tmp_path / "u.npz", qB=qB, rB=rB, query_L=np.array([0, 2, 1, 2]),
             retrieval_L=np.array([2, 1, 0, 0, 1, 2, 2, 1, 0]))
    cf = load_code_file(tmp_path / "u.npz")
    assert set(cf.directions()) == {"i2i"}
    assert cf.query_labels.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]


def test_code_file_errors_name_file_and_key(tmp_path):
    d = _cross_modal(np.random.default_rng(8))
    np.savez(tmp_path / "nolab.npz", qBX=d["qx"], rBY=d["ry"])
    with pytest.raises(ValueError, match=r"nolab\.npz.*query labels"):
        load_code_file(tmp_path / "nolab.npz")
    np.savez(tmp_path / "count.npz", qBX=d["qx"][:3], rBY=d["ry"], query_L=d["ql"], retrieval_L=d["rl"])
    with pytest.raises(ValueError, match=r"count\.npz.*query_image has 3 codes"):
        load_code_file(tmp_path / "count.npz")
    np.savez(tmp_path / "lab.npz", qBX=d["qx"], rBY=d["ry"], query_L=d["ql"] * 3, retrieval_L=d["rl"])
    with pytest.raises(ValueError, match=r"query_L.*0 and 1"):
        load_code_file(tmp_path / "lab.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_code_file(tmp_path / "missing.npz")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown code file type"):
        load_code_file(tmp_path / "x.txt")
    np.savez(tmp_path / "fmt.npz", format="something-else", nbits=3)
    with pytest.raises(ValueError, match="format"):
        load_code_file(tmp_path / "fmt.npz")


def test_meta_is_json(tmp_path):
    rng = np.random.default_rng(9)
    save_code_file(tmp_path / "m.npz", query_image=rng.choice([-1, 1], size=(2, 8)),
                   db_text=rng.choice([-1, 1], size=(3, 8)), query_labels=np.eye(2, dtype=int),
                   db_labels=np.eye(3, 2, dtype=int), meta={"bits": 8})
    with np.load(tmp_path / "m.npz") as z:
        assert json.loads(str(z["meta"])) == {"bits": 8}


def test_codes_type_checks():
    with pytest.raises(TypeError, match="words: expected dtype uint64"):
        Codes(np.zeros((2, 1), dtype=np.int64), 8)
    with pytest.raises(ValueError, match="need 2 words"):
        Codes(np.zeros((2, 1), dtype=np.uint64), 100)


def test_code_file_without_labels(tmp_path):
    # Codes only (for search): saved and read back without labels; labels come in pairs, and
    # code sets on one side must agree in count.
    rng = np.random.default_rng(3)
    qi, qt = rng.choice([-1, 1], size=(4, 12)), rng.choice([-1, 1], size=(4, 12))
    save_code_file(tmp_path / "c.npz", query_image=qi, query_text=qt)
    cf = load_code_file(tmp_path / "c.npz")
    assert cf.query_labels is None and cf.db_labels is None
    np.testing.assert_array_equal(hashkit.unpack(cf.query_text), qt)
    with pytest.raises(ValueError, match="both query_labels and db_labels or neither"):
        save_code_file(tmp_path / "d.npz", query_image=qi, query_labels=np.eye(4, dtype=int))
    with pytest.raises(ValueError, match="query_text and query_image"):
        save_code_file(tmp_path / "e.npz", query_image=qi, query_text=qt[:3])
    raw = dict(np.load(tmp_path / "c.npz"))
    raw["query_labels"] = np.eye(4, dtype=np.uint8)
    np.savez(tmp_path / "f.npz", **raw)
    with pytest.raises(ValueError, match="missing key 'db_labels'"):
        load_code_file(tmp_path / "f.npz")


# ------------------------------------------------------------------ packed bytes and words

def independent_packer(bits01, width, bitorder):
    """Pack (n, nbits) {0,1} into unsigned integers of `width` bits, bit by bit (no NumPy packing):
    bit j goes to element j // width, at position j % width from the LSB ("little") or MSB ("big")."""
    n, nbits = bits01.shape
    m = -(-nbits // width)
    out = [[0] * m for _ in range(n)]
    for i in range(n):
        for j in range(nbits):
            if bits01[i, j]:
                pos = j % width if bitorder == "little" else width - 1 - j % width
                out[i][j // width] |= 1 << pos
    return np.array(out, dtype=f"uint{width}")


@pytest.mark.parametrize("width", [8, 16, 32, 64])
@pytest.mark.parametrize("bitorder", ["little", "big"])
@pytest.mark.parametrize("nbits", [8, 13, 64, 100])
def test_from_bytes_matches_an_independent_packer(width, bitorder, nbits):
    rng = np.random.default_rng(nbits + width)
    bits = (rng.random((7, nbits)) < 0.5).astype(np.uint8)
    data = independent_packer(bits, width, bitorder)
    expected = slow_pack(bits.astype(bool))
    c = Codes.from_bytes(data, nbits, bitorder=bitorder)
    assert c.nbits == nbits
    np.testing.assert_array_equal(c.words, expected)
    signed = data.view(f"int{width}")                       # torch keeps words as int64
    np.testing.assert_array_equal(Codes.from_bytes(signed, nbits, bitorder).words, expected)
    swapped = data.astype(data.dtype.newbyteorder(">"))     # the same values, stored big-endian
    np.testing.assert_array_equal(Codes.from_bytes(swapped, nbits, bitorder).words, expected)
    if width == 8:
        np.testing.assert_array_equal(c.to_bytes(bitorder), data)
        np.testing.assert_array_equal(
            Codes.from_bytes(np.packbits(bits, axis=1, bitorder=bitorder), nbits, bitorder).words, expected)


def test_from_bytes_faiss_layout_and_errors():
    rng = np.random.default_rng(11)
    c = hashkit.pack(rng.choice([-1, 1], size=(5, 24)))
    assert Codes.from_bytes(c.as_uint8()[:, :3], 24) == c          # FAISS: uint8, LSB first
    bits = np.ones((2, 12), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"bits beyond bit 12 are set.*bitorder='big'"):
        Codes.from_bytes(np.packbits(bits, axis=1), 12, bitorder="little")
    with pytest.raises(ValueError, match="need 2 per code, got 3"):
        Codes.from_bytes(np.zeros((2, 3), np.uint8), 12)
    with pytest.raises(TypeError, match="integer array"):
        Codes.from_bytes(np.zeros((2, 2)), 12)
    with pytest.raises(ValueError, match="bitorder"):
        Codes.from_bytes(np.zeros((2, 2), np.uint8), 12, bitorder="msb")
    with pytest.raises(ValueError, match="2-D"):
        Codes.from_bytes(np.zeros(4, np.uint8), 12)


@pytest.mark.parametrize("form", ["packbits-big", "packbits-little", "int64-words", "uint32-words"])
def test_pack_refuses_packed_integers_naming_from_bytes(form):
    rng = np.random.default_rng(12)
    bits = (rng.random((6, 64)) < 0.5).astype(np.uint8)
    data = {"packbits-big": np.packbits(bits, axis=1),
            "packbits-little": np.packbits(bits, axis=1, bitorder="little"),
            "int64-words": slow_pack(bits.astype(bool)).view(np.int64),
            "uint32-words": slow_pack(bits.astype(bool)).view(np.uint32)}[form]
    with pytest.raises(ValueError, match=r"db: integer codes must hold one value per bit.*Codes\.from_bytes"):
        hashkit.topk(bits, data, 3)
    with pytest.raises(ValueError, match=r"x: integer codes.*from_bytes"):
        hashkit.pack(data)
    # uint8 0/1 bits, int8 ±1 and int64 {-1, 0, 1} are one value per bit and stay accepted
    for ok in (bits, (2 * bits.astype(np.int8) - 1), (2 * bits.astype(np.int64) - 1)):
        np.testing.assert_array_equal(hashkit.pack(ok).words, slow_pack(bits.astype(bool)))


def test_pack_refuses_packed_integers_from_torch():
    torch = pytest.importorskip("torch")
    from hashkit.codes import _pack_torch

    words = torch.tensor([[5, 0], [3, 255]])
    with pytest.raises(ValueError, match="from_bytes"):
        hashkit.pack(words)
    with pytest.raises(ValueError, match="from_bytes"):
        _pack_torch(words, "x")                      # the CUDA path, run on the CPU


def test_numpy_asarray_of_codes_is_a_clear_error():
    c = hashkit.pack(np.ones((3, 70)))
    with pytest.raises(TypeError, match=r"ambiguous.*codes\.words.*codes\.unpack\(\)"):
        np.asarray(c)
    with pytest.raises(TypeError, match="ambiguous"):
        np.array(c)


def test_bfloat16_codes_and_labels():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    pm = rng.choice([-1.0, 1.0], size=(6, 20)).astype(np.float32)
    lab = (rng.random((6, 3)) < 0.5).astype(np.float32)
    c = hashkit.pack(torch.tensor(pm).to(torch.bfloat16))
    np.testing.assert_array_equal(c.words, slow_pack(pm > 0))
    from hashkit.codes import as_labels

    packed, nl = as_labels(torch.tensor(lab).to(torch.bfloat16), "qL")
    assert nl == 3 and np.array_equal(packed, as_labels(lab, "qL")[0])
    got = hashkit.mean_average_precision(torch.tensor(pm).to(torch.bfloat16), pm,
                                         torch.tensor(lab).to(torch.bfloat16), lab)
    assert got == pytest.approx(hashkit.mean_average_precision(pm, pm, lab, lab), rel=1e-15)
