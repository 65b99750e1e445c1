"""hashkit.distributed on a real Dask cluster (a LocalCluster of two worker processes).

Every result is compared with the one-machine function on the same inputs and must be equal
bit for bit (== on floats): search and radius search item for item, and every metric under
every option, with shards of unequal sizes and an empty shard. A worker killed in the middle
of a query must give an error or the exact answer, never a partial one.
"""

import inspect
import os
import signal
import threading
import time

import numpy as np
import pytest

import hashkit
import hashkit.metrics as M

distributed = pytest.importorskip("distributed")
hd = pytest.importorskip("hashkit.distributed")

# Dask's comms leave a listening socket to the garbage collector when a cluster closes.
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")

RNG = np.random.default_rng(8786)
SHARDINGS = [2, [0, 170, 0, 230], [399, 1], 7]   # equal, an empty shard, unequal, more shards than workers


def _cluster(**kw):
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                    silence_logs=50, **kw)


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    nbits = 24
    db = RNG.choice([-1, 1], size=(400, nbits))
    db[200:260] = db[:60]                          # duplicates: ties across shards
    q = RNG.choice([-1, 1], size=(37, nbits))
    q[:5] = db[195:200]
    rl = (RNG.random((400, 6)) < 0.25).astype(np.uint8)
    ql = (RNG.random((37, 6)) < 0.25).astype(np.uint8)
    ql[3] = 0                                       # a query with no relevant item
    return q, db, ql, rl


def _same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, (list, np.ndarray)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))   # exact; NaN equals NaN
        assert np.asarray(a).dtype == np.asarray(b).dtype
    else:
        assert a == b or (a != a and b != b), (a, b)


@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_sharded_search_equals_one_machine(client, data, kind):
    q, db, _, _ = data
    index = hd.ShardedIndex(client, 24, nshards=3, kind=kind)
    index.add(db[:150])
    index.add(db[150:])
    assert index.ntotal == 400 and index.shard_sizes.tolist() == [134, 133, 133]
    for k in (1, 10, 400):
        _same(index.search(q, k), hashkit.topk(q, db, k))
    for r in (0, 3, 24):
        _same(tuple(index.range_search(q, r)), tuple(hashkit.radius_search(q, db, r)))
    _same(index.codes().words, hashkit.pack(db).words)
    d, i = index.search(np.zeros((0, 24)), 3)
    assert d.shape == (0, 3)


def test_unequal_and_empty_shards(client, data):
    q, db, _, _ = data
    parts = [db[:0], db[:300], db[300:301], db[:0], db[301:]]
    index = hd.ShardedIndex.from_shards(client, parts)
    assert index.shard_sizes.tolist() == [0, 300, 1, 0, 99]
    for k in (1, 7, 400):
        _same(index.search(q, k), hashkit.topk(q, db, k))
    _same(tuple(index.range_search(q, 5)), tuple(hashkit.radius_search(q, db, 5)))


def test_from_file_memory_mapped_on_the_workers(client, data, tmp_path):
    q, db, _, _ = data
    flat = hashkit.HammingIndex(24)
    flat.add(db)
    flat.save(tmp_path / "db.hki")
    index = hd.ShardedIndex.from_file(client, tmp_path / "db.hki", nshards=[100, 0, 300], kind="mih")
    _same(index.search(q, 12), hashkit.topk(q, db, 12))
    hashkit.save_codes(tmp_path / "db.npz", db)
    index = hd.ShardedIndex.from_file(client, tmp_path / "db.npz")
    _same(tuple(index.range_search(q, 6)), tuple(hashkit.radius_search(q, db, 6)))


