"""Shared options for the kernel benchmarks (benchmarks/test_bench_kernels.py).

Benchmarks are off by default (``--benchmark-disable`` in addopts); run them with
``--benchmark-enable``. Options:

- ``--bench-threads N``: threads for hashkit and for FAISS (``faiss.omp_set_num_threads``);
  default 2, the size of the reference machine.
- ``--bench-rounds N``: timed rounds per benchmark (default 5; more on a busy machine).
- ``--bench-full``: the full grid (N = 200k and 1M x 16/32/64/128 bits, more queries). The
  default grid is small enough for a few minutes on 2 cores.

FAISS runs on OpenMP. Its worker threads spin after every parallel region by default, which on
a machine shared with hashkit's own threads (and other users) slows whichever side runs next;
``OMP_WAIT_POLICY=PASSIVE`` is set before FAISS is imported so both sides run on idle cores.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_addoption(parser):
    group = parser.getgroup("hashkit benchmarks")
    group.addoption("--bench-threads", type=int, default=2,
                    help="threads for hashkit and the peer (default 2)")
    group.addoption("--bench-rounds", type=int, default=5,
                    help="timed rounds per benchmark (the report uses their min; default 5)")
    group.addoption("--bench-full", action="store_true", default=False,
                    help="run the full benchmark grid (N = 200k, 1M x 16/32/64/128 bits)")


def pytest_benchmark_update_machine_info(config, machine_info):
    """The CPU as the OS names it (with family/model: a VM may say only "AMD EPYC") and the SIMD
    path hashkit's C++ kernels run on, so that report.py can print both beside every ratio."""
    from hashkit import _bench

    machine_info["cpu_model"] = _bench.cpu_model()
    machine_info["hashkit_simd_path"] = _bench.simd_path()


@pytest.fixture(scope="session")
def bench_threads(request) -> int:
    return request.config.getoption("--bench-threads")


@pytest.fixture(scope="session")
def bench_rounds(request) -> int:
    return request.config.getoption("--bench-rounds")
