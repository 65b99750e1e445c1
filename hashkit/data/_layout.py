"""Shared machinery of the file readers: find a layout's files, find keys, open sources.

A *layout* is one release's set of files, as the loader of the repository that defines it reads
them (``Layout.source`` names that loader). It maps roles to ``(file names, key names)``
candidates. Roles: ``pixels`` (a 4-D uint8 image stack, or a list of image file names read from
an image folder), ``features`` (2-D image features such as 4096-d VGG fc7), ``texts``,
``labels``. A layout with its own reader (pre-split files, UGACH's text release) sets ``open``.

Where files are looked for: in the folder, then one and two levels below it (releases unpack
into subfolders: DJSRH's ``NUS-WIDE-TC10/IAll/nus-wide-tc10-iall.mat``, the MIRFLICKR
``Cleared-Set/{IAll,YAll,LAll,FAll}/``); the first match in sorted order wins, and
``dataset.found`` records where each file was found.

Which image input a dataset carries (``image=``): ``"pixels"`` or ``"features"`` (that one, or
an error), ``"both"`` (every one present), ``"auto"`` (the default): the one present, or, where
a release ships both, the one its defining loader trains on (``Layout.prefer``; DCMH's NUS-WIDE
release ships pixels and a 500-d hand-crafted ``XAll``, and DCMH trains on the pixels).
``dataset.image_input`` and ``dataset.input_description`` say which input was chosen and from
which file and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hashkit.data._matfile import MatFile, describe_format
from hashkit.data.base import Dataset, check_labels

IMAGE_CHOICES = ("auto", "pixels", "features", "both")
IMAGE_ROLES = ("pixels", "features")


@dataclass(frozen=True)
class Role:
    files: tuple          # candidate file names (relative paths allowed; first found wins)
    keys: tuple           # candidate keys (first present wins); () for text files
    what: str             # for messages: "text BoW (items x 1386)"
    format: str = "MATLAB v5 or v7.3"
    kind: str = "array"   # "array" (.mat/.h5 variable), "names" (image file names), "text"
    optional: bool = False


@dataclass(frozen=True)
class Layout:
    name: str
    source: str           # the repository and loader that read this layout
    roles: dict           # role -> Role
    prefer: str = "pixels"
    open: Callable | None = field(default=None, compare=False)
    note: str = ""

    def required(self):
        return [r for r, spec in self.roles.items() if not spec.optional
                and r not in IMAGE_ROLES]


class Finder:
    """Looks file names up in a folder and up to two levels below it (listing each folder
    once)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._dirs = None

    def dirs(self):
        if self._dirs is None:
            level1 = _subdirs(self.folder)
            level2 = [d2 for d in level1 for d2 in _subdirs(d)]
            self._dirs = [self.folder] + level1 + level2
        return self._dirs

    def find(self, names) -> Path | None:
        for n in names:
            for d in self.dirs():
                p = d / n
                if p.is_file():
                    return p
        return None


def _subdirs(folder: Path) -> list:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _missing_message(dataset: str, folder: Path, layouts, finder: Finder | None) -> str:
    lines = [f"{dataset}: dataset files not found in {folder} or the folders below it (pass "
             f"--data-root FOLDER, root=FOLDER in Python, or set HASHKIT_DATA so that files live in $HASHKIT_DATA/"
             f"{dataset}). Expected one of:"]
    for lay in layouts:
        lines.append(f"  layout {lay.name!r} ({lay.source}):")
        seen = set()
        for role, r in lay.roles.items():
            key = (r.files, r.keys)
            if key in seen:
                continue
            seen.add(key)
            found = finder.find(r.files) if finder is not None else None
            state = f"found {found}" if found else "MISSING"
            opt = " (optional)" if r.optional else (
                " (this or the other image input)" if role in IMAGE_ROLES else "")
            keys = f", key {' or '.join(r.keys)}" if r.keys else ""
            lines.append(f"    {' or '.join(r.files)} [{r.format}]{keys}: {r.what}{opt} -- "
                         f"{state}")
    return "\n".join(lines)


def complete(lay: Layout, finder: Finder) -> bool:
    if not all(finder.find(lay.roles[r].files) for r in lay.required()):
        return False
    return any(r in lay.roles and not lay.roles[r].optional and finder.find(lay.roles[r].files)
               for r in IMAGE_ROLES)


def read_layouts(dataset: str, folder, layouts, *, image: str = "auto", layout: str = "auto",
                 nlabels: int | None = None, text_dim: int | None = None,
                 feature_dim: int | None = None, options=None, **open_options) -> Dataset:
    """Open the first complete layout in ``folder`` and return an unsplit :class:`Dataset`.

    ``image``: see the module docstring. ``open_options`` (``image_dir``, ``image_size``)
    go to layouts that read an image folder.
    """
    folder = Path(folder)
    if image not in IMAGE_CHOICES:
        raise ValueError(f"image: expected one of {IMAGE_CHOICES}, got {image!r}")
    names = [lay.name for lay in layouts]
    if layout != "auto" and layout not in names:
        raise ValueError(f"layout: expected 'auto' or one of {names}, got {layout!r}")
    cands = [lay for lay in layouts if layout in ("auto", lay.name)]
    if not folder.is_dir():
        raise FileNotFoundError(_missing_message(dataset, folder, cands, None))
    finder = Finder(folder)
    ready = [lay for lay in cands if complete(lay, finder)]
    if image in IMAGE_ROLES:
        # a layout that holds the asked-for input wins over one that does not
        with_input = [lay for lay in ready if image in lay.roles
                      and finder.find(lay.roles[image].files)]
        if with_input:
            ready = with_input
    if not ready:
        raise FileNotFoundError(_missing_message(dataset, folder, cands, finder))
    lay = ready[0]
    opts = dict(options or {}, layout=lay.name, image=image)
    if lay.open is not None:
        return lay.open(dataset, folder, lay, finder, image=image, nlabels=nlabels,
                        text_dim=text_dim, feature_dim=feature_dim, options=opts,
                        **open_options)
    return _open(dataset, folder, lay, finder, image, nlabels, text_dim, feature_dim, opts,
                 **open_options)


