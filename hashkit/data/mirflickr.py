"""MIRFLICKR-25K in the releases of the cross-modal hashing papers.

Layouts (the first complete one in the folder is read):

- ``single``: ``FLICKR-25K.mat`` of the DCMH release (MATLAB v7.3/HDF5): ``images`` 20,015 raw
  224 x 224 RGB images stored with MATLAB's reversed axes (HDF5 shape ``(N, 3, 224, 224)``, i.e.
  MATLAB ``H x W x C x N``), ``YAll`` 1386-d BoW, ``LAll`` 24 labels (both transposed in the
  file). An ``XAll`` feature matrix in the same file is used when present.
- ``separate``: ``mirflickr25k-iall.mat`` (v7.3, ``IAll``), ``mirflickr25k-yall.mat`` (v5,
  ``YAll``), ``mirflickr25k-lall.mat`` (v5, ``LAll``), and optionally
  ``mirflickr25k-xall.mat`` (``XAll``, e.g. 4096-d CNN features) as used by DJSRH/UGACH-style code.

Options: ``image`` = ``"auto"`` | ``"pixels"`` | ``"features"``; ``layout`` = ``"auto"`` |
``"single"`` | ``"separate"``.

Protocol ``default``: 2,000 queries, the other 18,015 items as retrieval set, 10,000 training
items drawn from it, 1,000 validation queries drawn from the retrieval items outside the
training set (DCMH / GCH / DAPH). ``dcmh-fixed``: the unshuffled split of the DCMH ports
(first 2,000 queries, next 18,015 retrieval, first 10,000 of those for training).
``ugach``: 5% queries (UGACH: 5% query, the rest retrieval, 5,000 training items).
"""

from __future__ import annotations

from hashkit.data._layout import Layout, Role, read_layouts
from hashkit.data.registry import DatasetInfo, FileSpec, register_dataset
from hashkit.data.splits import Protocol

NAME = "mirflickr"
NLABELS, TEXT_DIM = 24, 1386

LAYOUTS = (
    Layout("single", {
        "image": Role(("FLICKR-25K.mat",), ("images",), "raw images, 224x224x3 uint8",
                      "MATLAB v7.3 (HDF5)"),
        "features": Role(("FLICKR-25K.mat",), ("XAll",), "image features (items x dim)",
                         "MATLAB v7.3 (HDF5)"),
        "texts": Role(("FLICKR-25K.mat",), ("YAll",), "text BoW (items x 1386)",
                      "MATLAB v7.3 (HDF5)"),
        "labels": Role(("FLICKR-25K.mat",), ("LAll",), "labels (items x 24, 0/1)",
                       "MATLAB v7.3 (HDF5)"),
    }),
    Layout("separate", {
        "image": Role(("mirflickr25k-iall.mat",), ("IAll",), "raw images, 224x224x3 uint8",
                      "MATLAB v7.3 (HDF5)"),
        "features": Role(("mirflickr25k-xall.mat",), ("XAll",), "image features (items x dim)"),
        "texts": Role(("mirflickr25k-yall.mat",), ("YAll",), "text BoW (items x 1386)",
                      "MATLAB v5"),
        "labels": Role(("mirflickr25k-lall.mat",), ("LAll",), "labels (items x 24, 0/1)",
                       "MATLAB v5"),
    }),
)

PROTOCOLS = {
    "default": Protocol("default", query=2000, train=10000, val=1000, retrieval=None,
                        source="DCMH (CVPR 2017), GCH (IJCAI 2019), DAPH: 2,000 query / "
                               "18,015 retrieval / 10,000 train"),
    "dcmh-fixed": Protocol("dcmh-fixed", query=2000, train=10000, val=1000, retrieval=18015,
                           kind="fixed", source="unshuffled split of the DCMH ports"),
    "ugach": Protocol("ugach", query=0.05, train=5000, val=1000,
                      source="UGACH (AAAI 2018): 5% query, rest retrieval, 5,000 train"),
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
            if role == "image" and "features" in lay.roles:
                note += " (this or the image features)"
            specs.append(FileSpec(r.files[0], r.format, (key,), lay.name, note,
                                  optional=role == "features"))
    return tuple(specs)


def read(root, image="auto", layout="auto"):
    """Read MIRFLICKR-25K from ``root`` (see module docstring)."""
    return read_layouts(NAME, root, LAYOUTS, image=image, layout=layout, nlabels=NLABELS,
                        text_dim=TEXT_DIM)


register_dataset(DatasetInfo(
    NAME, "MIRFLICKR-25K (20,015 image-text pairs, 24 labels, 1386-d BoW)", read, PROTOCOLS,
    "default", files=layout_files(LAYOUTS), nlabels=NLABELS,
    options={"image": "auto|pixels|features", "layout": "auto|single|separate"},
    description=__doc__), aliases=("mirflickr25k", "mirflickr-25k", "flickr", "flickr25k"))
