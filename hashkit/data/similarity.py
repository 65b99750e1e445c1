"""Label similarity for one batch: never an N x N matrix over the whole dataset."""

from __future__ import annotations

import numpy as np


def batch_similarity(labels_a, labels_b, graded: bool = False):
    """Pairwise label similarity between two batches of multi-hot labels.

    Parameters
    ----------
    labels_a : (a, L) {0,1} array (NumPy or torch tensor, any numeric/bool dtype)
    labels_b : (b, L) {0,1} array of the same kind
    graded : bool
        False: 1 where the two items share at least one label, else 0 (the hashing papers'
        S_ij). True: the number of shared labels.

    Returns
    -------
    (a, b) float32 array (torch.float32 tensor on the inputs' device for torch inputs).

    Raises
    ------
    ValueError
        When the inputs are not 2-D or their label counts differ.

    Example
    -------
    >>> batch_similarity(np.array([[1, 0, 1]]), np.array([[0, 0, 1], [0, 1, 0]]))
    array([[1., 0.]], dtype=float32)
    """
    for name, x in (("labels_a", labels_a), ("labels_b", labels_b)):
        if len(getattr(x, "shape", ())) != 2:
            raise ValueError(f"{name}: expected a 2-D (items, labels) array, got shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
    if labels_a.shape[1] != labels_b.shape[1]:
        raise ValueError(f"labels_b: expected {labels_a.shape[1]} label columns like labels_a, "
                         f"got {labels_b.shape[1]}")
    if type(labels_a).__module__.startswith("torch"):
        a = labels_a.float()
        b = labels_b.to(device=a.device).float()
        s = a @ b.T
        return s if graded else (s > 0).float()
    s = np.asarray(labels_a, dtype=np.float32) @ np.asarray(labels_b, dtype=np.float32).T
    return s if graded else (s > 0).astype(np.float32)
