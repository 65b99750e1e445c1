"""MIRFLICKR-25K (20,015 image-text pairs, 24 labels, 1,386-d BoW) as the field releases it.

Layouts, each as the loader that defines it reads it (the first complete one in the folder is
read; ``layout=NAME`` picks one):

- ``dcmh``: ``FLICKR-25K.mat`` (MATLAB v7.3): ``images`` (MATLAB ``224 x 224 x 3 x N`` uint8,
  HDF5 ``(N, 3, 224, 224)``), ``YAll``, ``LAll``. DCMH (jiangqy/DCMH-CVPR2017
  ``DCMH_tensorflow/load_data.py``: ``file['images'][:].transpose(0,3,2,1)``, ``LAll``/``YAll``
  transposed); WendellGul/DCMH reads the same variables with the image key ``IAll``.
- ``djsrh``: ``mirflickr25k-iall.mat`` (v7.3, ``IAll``), ``mirflickr25k-yall.mat`` (v5,
  ``YAll``), ``mirflickr25k-lall.mat`` (v5, ``LAll``), as in the ``Cleared-Set/{IAll,YAll,LAll}/``
  release. DJSRH (zs-zhong/DJSRH ``settings.py``, ``datasets.py``: ``IAll[i]`` transposed
  ``(2, 1, 0)``). With ``mirflickr25k-iall-vgg.mat`` beside it, ``image="features"`` or
  ``"both"`` adds the VGG features.
- ``vgg``: ``mirflickr25k-iall-vgg.mat`` (v5, ``XAll``: 4096-d VGG features) with the same
  ``-yall`` / ``-lall`` files. UCCH (penghu-cs/UCCH ``src/cmdataset.py`` ``MIRFlickr25K_fea``).
- ``torchcmh``: ``imgList.mat`` (``FAll``: a cell array of image file names), ``tagList.mat``
  (``YAll``), ``labelList.mat`` (``LAll``), and the JPEG folder, read on demand with Pillow.
  torchcmh (WangGodder/deep-cross-modal-hashing ``torchcmh/dataset/mirflckr25k.py``). The
  ``Cleared-Set`` ``FAll/mirflickr25k-fall.mat`` names file works the same way.
- ``ugach``: UGACH's text release (``list/``, ``feature/``, ``list/KNN_cross5.npy``), see
  :mod:`hashkit.data.releases`; it stores its split (protocol ``ugach-release``).

Options: ``image`` = ``auto`` | ``pixels`` | ``features`` | ``both``; ``layout``;
``image_dir`` (the JPEG folder of the ``torchcmh`` layout; default: found beside the names
file), ``image_size`` (its images are resized to this, default 224 x 224 as torchcmh does).

Protocols (``hashkit datasets`` lists them with their sources): ``default`` (DCMH), ``dcmh-fixed``,
``djsrh``, ``ugach``, ``torchcmh``, ``ugach-release``.
"""

from __future__ import annotations

from hashkit.data._layout import Layout, Role, read_layouts
from hashkit.data.registry import DatasetInfo, FileSpec, register_dataset
from hashkit.data.releases import ugach_layout
from hashkit.data.splits import Protocol

NAME = "mirflickr"
NLABELS, TEXT_DIM = 24, 1386
V73, V5 = "MATLAB v7.3 (HDF5)", "MATLAB v5"

_TXT = Role(("mirflickr25k-yall.mat",), ("YAll",), "text BoW (items x 1386)", V5)
_LAB = Role(("mirflickr25k-lall.mat",), ("LAll",), "labels (items x 24, 0/1)", V5)
_VGG = ("mirflickr25k-iall-vgg.mat",)

LAYOUTS = (
    Layout("dcmh", "DCMH (jiangqy/DCMH-CVPR2017 DCMH_tensorflow/load_data.py; "
                   "WendellGul/DCMH data_handler.py)", {
        "pixels": Role(("FLICKR-25K.mat", "mirflickr25k.mat"), ("images", "IAll"),
                       "raw images, MATLAB 224x224x3xN uint8", V73),
        "texts": Role(("FLICKR-25K.mat", "mirflickr25k.mat"), ("YAll",),
                      "text BoW (items x 1386)", V73),
        "labels": Role(("FLICKR-25K.mat", "mirflickr25k.mat"), ("LAll",),
                       "labels (items x 24, 0/1)", V73),
    }),
    Layout("djsrh", "DJSRH (zs-zhong/DJSRH settings.py, datasets.py); Cleared-Set release", {
        "pixels": Role(("mirflickr25k-iall.mat",), ("IAll",),
                       "raw images, MATLAB 224x224x3xN uint8", V73),
        "features": Role(_VGG, ("XAll",), "4096-d VGG features", V5, optional=True),
        "texts": _TXT, "labels": _LAB,
    }),
    Layout("vgg", "UCCH (penghu-cs/UCCH src/cmdataset.py MIRFlickr25K_fea)", {
        "features": Role(_VGG, ("XAll",), "4096-d VGG features (items x 4096)", V5),
        "texts": _TXT, "labels": _LAB,
    }, prefer="features"),
    Layout("torchcmh", "torchcmh (WangGodder/deep-cross-modal-hashing "
                       "torchcmh/dataset/mirflckr25k.py)", {
        "pixels": Role(("imgList.mat", "mirflickr25k-fall.mat"), ("FAll",),
                       "image file names (cell array), JPEGs in an image folder", V5,
                       kind="names"),
        "texts": Role(("tagList.mat", "mirflickr25k-yall.mat"), ("YAll",),
                      "text BoW (items x 1386)", V5),
        "labels": Role(("labelList.mat", "mirflickr25k-lall.mat"), ("LAll",),
                       "labels (items x 24, 0/1)", V5),
    }),
    ugach_layout(TEXT_DIM),
)

