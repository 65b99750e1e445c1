"""NUS-WIDE, top-21 and top-10 concepts, as the field releases it.

The reader detects each file's format (the releases mix MATLAB v5 and v7.3: UCCH's
``nus-wide-tc10-yall.mat`` is v5 where DJSRH's file of the same name is v7.3), and looks one or
two folders down (DJSRH: ``NUS-WIDE-TC10/IAll/nus-wide-tc10-iall.mat``).

``nus-wide-10`` layouts:

- ``djsrh``: ``nus-wide-tc10-lall.mat`` (v5 ``LAll``), ``nus-wide-tc10-yall.mat`` (v7.3
  ``YAll``, read transposed), ``IAll/nus-wide-tc10-iall.mat`` (v7.3 ``IAll``, MATLAB
  ``H x W x 3 x N``). DJSRH (zs-zhong/DJSRH ``settings.py``, ``datasets.py``). With
  ``nus-wide-tc10-xall-vgg.mat`` beside it, ``image="features"``/``"both"`` adds the VGG
  features.
- ``vgg``: ``nus-wide-tc10-xall-vgg.mat`` (v5 ``XAll``, 4096-d), ``-yall`` (v5), ``-lall``.
  UCCH (penghu-cs/UCCH ``src/cmdataset.py`` ``NUSWIDE_fea``).
- ``ugach``: UGACH's own text release (``list/``, ``feature/``, 1,000-d text); it is not the
  tc10 ``.mat`` files. See :mod:`hashkit.data.releases`.

``nus-wide-21`` layouts:

- ``dcmh``: ``nus-wide-tc21-iall.mat`` (v7.3 ``IAll``, raw pixels), ``nus-wide-tc21-xall.mat``
  (``XAll``, 500-d hand-crafted bag of visual words, optional), ``-yall.mat``, ``-lall.mat``
  (DCMH's NUS-WIDE release, split into one file per variable as jiangqy/DCMH-CVPR2017's readme
  says; read as its PyTorch ports do: ``IAll`` with h5py, ``YAll``/``LAll`` with loadmat).
  DCMH trains its CNN on the pixels, so ``image="auto"`` gives the pixels here even when
  ``XAll`` is present; ``image="features"`` gives the 500-d ``XAll``.
- ``vgg``: ``nus-wide-tc21-xall-vgg.mat`` (v5 ``XAll``, 4096-d) with the ``-yall``/``-lall``.
- ``torchcmh``: ``imgList21.mat`` (``imgs``: a char array of ``(folder, file name)`` pairs,
  joined as torchcmh's ``nus_wide.py`` does), ``tagList21.mat`` (``tags``),
  ``labelList21.mat`` (``labels``), with the image folder read on demand.

Options: ``image`` = ``auto`` | ``pixels`` | ``features`` | ``both``; ``layout``;
``image_dir``, ``image_size`` (``torchcmh`` layout).
"""

from __future__ import annotations

from hashkit.data._layout import Layout, Role, read_layouts
from hashkit.data.mirflickr import layout_files, layout_sources
from hashkit.data.registry import DatasetInfo, register_dataset
from hashkit.data.releases import ugach_layout
from hashkit.data.splits import Protocol

TEXT_DIM = 1000
V73, V5, ANY = "MATLAB v7.3 (HDF5)", "MATLAB v5", "MATLAB v5 or v7.3"


