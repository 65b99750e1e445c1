"""IAPR TC-12 and MS-COCO as the field releases them.

Label and tag sizes are read from the files (torchcmh's IAPR TC-12 has 275 labels and 1,251-d
tags over 2,000 + 17,999 items; its MS-COCO 80 labels and 2,026-d tags over 5,000 + 117,218).

Layouts:

- ``torchcmh`` (both datasets): three MATLAB v5 files, ``imgList.mat`` (``imgs``: a char
  matrix of image file names, stripped), ``tagList.mat`` (``tags``, N x D), ``labelList.mat``
  (``labels``, N x L), with the JPEGs in an image folder read on demand (Pillow), as
  WangGodder/deep-cross-modal-hashing ``torchcmh/dataset/tc12.py`` and ``coco2014.py`` read them.
- ``matlab-presplit`` (IAPR TC-12): ``iapr-tc12.mat`` with ``XTest``, ``YTest``, ``testL``,
  ``XDatabase``, ``YDatabase``, ``databaseL`` (v5, features), the MATLAB baselines' file:
  query = test, retrieval = database (protocol ``presplit``).
- ``ucch-presplit`` (IAPR TC-12): UCCH's ``iapr-tc12-rand.mat`` (``VTest``, ``YTest``,
  ``testL``, ``VDatabase``, ``YDatabase``, ``databaseL``; penghu-cs/UCCH ``src/cmdataset.py``
  ``IAPR_fea``).
There is no single-file ``imgList``/``tagList``/``labelList`` layout in any release; the
reader of earlier hashkit versions that expected one is gone.

Options: ``image``, ``layout``, ``image_dir`` (default: found beside ``imgList.mat``),
``image_size`` (default 224 x 224, torchcmh's ``Resize((224, 224))``).
"""

from __future__ import annotations

from hashkit.data._layout import Layout, Role, read_layouts
from hashkit.data.mirflickr import layout_files, layout_sources
from hashkit.data.registry import DatasetInfo, register_dataset
from hashkit.data.releases import presplit_layout
from hashkit.data.splits import Protocol

V5 = "MATLAB v5"


def _torchcmh(module: str) -> Layout:
    return Layout("torchcmh", f"torchcmh (WangGodder/deep-cross-modal-hashing "
                              f"torchcmh/dataset/{module})", {
        "pixels": Role(("imgList.mat",), ("imgs",), "image file names (char matrix), JPEGs in "
                       "an image folder", V5, kind="names"),
        "texts": Role(("tagList.mat",), ("tags",), "tag BoW (items x vocabulary)", V5),
        "labels": Role(("labelList.mat",), ("labels",), "labels (items x L, 0/1)", V5),
    })


SPECS = {
    "iapr-tc12": dict(
        title="IAPR TC-12 (20,000 pairs; torchcmh: 275 labels, 1,251-d tags)",
        layouts=(_torchcmh("tc12.py"),
                 presplit_layout("matlab-presplit", "iapr-tc12.mat", "X",
                                 "the MATLAB baselines' pre-split iapr-tc12.mat"),
                 presplit_layout("ucch-presplit", "iapr-tc12-rand.mat", "V",
                                 "UCCH (penghu-cs/UCCH src/cmdataset.py IAPR_fea)")),
        protocols={
            "default": Protocol("default", query=2000, train=10000, val=1000,
                                source="torchcmh tc12.py split_data sizes: 2,000 query / rest "
                                       "retrieval / 10,000 train, drawn at random"),
            "torchcmh": Protocol("torchcmh", query=2000, train=10000, val=1000,
                                 kind="permutation",
                                 source="torchcmh (torchcmh/dataset/tc12.py split_data, "
                                        "default_seed 8): np.random.seed(seed) permutation; "
                                        "pass seed=8 for its split"),
            "presplit": Protocol("presplit", query=0, train=None, val=1000, kind="presplit",
                                 source="the pre-split files: query = test, retrieval = "
                                        "database, train = the whole database (UCCH "
                                        "src/cmdataset.py IAPR_fea)"),
            "presplit-10k": Protocol("presplit-10k", query=0, train=10000, val=1000,
                                     kind="presplit",
                                     source="the pre-split files with 10,000 training items "
                                            "drawn from the database"),
        },
        aliases=("iapr", "iaprtc12", "iapr-tc-12")),
    "mscoco": dict(
        title="MS-COCO (torchcmh: 80 labels, 2,026-d tags, 5,000 + 117,218 items)",
        layouts=(_torchcmh("coco2014.py"),),
        protocols={
            "default": Protocol("default", query=5000, train=10000, val=1000,
                                source="torchcmh coco2014.py get_*_datasets: 5,000 query / rest "
                                       "retrieval / 10,000 train, drawn at random"),
            "torchcmh": Protocol("torchcmh", query=5000, train=10000, val=1000,
                                 kind="permutation",
                                 source="torchcmh (torchcmh/dataset/coco2014.py split_data, "
                                        "default_seed 8); pass seed=8 for its split"),
        },
        aliases=("coco", "ms-coco")),
}


def _make(name, spec):
    layouts = spec["layouts"]

    def read(root, image="auto", layout="auto", image_dir=None, image_size=None):
        return read_layouts(name, root, layouts, image=image, layout=layout,
                            image_dir=image_dir, image_size=image_size)

    read.__doc__ = f"Read {spec['title']} from ``root`` (see module docstring)."
    register_dataset(DatasetInfo(
        name, spec["title"], read, spec["protocols"], "default", files=layout_files(layouts),
        nlabels=None,
        options={"image": "auto|pixels|features|both",
                 "layout": "auto|" + "|".join(lay.name for lay in layouts),
                 "image_dir": "FOLDER", "image_size": "224 or (H, W)"},
        description=__doc__, layouts=layout_sources(layouts)), aliases=spec["aliases"])
    return read


read_iapr = _make("iapr-tc12", SPECS["iapr-tc12"])
read_mscoco = _make("mscoco", SPECS["mscoco"])