PROTOCOLS = {
    "default": Protocol("default", query=2000, train=10000, val=1000, retrieval=None,
                        source="DCMH (jiangqy/DCMH-CVPR2017 DCMH_demo.m gen_index_MIRFLICKR_25K: "
                               "2,000 random queries, the other 18,015 retrieval, 10,000 of "
                               "them train); also GCH"),
    "dcmh-fixed": Protocol("dcmh-fixed", query=2000, train=10000, val=1000, retrieval=18015,
                           kind="fixed", source="WendellGul/DCMH main.py split_data, config.py: "
                                                "first 2,000 items query, next 18,015 "
                                                "retrieval, first 10,000 of those train"),
    "djsrh": Protocol("djsrh", query=2000, train=5000, val=1000, kind="per-class",
                      first_query_per_class=160, first_train_per_class=400,
                      query_per_class=80, train_per_class=200,
                      source="DJSRH (zs-zhong/DJSRH datasets.py; reused by JDSH, DGCPN): 160 "
                             "query / 400 train for the first label, then 80 / 200 per later "
                             "label among items not yet taken, train topped up to 5,000, "
                             "database = all but the queries (2,000 / 18,015 / 5,000)"),
    "ugach": Protocol("ugach", query=2000, train=15000, val=1000,
                      source="UGACH (AAAI 2018; PKU-ICST-MIPL/UGACH_AAAI2018 "
                             "KNN/knn_mir_cross5.py train_size = 15000): 2,000 query / 18,015 "
                             "retrieval / 15,000 train, drawn at random"),
    "torchcmh": Protocol("torchcmh", query=2000, train=10000, val=1000, kind="permutation",
                         source="torchcmh (torchcmh/dataset/mirflckr25k.py split_data, "
                                "default_seed 6): np.random.seed(seed) permutation, 2,000 "
                                "query / 10,000 train; pass seed=6 for its split"),
    "ugach-release": Protocol("ugach-release", query=0, train=0, val=1000, kind="presplit",
                              source="the split stored in UGACH's text release (test = query, "
                                     "database = retrieval, train); val drawn from retrieval"),
}


def layout_files(layouts):
    specs = []
    for lay in layouts:
        seen = set()
        for role, r in lay.roles.items():
            key = " or ".join(r.keys)
            if (r.files[0], key) in seen:
                continue
            seen.add((r.files[0], key))
            note = r.what
            if role in ("pixels", "features") and not r.optional and \
                    {"pixels", "features"} <= set(lay.roles):
                note += " (this or the other image input)"
            specs.append(FileSpec(" or ".join(r.files), r.format, (key,) if key else (),
                                  lay.name, note, optional=r.optional))
    return tuple(specs)


def layout_sources(layouts) -> dict:
    return {lay.name: lay.source for lay in layouts}


def read(root, image="auto", layout="auto", image_dir=None, image_size=None):
    """Read MIRFLICKR-25K from ``root`` (see module docstring)."""
    return read_layouts(NAME, root, LAYOUTS, image=image, layout=layout, nlabels=NLABELS,
                        text_dim=TEXT_DIM, image_dir=image_dir, image_size=image_size)


register_dataset(DatasetInfo(
    NAME, "MIRFLICKR-25K (20,015 image-text pairs, 24 labels, 1386-d BoW)", read, PROTOCOLS,
    "default", files=layout_files(LAYOUTS), nlabels=NLABELS,
    options={"image": "auto|pixels|features|both",
             "layout": "auto|" + "|".join(lay.name for lay in LAYOUTS),
             "image_dir": "FOLDER", "image_size": "224 or (H, W)"},
    description=__doc__, layouts=layout_sources(LAYOUTS)),
    aliases=("mirflickr25k", "mirflickr-25k", "flickr", "flickr25k"))
