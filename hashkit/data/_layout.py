"""Shared machinery of the file readers: find a layout's files, find keys, open sources.

A *layout* maps roles to ``(file names, key names)`` candidates. Roles:
``image`` (4-D -> raw pixels, 2-D -> features, decided by the array), ``features`` (2-D image
features such as 4096-d CNN features), ``texts``, ``labels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hashkit.data._matfile import MatFile, describe_format
from hashkit.data.base import Dataset, check_labels

IMAGE_CHOICES = ("auto", "pixels", "features")


@dataclass(frozen=True)
class Role:
    files: tuple          # candidate file names (first that exists wins)
    keys: tuple           # candidate keys (first present wins)
    what: str             # for messages: "text BoW (items x 1386)"
    format: str = "MATLAB v5 or v7.3"


@dataclass(frozen=True)
class Layout:
    name: str
    roles: dict           # role -> Role

    def describe(self) -> str:
        parts = []
        for r in self.roles.values():
            parts.append(f"{r.files[0]} ({r.format}; key {' or '.join(r.keys)}: {r.what})")
        return "; ".join(dict.fromkeys(parts))


def _first_file(folder: Path, names) -> Path | None:
    for n in names:
        p = folder / n
        if p.is_file():
            return p
    return None


def _missing_message(dataset: str, folder: Path, layouts) -> str:
    lines = [f"{dataset}: dataset files not found in {folder} (pass root=FOLDER, or set "
             f"HASHKIT_DATA so that files live in $HASHKIT_DATA/{dataset}). Expected one of:"]
    for lay in layouts:
        lines.append(f"  layout {lay.name!r}:")
        seen = set()
        for role, r in lay.roles.items():
            key = (r.files, r.keys)
            if key in seen:
                continue
            seen.add(key)
            found = _first_file(folder, r.files)
            state = "found" if found else "MISSING"
            opt = " (optional)" if role == "features" else ""
            lines.append(f"    {' or '.join(r.files)} [{r.format}], key "
                         f"{' or '.join(r.keys)}: {r.what}{opt} -- {state}")
    return "\n".join(lines)


def read_layouts(dataset: str, folder, layouts, *, image: str = "auto", layout: str = "auto",
                 nlabels: int | None = None, text_dim: int | None = None,
                 feature_dim: int | None = None, options=None) -> Dataset:
    """Open the first complete layout in ``folder`` and return an unsplit :class:`Dataset`.

    ``image``: ``"pixels"`` (raw images required), ``"features"`` (feature vectors required),
    ``"auto"`` (whatever the files hold; both when both exist).
    """
    folder = Path(folder)
    if image not in IMAGE_CHOICES:
        raise ValueError(f"image: expected one of {IMAGE_CHOICES}, got {image!r}")
    names = [lay.name for lay in layouts]
    if layout != "auto" and layout not in names:
        raise ValueError(f"layout: expected 'auto' or one of {names}, got {layout!r}")
    cands = [lay for lay in layouts if layout in ("auto", lay.name)]
    if not folder.is_dir():
        raise FileNotFoundError(_missing_message(dataset, folder, cands))
    for lay in cands:
        need = ["texts", "labels"]
        if all(_first_file(folder, lay.roles[r].files) for r in need) and any(
                r in lay.roles and _first_file(folder, lay.roles[r].files)
                for r in ("image", "features")):
            return _open(dataset, folder, lay, image, nlabels, text_dim, feature_dim,
                         dict(options or {}, layout=lay.name, image=image))
    raise FileNotFoundError(_missing_message(dataset, folder, cands))


def _find_key(mf: MatFile, role: Role, required: bool):
    keys = mf.keys()
    for k in role.keys:
        if k in keys:
            return k
    if required:
        raise ValueError(f"{mf.path}: expected key {' or '.join(map(repr, role.keys))} "
                         f"({role.what}) in this {describe_format(mf.format)} file, found keys "
                         f"{keys}")
    return None


def _open(dataset, folder, lay: Layout, image, nlabels, text_dim, feature_dim, options):
    files: dict[Path, MatFile] = {}

    def matfile(role):
        path = _first_file(folder, lay.roles[role].files)
        if path is None:
            return None
        if path not in files:
            files[path] = MatFile(path)
        return files[path]

    lab_file = matfile("labels")
    lab_key = _find_key(lab_file, lay.roles["labels"], True)
    lab_src = lab_file.source(lab_key, "matrix", expected_dim=nlabels)
    labels = check_labels(lab_src.all(), lab_src.origin, nlabels)

    txt_file = matfile("texts")
    txt_key = _find_key(txt_file, lay.roles["texts"], True)
    text_src = txt_file.source(txt_key, "matrix", expected_dim=text_dim)
    if len(text_src.item_shape) != 1:
        raise ValueError(f"{text_src.origin}: expected 2-D text features, found item shape "
                         f"{text_src.item_shape}")

    pixel_src = feat_src = None
    if "image" in lay.roles and matfile("image") is not None:
        f = matfile("image")
        key = _find_key(f, lay.roles["image"], image != "features" or "features" not in lay.roles)
        if key is not None:
            ndim = len(f.shape_of(key))
            if ndim == 4:
                pixel_src = f.source(key, "images")
            else:
                feat_src = f.source(key, "matrix", expected_dim=feature_dim)
    if "features" in lay.roles and feat_src is None and matfile("features") is not None:
        f = matfile("features")
        key = _find_key(f, lay.roles["features"], image == "features")
        if key is not None:
            feat_src = f.source(key, "matrix", expected_dim=feature_dim)
    if image == "pixels" and pixel_src is None:
        r = lay.roles.get("image")
        raise ValueError(f"{dataset}: image='pixels' expects raw images "
                         f"({r.files[0] if r else 'an image file'}, a 4-D uint8 array), but "
                         f"the files in {folder} hold image features only")
    if image == "features" and feat_src is None:
        raise ValueError(f"{dataset}: image='features' expects image feature vectors "
                         f"(2-D, items x dim), but the files in {folder} hold raw images only")
    if image == "pixels":
        feat_src = None
    if image == "features":
        pixel_src = None
    if feat_src is not None and len(feat_src.item_shape) != 1:
        raise ValueError(f"{feat_src.origin}: expected 2-D image features, found item shape "
                         f"{feat_src.item_shape}")
    used = {Path(s.origin.rsplit(":", 1)[0]) for s in (lab_src, text_src, feat_src, pixel_src)
            if s is not None}
    return Dataset(dataset, labels, text_src, image_source=feat_src, pixel_source=pixel_src,
                   files=sorted(used), options=options, label_origin=lab_src.origin)
