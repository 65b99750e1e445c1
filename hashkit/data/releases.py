"""Readers for releases that store their split: UGACH's text files and the MATLAB pre-split
``.mat`` files of IAPR TC-12. Each is a layout (``hashkit.data._layout.Layout.open``) of the
dataset it belongs to, so ``hashkit.data.load("mirflickr")`` finds it like any other layout.

UGACH's release (PKU-ICST-MIPL/UGACH_AAAI2018; ``UGACH-mir/utils.py``, ``test.py``,
``KNN/knn_mir_cross5.py``), in a folder such as ``mir/`` or ``nus/``:

- ``list/{train,validation,test,database}_{img,txt}.txt``: item names, ``\\r\\n`` ended (the
  image list names end in ``.jpg``, the text list names in ``.txt``);
- ``list/{train,validation,test}_label.txt``: one row of space-separated 0/1 per item;
- ``feature/{train,validation,test,database}_{img,txt}.txt``: one row of space-separated
  floats per item (4096-d VGG19 fc7 images; 1,386-d text for MIRFLICKR, 1,000-d for NUS-WIDE);
- ``list/KNN_cross5.npy``: float64 ``(15000, 10)``: for each training item, the indices of
  its 5 nearest training items by image features, then its 5 nearest by text features (self
  included), which ``utils.make_train_dict`` uses as the positives of the correlation graph.
The items are the ``test`` queries, the ``database`` (retrieval set) and the ``train`` set,
in that order, as the release stores them (the training items are stored again apart from
the database). ``database`` labels are read from ``list/database_label.txt`` when present,
otherwise looked up by image name among the train / validation / test lists (the release
ships no database label file: UGACH's own code never needs one). ``validation`` is UGACH's
database for its in-training MAP; hashkit draws its validation queries from the retrieval set
like every other protocol and does not read the validation features.

MATLAB pre-split files of IAPR TC-12 (features): ``iapr-tc12.mat`` with ``XTest``, ``YTest``,
``testL``, ``XDatabase``, ``YDatabase``, ``databaseL`` (v5), and UCCH's ``iapr-tc12-rand.mat``
(``VTest``, ``YTest``, ``testL``, ``VDatabase``, ``YDatabase``, ``databaseL``; UCCH
``src/cmdataset.py`` ``IAPR_fea``): query = test, retrieval = database; the training items are
drawn from the database by the protocol (UCCH trains on all of it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashkit.data._layout import Layout, Role, choose_inputs
from hashkit.data._matfile import MatFile
from hashkit.data._textfile import TextMatrixSource, read_label_lines, read_lines
from hashkit.data.base import ConcatSource, Dataset, check_labels

UGACH_SOURCE = ("UGACH (PKU-ICST-MIPL/UGACH_AAAI2018: UGACH-*/utils.py load_all_feature / "
                "load_all_label, KNN/knn_*_cross5.py)")


def ugach_layout(text_dim: int) -> Layout:
    return Layout("ugach", UGACH_SOURCE, {
        "features": Role(("feature/test_img.txt",), (), "4096-d VGG19 fc7 rows (test, database, "
                         "train)", "text"),
        "texts": Role(("feature/test_txt.txt",), (), f"{text_dim}-d text rows", "text"),
        "labels": Role(("list/test_label.txt",), (), "0/1 label rows (test, train)", "text"),
        "names": Role(("list/test_img.txt",), (), "item names, \\r\\n ended", "text"),
        "knn": Role(("list/KNN_cross5.npy",), (), "15000 x 10 neighbour indices (UGACH graph)",
                    "NumPy .npy", optional=True),
    }, prefer="features", open=open_ugach)


def open_ugach(dataset, folder, lay, finder, *, image, nlabels, text_dim, feature_dim, options,
               **_):
    if image == "pixels":
        raise ValueError(f"{dataset}: image='pixels' expects raw images, but UGACH's text "
                         f"release in {folder} holds 4096-d image features only")
    lst = finder.find(lay.roles["names"].files).parent
    feat = finder.find(lay.roles["features"].files).parent
    names = {}
    for part in ("test", "database", "train", "validation"):
        p = lst / f"{part}_img.txt"
        if p.is_file():
            names[part] = read_lines(p)
        elif part != "validation":
            raise FileNotFoundError(f"{dataset}: UGACH release in {lst.parent}: expected "
                                    f"{p} (item names)")
    labels = {}
    for part in ("test", "train", "validation"):
        p = lst / f"{part}_label.txt"
        if p.is_file():
            labels[part] = read_label_lines(p, nlabels)
            if part in names and len(labels[part]) != len(names[part]):
                raise ValueError(f"{p}: expected {len(names[part])} label rows (one per name in "
                                 f"{part}_img.txt), found {len(labels[part])}")
        elif part != "validation":
            raise FileNotFoundError(f"{dataset}: UGACH release: expected {p} (0/1 labels)")
    db_label = lst / "database_label.txt"
    if db_label.is_file():
        labels["database"] = read_label_lines(db_label, nlabels)
        label_origin = str(db_label)
    else:
        lookup = {}
        for part in ("train", "validation", "test"):
            if part in labels:
                lookup.update(zip(names[part], labels[part]))
        miss = [nm for nm in names["database"] if nm not in lookup]
        if miss:
            raise ValueError(f"{lst / 'database_img.txt'}: expected every database item among "
                             f"the train / validation / test lists (to find its labels) or a "
                             f"{db_label.name}, found {len(miss)} without labels (first "
                             f"{miss[0]!r})")
        labels["database"] = np.stack([lookup[nm] for nm in names["database"]]).astype(np.uint8)
        label_origin = f"{lst}/{{train,validation,test}}_label.txt by name"
    if len(labels["database"]) != len(names["database"]):
        raise ValueError(f"{db_label}: expected {len(names['database'])} label rows, found "
                         f"{len(labels['database'])}")
    order = ("test", "database", "train")
    img_parts, txt_parts = [], []
    for part in order:
        img = TextMatrixSource(feat / f"{part}_img.txt")
        txt = TextMatrixSource(feat / f"{part}_txt.txt")
        for src in (img, txt):
            if src.n != len(names[part]):
                raise ValueError(f"{src.path}: expected {len(names[part])} rows (one per name in "
                                 f"{lst / (part + '_img.txt')}), found {src.n}")
        if text_dim is not None and txt.item_shape[0] != text_dim:
            raise ValueError(f"{txt.path}: expected {text_dim} numbers per row, found "
                             f"{txt.item_shape[0]}")
        img_parts.append(img)
        txt_parts.append(txt)
    sizes = [len(names[p]) for p in order]
    off = np.cumsum([0] + sizes)
    presplit = {p: np.arange(off[i], off[i + 1], dtype=np.int64)
                for i, p in enumerate(("query", "retrieval", "train"))}
    lab = np.concatenate([labels[p] for p in order])
    lab = check_labels(lab, label_origin, nlabels)
    knn = None
    knn_path = finder.find(lay.roles["knn"].files)
    if knn_path is not None:
        knn = read_knn(knn_path, sizes[2])
    feats = ConcatSource(img_parts)
    _, feats, chosen = choose_inputs(dataset, folder, lay, image, None, feats)
    found = {"features": f"{feat}/{{test,database,train}}_img.txt",
             "texts": f"{feat}/{{test,database,train}}_txt.txt",
             "labels": label_origin, "names": str(lst)}
    if knn_path is not None:
        found["knn_graph"] = str(knn_path)
    files = [s.path for s in img_parts + txt_parts]
    return Dataset(dataset, lab, ConcatSource(txt_parts), image_source=feats, files=files,
                   options=dict(options, image_input=chosen), presplit=presplit,
                   label_origin=label_origin, found=found, image_input=chosen,
                   layout_source=lay.source, knn_graph=knn, default_protocol="ugach-release")


def read_knn(path, n_train: int) -> np.ndarray:
    """UGACH's ``KNN_cross5.npy``: ``(n_train, K)`` neighbour indices (stored as float64) ->
    int64, checked to be whole numbers in ``[0, n_train)``."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: expected a NumPy .npy array of neighbour indices "
                         f"({' '.join(str(e).split())})") from None
    return check_knn(arr, n_train, str(path))


