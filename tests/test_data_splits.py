"""Split protocols: sizes, disjointness, reproducibility from the seed and from a saved
manifest (JSON and npz), manifest verification, and the mfeat default split."""

import json

import numpy as np
import pytest

import hashkit.data as hd
from hashkit.data.registry import get_info
from hashkit.data.splits import Protocol, make_split


def multi_hot(rng, n, L, p=0.12):
    lab = (rng.random((n, L)) < p).astype(np.uint8)
    lab[np.arange(n), rng.integers(0, L, n)] = 1
    return lab


def check_partition(s, n):
    q, r, t, v = (s[k] for k in ("query", "retrieval", "train", "val"))
    for a in (q, r, t, v):
        assert a.dtype == np.int64
        assert np.all(np.diff(a) > 0)          # sorted, no duplicates
    assert len(np.intersect1d(q, r)) == 0
    assert np.all(np.isin(t, r)) and np.all(np.isin(v, r))
    assert len(np.intersect1d(v, q)) == 0


@pytest.mark.parametrize("name,n,sizes", [
    ("mirflickr", 20015, (2000, 18015, 10000, 1000)),
    ("nus-wide-21", 195834, (2100, 193734, 10500, 1000)),
    ("iapr-tc12", 20000, (2000, 18000, 10000, 1000)),
    ("mscoco", 25000, (5000, 20000, 10000, 1000)),
])
def test_paper_protocol_sizes(name, n, sizes):
    rng = np.random.default_rng(0)
    info = get_info(name)
    labels = multi_hot(rng, n, info.nlabels or {"iapr-tc12": 275, "mscoco": 80}[name])
    s = make_split(labels, info.protocols["default"], seed=5, dataset=name)
    check_partition(s, n)
    assert tuple(len(s[k]) for k in ("query", "retrieval", "train", "val")) == sizes
    assert len(np.intersect1d(s["val"], s["train"])) == 0
    assert len(s["query"]) + len(s["retrieval"]) == n


def test_nus10_per_class_protocol():
    rng = np.random.default_rng(1)
    n = 30000
    labels = multi_hot(rng, n, 10, p=0.1)
    s = make_split(labels, get_info("nus-wide-10").protocols["default"], seed=0)
    check_partition(s, n)
    assert len(s["query"]) == 2000 and len(s["train"]) == 5000
    assert len(s["query"]) + len(s["retrieval"]) == n
    # every concept contributed: each label appears among the queries at least 200 times
    assert np.all(labels[s["query"]].sum(0) >= 200)


def djsrh_mirflickr_oracle(label_set, rng):
    """DJSRH datasets.py (MIRFlickr branch), transcribed line by line; np.random.permutation
    replaced by the same Generator hashkit is given."""
    first = True
    for label in range(label_set.shape[1]):
        index = np.where(label_set[:, label] == 1)[0]
        N = index.shape[0]
        perm = rng.permutation(N)
        index = index[perm]
        if first:
            test_index = index[:160]
            train_index = index[160:160 + 400]
            first = False
        else:
            taken = set(list(train_index) + list(test_index))
            ind = np.array([i for i in list(index) if i not in taken], dtype=np.int64)
            test_index = np.concatenate((test_index, ind[:80]))
            train_index = np.concatenate((train_index, ind[80:80 + 200]))
    test = set(test_index.tolist())
    database_index = np.array([i for i in range(label_set.shape[0]) if i not in test])
    if train_index.shape[0] < 5000:
        tr = set(train_index.tolist())
        pick = np.array([i for i in list(database_index) if i not in tr])
        N = pick.shape[0]
        perm = rng.permutation(N)
        pick = pick[perm]
        res = 5000 - train_index.shape[0]
        train_index = np.concatenate((train_index, pick[:res]))
    return test_index, database_index, train_index


