"""Search and evaluation beyond one machine, on Dask (``pip install 'hashkit[distributed]'``).

Dask is the engine: a ``dask.distributed.Client`` schedules the work, moves the data and
recovers from lost workers; hashkit adds no scheduler, transport or cluster code of its own.

- :class:`ShardedIndex` (``add``, ``search``, ``range_search``): codes sharded over the
  workers, each shard searched where it lives, results merged exactly by (distance, global id).
- The metrics of :mod:`hashkit.metrics` under the same names (:func:`mean_average_precision`,
  :func:`precision_at_k`, :func:`recall_at_k`, :func:`ndcg_at_k`, :func:`acg_at_k`,
  :func:`precision_within_radius`, :func:`pr_curve_radius`, :func:`map_compat`,
  :func:`report`), taking the same arguments plus ``client=`` and ``nshards=``, and returning
  the one-machine values bit for bit (docs/SCALE.md derives why). Not sharded:
  :func:`hashkit.metrics.dcmh_matlab`, a replica of DCMH's MATLAB loop and its
  ``hammingDist.m`` bug, which runs on distance blocks in NumPy on one machine.

Example::

    from dask.distributed import Client
    import hashkit.distributed as hd

    client = Client("tcp://scheduler:8786")          # or Client() for a local cluster
    index = hd.ShardedIndex(client, nbits=64, nshards=16)
    index.add(db_codes)
    dist, idx = index.search(query_codes, k=10)
    hd.mean_average_precision(qB, rB, qL, rL, client=client, nshards=16)
"""

from __future__ import annotations

from ._common import dask as _dask, shard_sizes
from ._index import ShardedIndex
from ._metrics import (acg_at_k, map_compat, mean_average_precision, ndcg_at_k, pr_curve_radius,
                       precision_at_k, precision_within_radius, recall_at_k, report)

__all__ = ["ShardedIndex", "connect", "shard_sizes", "mean_average_precision", "map_compat", "precision_at_k",
           "recall_at_k", "precision_within_radius", "pr_curve_radius", "ndcg_at_k", "acg_at_k", "report"]


def connect(address: str, timeout: float = 30.0):
    """A ``dask.distributed.Client`` for the scheduler at ``address`` (e.g. ``tcp://host:8786``).

    Raises ``ValueError`` naming the address when no scheduler answers within ``timeout`` seconds.
    """
    Client = _dask().Client
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"scheduler: expected an address such as tcp://host:8786, got {address!r}")
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"scheduler: no Dask scheduler answered at {address} within {timeout:g} s "
                         f"({type(exc).__name__}); start one with 'dask scheduler' and workers with "
                         f"'dask worker {address}'") from None
