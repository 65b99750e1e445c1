"""Text releases: name lists and whitespace-separated matrices (UGACH's ``list/`` and
``feature/`` files), read lazily.

UGACH (PKU-ICST-MIPL/UGACH_AAAI2018, ``UGACH-*/utils.py``) reads a list file as
``open(f).read().split('\\r\\n')`` and drops the last (empty) entry, and a feature file as
``read().split('\\n')`` with each line ``split()`` into floats (its sample files end each row with
``' \\r\\n'``). :class:`TextMatrixSource` finds the line starts in one pass over the file (in
64 MiB blocks, 8 bytes kept per row) and parses only the rows asked for, straight into float32,
so a 184,712 x 4096 NUS-WIDE feature file is never held twice (nor once, unless asked).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from hashkit.data._matfile import BLOCK, Source

_SCAN = 64 << 20


def read_lines(path) -> list:
    """Non-empty lines of a list file, stripped (``\\r\\n`` or ``\\n`` endings)."""
    path = Path(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = [ln.strip() for ln in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    for i, ln in enumerate(lines):
        if not ln:
            raise ValueError(f"{path}: expected one entry per line, found an empty line "
                             f"{i + 1} of {len(lines)}")
    return lines


def _line_starts(path: Path) -> np.ndarray:
    """Byte offsets of each non-empty row, plus the end offset, as int64 (n + 1,)."""
    starts = [np.zeros(1, np.int64)]
    size = path.stat().st_size
    with open(path, "rb") as fh:
        pos = 0
        while True:
            block = fh.read(_SCAN)
            if not block:
                break
            nl = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10).astype(np.int64)
            starts.append(nl + pos + 1)
            pos += len(block)
    offs = np.concatenate(starts)
    if offs[-1] != size:
        offs = np.append(offs, size)        # last row without a newline
    # drop trailing blank rows (a final "\r\n" or "\n" is not a row)
    with open(path, "rb") as fh:
        while len(offs) > 1:
            fh.seek(offs[-2])
            if fh.read(int(offs[-1] - offs[-2])).strip():
                break
            offs = offs[:-1]
    return offs


class TextMatrixSource(Source):
    """Rows of a whitespace-separated float matrix in a text file, parsed on demand.

    Raises ``ValueError`` naming the file (and the line) when a row has a different number of
    values than the first one or holds something that is not a number.
    """

    def __init__(self, path, origin: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: file not found")
        self.origin = origin or str(self.path)
        self.offsets = _line_starts(self.path)
        self.n = len(self.offsets) - 1
        if self.n == 0:
            raise ValueError(f"{self.path}: expected rows of numbers, found an empty file")
        first = self._lines(np.array([0]))[0]
        dim = len(first.split())
        if dim == 0:
            raise ValueError(f"{self.path}: expected rows of numbers, found an empty first line")
        self.item_shape = (dim,)
        self.dtype = np.dtype(np.float32)

    def _lines(self, rows) -> list:
        out = []
        with open(self.path, "rb") as fh:
            for r in rows:
                fh.seek(int(self.offsets[r]))
                out.append(fh.read(int(self.offsets[r + 1] - self.offsets[r])).decode("latin-1"))
        return out

    def take(self, idx):
        idx = np.asarray(idx, dtype=np.int64).ravel()
        out = np.empty((len(idx), self.item_shape[0]), dtype=np.float32)
        order = np.argsort(idx, kind="stable")
        for s in range(0, len(idx), BLOCK):
            part = idx[order[s:s + BLOCK]]
            lines = self._lines(part)
            try:
                block = np.loadtxt(io.StringIO("".join(lines)), dtype=np.float32, ndmin=2)
            except ValueError as e:
                raise ValueError(f"{self.path}: expected {self.item_shape[0]} numbers per row "
                                 f"(rows {int(part.min()) + 1}..{int(part.max()) + 1}), "
                                 f"{' '.join(str(e).split())}") from None
            if block.shape != (len(part), self.item_shape[0]):
                raise ValueError(f"{self.path}: expected {len(part)} rows of "
                                 f"{self.item_shape[0]} numbers, found shape {block.shape} "
                                 f"(rows {int(part.min()) + 1}..{int(part.max()) + 1})")
            out[order[s:s + BLOCK]] = block
        return out


def read_label_lines(path, nlabels: int | None = None) -> np.ndarray:
    """UGACH label file: one row of space-separated 0/1 per item -> uint8 ``(n, L)``."""
    path = Path(path)
    lines = read_lines(path)
    if not lines:
        raise ValueError(f"{path}: expected rows of 0/1 labels, found an empty file")
    try:
        arr = np.loadtxt(io.StringIO("\n".join(lines)), dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: expected rows of space-separated 0/1 labels, "
                         f"{' '.join(str(e).split())}") from None
    if nlabels is not None and arr.shape[1] != nlabels:
        raise ValueError(f"{path}: expected {nlabels} labels per row, found shape {arr.shape}")
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{path}: expected labels in {{0, 1}}, found {arr[i, j]!r} at line "
                         f"{i + 1}, label {j}")
    return arr.astype(np.uint8)