def check_knn(arr, n_train: int, where: str) -> np.ndarray:
    """A neighbour graph as ``(n_train, K)`` whole-number indices in ``[0, n_train)`` (any
    numeric dtype: the release stores float64) -> int64; else one ValueError naming ``where``."""
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[0] != n_train or arr.shape[1] < 1 or arr.dtype.kind not in "iuf":
        raise ValueError(f"{where}: expected a ({n_train}, K) array of neighbour indices (one "
                         f"row per training item), found shape {arr.shape} dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or arr.min() < 0 \
            or arr.max() >= n_train:
        raise ValueError(f"{where}: expected whole-number indices in [0, {n_train}), found values "
                         f"in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


# ---------------------------------------------------------------- MATLAB pre-split files
def presplit_layout(name: str, file: str, image_key: str, source: str) -> Layout:
    return Layout(name, source, {
        "features": Role((file,), (f"{image_key}Test",), "image features, test then "
                         f"{image_key}Database (items x dim)", "MATLAB v5"),
        "texts": Role((file,), ("YTest",), "text features, test then YDatabase", "MATLAB v5"),
        "labels": Role((file,), ("testL",), "labels, test then databaseL (items x L, 0/1)",
                       "MATLAB v5"),
    }, prefer="features", open=_open_presplit_mat, note=image_key)


def _open_presplit_mat(dataset, folder, lay, finder, *, image, nlabels, text_dim, feature_dim,
                       options, **_):
    if image == "pixels":
        raise ValueError(f"{dataset}: image='pixels' expects raw images, but "
                         f"{lay.roles['features'].files[0]} holds image features only")
    path = finder.find(lay.roles["features"].files)
    mf = MatFile(path)
    x = lay.note
    parts = (("query", f"{x}Test", "YTest", "testL"),
             ("retrieval", f"{x}Database", "YDatabase", "databaseL"))
    missing = [k for _, *ks in parts for k in ks if k not in mf.keys()]
    if missing:
        raise ValueError(f"{path}: expected keys {missing} ({lay.source}), found keys "
                         f"{mf.keys()}")
    labels, texts, feats, sizes = [], [], [], []
    nlab = nlabels
    for part, kx, ky, kl in parts:
        lsrc = mf.source(kl, "matrix", expected_dim=nlab)
        lab = check_labels(lsrc.all(), lsrc.origin, nlab)
        nlab = lab.shape[1]
        tdim = texts[0].item_shape[0] if texts else text_dim
        texts.append(mf.source(ky, "matrix", expected_dim=tdim))
        fdim = feats[0].item_shape[0] if feats else feature_dim
        feats.append(mf.source(kx, "matrix", expected_dim=fdim))
        for src in (texts[-1], feats[-1]):
            if src.n != lab.shape[0]:
                raise ValueError(f"{dataset}: expected the same number of {part} items in every "
                                 f"modality, found {lsrc.origin} has {lab.shape[0]} items, "
                                 f"{src.origin} has {src.n}")
        labels.append(lab)
        sizes.append(lab.shape[0])
    off = np.cumsum([0] + sizes)
    presplit = {"query": np.arange(off[0], off[1], dtype=np.int64),
                "retrieval": np.arange(off[1], off[2], dtype=np.int64)}
    found = {"features": f"{path}:{x}Test + {x}Database", "texts": f"{path}:YTest + YDatabase",
             "labels": f"{path}:testL + databaseL"}
    return Dataset(dataset, np.concatenate(labels), ConcatSource(texts),
                   image_source=ConcatSource(feats), files=[path],
                   options=dict(options, image_input="features"), presplit=presplit,
                   label_origin=f"{path}:testL/databaseL", found=found, image_input="features",
                   layout_source=lay.source, default_protocol="presplit")
