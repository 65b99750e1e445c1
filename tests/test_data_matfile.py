"""hashkit.data._matfile, the one safe MAT/HDF5 reader: only the keys asked for, every
declaration checked against the file (and a limit, and the expected shape) before reading, a
one-line ValueError naming file and key otherwise; MATLAB classes and axis order honoured."""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import hashkit.data as hd
from hashkit.data._matfile import inspect_arrays, read_arrays
from test_data_writers import HEADER, char_matrix, cell_column, make_data, write_mat5, write_mat73


def hostile_v73(path, key="XAll", shape=(2 ** 27, 16), extra=None):
    """A valid v7.3 file of a few KB whose dataset declares 16 GiB (HDF5 shape (2**27, 16),
    MATLAB (16, 2**27) double) and holds none of it."""
    with h5py.File(path, "w", userblock_size=512) as f:
        d = f.create_dataset(key, shape=shape, dtype="f8")
        d.attrs["MATLAB_class"] = np.bytes_("double")
        for k, v in (extra or {}).items():
            e = f.create_dataset(k, data=v.T)
            e.attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as fh:
        fh.write(HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")


def test_tiny_file_declaring_16_gib_fails_fast_with_bounded_memory(tmp_path):
    p = tmp_path / "codes.mat"
    hostile_v73(p, extra={"qB": np.ones((3, 4))})
    assert p.stat().st_size < 16_000
    with pytest.raises(ValueError) as info:
        read_arrays(p, ["XAll"])
    msg = str(info.value)
    assert "\n" not in msg and f"{p}:XAll" in msg and "(16, 134217728)" in msg
    assert "holds only" in msg
    # keys not asked for are never opened: the good key reads fine beside the hostile one
    np.testing.assert_array_equal(read_arrays(p, ["qB"])["qB"], np.ones((3, 4)))
    # in a process whose address space is capped at 2 GiB: still a clean ValueError
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
            "from hashkit.data._matfile import read_arrays\n"
            "try:\n    read_arrays(sys.argv[1])\nexcept ValueError as e:\n"
            "    print('ValueError', e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True,
                         timeout=120, cwd=Path(hd.__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ValueError") and "XAll" in out.stdout


def test_dataset_reader_refuses_a_declaration_the_file_does_not_hold(tmp_path):
    """Labels read whole (would allocate 16 GiB) and features read lazily (would return
    16 GiB of fill values): both refused when the dataset is opened."""
    lab, txt, px, _ = make_data(np.random.default_rng(0), tdim=1386)
    write_mat73(tmp_path / "mirflickr25k-iall.mat", {"IAll": px.transpose(1, 2, 3, 0)})
    write_mat5(tmp_path / "mirflickr25k-yall.mat", {"YAll": txt})
    hostile_v73(tmp_path / "mirflickr25k-lall.mat", key="LAll", shape=(2 ** 27, 24))
    with pytest.raises(ValueError, match=r"mirflickr25k-lall.mat:LAll: declares shape "
                                         r"\(24, 134217728\)"):
        hd.load("mirflickr", root=tmp_path)
    write_mat5(tmp_path / "mirflickr25k-lall.mat", {"LAll": lab})
    with h5py.File(tmp_path / "mirflickr25k-iall-vgg.mat", "w") as f:     # partly written
        d = f.create_dataset("XAll", shape=(len(lab), 4096), dtype="f4", chunks=(8, 4096))
        d[:8] = 1.0
        d.attrs["MATLAB_class"] = np.bytes_("single")
    with pytest.raises(ValueError, match=r"mirflickr25k-iall-vgg.mat:XAll: declares .* holds "
                                         r"only"):
        hd.load("mirflickr", root=tmp_path, image="features")


def test_v5_declaration_larger_than_file(tmp_path):
    """A v5 variable whose header declares 16 GiB: refused from the header alone."""
    p = tmp_path / "big5.mat"
    write_mat5(p, {"X": np.zeros((4, 4))})
    raw = bytearray(p.read_bytes())
    # the dims sub-element of the first variable: patch 4 x 4 into 2**27 x 16
    i = raw.index(np.array([4, 4], dtype="<i4").tobytes(), 128)
    raw[i:i + 8] = np.array([2 ** 27, 16], dtype="<i4").tobytes()
    p.write_bytes(bytes(raw))
    assert inspect_arrays(p)["X"].shape == (2 ** 27, 16)
    with pytest.raises(ValueError, match=r"big5.mat:X: declares shape \(134217728, 16\) double"):
        read_arrays(p, ["X"])


def test_limit_and_expected_shapes(tmp_path):
    x = np.arange(12.0).reshape(3, 4)
    write_mat73(tmp_path / "a.mat", {"X": x, "Y": x[:2]})
    with pytest.raises(ValueError, match=r"a.mat:X: declares shape \(3, 4\) double \(96 bytes"
                                         r"\), more than the limit of 50 bytes"):
        read_arrays(tmp_path / "a.mat", ["X"], max_bytes=50)
    with pytest.raises(ValueError, match=r"a.mat:Y: expected shape \(3, any\), found shape "
                                         r"\(2, 4\)"):
        read_arrays(tmp_path / "a.mat", ["X", "Y"], shapes={"X": (3, None), "Y": (3, None)})
    with pytest.raises(ValueError, match=r"a.mat: expected key 'Z' in this MATLAB v7.3"):
        read_arrays(tmp_path / "a.mat", ["Z"])
    os.environ["HASHKIT_MAX_ARRAY_BYTES"] = "64"
    try:
        with pytest.raises(ValueError, match="limit of 64 bytes"):
            read_arrays(tmp_path / "a.mat", ["X"])
    finally:
        del os.environ["HASHKIT_MAX_ARRAY_BYTES"]


def test_matlab_classes_and_orientation(tmp_path):
    """v7.3: axes reversed back, char -> strings, logical -> bool, cell -> objects; plain
    HDF5 as stored; v5 through loadmat; a legitimately compressed dataset reads."""
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    names = ["a.jpg", "bb.jpg", "c.jpg"]
    write_mat73(tmp_path / "m.mat", {"X": x, "M": np.array([[True, False]]),
                                     "N": char_matrix(names), "C": cell_column(names)})
    out = read_arrays(tmp_path / "m.mat")
    np.testing.assert_array_equal(out["X"], x)
    assert out["M"].dtype == np.bool_ and out["M"].tolist() == [[True, False]]
    assert [s.strip() for s in out["N"]] == names
    assert [str(c[0]) for c in out["C"][:, 0]] == names
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f.create_dataset("X", data=np.zeros((3000, 3000)) + np.arange(3000), compression="gzip")
        f["L"] = x
    plain = read_arrays(tmp_path / "p.h5", ["X", "L"])
    np.testing.assert_array_equal(plain["L"], x)
    assert plain["X"].shape == (3000, 3000) and plain["X"][0, 2999] == 2999
    write_mat5(tmp_path / "v5.mat", {"A": x[0], "B": x[1]}, compress=True)
    v5 = read_arrays(tmp_path / "v5.mat", ["B"])
    assert list(v5) == ["B"]
    np.testing.assert_array_equal(v5["B"], x[1])


def test_hdf5storage_written_files_read_back(tmp_path):
    """Files written by hdf5storage (the peer writer of MATLAB v7.3) read as MATLAB sees them."""
    hdf5storage = pytest.importorskip("hdf5storage")
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    hdf5storage.savemat(str(tmp_path / "h.mat"), {"X": x, "F": np.array([[1, 0, 1]], bool)},
                        format="7.3", matlab_compatible=True)
    out = read_arrays(tmp_path / "h.mat", ["X", "F"])
    np.testing.assert_array_equal(out["X"], x)
    assert out["F"].dtype == np.bool_ and out["F"].tolist() == [[True, False, True]]


def test_external_storage_refused(tmp_path):
    """An HDF5 dataset backed by an external file could read any file on disk: refused."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(8, dtype="<f8").tobytes())
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f.create_dataset("X", shape=(8,), dtype="<f8", external=[(str(secret), 0, 64)])
    with pytest.raises(ValueError, match=r"e.h5:X: refusing to read a dataset stored in "
                                         r"external files"):
        read_arrays(tmp_path / "e.h5", ["X"])
