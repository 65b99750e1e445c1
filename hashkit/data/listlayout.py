"""IAPR TC-12 and MS-COCO in the ``imgList`` / ``tagList`` / ``labelList`` layout.

One ``.mat`` file (v5 or v7.3) per dataset with ``imgList`` (raw images ``H x W x 3 x N`` in
MATLAB order, or an ``N x D`` feature matrix), ``tagList`` (text BoW) and ``labelList``
(multi-hot labels). The file name varies between releases: the reader tries the names listed
below, or takes ``file="NAME.mat"``. Options: ``image``, ``file``.

Protocols: IAPR TC-12 ``default`` 2,000 queries / the rest retrieval / 10,000 training items;
MS-COCO ``default`` 5,000 / the rest / 10,000 (as in DCMH-style evaluations); ``dcmh-fixed``
variants take the items in file order.
"""

from __future__ import annotations

from hashkit.data._layout import Layout, Role, read_layouts
from hashkit.data.mirflickr import layout_files
from hashkit.data.registry import DatasetInfo, register_dataset
from hashkit.data.splits import Protocol

KEYS = {"image": ("imgList", "IAll", "images"), "texts": ("tagList", "YAll"),
        "labels": ("labelList", "LAll")}
SPECS = {
    "iapr-tc12": dict(files=("iapr-tc12.mat", "IAPR-TC12.mat", "iapr.mat", "IAPR.mat"),
                      nlabels=255, title="IAPR TC-12 (20,000 pairs, 255 labels, 2912-d BoW)",
                      query=2000, train=10000, aliases=("iapr", "iaprtc12", "iapr-tc-12")),
    "mscoco": dict(files=("mscoco.mat", "MS-COCO.mat", "coco.mat", "COCO.mat"), nlabels=80,
                   title="MS-COCO (80 labels; image-text pairs, BoW tags)", query=5000,
                   train=10000, aliases=("coco", "ms-coco")),
}


def _layout(files) -> Layout:
    fmt = "MATLAB v5 or v7.3"
    return Layout("lists", {
        "image": Role(files, KEYS["image"], "raw images (HxWx3xN) or features (N x D)", fmt),
        "texts": Role(files, KEYS["texts"], "text BoW (items x vocabulary)", fmt),
        "labels": Role(files, KEYS["labels"], "labels (items x L, 0/1)", fmt),
    })


def _make(name, spec):
    def read(root, image="auto", file=None):
        files = (file,) if file else spec["files"]
        return read_layouts(name, root, (_layout(files),), image=image,
                            nlabels=spec["nlabels"], options={"file": file} if file else None)

    read.__doc__ = f"Read {spec['title']} from ``root`` (see module docstring)."
    protocols = {
        "default": Protocol("default", query=spec["query"], train=spec["train"], val=1000,
                            source=f"{spec['query']:,} query / rest retrieval / "
                                   f"{spec['train']:,} train"),
        "dcmh-fixed": Protocol("dcmh-fixed", query=spec["query"], train=spec["train"],
                               val=1000, kind="fixed", source="items in file order"),
    }
    register_dataset(DatasetInfo(
        name, spec["title"], read, protocols, "default",
        files=layout_files((_layout(spec["files"][:1]),)), nlabels=spec["nlabels"],
        options={"image": "auto|pixels|features", "file": "NAME.mat"}, description=__doc__),
        aliases=spec["aliases"])
    return read


read_iapr = _make("iapr-tc12", SPECS["iapr-tc12"])
read_mscoco = _make("mscoco", SPECS["mscoco"])
