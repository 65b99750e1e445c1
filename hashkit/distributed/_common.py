"""Client-side helpers shared by the sharded index and the sharded metrics."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _validate as V


def dask():
    """Dask's ``distributed`` module. Importing hashkit.distributed does not import Dask (a
    Client does); what needs it says how to install it."""
    try:
        import distributed
    except ImportError:
        raise RuntimeError("hashkit.distributed needs Dask's distributed scheduler: pip install "
                           "'hashkit[distributed]' (or 'dask[distributed]')") from None
    return distributed


def check_client(client: Any):
    """A ``dask.distributed.Client`` (anything with its submit / scatter / gather)."""
    if not all(callable(getattr(client, a, None)) for a in ("submit", "scatter", "gather", "scheduler_info")):
        raise TypeError(f"client: expected a dask.distributed.Client, got {V.describe(client)}")
    return client


def shard_sizes(n: int, nshards: Any, name: str = "nshards") -> np.ndarray:
    """Sizes of contiguous shards of ``n`` items: ``nshards`` equal ones (differing by at most
    one, the larger first; some empty when ``nshards > n``) or the given sizes."""
    if isinstance(nshards, (list, tuple, np.ndarray)):
        sizes = np.asarray(nshards)
        if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
            raise TypeError(f"{name}: expected a number of shards or a sequence of shard sizes, got "
                            f"{V.describe(nshards)}")
        if (sizes < 0).any() or int(sizes.sum()) != n:
            raise ValueError(f"{name}: shard sizes must be >= 0 and add up to the {n} database items, got "
                             f"{sizes.tolist()}")
        return sizes.astype(np.int64)
    k = V.check_positive_int(nshards, name)
    base, extra = divmod(n, k)
    return np.array([base + (1 if s < extra else 0) for s in range(k)], np.int64)


def workers(client) -> list[str]:
    """The workers' addresses, sorted (shard s is placed on worker s mod W)."""
    ws = sorted(client.scheduler_info().get("workers", {}))
    if not ws:
        raise RuntimeError("client: the Dask cluster has no workers")
    return ws


def offsets(sizes: Sequence[int]) -> np.ndarray:
    out = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=out[1:])
    return out


def gather_all(client, futures, what: str):
    """Every result or an exception: a lost worker becomes a RuntimeError saying what to do."""
    from asyncio import CancelledError

    KilledWorker = dask().KilledWorker

    try:
        from distributed.client import FutureCancelledError
    except ImportError:  # pragma: no cover - older distributed
        FutureCancelledError = CancelledError
    try:
        return client.gather(futures)
    except (FutureCancelledError, KilledWorker, CancelledError) as exc:
        raise RuntimeError(f"{what}: a shard was lost with its worker ({type(exc).__name__}: {exc}); no partial "
                           "result is returned. Codes scattered from the client's memory die with their worker: "
                           "rebuild the index, or build it with ShardedIndex.from_file so that a lost shard is "
                           "reopened on another worker") from exc
