"""hashkit.data benchmarks: synthetic generation and lazy HDF5 batch reads, each with its peer.

Off by default (``--benchmark-disable`` in addopts). Run::

    python -m pytest benchmarks/test_bench_data.py --benchmark-enable

Groups (``extra_info["group"]``) and what the ratio means:

- ``synthetic-<n>``: ``hashkit.data.synthetic.generate`` (MIRFLICKR-like: 24 labels, 1386-d
  BoW, 4096-d features) against the naive peer that draws the same output sizes with
  Gaussian samples (``rng.standard_normal`` for features and text, float32), i.e. what
  "generate noise of that shape" costs without any label structure.
- ``h5-batch``: reading a random 128-item batch of a MATLAB v7.3 (transposed) 4096-d feature
  matrix through the lazy source, against the peer that loads the whole matrix with
  ``h5py`` ``[:]`` and transposes (the research code's ``file['XAll'][:].T``), both per batch.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hashkit.data import synthetic
from hashkit.data._matfile import MatFile

SIZES = (20_000, 200_000)


@pytest.mark.slow
@pytest.mark.parametrize("n", SIZES)
def test_synthetic_hashkit(benchmark, n):
    benchmark.extra_info.update(group=f"synthetic-{n}", impl="hashkit")
    out = benchmark.pedantic(synthetic.generate, args=(n,), kwargs={"seed": 0}, rounds=1,
                             iterations=1)
    assert out["images"].shape == (n, 4096)


@pytest.mark.slow
@pytest.mark.parametrize("n", SIZES)
def test_synthetic_peer_gaussian(benchmark, n):
    benchmark.extra_info.update(group=f"synthetic-{n}", impl="numpy-standard_normal")

    def peer():
        rng = np.random.default_rng(0)
        return (rng.standard_normal((n, 4096), dtype=np.float32),
                rng.standard_normal((n, 1386), dtype=np.float32))

    benchmark.pedantic(peer, rounds=1, iterations=1)


@pytest.fixture(scope="module")
def mat73_features(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "xall.mat"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 4096), dtype=np.float32)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("XAll", data=x.T)      # MATLAB's reversed axes
        d.attrs["MATLAB_class"] = np.bytes_("single")
    return path


def test_h5_batch_hashkit(benchmark, mat73_features):
    benchmark.extra_info.update(group="h5-batch", impl="hashkit")
    src = MatFile(mat73_features).source("XAll", "matrix", expected_dim=4096)
    rng = np.random.default_rng(1)
    out = benchmark(lambda: src.take(rng.integers(0, 20_000, 128)))
    assert out.shape == (128, 4096)
    src.close()


def test_h5_batch_peer_load_all(benchmark, mat73_features):
    benchmark.extra_info.update(group="h5-batch", impl="h5py-load-all")
    rng = np.random.default_rng(1)

    def peer():
        with h5py.File(mat73_features, "r") as f:
            x = f["XAll"][:].T
        return x[rng.integers(0, 20_000, 128)]

    benchmark.pedantic(peer, rounds=3, iterations=1)
