"""Raw images read on demand from an image folder (torchcmh's ``imgList`` layouts).

torchcmh (WangGodder/deep-cross-modal-hashing, ``torchcmh/dataset/base/base.py``) keeps only
the file names in memory and opens each JPEG when its item is fetched
(``Image.open(os.path.join(img_dir, name.strip())).convert('RGB')``), then resizes it with the
model's transform (``transforms.Resize((224, 224))``). :class:`ImageFolderSource` does the same
for a batch of items: decode with Pillow, convert to RGB, resize to ``size`` (bilinear, which
is what ``Resize`` does on a PIL image), return uint8 ``(b, H, W, 3)``. No image is decoded
before it is asked for, and never all at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hashkit.data._matfile import Source

DEFAULT_SIZE = (224, 224)   # torchcmh's default transform: Resize((224, 224))


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading an image folder needs Pillow: pip install 'hashkit[images]' "
                          "(or pip install pillow)") from None
    return Image


def image_size(value) -> tuple:
    """``(H, W)`` from an int (square) or a pair; ``ValueError`` naming ``image_size``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"image_size: expected an int or (height, width), got {value!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"image_size: expected positive sizes, got {value!r}")
    return (h, w)


class ImageFolderSource(Source):
    """Images ``folder/names[i]`` as uint8 ``(H, W, 3)`` items, decoded per batch.

    Parameters
    ----------
    folder : path
    names : list of str
        File names relative to ``folder`` (already stripped).
    size : (H, W)
        Every image is resized to this size (default 224 x 224, torchcmh's transform).
    origin : str
        For messages (the names file and key).
    """

    def __init__(self, folder, names, size=DEFAULT_SIZE, origin: str = "images"):
        _pil()
        self.folder = Path(folder)
        self.names = list(names)
        self.size = image_size(size)
        self.n = len(self.names)
        self.item_shape = (self.size[0], self.size[1], 3)
        self.dtype = np.dtype(np.uint8)
        self.origin = f"{origin} (images in {self.folder})"
        missing = [i for i, nm in enumerate(self.names) if not (self.folder / nm).is_file()]
        if missing:
            i = missing[0]
            raise ValueError(f"{origin}: expected an image file for every name, found "
                             f"{len(missing)} missing under {self.folder} (first: item {i}, "
                             f"{self.names[i]!r}); pass --data-option image_dir=FOLDER "
                             f"(image_dir= in Python)")

    def take(self, idx):
        Image = _pil()
        idx = np.asarray(idx, dtype=np.int64).ravel()
        out = np.empty((len(idx),) + self.item_shape, dtype=np.uint8)
        h, w = self.size
        for j, i in enumerate(idx):
            path = self.folder / self.names[int(i)]
            try:
                with Image.open(path) as img:
                    img = img.convert("RGB")
                    if img.size != (w, h):
                        img = img.resize((w, h), Image.BILINEAR)
                    out[j] = np.asarray(img, dtype=np.uint8)
            except (OSError, ValueError) as e:
                raise ValueError(f"{path}: expected an image Pillow can decode (item {int(i)}), "
                                 f"got {type(e).__name__}: {e}") from None
        return out


def find_image_dir(folders, names, explicit=None) -> Path:
    """The folder the names resolve in: ``explicit`` if given, else the first of ``folders``
    (and their ``images``/``imgs``/``JPEGImages`` subfolders) holding the first name."""
    if explicit is not None:
        folder = Path(explicit).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"image_dir: no such folder {str(folder)!r}")
        return folder
    folders = [Path(f) for f in folders]
    if not names:
        return folders[0]
    tried = []
    for f in folders:
        for cand in (f, f / "images", f / "imgs", f / "JPEGImages"):
            if cand in tried:
                continue
            tried.append(cand)
            if (cand / names[0]).is_file():
                return cand
    shown = ", ".join(os.fspath(t) for t in tried[:6])
    raise FileNotFoundError(f"image folder not found: no {names[0]!r} (the first image name) "
                            f"in {shown}{', ...' if len(tried) > 6 else ''}; pass "
                            f"--data-option image_dir=FOLDER (image_dir= in Python)")