# (function, positional args after the codes and labels, keyword options)
METRIC_CASES = [
    ("mean_average_precision", (), {}),
    ("mean_average_precision", (), {"k": 25}),
    ("mean_average_precision", (), {"k": 25, "normalize": "ir", "empty": "skip"}),
    ("mean_average_precision", (), {"ties": "aware"}),
    ("mean_average_precision", (), {"ties": "optimistic", "k": 40}),
    ("mean_average_precision", (), {"ties": "pessimistic", "per_query": True}),
    ("mean_average_precision", (), {"per_query": True, "empty": "skip"}),
    ("precision_at_k", ([1, 10, 100, 400],), {}),
    ("precision_at_k", (50,), {"ties": "aware", "per_query": True}),
    ("recall_at_k", ([5, 60],), {"empty": "skip"}),
    ("recall_at_k", ([5, 60],), {"ties": "pessimistic"}),
    ("ndcg_at_k", ([10, 399],), {}),
    ("ndcg_at_k", (30,), {"per_query": True, "empty": "skip"}),
    ("acg_at_k", ([3, 77],), {}),
    ("precision_within_radius", (), {"r": 2}),
    ("precision_within_radius", (), {"r": 5, "average": "pooled"}),
    ("pr_curve_radius", (), {}),
    ("pr_curve_radius", (), {"average": "per-query", "empty": "skip"}),
    ("map_compat", ("dcmh-matlab",), {}),
    ("map_compat", ("topk",), {"k": 50}),
    ("map_compat", ("hits-only",), {"k": 20}),
    ("map_compat", ("deephash-pytorch",), {}),
    ("map_compat", ("first-min-k-r",), {"k": 30}),
    ("map_compat", ("ugach",), {}),
    ("report", ("map,map@k,p@k,r@k,ndcg@k,acg@k,p@r2,map-ties,pr,pk",), {"ks": [10, 100]}),
    ("report", ("map,map@k,p@k,r@k",), {"ties": "aware"}),
]


@pytest.mark.parametrize("nshards", SHARDINGS, ids=["2", "empty", "unequal", "7"])
def test_every_metric_bit_identical(client, data, nshards):
    q, db, ql, rl = data
    for name, args, kw in METRIC_CASES:
        one = getattr(M, name)(q, db, ql, rl, *args, **kw)
        many = getattr(hd, name)(q, db, ql, rl, *args, client=client, nshards=nshards, **kw)
        _same(many, one)


def test_metric_signatures_are_the_one_machine_ones_plus_client_and_nshards():
    # dcmh_matlab replays DCMH's MATLAB loop with its hammingDist.m bug on distance blocks in
    # NumPy: a compatibility replica, not sharded (hashkit.distributed's docstring says so)
    for name in [n for n in M.__all__ if n != "dcmh_matlab"]:
        one = inspect.signature(getattr(M, name)).parameters
        many = inspect.signature(getattr(hd, name)).parameters
        assert list(many) == list(one) + ["client", "nshards"], name
        for p in one:
            assert many[p].default == one[p].default and many[p].kind == one[p].kind, (name, p)


def test_bad_arguments(client, data):
    q, db, ql, rl = data
    with pytest.raises(TypeError, match="client: expected a dask.distributed.Client"):
        hd.ShardedIndex(object(), 24)
    with pytest.raises(ValueError, match=r"nshards: shard sizes must be >= 0 and add up to the 400"):
        hd.mean_average_precision(q, db, ql, rl, client=client, nshards=[100, 100])
    with pytest.raises(ValueError, match="k: expected an integer between 1 and the database size 400"):
        hd.ShardedIndex.from_shards(client, [db]).search(q, 401)
    with pytest.raises(ValueError, match="the index is empty"):
        hd.ShardedIndex(client, 24).search(q, 1)
    with pytest.raises(ValueError, match="scheduler: no Dask scheduler answered at tcp://127.0.0.1:9"):
        hd.connect("tcp://127.0.0.1:9", timeout=1)


def _kill_mid_query(client, index, q, k):
    """Run index.search(q, k) in a thread, SIGKILL a worker while its shard task runs; return
    the result or the exception."""
    pids = client.run(os.getpid)
    out = {}

    def run():
        try:
            out["result"] = index.search(q, k)
        except Exception as exc:  # the outcome under test
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    deadline = time.time() + 30
    victim = None
    while victim is None and time.time() < deadline and t.is_alive():
        busy = [w for w, tasks in client.processing().items() if any("shard_topk" in str(x) for x in tasks)]
        victim = busy[0] if busy else None
        time.sleep(0.01)
    if victim is not None:
        os.kill(pids[victim], signal.SIGKILL)
    t.join(120)
    assert not t.is_alive()
    return out, victim is not None


