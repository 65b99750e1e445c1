"""knn_graph: recall@10 and speed of ``"hamming"`` (sketch + kernel shortlist + exact re-rank)
against ``"exact"`` (blocked brute force), with FAISS ``IndexFlatL2`` as the outside peer.

Features are synthetic and clustered with a low intrinsic dimension (a 32-d latent mixture of
24 clusters, mapped linearly to ``d`` dimensions plus 10% isotropic noise), the structure real
CNN / BoW features have; isotropic Gaussian clusters in 4096-d have no meaningful nearest
neighbours (every intra-cluster distance is nearly equal) and no method finds them.

At large ``n`` the exact search over all rows would take hours on the shared 2-core machine,
so both methods are timed on ``--sample`` query rows (searched against all ``n`` rows) and
extrapolated linearly in the number of rows; the sketch (computed once for all rows) is timed
separately and added in full. Recall@10 is measured on the same sample rows.

Usage::

    python benchmarks/test_bench_graph.py                      # the table in the report
    python benchmarks/test_bench_graph.py --n 15000 --dims 4096 1386 --sample 0   # full runs

As a pytest-benchmark suite (off by default)::

    python -m pytest benchmarks/test_bench_graph.py --benchmark-enable
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pytest


def features(n: int, d: int, seed: int = 0, latent: int = 32, clusters: int = 24, block: int = 20000):
    """``(n, d)`` float32 clustered features with a ``latent``-dimensional structure."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, latent)).astype(np.float32) * 2
    w = rng.standard_normal((latent, d)).astype(np.float32) / np.sqrt(latent)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, block):
        m = min(block, n - s)
        z = centres[rng.integers(0, clusters, m)] + rng.standard_normal((m, latent)).astype(np.float32)
        out[s:s + m] = z @ w
        out[s:s + m] += 0.1 * rng.standard_normal((m, d)).astype(np.float32)
    return out


def recall(got: np.ndarray, ref: np.ndarray) -> float:
    k = ref.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got.tolist(), ref.tolist())]))


def faiss_knn(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The peer: FAISS exact L2 search (k + 1, then the row itself dropped)."""
    import faiss

    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    _, idx = index.search(x[rows], k + 1)
    out = np.empty((len(rows), k), np.int64)
    for i, r in enumerate(rows):
        out[i] = [j for j in idx[i] if j != r][:k]
    return out


def measure(n: int, d: int, k: int = 10, sample: int = 2000, nbits: int = 1024, candidates: int = 48,
            seed: int = 0, peer: bool = True) -> dict:
    """Seconds (extrapolated to all ``n`` rows when ``sample`` < n) and recall@k of the sketch path."""
    from hashkit.graph import knn_graph, sign_sketch

    x = features(n, d, seed)
    rows = np.arange(n) if not sample or sample >= n else \
        np.sort(np.random.default_rng(seed + 1).choice(n, sample, replace=False))
    scale = n / len(rows)
    t = time.perf_counter()
    exact = knn_graph(x, k, "exact", rows=rows)
    t_exact = (time.perf_counter() - t) * scale
    t = time.perf_counter()
    sign_sketch(x, nbits, seed=seed)
    t_sketch = time.perf_counter() - t
    t = time.perf_counter()
    ham = knn_graph(x, k, "hamming", rows=rows, nbits=nbits, candidates=candidates, seed=seed)
    t_ham_rows = time.perf_counter() - t - t_sketch
    t_ham = t_sketch + max(t_ham_rows, 0.0) * scale
    res = {"n": n, "d": d, "k": k, "rows_timed": len(rows), "nbits": nbits, "candidates": candidates,
           "exact_s": t_exact, "hamming_s": t_ham, "sketch_s": t_sketch, "speedup": t_exact / t_ham,
           "recall_at_k": recall(ham, exact)}
    if peer:
        try:
            t = time.perf_counter()
            fx = faiss_knn(x, rows, k)
            res["faiss_flat_s"] = (time.perf_counter() - t) * scale
            res["faiss_recall_vs_exact"] = recall(fx, exact)
        except ImportError:
            pass
    return res


# ------------------------------------------------------------------ pytest-benchmark (off by default)
N_SMALL, D_SMALL = 15000, 1386


@pytest.fixture(scope="module")
def small():
    return features(N_SMALL, D_SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["exact", "hamming"])
def test_knn_graph(benchmark, small, method):
    from hashkit.graph import knn_graph

    rows = np.arange(0, N_SMALL, 10)
    benchmark.extra_info.update(group=f"knn-{N_SMALL}x{D_SMALL}", impl=method, rows=len(rows))
    got = benchmark.pedantic(knn_graph, args=(small, 10, method), kwargs={"rows": rows}, rounds=1, iterations=1)
    assert got.shape == (len(rows), 10)


@pytest.mark.slow
def test_faiss_flat_peer(benchmark, small):
    pytest.importorskip("faiss")
    rows = np.arange(0, N_SMALL, 10)
    benchmark.extra_info.update(group=f"knn-{N_SMALL}x{D_SMALL}", impl="faiss-flat", rows=len(rows))
    got = benchmark.pedantic(faiss_knn, args=(small, rows, 10), rounds=1, iterations=1)
    assert got.shape == (len(rows), 10)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[15000, 200000])
    p.add_argument("--dims", type=int, nargs="+", default=[4096, 1386])
    p.add_argument("--big-dim", type=int, default=4096,
                   help="feature size used instead of --dims when n >= 100,000 (3.3 GB at 200,000 x 4096)")
    p.add_argument("--sample", type=int, default=1500, help="rows timed (0 = all), extrapolated to n")
    p.add_argument("--nbits", type=int, default=1024)
    p.add_argument("--candidates", type=int, default=48)
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    out = []
    print(f"{'n':>8} {'d':>5} {'rows':>6} {'exact s':>9} {'hamming s':>10} {'sketch s':>9} {'speedup':>8} "
          f"{'recall@10':>9} {'faiss s':>8}")
    for n in a.n:
        dims = [a.big_dim] if n >= 100_000 else a.dims
        for d in dims:
            r = measure(n, d, sample=a.sample, nbits=a.nbits, candidates=a.candidates, peer=not a.no_peer)
            out.append(r)
            print(f"{n:>8} {d:>5} {r['rows_timed']:>6} {r['exact_s']:>9.1f} {r['hamming_s']:>10.1f} "
                  f"{r['sketch_s']:>9.1f} {r['speedup']:>8.2f} {r['recall_at_k']:>9.4f} "
                  f"{r.get('faiss_flat_s', float('nan')):>8.1f}", flush=True)
    if a.json:
        from hashkit._io import atomic_write_text

        atomic_write_text(a.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
