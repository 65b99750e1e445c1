"""Registry of datasets: name -> reader, expected files (with formats and keys), protocols.

``hashkit datasets`` lists this registry; :func:`load` is the one entry point that reads a
dataset, draws (or reloads) its split and attaches the :class:`~hashkit.data.splits.Manifest`.

Where files live: ``root`` when given (the folder holding the dataset's files), else
``$HASHKIT_DATA/NAME``, else ``~/.hashkit/data/NAME``.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hashkit.data.splits import (Manifest, Protocol, file_checksum, labels_checksum,
                                 load_manifest, make_split)


@dataclass(frozen=True)
class FileSpec:
    """One file a reader looks for. ``layout`` groups files that are read together."""

    name: str
    format: str
    keys: tuple
    layout: str = ""
    note: str = ""
    optional: bool = False


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    ``reader(root: Path, **options) -> Dataset`` reads the files (no split yet);
    ``protocols`` maps protocol names to :class:`Protocol`; ``needs_files`` is False for the
    shipped and generated sets; ``layouts`` names, for each file layout, the repository whose
    loader defines it.
    """

    name: str
    title: str
    reader: Callable
    protocols: dict
    default_protocol: str
    files: tuple = ()
    nlabels: int | None = None
    needs_files: bool = True
    options: dict = field(default_factory=dict)
    description: str = ""
    layouts: dict = field(default_factory=dict)   # layout name -> repository/loader defining it


_REGISTRY: dict[str, DatasetInfo] = {}
_ALIASES: dict[str, str] = {}
_BUILTIN = ("hashkit.data.mfeat", "hashkit.data.synthetic", "hashkit.data.mirflickr",
            "hashkit.data.nuswide", "hashkit.data.listlayout", "hashkit.data.presplit")


def register_dataset(info: DatasetInfo, aliases=()) -> DatasetInfo:
    """Add ``info`` to the registry (a later registration of the same name replaces it)."""
    _REGISTRY[info.name] = info
    for a in aliases:
        _ALIASES[a] = info.name
    return info


def _ensure_builtin() -> None:
    import importlib

    for mod in _BUILTIN:
        importlib.import_module(mod)


def list_datasets() -> list[DatasetInfo]:
    """All registered datasets, in registration order."""
    _ensure_builtin()
    return list(_REGISTRY.values())