@pytest.mark.parametrize("source", ["scattered", "file"])
def test_worker_killed_mid_query_errors_or_retries_exactly(tmp_path, source):
    rng = np.random.default_rng(5)
    db = rng.integers(0, 2**64, (300_000, 1), dtype=np.uint64)
    q = rng.integers(0, 2**64, (3000, 1), dtype=np.uint64)
    exact = hashkit.topk(hashkit.Codes(q, 64), hashkit.Codes(db, 64), 5)
    with _cluster() as cluster, distributed.Client(cluster) as c:
        if source == "file":
            flat = hashkit.HammingIndex(64)
            flat.add(hashkit.Codes(db, 64))
            flat.save(tmp_path / "db.hki")
            index = hd.ShardedIndex.from_file(c, tmp_path / "db.hki", nshards=2)
        else:
            index = hd.ShardedIndex(c, 64, nshards=2)
            index.add(hashkit.Codes(db, 64))
        index.search(hashkit.Codes(q[:2], 64), 1)           # shards built before the kill
        out, killed = _kill_mid_query(c, index, hashkit.Codes(q, 64), 5)
    if "result" in out:                                     # retried (or finished first): exact
        _same(out["result"], exact)
    else:
        assert source == "scattered" or not killed, out["error"]
        assert isinstance(out["error"], RuntimeError) and "a shard was lost with its worker" in str(out["error"])
    if source == "file" and killed:
        assert "result" in out, f"a file-backed shard is reopened elsewhere: {out.get('error')!r}"


def test_cli_helpers_for_search_and_eval(client, data):
    # What `hashkit search --scheduler` and `hashkit eval --scheduler --shards` call.
    import argparse

    from hashkit.distributed._cli import add_scheduler_arguments, cluster_report, search_on_cluster

    q, db, ql, rl = data
    addr = client.scheduler.address
    got = search_on_cluster(addr, db, q, k=6)
    _same((got["dist"], got["idx"]), hashkit.topk(q, db, 6))
    got = search_on_cluster(addr, db, q, radius=4)
    _same((got["lims"], got["dist"], got["idx"]), tuple(hashkit.radius_search(q, db, 4)))
    with cluster_report(addr, nshards=3) as rep:
        _same(rep(q, db, ql, rl, metrics="map,p@k,pr", ks=[10]), M.report(q, db, ql, rl, metrics="map,p@k,pr", ks=[10]))
    parser = argparse.ArgumentParser()
    add_scheduler_arguments(parser, shards=True)
    args = parser.parse_args(["--scheduler", addr, "--shards", "3"])
    assert (args.scheduler, args.shards) == (addr, 3)


def test_search_and_eval_commands_on_the_cluster(client, data, tmp_path, capsys):
    # the commands themselves: the same output with --scheduler as without
    from hashkit.cli import main
    from hashkit.eval import example_path

    q, db, ql, rl = data
    np.save(tmp_path / "q.npy", q)
    np.save(tmp_path / "db.npy", db)
    addr = client.scheduler.address
    for opt in (["-k", "7"], ["-r", "5"]):
        base = [str(tmp_path / "db.npy"), str(tmp_path / "q.npy"), *opt]
        assert main(["search", *base, "--out", str(tmp_path / "one.npz")]) == 0
        assert main(["search", *base, "--out", str(tmp_path / "many.npz"), "--scheduler", addr]) == 0
        one, many = np.load(tmp_path / "one.npz"), np.load(tmp_path / "many.npz")
        assert sorted(one.files) == sorted(many.files)
        for key in one.files:
            assert np.array_equal(one[key], many[key]) and one[key].dtype == many[key].dtype
    capsys.readouterr()
    metrics = ["--metrics", "map,map@k,p@k,r@k,p@r2,ndcg@k", "--variant", "dcmh-matlab,dcmh-matlab-bug"]
    assert main(["eval", str(example_path()), "--json", *metrics]) == 0
    one = capsys.readouterr().out
    assert main(["eval", str(example_path()), "--json", *metrics, "--scheduler", addr, "--shards", "3"]) == 0
    assert capsys.readouterr().out == one
    assert main(["eval", str(example_path()), "--shards", "3"]) == 1
    assert "--shards: only with --scheduler" in capsys.readouterr().err