def _layouts(tc: int):
    p = f"nus-wide-tc{tc}"
    txt = Role((f"{p}-yall.mat",), ("YAll",), f"tag BoW (items x {TEXT_DIM})", ANY)
    lab = Role((f"{p}-lall.mat",), ("LAll",), f"labels (items x {tc}, 0/1)", V5)
    vgg = (f"{p}-xall-vgg.mat",)
    pixels = Role((f"{p}-iall.mat",), ("IAll",), "raw images, MATLAB HxWx3xN uint8", V73)
    if tc == 10:
        return (
            Layout("djsrh", "DJSRH (zs-zhong/DJSRH settings.py, datasets.py)", {
                "pixels": pixels,
                "features": Role(vgg, ("XAll",), "4096-d VGG features", V5, optional=True),
                "texts": txt, "labels": lab}),
            Layout("vgg", "UCCH (penghu-cs/UCCH src/cmdataset.py NUSWIDE_fea)", {
                "features": Role(vgg, ("XAll",), "4096-d VGG features (items x 4096)", V5),
                "texts": txt, "labels": lab}, prefer="features"),
            ugach_layout(TEXT_DIM),
        )
    return (
        Layout("dcmh", "DCMH's NUS-WIDE release (jiangqy/DCMH-CVPR2017 readme; IAll read with "
                       "h5py, YAll/LAll with loadmat as its PyTorch ports do)", {
            "pixels": pixels,
            "features": Role((f"{p}-xall.mat",), ("XAll",),
                             "500-d hand-crafted image features", ANY, optional=True),
            "texts": txt, "labels": lab}),
        Layout("vgg", "UCCH-style VGG feature file (src/cmdataset.py naming)", {
            "features": Role(vgg, ("XAll",), "4096-d VGG features (items x 4096)", V5),
            "texts": txt, "labels": lab}, prefer="features"),
        Layout("torchcmh", "torchcmh (WangGodder/deep-cross-modal-hashing "
                           "torchcmh/dataset/nus_wide.py)", {
            "pixels": Role(("imgList21.mat",), ("imgs",),
                           "(folder, file name) pairs, JPEGs in an image folder", V5,
                           kind="names"),
            "texts": Role(("tagList21.mat",), ("tags",), f"tag BoW (items x {TEXT_DIM})", V5),
            "labels": Role(("labelList21.mat",), ("labels",), "labels (items x 21, 0/1)", V5)}),
    )


PROTOCOLS = {
    21: {
        "default": Protocol("default", query=2100, train=10500, val=1000,
                            source="DCMH (CVPR 2017) / GCH: 2,100 query / rest retrieval / "
                                   "10,500 train, drawn at random"),
        "torchcmh": Protocol("torchcmh", query=2100, train=10500, val=1000, kind="permutation",
                             source="torchcmh (torchcmh/dataset/nus_wide.py split_data, "
                                    "default_seed 7): np.random.seed(seed) permutation; pass "
                                    "seed=7 for its split"),
    },
    10: {
        "default": Protocol("default", query=2000, train=5000, val=1000, kind="per-class",
                            query_per_class=200, train_per_class=500,
                            source="DJSRH (zs-zhong/DJSRH datasets.py): 200 query + 500 train "
                                   "per concept among items not yet taken (2,000 / 5,000), "
                                   "database = all but the queries"),
        "ugach": Protocol("ugach", query=1865, train=15000, val=1000,
                          source="UGACH (AAAI 2018; KNN/knn_nus_cross5.py train_size = 15000): "
                                 "1,865 query / 184,712 retrieval / 15,000 train of 186,577 "
                                 "items, drawn at random"),
        "random": Protocol("random", query=2000, train=5000, val=1000,
                           source="uniform 2,000 query / rest retrieval / 5,000 train"),
        "ugach-release": Protocol("ugach-release", query=0, train=0, val=1000, kind="presplit",
                                  source="the split stored in UGACH's text release (test = "
                                         "query, database = retrieval, train)"),
    },
}


def _make(tc: int):
    name = f"nus-wide-{tc}"
    layouts = _layouts(tc)

    def read(root, image="auto", layout="auto", image_dir=None, image_size=None):
        return read_layouts(name, root, layouts, image=image, layout=layout, nlabels=tc,
                            text_dim=TEXT_DIM, image_dir=image_dir, image_size=image_size)

    read.__doc__ = f"Read NUS-WIDE top-{tc} from ``root`` (see module docstring)."
    register_dataset(DatasetInfo(
        name, f"NUS-WIDE top-{tc} concepts ({tc} labels, 1000-d tag BoW)", read, PROTOCOLS[tc],
        "default", files=layout_files(layouts), nlabels=tc,
        options={"image": "auto|pixels|features|both",
                 "layout": "auto|" + "|".join(lay.name for lay in layouts),
                 "image_dir": "FOLDER", "image_size": "224 or (H, W)"},
        description=__doc__, layouts=layout_sources(layouts)),
        aliases=(f"nuswide{tc}", f"nus-wide-tc{tc}", f"nuswide-{tc}")
        + (("nus-wide", "nuswide") if tc == 21 else ()))
    return read


read_tc21 = _make(21)
read_tc10 = _make(10)