def test_djsrh_mirflickr_protocol_equals_the_authors_loop():
    labels = multi_hot(np.random.default_rng(7), 20015, 24, p=0.1)
    s = make_split(labels, get_info("mirflickr").protocols["djsrh"], seed=3)
    test, db, train = djsrh_mirflickr_oracle(labels, np.random.default_rng(3))
    np.testing.assert_array_equal(s["query"], np.sort(test))
    np.testing.assert_array_equal(s["retrieval"], db)
    np.testing.assert_array_equal(s["train"], np.sort(train))
    assert (len(s["query"]), len(s["retrieval"]), len(s["train"])) == (2000, 18015, 5000)
    check_partition(s, 20015)


@pytest.mark.parametrize("name,n,sizes", [("mirflickr", 20015, (2000, 18015, 15000)),
                                          ("nus-wide-10", 186577, (1865, 184712, 15000))])
def test_ugach_protocol_sizes(name, n, sizes):
    info = get_info(name)
    labels = multi_hot(np.random.default_rng(8), n, info.nlabels)
    s = make_split(labels, info.protocols["ugach"], seed=0)
    assert tuple(len(s[k]) for k in ("query", "retrieval", "train")) == sizes
    check_partition(s, n)


def test_torchcmh_permutation_equals_split_data():
    """torchcmh tc12.py split_data: np.random.seed(seed); permutation; query first 2,000,
    train the next 10,000, retrieval all but the queries."""
    labels = multi_hot(np.random.default_rng(9), 19999, 275)
    s = make_split(labels, get_info("iapr-tc12").protocols["torchcmh"], seed=8)
    np.random.seed(8)
    random_index = np.random.permutation(labels.shape[0])
    np.testing.assert_array_equal(s["query"], np.sort(random_index[:2000]))
    np.testing.assert_array_equal(s["train"], np.sort(random_index[2000:12000]))
    np.testing.assert_array_equal(s["retrieval"], np.sort(random_index[2000:]))


def test_presplit_without_train_draws_it_from_the_database():
    labels = multi_hot(np.random.default_rng(10), 300, 5)
    pre = {"query": np.arange(20), "retrieval": np.arange(20, 300)}
    whole = make_split(labels, get_info("iapr-tc12").protocols["presplit"], 0, presplit=pre)
    np.testing.assert_array_equal(whole["train"], np.arange(20, 300))
    some = make_split(labels, Protocol("p", 0, 100, 10, kind="presplit"), 0, presplit=pre)
    assert len(some["train"]) == 100 and np.all(np.isin(some["train"], pre["retrieval"]))
    assert len(np.intersect1d(some["val"], some["train"])) == 0


def test_fixed_protocol_is_unshuffled():
    labels = multi_hot(np.random.default_rng(2), 20015, 24)
    s = make_split(labels, get_info("mirflickr").protocols["dcmh-fixed"], seed=123)
    np.testing.assert_array_equal(s["query"], np.arange(2000))
    np.testing.assert_array_equal(s["retrieval"], np.arange(2000, 20015))
    np.testing.assert_array_equal(s["train"], np.arange(2000, 12000))
    np.testing.assert_array_equal(s["val"], np.arange(12000, 13000))


def test_seed_reproducibility_and_sensitivity():
    labels = multi_hot(np.random.default_rng(3), 5000, 24)
    p = Protocol("t", query=500, train=2000, val=300)
    a = make_split(labels, p, seed=7)
    b = make_split(labels, p, seed=7)
    c = make_split(labels, p, seed=8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["query"], c["query"])


def test_too_small_for_protocol():
    labels = multi_hot(np.random.default_rng(4), 100, 5)
    with pytest.raises(ValueError, match="needs 2000 query items, but only 100"):
        make_split(labels, Protocol("t", 2000, 10, 1), seed=0, dataset="tiny")


