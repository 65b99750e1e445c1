"""``hashkit datasets``: list the registered datasets, or check a file.

``hashkit datasets`` lists names, each file layout with the repository whose loader defines it
(files, formats, keys), the protocols with their sources, and where files go;
``hashkit datasets check PATH [--name NAME]`` validates a file or folder and prints what it found.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_datasets_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``datasets`` sub-command's arguments to ``parser``."""
    parser.add_argument("action", nargs="?", choices=("list", "check"), default="list",
                        help="list registered datasets (default) or check PATH")
    parser.add_argument("path", nargs="?", help="file or folder to check")
    parser.add_argument("--name", help="dataset to validate PATH as (default: guessed from "
                                       "the file name)")
    parser.add_argument("--root", help="data folder to show in the listing (default "
                                       "$HASHKIT_DATA/NAME or ~/.hashkit/data/NAME)")
    parser.add_argument("--no-scan", action="store_true",
                        help="check: skip the NaN scan of every feature value")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _listing(root=None) -> list[dict]:
    from hashkit.data.registry import data_root, list_datasets

    out = []
    for info in list_datasets():
        out.append({
            "name": info.name, "title": info.title,
            "where": None if not info.needs_files else str(data_root(info.name, root)),
            "files": [{"name": f.name, "format": f.format, "keys": list(f.keys),
                       "layout": f.layout, "what": f.note, "optional": f.optional}
                      for f in info.files] if info.needs_files else [],
            "protocols": {k: {"query": "stored" if p.kind == "presplit" else p.query,
                              "train": ("all retrieval" if p.train is None else
                                        "stored" if p.kind == "presplit" and not p.train
                                        else p.train),
                              "val": p.val,
                              "retrieval": "stored" if p.kind == "presplit" else (
                                  p.retrieval if p.retrieval is not None else "rest"),
                              "kind": p.kind, "source": p.source}
                          for k, p in info.protocols.items()},
            "layouts": dict(info.layouts),
            "default_protocol": info.default_protocol, "options": info.options})
    return out


def _format_listing(rows) -> str:
    lines = []
    for r in rows:
        lines.append(f"{r['name']}: {r['title']}")
        lines.append(f"  files: {'in ' + r['where'] if r['where'] else 'none needed'}")
        layout = None
        for f in r["files"]:
            if f["layout"] != layout:
                layout = f["layout"]
                src = r.get("layouts", {}).get(layout)
                lines.append(f"    layout {layout}" + (f" [{src}]:" if src else ":"))
            opt = " (optional)" if f["optional"] else ""
            keys = f" key {', '.join(f['keys'])}" if f["keys"] else ""
            lines.append(f"      {f['name']} [{f['format']}]{keys}: {f['what']}{opt}")
        for k, p in r["protocols"].items():
            mark = " (default)" if k == r["default_protocol"] else ""
            lines.append(f"  protocol {k}{mark}: query {p['query']}, retrieval "
                         f"{p['retrieval']}, train {p['train']}, val {p['val']} [{p['kind']}]"
                         f" - {p['source']}")
        if r["options"]:
            lines.append("  options: " + ", ".join(f"{k}={v}" for k, v in r["options"].items()))
    return "\n".join(lines)


def run_datasets(args) -> int:
    """Run ``hashkit datasets`` with parsed ``args``; returns the exit status."""
    if args.action == "list":
        rows = _listing(args.root)
        print(json.dumps(rows, indent=1) if args.json else _format_listing(rows))
        return 0
    if not args.path:
        print("hashkit datasets check: expected PATH (a dataset file or folder)",
              file=sys.stderr)
        return 2
    from hashkit.data.check import check_file, format_report

    try:
        report = check_file(args.path, name=args.name, scan=not args.no_scan)
    except (FileNotFoundError, ValueError) as e:
        print(f"hashkit datasets check: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1, default=str) if args.json else format_report(report))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="hashkit datasets", description=__doc__)
    add_datasets_arguments(parser)
    return run_datasets(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
