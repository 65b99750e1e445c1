"""Validate a dataset file (or folder) and describe what it holds: ``hashkit datasets check``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashkit.data._matfile import BLOCK, MatFile, describe_format


def describe_file(path) -> dict:
    """Format and variables of one ``.mat``/HDF5/npz file: ``{"format", "variables": [...]}``
    with each variable's name, shape (MATLAB's for .mat files), dtype and MATLAB class where
    recorded. Reads declarations only, never the data."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {"path": str(path), "format": "npz",
                    "variables": [{"key": k, "shape": list(z[k].shape), "dtype": str(z[k].dtype)}
                                  for k in z.files]}
    mf = MatFile(path)
    out = []
    for k, info in mf.infos().items():
        dtype = str(info.dtype) if info.dtype is not None else info.kind
        out.append({"key": k, "shape": list(info.shape), "dtype": dtype,
                    "matlab_class": info.matlab_class})
    return {"path": str(path), "format": mf.format, "variables": out}


def _data_files(folder: Path) -> list:
    """The .mat/.h5 files in ``folder`` and one or two levels below it (releases unpack into
    subfolders), sorted."""
    from hashkit.data._layout import Finder

    out = []
    for d in Finder(folder).dirs():
        try:
            out += [p for p in d.iterdir() if p.is_file() and p.suffix in (".mat", ".h5",
                                                                            ".hdf5")]
        except OSError:
            pass
    return sorted(out)


def _scan(src, what) -> None:
    from hashkit.data.base import to_float32

    for s in range(0, src.n, BLOCK * 4):
        to_float32(src, np.arange(s, min(s + BLOCK * 4, src.n)), what)


def guess_dataset(path) -> str | None:
    """The registered dataset whose expected file names include ``path``'s name, if any."""
    from hashkit.data.registry import list_datasets

    name = Path(path).name
    for info in list_datasets():
        for spec in info.files:
            if spec.name == name:
                return info.name
    return None


def check_file(path, name: str | None = None, scan: bool = True) -> dict:
    """Validate ``path`` (a file or a dataset folder) as dataset ``name``.

    Without ``name`` the dataset is guessed from the file name; when no dataset matches only
    the file's variables are described. With a dataset, the whole reader runs (keys, shapes,
    dtypes, 0/1 labels, counts across modalities) and, with ``scan``, every feature and text
    value is checked for NaN/infinity block by block.

    Returns a dict: ``files`` (descriptions), ``dataset`` and, when read, ``summary``.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`hashkit.data.load`, naming the file, the key, what was expected and found.
    """
    from hashkit.data.registry import get_info

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    files = _data_files(path) if path.is_dir() else [path]
    report = {"files": [describe_file(p) for p in files]}
    if name is None:
        for p in files:
            name = guess_dataset(p)
            if name:
                break
    report["dataset"] = name
    if name is None:
        return report
    info = get_info(name)
    folder = path if path.is_dir() else path.parent
    kwargs = {}
    if path.is_file() and "file" in info.options:
        kwargs["file"] = path.name
    ds = info.reader(folder, **kwargs)
    try:
        if scan:
            _scan(ds.text_source, "text")
            if ds.image_source is not None:
                _scan(ds.image_source, "image feature")
        card = ds.labels.sum(axis=1)
        report["summary"] = {
            "dataset": info.name, "n": ds.n, "nlabels": ds.nlabels,
            "image_dim": ds.image_dim, "image_shape": ds.image_shape, "text_dim": ds.text_dim,
            "label_cardinality_mean": float(card.mean()), "items_without_label": int(
                (card == 0).sum()),
            "label_frequency": ds.labels.mean(axis=0).round(4).tolist(),
            "files": [str(f) for f in ds.files], "layout": ds.options.get("layout"),
            "layout_source": ds.layout_source, "found": dict(ds.found),
            "image_input": ds.image_input, "input": ds.input_description,
            "scanned_for_nan": bool(scan)}
    finally:
        ds.close()
    return report


def format_report(report: dict) -> str:
    lines = []
    for f in report["files"]:
        lines.append(f"{f['path']}: {describe_format(f['format'])}")
        for v in f["variables"]:
            cls = f" MATLAB {v['matlab_class']}" if v.get("matlab_class") else ""
            lines.append(f"  {v['key']:<14} shape {tuple(v['shape'])} {v['dtype']}{cls}")
    s = report.get("summary")
    if s:
        lines.append(f"dataset {s['dataset']}: OK, {s['n']} items, {s['nlabels']} labels "
                     f"(mean {s['label_cardinality_mean']:.2f} per item, "
                     f"{s['items_without_label']} without any), text_dim {s['text_dim']}, "
                     f"image " + (f"features {s['image_dim']}-d" if s["image_dim"] else "")
                     + (" + " if s["image_dim"] and s["image_shape"] else "")
                     + (f"pixels {s['image_shape']}" if s["image_shape"] else "")
                     + (", no NaN/inf" if s["scanned_for_nan"] else ""))
        if s.get("layout"):
            lines.append(f"  layout {s['layout']} ({s.get('layout_source', '')})")
        for role, where in s.get("found", {}).items():
            lines.append(f"  found {role}: {where}")
        if s.get("input"):
            lines.append(f"  {s['input']}")
    elif report.get("dataset") is None:
        lines.append("no registered dataset expects this file name; pass --name NAME to "
                     "validate it as one")
    return "\n".join(lines)
