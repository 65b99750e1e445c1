"""hashkit.data: dataset readers, split protocols and manifests, shipped and synthetic data.

``import hashkit.data`` is light (NumPy only); h5py and SciPy load when a file is read, PyTorch
only in :mod:`hashkit.data.torch_data`.

>>> import hashkit.data
>>> ds = hashkit.data.load("mfeat", seed=0)
>>> ds.query.images.shape, ds.query.texts.shape, ds.query.labels.dtype
((200, 240), (200, 76), dtype('uint8'))

``read_arrays`` / ``inspect_arrays`` are the one safe reader of ``.mat`` (v5, v7.3) and HDF5
files: only the keys asked for, every declared size checked before reading (docs/DATA.md).

Shipped data credit: UCI Machine Learning Repository, "Multiple Features" (R. P. W. Duin),
CC BY 4.0.
"""

from hashkit.data._matfile import inspect_arrays, read_arrays
from hashkit.data.base import Dataset, View, from_arrays
from hashkit.data.registry import (DatasetInfo, FileSpec, data_root, get_info, list_datasets,
                                   load, register_dataset)
from hashkit.data.similarity import batch_similarity
from hashkit.data.splits import (Manifest, Protocol, load_manifest, make_split, manifest_path,
                                 save_manifest)

__all__ = [
    "Dataset", "View", "from_arrays", "DatasetInfo", "FileSpec", "data_root", "get_info",
    "list_datasets", "load", "register_dataset", "batch_similarity", "Manifest", "Protocol",
    "load_manifest", "make_split", "manifest_path", "save_manifest", "check_file",
    "read_arrays", "inspect_arrays",
]


def __getattr__(name):
    if name == "check_file":
        from hashkit.data.check import check_file

        return check_file
    raise AttributeError(f"module 'hashkit.data' has no attribute {name!r}")
