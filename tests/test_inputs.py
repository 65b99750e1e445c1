"""Every file a researcher has, read from the CLI: the right MAP against an oracle, or one line.

A table of misread-prone inputs (packed bytes and words, a class-id column, labels that are not
0/1) and of file forms (hashkit .npz and run folders, MATLAB v5 / v7.3, research .npz, .pt,
DeepHash-pytorch's .npy folder, explicit keys), each evaluated by ``hashkit eval`` and checked
against a MAP computed here from unpacked bits (``oracle.py``), never against hashkit; then
hostile files (truncated, corrupt, lying about their sizes, pickles): a one-line error, nothing
read that is not needed, nothing executed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from hashkit.cli import main
from hashkit.codefile import load_code_file, save_code_file
from hashkit.eval import evaluate
from oracle import hamming_ref, relevance, stable_ranking

Q, N, NL = 9, 60, 5


def oracle_map(qbits, rbits, qlab, rlab):
    dist, rel = hamming_ref(qbits, rbits), relevance(qlab, rlab)
    ranked = np.take_along_axis(rel, stable_ranking(dist), 1)
    aps = []
    for row in ranked:
        R = row.sum()
        prec = np.cumsum(row) / np.arange(1, row.size + 1)
        aps.append(prec[row].sum() / R if R else 0.0)
    return float(np.mean(aps))


def bits_data(seed, nbits=24):
    rng = np.random.default_rng(seed)
    pool = rng.random((12, nbits)) < 0.5          # duplicates: ties matter
    qb = pool[rng.integers(0, 12, Q)] ^ (rng.random((Q, nbits)) < 0.1)
    rb = pool[rng.integers(0, 12, N)] ^ (rng.random((N, nbits)) < 0.1)
    ql = (rng.random((Q, NL)) < 0.3).astype(np.uint8)
    rl = (rng.random((N, NL)) < 0.3).astype(np.uint8)
    ql[0] = 0                                     # a query with no relevant item
    return qb.astype(np.uint8), rb.astype(np.uint8), ql, rl


def compactbit(b):
    """DCMH compactbit.m, bit by bit: bit j -> byte j // 8, position j % 8 from the LSB."""
    out = np.zeros((b.shape[0], -(-b.shape[1] // 8)), np.uint8)
    for j in range(b.shape[1]):
        out[:, j // 8] |= (b[:, j].astype(np.uint8) << (j % 8))
    return out


def words64(b):
    """int64 words, bit j -> word j // 64 at bit j % 64, bit by bit (as torch code keeps them)."""
    out = np.zeros((b.shape[0], -(-b.shape[1] // 64)), np.uint64)
    for j in range(b.shape[1]):
        out[:, j // 64] |= b[:, j].astype(np.uint64) << np.uint64(j % 64)
    return out.view(np.int64)


def cli(capsys, path, *opts, metrics="map"):
    """(exit status, the JSON printed or None, stderr) of ``hashkit eval PATH --json``."""
    rc = main(["eval", str(path), "--json", "--metrics", metrics, *opts])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else None), err


def one_line_error(rc, err, *words):
    assert rc == 1, err
    assert err.count("\n") == 1 and err.startswith("hashkit eval: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def i2i_map(out):
    return out["directions"]["i2i"]["metrics"]["map"]


# ------------------------------------------------------------------ misread-prone inputs

def test_compactbit_uint8_mat_is_unpacked_when_the_file_says_its_bits(tmp_path, capsys):
    qb, rb, ql, rl = bits_data(0)
    ref = oracle_map(qb, rb, ql, rl)
    qc, rc_ = compactbit(qb), compactbit(rb)
    assert qc.max() > 1
    with_bits = tmp_path / "dcmh.mat"
    scipy.io.savemat(with_bits, {"qB": qc, "rB": rc_, "queryLabel": ql, "retrievalLabel": rl, "bit": 24})
    rc, out, err = cli(capsys, with_bits)
    assert rc == 0, err
    assert i2i_map(out) == pytest.approx(ref, rel=1e-12)
    assert out["meta"]["packed"] == {"bitorder": "little", "nbits": 24}
    # without the bit count: one line naming --packed-bits (it used to print MAP from bytes read as bits)
    bare = tmp_path / "bare.mat"
    scipy.io.savemat(bare, {"qB": qc, "rB": rc_, "queryLabel": ql, "retrievalLabel": rl})
    rc, _, err = cli(capsys, bare)
    one_line_error(rc, err, "--packed-bits", "'qB'", "packed")
    rc, out, err = cli(capsys, bare, "--packed-bits", "24")
    assert rc == 0 and i2i_map(out) == pytest.approx(ref, rel=1e-12)
    api = evaluate(bare, packed_bits=24)["directions"]["i2i"]["metrics"]["map"]
    assert api == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("bitorder", ["big", "little"])
def test_np_packbits_needs_its_bit_count_and_order(tmp_path, capsys, bitorder):
    qb, rb, ql, rl = bits_data(1, nbits=21)
    ref = oracle_map(qb, rb, ql, rl)
    path = tmp_path / "packed.npz"
    np.savez(path, qB=np.packbits(qb, axis=1, bitorder=bitorder), rB=np.packbits(rb, axis=1, bitorder=bitorder),
             query_L=ql, retrieval_L=rl)
    rc, _, err = cli(capsys, path)
    one_line_error(rc, err, "--packed-bits")
    rc, out, err = cli(capsys, path, "--packed-bits", "21", "--bitorder", bitorder)
    assert rc == 0, err
    assert i2i_map(out) == pytest.approx(ref, rel=1e-12)
    other = "little" if bitorder == "big" else "big"
    rc, _, err = cli(capsys, path, "--packed-bits", "21", "--bitorder", other)   # 21 bits: padding tells
    one_line_error(rc, err, "bits beyond bit 21", f"bitorder={bitorder!r}")


def test_int64_words_with_an_nbits_key(tmp_path, capsys):
    qb, rb, ql, rl = bits_data(2, nbits=70)
    path = tmp_path / "words.npz"
    np.savez(path, qB=words64(qb), rB=words64(rb), query_L=ql, retrieval_L=rl, nbits=np.int64(70))
    rc, out, err = cli(capsys, path)
    assert rc == 0, err
    assert i2i_map(out) == pytest.approx(oracle_map(qb, rb, ql, rl), rel=1e-12)


def test_uint8_bits_and_pm1_int8_are_one_value_per_bit(tmp_path, capsys):
    qb, rb, ql, rl = bits_data(3)
    ref = oracle_map(qb, rb, ql, rl)
    for name, q, r in (("u8.npz", qb, rb), ("pm.npz", 2 * qb.astype(np.int8) - 1, 2 * rb.astype(np.int8) - 1),
                       ("u64.npz", qb.astype(np.uint64), rb.astype(np.uint64))):     # not packed words
        np.savez(tmp_path / name, qB=q, rB=r, query_L=ql, retrieval_L=rl)
        rc, out, err = cli(capsys, tmp_path / name)
        assert rc == 0, err
        assert i2i_map(out) == pytest.approx(ref, rel=1e-12)
        assert out["directions"]["i2i"]["nbits"] == 24, name


def test_a_single_01_label_column_must_be_named(tmp_path, capsys):
    qb, rb, _, _ = bits_data(4)
    rng = np.random.default_rng(4)
    qc, dc = rng.integers(0, 2, (Q, 1)), rng.integers(0, 2, (N, 1))
    path = tmp_path / "ids.npz"
    np.savez(path, qB=qb, rB=rb, query_L=qc, retrieval_L=dc)
    rc, _, err = cli(capsys, path)
    one_line_error(rc, err, "--class-ids", "--multi-hot")
    onehot = lambda c: np.eye(2, dtype=np.uint8)[c[:, 0]]
    rc, out, err = cli(capsys, path, "--class-ids")
    assert rc == 0, err
    ids_map = oracle_map(qb, rb, onehot(qc), onehot(dc))
    assert i2i_map(out) == pytest.approx(ids_map, rel=1e-12)
    rc, out, err = cli(capsys, path, "--multi-hot")
    assert rc == 0, err
    single = oracle_map(qb, rb, qc.astype(np.uint8), dc.astype(np.uint8))
    assert i2i_map(out) == pytest.approx(single, rel=1e-12)
    assert abs(ids_map - single) > 0.05          # the two readings are far apart: never guess


def test_class_ids_above_one_and_different_ranges(tmp_path, capsys):
    qb, rb, _, _ = bits_data(5)
    rng = np.random.default_rng(5)
    qc = rng.integers(0, 3, Q)                   # the queries happen to lack classes 3 and 4
    dc = rng.integers(0, 5, N)
    dc[0] = 4
    path = tmp_path / "ids.mat"
    scipy.io.savemat(path, {"qB": qb, "rB": rb, "query_L": qc.reshape(-1, 1), "retrieval_L": dc.reshape(-1, 1)})
    rc, out, err = cli(capsys, path)
    assert rc == 0, err
    eye = np.eye(5, dtype=np.uint8)
    assert i2i_map(out) == pytest.approx(oracle_map(qb, rb, eye[qc], eye[dc]), rel=1e-12)


@pytest.mark.parametrize("bad", [256, 0.5, -1])
def test_hashkit_npz_labels_are_checked_not_cast(tmp_path, capsys, bad):
    qb, rb, ql, rl = bits_data(6)
    good = tmp_path / "good.npz"
    save_code_file(good, query_image=qb, db_image=rb, query_labels=ql, db_labels=rl)
    raw = dict(np.load(good))
    lab = raw["db_labels"].astype(np.float64 if isinstance(bad, float) else np.int64)
    lab[3, 1] = bad                                 # uint8 cast used to make 256 and 0.5 a 0
    raw["db_labels"] = lab
    path = tmp_path / "bad.npz"
    np.savez(path, **raw)
    rc, _, err = cli(capsys, path)
    one_line_error(rc, err, "'db_labels'", "0 and 1")


# ------------------------------------------------------------------ file forms, CLI against API and oracle

def cross_modal(seed, nbits=16):
    rng = np.random.default_rng(seed)
    b = {k: (rng.random((Q if k[0] == "q" else N, nbits)) < 0.5).astype(np.uint8) for k in ("qi", "qt", "ri", "rt")}
    b["ql"] = (rng.random((Q, NL)) < 0.35).astype(np.uint8)
    b["rl"] = (rng.random((N, NL)) < 0.35).astype(np.uint8)
    return b


def refs(b):
    pairs = {"i2t": ("qi", "rt"), "t2i": ("qt", "ri"), "i2i": ("qi", "ri"), "t2t": ("qt", "rt")}
    return {d: oracle_map(b[q], b[r], b["ql"], b["rl"]) for d, (q, r) in pairs.items()}


def pm(x):
    return 2.0 * x - 1.0


def write_form(form, tmp_path, b):
    """Write the codes ``b`` in one of the field's forms; returns (path to give, extra CLI options)."""
    if form == "hashkit-npz":
        p = tmp_path / "codes.npz"
        save_code_file(p, query_image=b["qi"], query_text=b["qt"], db_image=b["ri"], db_text=b["rt"],
                       query_labels=b["ql"], db_labels=b["rl"], meta={"method": "m", "nbits": 16, "seed": 0})
        return p, []
    if form == "run-folder":
        run = tmp_path / "out" / "16bits"
        run.mkdir(parents=True)
        save_code_file(run / "codes.npz", query_image=b["qi"], query_text=b["qt"], db_image=b["ri"], db_text=b["rt"],
                       query_labels=b["ql"], db_labels=b["rl"], meta={"method": "m", "nbits": 16, "seed": 0})
        (run / "config.json").write_text(json.dumps({"method": "m", "dataset": "d", "nbits": 16, "seed": 0}))
        return run, []
    keyed = {"qBX": pm(b["qi"]), "qBY": pm(b["qt"]), "rBX": pm(b["ri"]), "rBY": pm(b["rt"]),
             "query_L": b["ql"].astype(float), "retrieval_L": b["rl"].astype(float)}
    if form == "mat-v5":
        p = tmp_path / "r.mat"
        scipy.io.savemat(p, keyed)
        return p, []
    if form == "mat-v7.3":
        p = tmp_path / "r73.mat"
        with h5py.File(p, "w", userblock_size=512) as f:
            for k, v in keyed.items():
                f.create_dataset(k, data=v.T)        # MATLAB's column-major storage
        with open(p, "r+b") as fh:
            fh.write(b"MATLAB 7.3 MAT-file, written by a test")
        return p, []
    if form == "research-npz":
        p = tmp_path / "r.npz"
        np.savez(p, **keyed)
        return p, []
    if form in ("pt", "pt-bfloat16"):
        torch = pytest.importorskip("torch")
        dt = torch.bfloat16 if form == "pt-bfloat16" else torch.float32
        p = tmp_path / "codes.pt"
        torch.save({k: torch.tensor(v).to(dt) for k, v in keyed.items()}, p)
        return p, []
    if form == "explicit-keys":
        p = tmp_path / "odd.npz"
        np.savez(p, A=pm(b["qi"]), B=pm(b["qt"]), C=pm(b["ri"]), D=pm(b["rt"]), E=b["ql"], F=b["rl"])
        return p, ["--keys", "query_image=A,query_text=B,db_image=C,db_text=D,query_labels=E,db_labels=F"]
    raise AssertionError(form)


FORMS = ["hashkit-npz", "run-folder", "mat-v5", "mat-v7.3", "research-npz", "pt", "pt-bfloat16", "explicit-keys"]


@pytest.mark.parametrize("form", FORMS)
def test_every_file_form_from_the_cli(tmp_path, capsys, form):
    b = cross_modal(7)
    path, opts = write_form(form, tmp_path, b)
    rc, out, err = cli(capsys, path, *opts)
    assert rc == 0, err
    want = refs(b)
    assert set(out["directions"]) == set(want)
    from hashkit.eval import read_options  # noqa: F401  (the CLI and the API read the same way)
    keys = opts[1] if opts else None
    api = evaluate(path, keys=keys)
    for d, v in want.items():
        assert out["directions"][d]["metrics"]["map"] == pytest.approx(v, rel=1e-12), d
        assert api["directions"][d]["metrics"]["map"] == out["directions"][d]["metrics"]["map"]
    if form == "run-folder":
        assert out["meta"]["dataset"] == "d" and out["meta"]["method"] == "m"


def test_deephash_pytorch_npy_folder(tmp_path, capsys):
    qb, rb, ql, rl = bits_data(8)
    folder = tmp_path / "nuswide_21_24bits_0.79"
    folder.mkdir()
    # DeepHash-pytorch saves torch.sign outputs (float ±1) and float one-/multi-hot labels
    np.save(folder / "tst_binary.npy", pm(qb).astype(np.float32))
    np.save(folder / "trn_binary.npy", pm(rb).astype(np.float32))
    np.save(folder / "tst_label.npy", ql.astype(np.float32))
    np.save(folder / "trn_label.npy", rl.astype(np.float32))
    (folder / "model.pt").write_bytes(b"not read")
    ref = oracle_map(qb, rb, ql, rl)
    for given in (folder, folder / "tst_binary.npy"):
        rc, out, err = cli(capsys, given)
        assert rc == 0, err
        assert list(out["directions"]) == ["i2i"] and i2i_map(out) == pytest.approx(ref, rel=1e-12)


# ------------------------------------------------------------------ hostile and careless files

def test_truncated_and_empty_npz_are_one_line(tmp_path, capsys):
    b = cross_modal(9)
    path, _ = write_form("hashkit-npz", tmp_path, b)
    data = path.read_bytes()
    for name, content in (("empty.npz", b""), ("half.npz", data[: len(data) // 2]), ("tail.npz", data[:-30])):
        (tmp_path / name).write_bytes(content)
        rc, _, err = cli(capsys, tmp_path / name)
        one_line_error(rc, err, name, "not a readable .npz")
    # a bit flip inside the compressed data: zlib or the CRC check catches it
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    rc, out, err = cli(capsys, tmp_path / "flip.npz")
    if rc == 0:  # the flip hit a byte that does not matter: then the answer must be the right one
        assert out["directions"]["i2t"]["metrics"]["map"] == pytest.approx(refs(b)["i2t"], rel=1e-12)
    else:
        one_line_error(rc, err, "flip.npz")


def test_corrupt_v73_mat_is_one_line(tmp_path, capsys):
    b = cross_modal(10)
    path, _ = write_form("mat-v7.3", tmp_path, b)
    data = path.read_bytes()
    (tmp_path / "cut.mat").write_bytes(data[: len(data) // 2])
    rc, _, err = cli(capsys, tmp_path / "cut.mat")
    one_line_error(rc, err, "cut.mat")
    (tmp_path / "junk.mat").write_bytes(data[:600] + os.urandom(4000))
    rc, _, err = cli(capsys, tmp_path / "junk.mat")
    one_line_error(rc, err, "junk.mat")


def _lying_npz(path, name, shape, payload=b"\0" * 64):
    import io

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}.npy", head.getvalue() + payload)
        np.lib.format.write_array  # noqa: B018 - the header writer above is NumPy's own
        buf = io.BytesIO()
        np.save(buf, np.zeros((Q, NL)))
        zf.writestr("query_L.npy", buf.getvalue())
        buf = io.BytesIO()
        np.save(buf, np.zeros((N, NL)))
        zf.writestr("retrieval_L.npy", buf.getvalue())


def test_npz_member_declaring_more_than_it_holds(tmp_path, capsys):
    path = tmp_path / "liar.npz"
    _lying_npz(path, "qB", (1 << 27, 16))          # 16 GiB declared, 64 bytes held
    rc, _, err = cli(capsys, path)
    one_line_error(rc, err, "liar.npz", "declares", "holds")


def _v73(path, arrays, huge=None):
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=np.asarray(v).T)
        if huge is not None:
            # declared (16, 2^27) float64 = 16 GiB; chunked and never written, so the file stays small
            f.create_dataset(huge, shape=(16, 1 << 27), dtype="f8", chunks=(16, 1 << 16), compression="gzip")
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, written by a test")


def test_v73_reads_only_the_keys_it_uses(tmp_path, capsys, monkeypatch):
    from hashkit.data import _matfile

    qb, rb, ql, rl = bits_data(11)
    path = tmp_path / "big.mat"
    _v73(path, {"qB": pm(qb), "rB": pm(rb), "query_L": ql, "retrieval_L": rl}, huge="features")
    assert path.stat().st_size < 200_000
    asked = []
    real = _matfile.read_arrays
    monkeypatch.setattr(_matfile, "read_arrays",
                        lambda p, keys=None, **kw: asked.append(keys) or real(p, keys=keys, **kw))
    rc, out, err = cli(capsys, path)
    assert rc == 0, err
    assert i2i_map(out) == pytest.approx(oracle_map(qb, rb, ql, rl), rel=1e-12)
    assert asked and all(keys is not None and "features" not in keys for keys in asked)


def test_v73_huge_code_array_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    from hashkit.data import _matfile

    _, _, ql, rl = bits_data(12)
    path = tmp_path / "bigcodes.mat"
    _v73(path, {"rB": np.ones((N, 16)), "query_L": ql, "retrieval_L": rl}, huge="qB")
    monkeypatch.setattr(_matfile, "read_arrays", lambda *a, **k: pytest.fail("read before the shapes were checked"))
    rc, _, err = cli(capsys, path)
    one_line_error(rc, err, "query_image has", "labels")


def test_read_limit(tmp_path, capsys, monkeypatch):
    b = cross_modal(13)
    path, _ = write_form("research-npz", tmp_path, b)
    monkeypatch.setenv("HASHKIT_MAX_ARRAY_BYTES", "1000")
    rc, _, err = cli(capsys, path)
    one_line_error(rc, err, "read limit", "HASHKIT_MAX_ARRAY_BYTES")


def test_pt_files_never_run_code(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"qB": torch.ones(Q, 8), "rB": torch.ones(N, 8), "query_L": torch.ones(Q, 2),
                "retrieval_L": torch.ones(N, 2), "x": Evil()}, path)
    rc, _, err = cli(capsys, path)
    one_line_error(rc, err, "evil.pt", "weights_only")
    assert not marker.exists()


def test_bfloat16_is_read_from_the_cli(tmp_path, capsys):
    b = cross_modal(14)
    path, _ = write_form("pt-bfloat16", tmp_path, b)
    rc, out, err = cli(capsys, path)
    assert rc == 0, err
    assert out["directions"]["t2i"]["metrics"]["map"] == pytest.approx(refs(b)["t2i"], rel=1e-12)


def test_the_installed_command_prints_no_traceback(tmp_path):
    b = cross_modal(15)
    path, _ = write_form("hashkit-npz", tmp_path, b)
    bad = tmp_path / "trunc.npz"
    bad.write_bytes(path.read_bytes()[:100])
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    run = subprocess.run([sys.executable, "-m", "hashkit", "eval", str(bad)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1 and "trunc.npz" in run.stderr


def test_load_code_file_errors_name_file_and_option(tmp_path):
    b = cross_modal(16)
    path, _ = write_form("research-npz", tmp_path, b)
    with pytest.raises(ValueError, match="--keys query_image=nope: no key 'nope'"):
        load_code_file(path, keys="query_image=nope")
    with pytest.raises(ValueError, match="--keys role"):
        load_code_file(path, keys="image=qBX")
    with pytest.raises(ValueError, match="ROLE=KEY"):
        load_code_file(path, keys="qBX")
    with pytest.raises(ValueError, match="--packed-bits: expected packed integers"):
        load_code_file(path, packed_bits=16)
