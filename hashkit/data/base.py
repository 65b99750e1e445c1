"""The in-memory shape every reader returns: a :class:`Dataset` with query / retrieval / train /
val :class:`View` objects (the data contract in docs/INTERNALS.md).

Labels are always held in memory (uint8, small). Image features and texts are read from their
source on first access of ``view.images`` / ``view.texts`` (in blocks, straight into float32;
NaN checked block by block) or batch by batch with ``view.image_rows`` / ``view.text_rows``.
Raw images are never converted as a whole: ``view.pixels(i)`` returns one uint8 ``(H, W, C)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hashkit.data._matfile import BLOCK, MemorySource, Source

__all__ = ["ConcatSource", "Dataset", "View", "check_labels", "from_arrays", "to_float32"]


def to_float32(source: Source, idx: np.ndarray, what: str) -> np.ndarray:
    """Rows ``idx`` of ``source`` as a new float32 ``(len(idx), D)`` array, read block by block.

    Raises ``ValueError`` naming the source when a block holds NaN or infinity.
    """
    idx = np.asarray(idx, dtype=np.int64)
    dim = int(np.prod(source.item_shape)) if source.item_shape else 1
    out = np.empty((len(idx), dim), dtype=np.float32)
    for s in range(0, len(idx), BLOCK):
        blk = source.take(idx[s:s + BLOCK]).reshape(-1, dim)
        if blk.dtype.kind == "f" and not np.all(np.isfinite(blk)):
            bad = int(idx[s + int(np.nonzero(~np.isfinite(blk).all(axis=1))[0][0])])
            raise ValueError(f"{source.origin}: expected finite {what} values, found NaN or "
                             f"infinity (first at item {bad})")
        out[s:s + BLOCK] = blk
    return out


def check_labels(raw: np.ndarray, origin: str, nlabels: int | None) -> np.ndarray:
    """Validate a label matrix read from ``origin`` and return it as uint8 multi-hot."""
    if raw.ndim != 2:
        raise ValueError(f"{origin}: expected a 2-D label matrix (items x labels), "
                         f"found shape {raw.shape}")
    if nlabels is not None and raw.shape[1] != nlabels:
        raise ValueError(f"{origin}: expected {nlabels} label columns, found shape {raw.shape}")
    ok = (raw == 0) | (raw == 1)
    if not np.all(ok):
        bad = np.argwhere(~ok)[0]
        raise ValueError(f"{origin}: expected labels in {{0, 1}}, found {raw[tuple(bad)]!r} at "
                         f"item {bad[0]}, label {bad[1]}")
    return raw.astype(np.uint8)


class ConcatSource(Source):
    """Several sources with the same item shape, indexed as one."""

    def __init__(self, parts):
        self.parts = parts
        self.offsets = np.cumsum([0] + [p.n for p in parts])
        self.n = int(self.offsets[-1])
        self.item_shape = parts[0].item_shape
        self.dtype = np.result_type(*[p.dtype for p in parts])
        self.origin = " + ".join(p.origin for p in parts)
        for p in parts[1:]:
            if p.item_shape != self.item_shape:
                raise ValueError(f"{p.origin}: expected items of shape {self.item_shape} like "
                                 f"{parts[0].origin}, found {p.item_shape}")

    def take(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((len(idx),) + self.item_shape, dtype=self.dtype)
        part = np.searchsorted(self.offsets, idx, side="right") - 1
        for j, p in enumerate(self.parts):
            sel = np.nonzero(part == j)[0]
            if len(sel):
                out[sel] = p.take(idx[sel] - self.offsets[j])
        return out

    def close(self):
        for p in self.parts:
            p.close()


@dataclass
class View:
    """One part of a split (``query``, ``retrieval``, ``train``, ``val``, ``val_retrieval``).

    Attributes
    ----------
    name : str
    indices : int64 (n,) indices into the full dataset
    labels : uint8 (n, nlabels) multi-hot {0, 1}
    """

    name: str
    indices: np.ndarray
    dataset: "Dataset" = field(repr=False)
    _images: np.ndarray | None = field(default=None, repr=False)
    _texts: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> np.ndarray:
        return self.dataset.labels[self.indices]

    @property
    def images(self) -> np.ndarray:
        """float32 ``(n, image_dim)`` image features (read once, then cached)."""
        if self._images is None:
            src = self.dataset.image_source
            if src is None:
                raise ValueError(f"{self.dataset.name}: expected image features, but this "
                                 f"dataset provides raw pixels only; use view.pixels(i) or "
                                 f"view.pixel_batch(positions) (uint8, H x W x C)")
            self._images = to_float32(src, self.indices, "image feature")
        return self._images

    @property
    def texts(self) -> np.ndarray:
        """float32 ``(n, text_dim)`` text features (read once, then cached)."""
        if self._texts is None:
            self._texts = to_float32(self.dataset.text_source, self.indices, "text")
        return self._texts

    def image_rows(self, positions) -> np.ndarray:
        """float32 image features of the items at ``positions`` (0-based, within this view)."""
        if self._images is not None:
            return self._images[positions]
        src = self.dataset.image_source
        if src is None:
            return self.images  # raises the pixels-only message
        return to_float32(src, self.indices[positions], "image feature")

    def text_rows(self, positions) -> np.ndarray:
        """float32 text features of the items at ``positions`` (0-based, within this view)."""
        if self._texts is not None:
            return self._texts[positions]
        return to_float32(self.dataset.text_source, self.indices[positions], "text")

    def pixels(self, i: int) -> np.ndarray:
        """Raw image of the ``i``-th item of this view: uint8 ``(H, W, C)``."""
        return self.pixel_batch(np.array([i]))[0]

    def pixel_batch(self, positions) -> np.ndarray:
        """Raw images of the items at ``positions``: uint8 ``(b, H, W, C)``."""
        src = self.dataset.pixel_source
        if src is None:
            raise ValueError(f"{self.dataset.name}: expected raw images, but this dataset "
                             f"provides image features only (view.images)")
        return src.take(self.indices[np.atleast_1d(positions)])


class Dataset:
    """A loaded dataset with its split. See ``hashkit.data.load``.

    Attributes
    ----------
    name : str
    n : int                     total items
    nlabels : int
    image_dim : int or None     length of an image feature vector (None: raw pixels only)
    image_shape : tuple or None (H, W, C) of raw images (None: features only)
    text_dim : int
    labels : uint8 (n, nlabels)
    query, retrieval, train, val : View
    val_retrieval : View        retrieval minus val: the database to search val queries in
    manifest : Manifest
    image_input : {"pixels", "features"} or None
        The image input a trainer should use by default (see ``input_description``).
    found : dict                role -> "FILE:KEY" where each part was read from
    layout_source : str         the repository and loader whose layout was read
    knn_graph : int64 (n_train, K) or None
        A neighbour graph shipped with the release (UGACH's ``KNN_cross5.npy``), rows and
        values are positions in the ``train`` view.
    default_protocol : str or None
        The protocol a layout implies (pre-split files: the split they store).
    """

    def __init__(self, name, labels, text_source, image_source=None, pixel_source=None,
                 files=(), options=None, presplit=None, label_origin="labels", found=None,
                 image_input=None, layout_source="", knn_graph=None, default_protocol=None):
        self.name = name
        self.found = dict(found or {})
        self.layout_source = layout_source
        self.knn_graph = knn_graph
        self.default_protocol = default_protocol
        if image_input is None:
            image_input = "features" if image_source is not None else (
                "pixels" if pixel_source is not None else None)
        self.image_input = image_input
        self.label_origin = label_origin
        self.labels = labels
        self.text_source = text_source
        self.image_source = image_source
        self.pixel_source = pixel_source
        self.files = list(files)
        self.options = dict(options or {})
        self.presplit = presplit
        self.n = int(labels.shape[0])
        self.nlabels = int(labels.shape[1])
        self.text_dim = int(np.prod(text_source.item_shape))
        self.image_dim = (int(np.prod(image_source.item_shape))
                          if image_source is not None else None)
        self.image_shape = tuple(pixel_source.item_shape) if pixel_source is not None else None
        self.manifest = None
        self._check_counts()

    def _check_counts(self):
        parts = [("labels", self.labels.shape[0], self.label_origin),
                 ("texts", self.text_source.n, self.text_source.origin)]
        for what, src in (("image features", self.image_source), ("images", self.pixel_source)):
            if src is not None:
                parts.append((what, src.n, src.origin))
        counts = {p[1] for p in parts}
        if len(counts) > 1:
            found = ", ".join(f"{origin} has {n} items ({what})" for what, n, origin in parts)
            raise ValueError(f"{self.name}: expected the same number of items in every "
                             f"modality, found {found}")
        if self.pixel_source is not None and self.pixel_source.dtype != np.uint8:
            raise ValueError(f"{self.pixel_source.origin}: expected uint8 raw pixels, found "
                             f"dtype {self.pixel_source.dtype}")

    @property
    def input_description(self) -> str:
        """One line saying which image input this dataset gives by default, from which file
        and key, and what else is available (for run logs and ``config.json``)."""
        parts = []
        if self.image_input == "pixels" and self.pixel_source is not None:
            parts.append(f"image input: raw pixels {self.image_shape} uint8 from "
                         f"{self.found.get('pixels', self.pixel_source.origin)}")
        elif self.image_input == "features" and self.image_source is not None:
            parts.append(f"image input: {self.image_dim}-d features from "
                         f"{self.found.get('features', self.image_source.origin)}")
        else:
            parts.append("image input: none")
        if self.image_input == "pixels" and self.image_source is not None:
            parts.append(f"also {self.image_dim}-d features from "
                         f"{self.found.get('features', self.image_source.origin)}")
        if self.image_input == "features" and self.pixel_source is not None:
            parts.append(f"also raw pixels from "
                         f"{self.found.get('pixels', self.pixel_source.origin)}")
        parts.append(f"text: {self.text_dim}-d from "
                     f"{self.found.get('texts', self.text_source.origin)}")
        return "; ".join(parts)

    def apply_split(self, manifest) -> "Dataset":
        self.manifest = manifest
        self.query = View("query", manifest.query, self)
        self.retrieval = View("retrieval", manifest.retrieval, self)
        self.train = View("train", manifest.train, self)
        self.val = View("val", manifest.val, self)
        keep = np.setdiff1d(manifest.retrieval, manifest.val)
        self.val_retrieval = View("val_retrieval", keep, self)
        return self

    def view(self, name: str) -> View:
        return getattr(self, name)

    def close(self) -> None:
        for src in (self.text_source, self.image_source, self.pixel_source):
            if src is not None:
                src.close()

    def __repr__(self) -> str:
        sizes = ""
        if self.manifest is not None:
            sizes = ", " + ", ".join(f"{v}={len(getattr(self, v))}"
                                     for v in ("query", "retrieval", "train", "val"))
        img = f"image_dim={self.image_dim}" if self.image_dim else ""
        if self.image_shape:
            img += (", " if img else "") + f"image_shape={self.image_shape}"
        return (f"Dataset({self.name!r}, n={self.n}, nlabels={self.nlabels}, {img}, "
                f"text_dim={self.text_dim}{sizes})")


def from_arrays(name, labels, texts, images=None, pixels=None, options=None) -> Dataset:
    """Build a :class:`Dataset` (without a split) from in-memory arrays."""
    lab = check_labels(np.asarray(labels), f"{name}:labels", None)
    return Dataset(
        name, lab, MemorySource(texts, f"{name}:texts"),
        image_source=MemorySource(images, f"{name}:images") if images is not None else None,
        pixel_source=MemorySource(pixels, f"{name}:pixels") if pixels is not None else None,
        options=options)
