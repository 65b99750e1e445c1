"""What ``hashkit search --scheduler`` and ``hashkit eval --scheduler --shards`` need.

The command modules call these (a few lines each); nothing here parses the rest of a command.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["add_scheduler_arguments", "cluster", "search_on_cluster", "cluster_report"]


def add_scheduler_arguments(parser, *, shards: bool = False) -> None:
    """``--scheduler ADDRESS`` (and ``--shards N`` when ``shards``) on an argparse parser."""
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://host:8786; "
                             "needs hashkit[distributed]); results are identical to one machine")
    if shards:
        parser.add_argument("--shards", type=int, default=None, metavar="N",
                            help="with --scheduler: split the database into N shards (default: one per worker)")


@contextlib.contextmanager
def cluster(address: str) -> Iterator:
    """A Client connected to ``address``, closed on exit (ValueError if nothing answers,
    RuntimeError if Dask is not installed)."""
    from . import connect

    client = connect(address)
    try:
        yield client
    finally:
        client.close()


def search_on_cluster(address: str, db, q, *, k: int | None = None, radius: int | None = None,
                      nshards: int | None = None) -> dict:
    """The result of ``hashkit search`` computed on a cluster: ``{"dist", "idx"}`` for ``k``,
    ``{"lims", "dist", "idx"}`` for ``radius``; the database is scattered from this process
    (one shard per worker by default)."""
    from ..codes import as_codes
    from ._index import ShardedIndex

    dbc = as_codes(db, "database").numpy()
    with cluster(address) as client:
        index = ShardedIndex(client, dbc.nbits, nshards)
        index.add(dbc)
        if k is not None:
            dist, idx = index.search(q, k)
            return {"dist": dist, "idx": idx}
        return index.range_search(q, radius)._asdict()


@contextlib.contextmanager
def cluster_report(address: str, nshards: int | None = None) -> Iterator:
    """A function with :func:`hashkit.metrics.report`'s signature that runs on the cluster at
    ``address`` with ``nshards`` database shards (for ``hashkit eval --scheduler --shards``)."""
    import functools

    from ._metrics import report

    with cluster(address) as client:
        yield functools.partial(report, client=client, nshards=nshards)
