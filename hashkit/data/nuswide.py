"""NUS-WIDE, top-21 and top-10 concepts, in the ``nus-wide-tcXX-*.mat`` releases.

Files (``XX`` = 21 or 10), mixing MATLAB v5 and v7.3 (the reader detects each file's format):
``nus-wide-tcXX-iall.mat`` (``IAll``, raw images, v7.3), ``nus-wide-tcXX-xall.mat`` (``XAll``,
image features), ``nus-wide-tcXX-yall.mat`` (``YAll``, 1000-d tag BoW),
``nus-wide-tcXX-lall.mat`` (``LAll``, 21 or 10 labels). Either ``iall`` or ``xall`` must exist.
Options: ``image`` = ``"auto"`` | ``"pixels"`` | ``"features"``.

Protocols:
- ``nus-wide-21`` ``default``: 2,100 queries, the rest retrieval, 10,500 training items from it
  (DCMH, GCH); ``dcmh-fixed``: the unshuffled variant.
- ``nus-wide-10`` ``default`` (DJSRH): for each of the 10 concepts in turn, 200 queries and 500
  training items among the items carrying it that are not taken yet (2,000 / 5,000), the rest
  retrieval; ``ugach``: 1% queries, the rest retrieval, 5,000 training items (UGACH, as we
  read the paper: check against your reference before comparing numbers).
"""

from __future__ import annotations

from hashkit.data._layout import Layout, Role, read_layouts
from hashkit.data.mirflickr import layout_files
from hashkit.data.registry import DatasetInfo, register_dataset
from hashkit.data.splits import Protocol

TEXT_DIM = 1000


def _layout(tc: int) -> Layout:
    p = f"nus-wide-tc{tc}"
    return Layout("separate", {
        "image": Role((f"{p}-iall.mat",), ("IAll",), "raw images, HxWx3 uint8",
                      "MATLAB v7.3 (HDF5)"),
        "features": Role((f"{p}-xall.mat",), ("XAll",), "image features (items x dim)"),
        "texts": Role((f"{p}-yall.mat",), ("YAll",), f"tag BoW (items x {TEXT_DIM})"),
        "labels": Role((f"{p}-lall.mat",), ("LAll",), f"labels (items x {tc}, 0/1)"),
    })


PROTOCOLS = {
    21: {
        "default": Protocol("default", query=2100, train=10500, val=1000,
                            source="DCMH / GCH: 2,100 query / rest retrieval / 10,500 train"),
        "dcmh-fixed": Protocol("dcmh-fixed", query=2100, train=10500, val=1000, kind="fixed",
                               source="unshuffled split of the DCMH ports"),
    },
    10: {
        "default": Protocol("default", query=2000, train=5000, val=1000, kind="per-class",
                            query_per_class=200, train_per_class=500,
                            source="DJSRH (ICCV 2019): 200 query + 500 train per concept"),
        "ugach": Protocol("ugach", query=0.01, train=5000, val=1000,
                          source="UGACH (AAAI 2018): 1% query, rest retrieval, 5,000 train"),
        "random": Protocol("random", query=2000, train=5000, val=1000,
                           source="uniform 2,000 query / rest retrieval / 5,000 train"),
    },
}


def _make(tc: int):
    name = f"nus-wide-{tc}"
    layouts = (_layout(tc),)

    def read(root, image="auto", layout="auto"):
        return read_layouts(name, root, layouts, image=image, layout=layout, nlabels=tc,
                            text_dim=TEXT_DIM)

    read.__doc__ = f"Read NUS-WIDE top-{tc} from ``root`` (see module docstring)."
    register_dataset(DatasetInfo(
        name, f"NUS-WIDE top-{tc} concepts ({tc} labels, 1000-d tag BoW)", read, PROTOCOLS[tc],
        "default", files=layout_files(layouts), nlabels=tc,
        options={"image": "auto|pixels|features"}, description=__doc__),
        aliases=(f"nuswide{tc}", f"nus-wide-tc{tc}", f"nuswide-{tc}")
        + (("nus-wide", "nuswide") if tc == 21 else ()))
    return read


read_tc21 = _make(21)
read_tc10 = _make(10)