def find_key(mf: MatFile, role: Role, required: bool = True):
    keys = mf.keys()
    for k in role.keys:
        if k in keys:
            return k
    if required:
        raise ValueError(f"{mf.path}: expected key {' or '.join(map(repr, role.keys))} "
                         f"({role.what}) in this {describe_format(mf.format)} file, found keys "
                         f"{keys}")
    return None


def choose_inputs(dataset: str, folder, lay: Layout, image: str, pixel_src, feat_src):
    """Apply the ``image`` choice to the sources found; returns (pixels, features, chosen)."""
    if image == "pixels" and pixel_src is None:
        r = lay.roles.get("pixels")
        raise ValueError(f"{dataset}: image='pixels' expects raw images "
                         f"({r.files[0] if r else 'an image file'}), but the files in {folder} "
                         f"hold image features only")
    if image == "features" and feat_src is None:
        raise ValueError(f"{dataset}: image='features' expects image feature vectors "
                         f"(2-D, items x dim), but the files in {folder} hold raw images only")
    if image == "pixels":
        feat_src = None
    elif image == "features":
        pixel_src = None
    elif image == "auto" and pixel_src is not None and feat_src is not None:
        if lay.prefer == "pixels":
            feat_src = None
        else:
            pixel_src = None
    if pixel_src is not None and feat_src is not None:
        chosen = lay.prefer
    else:
        chosen = "pixels" if pixel_src is not None else "features"
    return pixel_src, feat_src, chosen


def _open(dataset, folder, lay: Layout, finder: Finder, image, nlabels, text_dim, feature_dim,
          options, image_dir=None, image_size=None):
    files: dict[Path, MatFile] = {}
    found: dict[str, str] = {}

    def matfile(role):
        path = finder.find(lay.roles[role].files)
        if path is None:
            return None
        if path not in files:
            files[path] = MatFile(path)
        return files[path]

    lab_file = matfile("labels")
    lab_key = find_key(lab_file, lay.roles["labels"])
    lab_src = lab_file.source(lab_key, "matrix", expected_dim=nlabels)
    labels = check_labels(lab_src.all(), lab_src.origin, nlabels)
    found["labels"] = lab_src.origin

    txt_file = matfile("texts")
    txt_key = find_key(txt_file, lay.roles["texts"])
    text_src = txt_file.source(txt_key, "matrix", expected_dim=text_dim)
    if len(text_src.item_shape) != 1:
        raise ValueError(f"{text_src.origin}: expected 2-D text features, found item shape "
                         f"{text_src.item_shape}")
    found["texts"] = text_src.origin

    pixel_src = feat_src = None
    want_pixels = image in ("auto", "both", "pixels")
    want_features = image in ("auto", "both", "features")
    if "pixels" in lay.roles and want_pixels and matfile("pixels") is not None:
        role = lay.roles["pixels"]
        f = matfile("pixels")
        key = find_key(f, role)
        if role.kind == "names":
            from hashkit.data._images import DEFAULT_SIZE, ImageFolderSource, find_image_dir
            from hashkit.data._matfile import read_strings

            names = read_strings(f.path, key)
            img_dir = find_image_dir([f.path.parent] + finder.dirs(), names, image_dir)
            pixel_src = ImageFolderSource(img_dir, names, image_size or DEFAULT_SIZE,
                                          origin=f"{f.path}:{key}")
            found["pixels"] = f"{f.path}:{key} -> {img_dir}"
        else:
            pixel_src = f.source(key, "images")
            found["pixels"] = pixel_src.origin
    if "features" in lay.roles and want_features and matfile("features") is not None:
        f = matfile("features")
        key = find_key(f, lay.roles["features"], required=image == "features"
                       or not lay.roles["features"].optional)
        if key is not None:
            feat_src = f.source(key, "matrix", expected_dim=feature_dim)
            found["features"] = feat_src.origin
    pixel_src, feat_src, chosen = choose_inputs(dataset, folder, lay, image, pixel_src,
                                                feat_src)
    if feat_src is not None and len(feat_src.item_shape) != 1:
        raise ValueError(f"{feat_src.origin}: expected 2-D image features, found item shape "
                         f"{feat_src.item_shape}")
    for role, src in (("pixels", pixel_src), ("features", feat_src)):
        if src is None:
            found.pop(role, None)
    used = sorted({Path(o.split(" -> ")[0].rsplit(":", 1)[0]) for o in found.values()})
    return Dataset(dataset, labels, text_src, image_source=feat_src, pixel_source=pixel_src,
                   files=used, options=dict(options, image_input=chosen),
                   label_origin=lab_src.origin, found=found, image_input=chosen,
                   layout_source=lay.source)
