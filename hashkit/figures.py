"""Paper figures: precision-recall by Hamming radius and precision@k, one panel per direction.

Used by ``hashkit eval --plot`` (one line per code set) and ``hashkit report --plot`` (one line per
method, the mean over seeds). matplotlib's object API only (no pyplot, no global state); every
file is written atomically, as PNG, PDF or SVG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

__all__ = ["plot_curves", "check_plot_dir", "FORMATS", "DIRECTION_TITLES"]

FORMATS = ("png", "pdf", "svg")
DIRECTION_TITLES = {"i2t": "Image → Text", "t2i": "Text → Image", "i2i": "Image → Image", "t2t": "Text → Text"}
_ORDER = ("i2t", "t2i", "i2i", "t2t")
# distinct markers as well as colours, so that lines stay apart in a grey-scale print
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def check_plot_dir(out_dir, name: str = "--plot") -> Path:
    """The folder figures go to: refused with one line when it is an existing file."""
    p = Path(out_dir)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{name}: expected a folder to write the figures into, got the file {p}")
    return p


def parse_formats(text: str | Sequence[str]) -> list[str]:
    """``"png,pdf"`` or a sequence -> checked, de-duplicated formats."""
    items = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not items:
        raise ValueError(f"--plot-format: expected one or more of {', '.join(FORMATS)}, got none")
    for f in items:
        if f not in FORMATS:
            raise ValueError(f"--plot-format: expected one or more of {', '.join(FORMATS)}, got {f!r}")
    return list(dict.fromkeys(items))


def plot_curves(series: Sequence[dict], out_dir: str | os.PathLike, formats: Sequence[str] = ("png",),
                stem: str = "", subtitle: str = "") -> list[Path]:
    """Write ``{stem}pr_radius.{fmt}`` and ``{stem}precision_at_k.{fmt}`` into ``out_dir``.

    Parameters
    ----------
    series : one dict per line: ``{"label": str, "directions": {direction: {"pr": {...}, "pk":
        {...}}}}`` with the curves as :func:`hashkit.metrics.report` returns them (``pr``:
        radius / precision / recall; ``pk``: k / precision). Each direction present in any series
        gets its own panel.
    out_dir : folder (created if needed; an existing file is refused).
    formats : any of ``"png"``, ``"pdf"``, ``"svg"``.
    stem : prefix of the file names (e.g. ``"32bits_"``).
    subtitle : added to each figure's title (e.g. ``"32 bits"``).

    The PR figure leaves out the radii at which recall is 0 (nothing relevant retrieved yet):
    their precision is 0 by the references' convention when nothing is retrieved at all, and
    a point at recall 0 says nothing about the trade-off the curve shows.

    Returns
    -------
    The paths written.

    Raises
    ------
    ValueError
        ``out_dir`` is a file; an unknown format.
    """
    from matplotlib.figure import Figure

    from ._io import atomic_path

    out = check_plot_dir(out_dir)
    formats = parse_formats(formats)
    written: list[Path] = []
    specs = [("pr", "pr_radius", "recall", "precision", "Recall", "Precision",
              "Precision-recall (Hamming radius 0 … nbits)"),
             ("pk", "precision_at_k", "k", "precision", "Number of retrieved items k", "Precision",
              "Precision at k")]
    for key, name, xk, yk, xlabel, ylabel, title in specs:
        dirs = [d for d in _ORDER if any(key in s["directions"].get(d, {}) for s in series)]
        if not dirs:
            continue
        ncol = len(dirs)
        fig = Figure(figsize=(3.4 * ncol + 0.4, 3.5), dpi=150, layout="constrained")
        axes = fig.subplots(1, ncol, squeeze=False, sharey=True)[0]
        handles = {}
        for ax, d in zip(axes, dirs):
            for i, s in enumerate(series):
                c = s["directions"].get(d, {}).get(key)
                if c is None:
                    continue
                xs, ys = list(c[xk]), list(c[yk])
                if key == "pr":
                    keep = [i for i, x in enumerate(xs) if x > 0]
                    xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
                n = len(xs)
                (line,) = ax.plot(xs, ys, marker=_MARKERS[i % len(_MARKERS)], markersize=3.5,
                                  markevery=max(1, n // 12), linewidth=1.3, label=s["label"], color=f"C{i % 10}")
                handles.setdefault(s["label"], line)
            ax.set_title(DIRECTION_TITLES[d], fontsize=10)
            ax.set_xlabel(xlabel, fontsize=9)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
            ax.set_ylim(-0.02, 1.02)
            if key == "pr":
                ax.set_xlim(-0.02, 1.02)
        axes[0].set_ylabel(ylabel, fontsize=9)
        fig.suptitle(f"{title}, {subtitle}" if subtitle else title, fontsize=10)
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                       ncol=min(len(handles), 4), fontsize=8, frameon=False)
        for fmt in formats:
            path = out / f"{stem}{name}.{fmt}"
            with atomic_path(path, suffix=f".{fmt}") as tmp:
                fig.savefig(tmp, format=fmt, bbox_inches="tight", pad_inches=0.05)
            written.append(path)
    return written
