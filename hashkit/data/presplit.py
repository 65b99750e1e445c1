"""One HDF5 (or MATLAB) file that already holds the split.

Keys: ``train_data`` / ``train_y`` / ``train_L`` (training items), ``test_data`` / ``test_y`` /
``test_L`` (queries), ``data_set`` / ``dataset_y`` / ``dataset_L`` (retrieval set); ``*_data``
and ``data_set`` hold raw images (4-D) or features (2-D), ``*_y`` text features, ``*_L``
labels. The dataset's items are the queries, then the retrieval set, then the stored training
items (stored separately in the file even when they repeat retrieval items). Only the
validation subset is drawn (from the retrieval set, seeded).

Use: ``hashkit.data.load("presplit", root=FOLDER, file="NAME.h5")`` (default file names:
``presplit.h5``, ``presplit.mat``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashkit.data._matfile import MatFile, describe_format
from hashkit.data.base import ConcatSource, Dataset, check_labels
from hashkit.data.registry import DatasetInfo, FileSpec, register_dataset
from hashkit.data.splits import Protocol

NAME = "presplit"
PARTS = (("query", "test_data", "test_y", "test_L"),
         ("retrieval", "data_set", "dataset_y", "dataset_L"),
         ("train", "train_data", "train_y", "train_L"))
DEFAULT_FILES = ("presplit.h5", "presplit.mat", "presplit.hdf5")


def read(root, file=None, image="auto"):
    """Read a pre-split file from ``root`` (see module docstring)."""
    folder = Path(root)
    names = (file,) if file else DEFAULT_FILES
    path = next((folder / n for n in names if (folder / n).is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f"{NAME}: expected {' or '.join(names)} (HDF5 or MATLAB v7.3 with keys "
            f"train_data/train_y/train_L, test_data/test_y/test_L, data_set/dataset_y/"
            f"dataset_L) in {folder}; pass --data-root FOLDER --data-option "
            f"file=NAME (root=, file= in Python)")
    mf = MatFile(path)
    keys = mf.keys()
    missing = [k for _, *ks in PARTS for k in ks if k not in keys]
    if missing:
        raise ValueError(f"{path}: expected keys {missing} in this {describe_format(mf.format)} "
                         f"file, found keys {keys}")
    labels, texts, images, sizes = [], [], [], {}
    nlab = None
    for part, kd, ky, kl in PARTS:
        lsrc = mf.source(kl, "matrix", expected_dim=nlab)
        lab = check_labels(lsrc.all(), lsrc.origin, nlab)
        nlab = lab.shape[1]
        labels.append(lab)
        tdim = texts[0].item_shape[0] if texts else None
        texts.append(mf.source(ky, "matrix", expected_dim=tdim))
        kind = "images" if len(mf.shape_of(kd)) == 4 else "matrix"
        fdim = images[0].item_shape[0] if images and kind == "matrix" else None
        images.append(mf.source(kd, kind, expected_dim=fdim))
        sizes[part] = lab.shape[0]
        for src in (texts[-1], images[-1]):
            if src.n != lab.shape[0]:
                raise ValueError(f"{NAME}: expected the same number of {part} items in every "
                                 f"modality, found {lsrc.origin} has {lab.shape[0]} items, "
                                 f"{src.origin} has {src.n}")
    pixels = len(images[0].item_shape) == 3
    if image == "features" and pixels:
        raise ValueError(f"{path}: image='features' expects 2-D image features, found raw "
                         f"images of shape {images[0].item_shape}")
    if image == "pixels" and not pixels:
        raise ValueError(f"{path}: image='pixels' expects 4-D raw images, found features of "
                         f"length {images[0].item_shape[0]}")
    img = ConcatSource(images)
    off = np.cumsum([0, sizes["query"], sizes["retrieval"], sizes["train"]])
    presplit = {p: np.arange(off[i], off[i + 1], dtype=np.int64)
                for i, p in enumerate(("query", "retrieval", "train"))}
    return Dataset(NAME, np.concatenate(labels), ConcatSource(texts),
                   image_source=None if pixels else img, pixel_source=img if pixels else None,
                   files=[path], options={"file": file, "image": image}, presplit=presplit,
                   label_origin=f"{path}:test_L/dataset_L/train_L")


register_dataset(DatasetInfo(
    NAME, "Any dataset saved pre-split in one HDF5/MATLAB file", read,
    {"default": Protocol("default", query=0, train=0, val=1000, kind="presplit",
                         source="the split stored in the file; val drawn from retrieval")},
    "default",
    files=tuple(FileSpec(DEFAULT_FILES[0], "HDF5 or MATLAB v7.3", (d, y, lab), "presplit",
                         f"{part}: images/features, texts, labels")
                for part, d, y, lab in PARTS),
    options={"file": "NAME.h5", "image": "auto|pixels|features"}, description=__doc__,
    layouts={"presplit": "a generic pre-split HDF5 file (train_data / test_data / data_set "
                         "keys); not checked against a released loader"}))
