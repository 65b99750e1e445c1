"""The synthetic generator: shapes, label statistics, determinism, lazy == eager, and a
learnability signal (a linear probe beats chance, and less with more difficulty)."""

import numpy as np
import pytest
from scipy.stats import rankdata

import hashkit.data as hd
from hashkit.data import synthetic


def auc(scores, positive):
    """Mann-Whitney AUC from ranks (ties averaged)."""
    pos = positive.astype(bool)
    npos, nneg = pos.sum(), (~pos).sum()
    r = rankdata(scores)
    return (r[pos].sum() - npos * (npos + 1) / 2) / (npos * nneg)


def probe_auc(x, labels, ntrain):
    """Ridge regression from standardised features to labels; mean per-label test AUC."""
    mu, sd = x[:ntrain].mean(0), x[:ntrain].std(0) + 1e-6
    z = (x - mu) / sd
    a, b = z[:ntrain].astype(np.float64), labels[:ntrain].astype(np.float64)
    w = np.linalg.solve(a.T @ a + 10.0 * np.eye(a.shape[1]), a.T @ (b - b.mean(0)))
    pred = z[ntrain:] @ w
    test = labels[ntrain:]
    aucs = [auc(pred[:, j], test[:, j]) for j in range(labels.shape[1])
            if 0 < test[:, j].sum() < len(test)]
    return float(np.mean(aucs))


def test_shapes_dtypes_and_label_statistics():
    d = synthetic.generate(5000, seed=0, image_dim=256, text_dim=1386)
    lab, txt, img = d["labels"], d["texts"], d["images"]
    assert lab.shape == (5000, 24) and lab.dtype == np.uint8
    assert txt.shape == (5000, 1386) and txt.dtype == np.float32
    assert img.shape == (5000, 256) and img.dtype == np.float32
    assert set(np.unique(lab)) <= {0, 1} and set(np.unique(txt)) <= {0.0, 1.0}
    card = lab.sum(1)
    assert card.min() >= 1 and card.max() <= 8
    assert 2.0 <= card.mean() <= 4.0
    assert np.all(lab.mean(0) > 0)                     # every label used
    assert txt.mean() < 0.05                           # sparse BoW
    assert np.all(img >= 0) and np.all(np.isfinite(img))
    # co-occurrence: some label pairs are strongly correlated, unlike independently shuffled columns
    rng = np.random.default_rng(0)

    def max_phi(l):
        c = np.corrcoef(l.T.astype(np.float64))
        return np.abs(c[~np.eye(l.shape[1], dtype=bool)]).max()

    shuffled = np.column_stack([rng.permutation(lab[:, j]) for j in range(24)])
    assert max_phi(lab) > 0.2 > 2 * max_phi(shuffled)


def test_determinism_and_seed():
    a = synthetic.generate(3000, seed=5, image_dim=64, text_dim=100)
    b = synthetic.generate(3000, seed=5, image_dim=64, text_dim=100)
    c = synthetic.generate(3000, seed=6, image_dim=64, text_dim=100)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["labels"], c["labels"])
    assert not np.array_equal(a["images"], c["images"])


def test_lazy_reads_equal_eager_generation():
    """Rows read through the registered lazy dataset, in any order and across generator blocks,
    equal the eagerly generated arrays."""
    kw = dict(n=5000, seed=3, difficulty=0.3, image_dim=48, text_dim=70, raw_images=True,
              image_size=12)
    eager = synthetic.generate(**kw)
    ds = hd.load("synthetic", **kw)
    np.testing.assert_array_equal(ds.labels, eager["labels"])
    np.testing.assert_array_equal(ds.train.images, eager["images"][ds.train.indices])
    np.testing.assert_array_equal(ds.query.texts, eager["texts"][ds.query.indices])
    rng = np.random.default_rng(1)
    pos = rng.permutation(len(ds.retrieval))[:300]
    np.testing.assert_array_equal(ds.retrieval.image_rows(pos),
                                  eager["images"][ds.retrieval.indices[pos]])
    np.testing.assert_array_equal(ds.retrieval.pixel_batch(pos),
                                  eager["pixels"][ds.retrieval.indices[pos]])
    assert ds.image_shape == (12, 12, 3) and ds.retrieval.pixels(0).dtype == np.uint8


def test_split_seed_also_seeds_generator_unless_given():
    a = hd.load("synthetic", n=400, seed=2, image_dim=8, text_dim=8)
    b = hd.load("synthetic", n=400, seed=2, image_dim=8, text_dim=8)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.options["seed"] == 2
    c = hd.load("synthetic", n=400, seed=2, image_dim=8, text_dim=8, **{"difficulty": 0.9})
    np.testing.assert_array_equal(a.labels, c.labels)          # labels do not depend on it
    assert not np.array_equal(a.train.images, c.train.images)


def test_learnable_and_difficulty_knob():
    n, ntrain = 4000, 3000
    easy = synthetic.generate(n, seed=1, difficulty=0.1, image_dim=128, text_dim=300)
    hard = synthetic.generate(n, seed=1, difficulty=1.0, image_dim=128, text_dim=300)
    lab = easy["labels"]
    auc_easy = probe_auc(easy["images"], lab, ntrain)
    auc_hard = probe_auc(hard["images"], lab, ntrain)
    auc_text = probe_auc(easy["texts"], lab, ntrain)
    auc_text_hard = probe_auc(hard["texts"], lab, ntrain)
    rng = np.random.default_rng(0)
    auc_null = probe_auc(easy["images"], lab[rng.permutation(n)], ntrain)
    assert abs(auc_null - 0.5) < 0.05
    assert auc_easy > 0.8 and auc_text > 0.8
    assert auc_hard > 0.6                     # still learnable at the hardest setting
    assert auc_easy > auc_hard + 0.05 and auc_text > auc_text_hard + 0.05
    # the knob moves signal into noise, not the number of words per text
    assert abs(easy["texts"].sum(1).mean() - hard["texts"].sum(1).mean()) < 1.0


@pytest.mark.parametrize("kw,msg", [
    (dict(n=0), "n: expected a positive integer"),
    (dict(difficulty=1.5), r"difficulty: expected a number in \[0, 1\]"),
    (dict(nlabels=1), "nlabels: expected at least 2"),
    (dict(image_dim=2.5), "image_dim: expected a positive integer"),
])
def test_bad_options(kw, msg):
    with pytest.raises(ValueError, match=msg):
        synthetic.generate(**{"n": 10, **kw})
