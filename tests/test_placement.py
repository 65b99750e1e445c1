"""The one placement policy (hashkit.kernels): where a call runs, for every entry point.

- ``backend="auto"`` runs where the data lives; device codes on a machine without a usable
  CUDA backend run on the host after one RuntimeWarning (search and metrics alike).
- An explicit ``backend="cuda"`` that cannot run raises, quoting the recorded reason.
- Codes in a CPU tensor are host codes.
- A database held by HammingIndex is placed once per device, not per search.

Device codes are simulated where no GPU exists: a Codes subclass that says it is on a device
(its words stay NumPy), and a stand-in "cuda" module that runs the C++/Numba kernels.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import hashkit
import hashkit.kernels as K
from hashkit.codes import Codes
from hashkit.kernels import _select

RNG = np.random.default_rng(42)
QB = RNG.choice([-1, 1], size=(7, 32))
DB = RNG.choice([-1, 1], size=(60, 32))
QL = (RNG.random((7, 5)) < 0.4).astype(np.uint8)
DL = (RNG.random((60, 5)) < 0.4).astype(np.uint8)


class DeviceLike(Codes):
    """Codes that report themselves as device-resident (for the policy; the words are NumPy)."""

    __slots__ = ()

    @property
    def on_device(self) -> bool:
        return True

    @property
    def device(self) -> str:
        return "cuda:0"

    def numpy(self) -> Codes:
        return Codes(self.words, self.nbits)


def _device(x) -> DeviceLike:
    c = hashkit.pack(x)
    return DeviceLike(c.words, c.nbits)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setitem(_select._failed, "cuda", "ImportError: no CUDA here (test)")
    monkeypatch.delitem(_select._loaded, "cuda", raising=False)
    monkeypatch.setattr(_select, "_warned_host_fallback", False)


def test_auto_with_device_codes_falls_back_with_one_warning_for_search_and_metrics(no_cuda):
    want_d, want_i = hashkit.topk(QB, DB, 5)
    want_map = hashkit.mean_average_precision(QB, DB, QL, DL)
    with pytest.warns(RuntimeWarning, match="no usable CUDA backend .*no CUDA here") as rec:
        d, i = hashkit.topk(_device(QB), DB, 5)
        m = hashkit.mean_average_precision(_device(QB), DB, QL, DL)
        res = hashkit.radius_search(QB, _device(DB), 12)
    assert len([w for w in rec if issubclass(w.category, RuntimeWarning)]) == 1
    np.testing.assert_array_equal(d, want_d)
    np.testing.assert_array_equal(i, want_i)
    assert m == want_map
    np.testing.assert_array_equal(res.idx, hashkit.radius_search(QB, DB, 12).idx)


def _index_search_on_cuda():
    index = hashkit.HammingIndex(32, backend="cuda")
    index.add(DB)
    return index.search(QB, 1)


def test_explicit_cuda_raises_with_the_reason_everywhere(no_cuda):
    for call in (lambda: hashkit.topk(QB, DB, 3, backend="cuda"),
                 lambda: hashkit.mean_average_precision(QB, DB, QL, DL, backend="cuda"),
                 lambda: hashkit.metrics.report(QB, DB, QL, DL, backend="cuda"),
                 _index_search_on_cuda):
        with pytest.raises(RuntimeError, match="backend 'cuda' is not available: ImportError: no CUDA here"):
            call()


def test_host_codes_never_warn(no_cuda):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hashkit.topk(QB, DB, 2)
        hashkit.mean_average_precision(QB, DB, QL, DL)


def test_codes_in_a_cpu_tensor_are_host_codes():
    torch = pytest.importorskip("torch")
    c = hashkit.pack(DB)
    t = torch.from_numpy(c.words.copy())
    tc = Codes(t, c.nbits)
    assert not tc.on_device and tc.device == "cpu" and isinstance(tc.words, np.ndarray)
    # Routed to the host backend, not refused as CUDA.
    d, i = hashkit.topk(QB, tc, 4)
    np.testing.assert_array_equal(i, hashkit.topk(QB, DB, 4)[1])
    assert hashkit.mean_average_precision(QB, tc, QL, DL) == hashkit.mean_average_precision(QB, DB, QL, DL)


def test_index_places_its_database_once_per_device(monkeypatch):
    host = _select.get("auto")
    fake_cuda = SimpleNamespace(**{n: getattr(host, n) for n in ("hamming", "topk", "radius", "hist_stats",
                                                                   "rank_stats")})
    monkeypatch.setitem(_select._loaded, "cuda", fake_cuda)
    placed = []

    def place_like(codes, like):
        placed.append(like.device)
        return DeviceLike(codes.words, codes.nbits)

    monkeypatch.setattr(K, "place_like", place_like)
    index = hashkit.HammingIndex(32)
    index.add(DB)
    q = _device(QB)
    for _ in range(3):
        d, i = index.search(q, 4)
    index.range_search(q, 10)
    assert placed == ["cuda:0"]
    np.testing.assert_array_equal(i, hashkit.topk(QB, DB, 4)[1])
    index.add(DB[:5])           # new codes: the device copy is stale and placed again
    index.search(q, 4)
    assert placed == ["cuda:0", "cuda:0"]