def get_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` (aliases accepted). Raises ``ValueError``."""
    _ensure_builtin()
    key = name.lower() if isinstance(name, str) else name
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(f"name: expected one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[key]


def data_root(name: str, root=None) -> Path:
    """Folder that holds dataset ``name``'s files (see module docstring)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("HASHKIT_DATA")
    base = Path(env).expanduser() if env else Path.home() / ".hashkit" / "data"
    return base / name


def _seed(seed):
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer or None, got {seed!r}")
    return int(seed)


def load(name: str, root=None, seed: int | None = 0, protocol: str | Protocol | None = None,
         manifest=None, verify: bool = True, checksums: bool = True, **options):
    """Read dataset ``name`` and attach its split.

    Parameters
    ----------
    name : str
        A registered name (``hashkit datasets`` lists them): ``"mfeat"``, ``"synthetic"``,
        ``"mirflickr"``, ``"nus-wide-21"``, ``"nus-wide-10"``, ``"iapr-tc12"``, ``"mscoco"``,
        ``"presplit"``.
    root : path, optional
        Folder that holds the files; default ``$HASHKIT_DATA/NAME`` or ``~/.hashkit/data/NAME``.
    seed : int or None
        Seed of the split (``np.random.default_rng(seed)``). Default 0.
    protocol : str or Protocol, optional
        A protocol name of the dataset (default: its standard one, or the stored split for a
        layout that holds one) or a custom ``Protocol``.
    manifest : path or Manifest, optional
        Reuse a saved split exactly (``seed``/``protocol`` are then ignored). With ``verify``
        the label checksum and the source-file checksums must match.
    checksums : bool
        Compute checksums of the source files for the manifest (default True).
    **options
        Reader options (e.g. ``image="features"``, ``view_image="pix"``, ``n=200_000``).

    Returns
    -------
    Dataset
        ``ds.query``, ``ds.retrieval``, ``ds.train``, ``ds.val`` (Views), ``ds.manifest``.

    Raises
    ------
    FileNotFoundError
        A file is missing: the message names each file, its format and the folder it goes in.
    ValueError
        Bad data (missing key, wrong shape/dtype, labels not 0/1, counts that disagree, NaN),
        an unknown name/protocol, or a manifest that does not match the data.

    Example
    -------
    >>> ds = load("mfeat", seed=0)
    >>> len(ds.query), len(ds.retrieval), len(ds.train)
    (200, 1800, 1000)
    """
    info = get_info(name)
    seed = _seed(seed)
    folder = data_root(info.name, root)
    man = None
    if manifest is not None:
        man = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        if man.dataset != info.name:
            raise ValueError(f"manifest: expected a split of {info.name!r}, found one of "
                             f"{man.dataset!r}")
        # the reader options recorded with the split (synthetic size and seed, image choice)
        # are part of what makes it reproducible; explicit options still win
        params = inspect.signature(info.reader).parameters
        options = {**{k: v for k, v in man.options.items() if k in params}, **options}
    params = inspect.signature(info.reader).parameters
    unknown = sorted(set(options) - set(params) - {"root"})
    if unknown:
        accepted = sorted(set(params) - {"root"})
        raise ValueError(f"options: {info.name} accepts {accepted}, got unknown {unknown}")
    if seed is not None and "seed" not in options and "seed" in params:
        options["seed"] = seed  # generated sets (synthetic) are seeded like their split
    ds = info.reader(folder, **options)
    if man is not None:
        _check_manifest(man, ds, info, verify)
        if checksums and not man.sources:
            man.sources = [file_checksum(f) for f in ds.files]
        return ds.apply_split(man)
    if isinstance(protocol, Protocol):
        proto = protocol
    else:
        pname = protocol or getattr(ds, "default_protocol", None) or info.default_protocol
        if pname not in info.protocols:
            raise ValueError(f"protocol: expected one of {sorted(info.protocols)} for "
                             f"{info.name}, got {pname!r}")
        proto = info.protocols[pname]
    if ds.presplit is not None and proto.kind != "presplit":
        stored = sorted(k for k, p in info.protocols.items() if p.kind == "presplit")
        raise ValueError(f"protocol: the {ds.options.get('layout', 'file')} layout of "
                         f"{info.name} stores its split, expected one of {stored}, got "
                         f"{proto.name!r}")
    if ds.presplit is None and proto.kind == "presplit":
        raise ValueError(f"protocol: {proto.name!r} reads the split stored in a pre-split "
                         f"layout, but the {ds.options.get('layout', 'files')} layout of "
                         f"{info.name} stores none")
    idx = make_split(ds.labels, proto, seed, dataset=info.name, presplit=ds.presplit)
    man = Manifest(dataset=info.name, protocol=proto.name, kind=proto.kind, seed=seed, n=ds.n,
                   sources=[file_checksum(f) for f in ds.files] if checksums else [],
                   labels_sha256=labels_checksum(ds.labels),
                   options=_jsonable(ds.options), protocol_spec=proto.to_dict(), **idx)
    return ds.apply_split(man)


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, (np.floating,)):
            v = float(v)
        elif isinstance(v, Path):
            v = str(v)
        out[k] = v
    return out


def _check_manifest(man: Manifest, ds, info: DatasetInfo, verify: bool) -> None:
    if man.dataset != info.name:
        raise ValueError(f"manifest: expected a split of {info.name!r}, found one of "
                         f"{man.dataset!r}")
    if man.n != ds.n:
        raise ValueError(f"manifest: expected a split of {ds.n} items ({info.name}), found one "
                         f"of {man.n} items")
    if not verify:
        return
    if man.labels_sha256 and man.labels_sha256 != labels_checksum(ds.labels):
        raise ValueError(f"manifest: the labels of {info.name} differ from the ones the split "
                         f"was made with (label checksum mismatch); pass verify=False to "
                         f"reuse the indices anyway")
    by_name = {Path(f).name: f for f in ds.files}
    for rec in man.sources:
        path = by_name.get(rec.get("name"))
        if path is None:
            continue
        now = file_checksum(path)
        if rec.get("method") == now["method"] and rec.get("sha256") != now["sha256"]:
            raise ValueError(f"manifest: {path} differs from the file the split was made with "
                             f"(sha256 {now['sha256'][:12]}..., recorded "
                             f"{str(rec.get('sha256'))[:12]}...); pass verify=False to reuse "
                             f"the indices anyway")