def test_mfeat_default_split_stratified():
    ds = hd.load("mfeat", seed=0)
    assert ds.n == 2000 and ds.nlabels == 10
    assert (len(ds.query), len(ds.retrieval), len(ds.train), len(ds.val)) == (200, 1800, 1000, 200)
    s = {k: getattr(ds.manifest, k) for k in ("query", "retrieval", "train", "val")}
    check_partition(s, 2000)
    np.testing.assert_array_equal(ds.query.labels.sum(0), np.full(10, 20))
    np.testing.assert_array_equal(ds.train.labels.sum(0), np.full(10, 100))
    np.testing.assert_array_equal(ds.val.labels.sum(0), np.full(10, 20))
    assert len(np.intersect1d(ds.val.indices, ds.train.indices)) == 0
    assert len(ds.val_retrieval) == 1600
    assert len(np.intersect1d(ds.val_retrieval.indices, ds.val.indices)) == 0
    other = hd.load("mfeat", seed=1)
    assert not np.array_equal(other.query.indices, ds.query.indices)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_manifest_roundtrip_reuses_split_exactly(tmp_path, suffix):
    ds = hd.load("mfeat", seed=11)
    path = hd.save_manifest(ds.manifest, tmp_path / f"run{suffix}")
    assert not list(tmp_path.glob("*.tmp"))
    man = hd.load_manifest(path)
    assert man.seed == 11 and man.dataset == "mfeat" and man.protocol == "default"
    assert man.sources and man.sources[0]["name"] == "mfeat.npz" and \
        len(man.sources[0]["sha256"]) == 64
    again = hd.load("mfeat", manifest=path, seed=999)   # the manifest wins over the seed
    assert again.manifest.same_split(ds.manifest)
    for v in ("query", "retrieval", "train", "val"):
        np.testing.assert_array_equal(getattr(again, v).indices, getattr(ds, v).indices)


def test_manifest_keeps_reader_options(tmp_path):
    ds = hd.load("synthetic", n=600, seed=4, difficulty=0.2, image_dim=32, text_dim=40)
    path = hd.save_manifest(ds.manifest, tmp_path / "syn.split.json")
    again = hd.load("synthetic", manifest=path)
    assert again.manifest.same_split(ds.manifest)
    np.testing.assert_array_equal(again.train.images, ds.train.images)
    assert again.image_dim == 32


def test_manifest_mismatch_is_refused(tmp_path):
    ds = hd.load("synthetic", n=500, seed=1, image_dim=8, text_dim=8)
    d = ds.manifest.to_dict()
    d["labels_sha256"] = "0" * 64
    (tmp_path / "m.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="label checksum mismatch"):
        hd.load("synthetic", manifest=tmp_path / "m.json")
    ok = hd.load("synthetic", manifest=tmp_path / "m.json", verify=False)
    np.testing.assert_array_equal(ok.query.indices, ds.query.indices)
    with pytest.raises(ValueError, match="expected a split of 'mfeat', found one of 'synthetic'"):
        hd.load("mfeat", manifest=tmp_path / "m.json")
    d["query"] = [0, 10**6]
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"query indices must lie in \[0, 500\)"):
        hd.load_manifest(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="split manifest not found"):
        hd.load_manifest(tmp_path / "none.json")
    with pytest.raises(ValueError, match="ending in .json or .npz"):
        hd.save_manifest(ds.manifest, tmp_path / "m.txt")


def test_manifest_source_checksum_mismatch(tmp_path):
    """A changed source file is caught through its recorded sha256."""
    import h5py

    rng = np.random.default_rng(5)
    with h5py.File(tmp_path / "presplit.h5", "w") as f:
        for kd, ky, kl, n in (("test_data", "test_y", "test_L", 5),
                              ("data_set", "dataset_y", "dataset_L", 40),
                              ("train_data", "train_y", "train_L", 10)):
            f[kd] = rng.standard_normal((n, 3)).astype(np.float32)
            f[ky] = rng.standard_normal((n, 4)).astype(np.float32)
            f[kl] = multi_hot(rng, n, 3)
    ds = hd.load("presplit", root=tmp_path)
    path = hd.save_manifest(ds.manifest, tmp_path / "m.json")
    ds.close()
    with h5py.File(tmp_path / "presplit.h5", "a") as f:
        f["test_y"][0, 0] = 123.0
    with pytest.raises(ValueError, match="presplit.h5 differs from the file the split was made"):
        hd.load("presplit", root=tmp_path, manifest=path)


def test_manifest_path_convention():
    assert hd.manifest_path("runs/dcmh-16.npz").name == "dcmh-16.split.json"
