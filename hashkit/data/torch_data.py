"""PyTorch access to a split view: batches of ``(index, image, text, label)``.

This is the only module of :mod:`hashkit.data` that imports torch. Batches are assembled from
whole index lists (one read per batch, not one per item), so HDF5-backed views stay lazy.

- ``index``: int64 ``(b,)`` positions of the items *within the view* (0 .. len(view)-1), the
  row numbers a trainer uses for its per-item buffers; ``view.indices[index]`` gives dataset
  indices.
- ``image``: float32 ``(b, image_dim)`` features, or uint8 ``(b, H, W, C)`` raw pixels with
  ``image="pixels"`` (the model owns the CNN transform).
- ``text``: float32 ``(b, text_dim)``; ``label``: uint8 ``(b, nlabels)``.
Label similarity is computed per batch with :func:`hashkit.data.batch_similarity`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from hashkit.data.base import View

IMAGE_KINDS = ("auto", "features", "pixels")


class ViewDataset(torch.utils.data.Dataset):
    """A :class:`~hashkit.data.base.View` as a map-style dataset indexed by lists of positions.

    Parameters
    ----------
    view : View
    image : {"auto", "features", "pixels"}
        ``auto``: features when the dataset has them, else pixels.
    preload : bool
        Read the view's features/texts into memory once (default). False reads each batch from
        the source (for views larger than memory).
    """

    def __init__(self, view: View, image: str = "auto", preload: bool = True):
        if image not in IMAGE_KINDS:
            raise ValueError(f"image: expected one of {IMAGE_KINDS}, got {image!r}")
        ds = view.dataset
        if image == "auto":
            image = "features" if ds.image_source is not None else "pixels"
        if image == "pixels" and ds.pixel_source is None:
            raise ValueError(f"image: {ds.name} has no raw pixels, expected image='features'")
        if image == "features" and ds.image_source is None:
            raise ValueError(f"image: {ds.name} has raw pixels only, expected image='pixels'")
        self.view, self.image, self.preload = view, image, preload
        self.labels = torch.from_numpy(np.ascontiguousarray(view.labels))
        if preload:
            self.texts = torch.from_numpy(view.texts)
            self.images = torch.from_numpy(view.images) if image == "features" else None

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, positions):
        pos = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        tpos = torch.from_numpy(pos)
        if self.preload:
            text = self.texts[tpos]
        else:
            text = torch.from_numpy(self.view.text_rows(pos))
        if self.image == "pixels":
            image = torch.from_numpy(self.view.pixel_batch(pos))
        elif self.preload:
            image = self.images[tpos]
        else:
            image = torch.from_numpy(self.view.image_rows(pos))
        return tpos, image, text, self.labels[tpos]


def make_loader(view: View, batch_size: int = 128, shuffle: bool = False, seed: int | None = 0,
                image: str = "auto", preload: bool = True, drop_last: bool = False,
                num_workers: int = 0, **kwargs) -> DataLoader:
    """A DataLoader over ``view`` yielding ``(index, image, text, label)`` batches.

    ``shuffle`` uses a ``torch.Generator`` seeded with ``seed``, so the batch order is
    reproducible. Extra keyword arguments go to ``DataLoader`` (e.g. ``pin_memory``).

    Example
    -------
    >>> ds = hashkit.data.load("mfeat")                                  # doctest: +SKIP
    >>> for idx, img, txt, lab in make_loader(ds.train, 64, shuffle=True):  # doctest: +SKIP
    ...     S = batch_similarity(lab, lab)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    data = ViewDataset(view, image=image, preload=preload)
    if shuffle:
        gen = torch.Generator()
        if seed is not None:
            gen.manual_seed(int(seed))
        base = RandomSampler(range(len(data)), generator=gen)
    else:
        base = SequentialSampler(range(len(data)))
    sampler = BatchSampler(base, batch_size=int(batch_size), drop_last=drop_last)
    return DataLoader(data, sampler=sampler, batch_size=None, num_workers=num_workers, **kwargs)
