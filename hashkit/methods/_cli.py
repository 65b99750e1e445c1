"""``hashkit list-methods``: the method registry from the command line."""

from __future__ import annotations

import argparse
import json

from .._io import json_default
from . import get_method, list_methods

__all__ = ["add_list_methods_arguments", "run_list_methods"]


def add_list_methods_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hashkit list-methods``."""
    parser.add_argument("-v", "--verbose", action="store_true", help="also print each method's defaults")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--plugin", action="append", metavar="MODULE",
                        help="import MODULE first (methods registered outside hashkit; installed packages' "
                             "'hashkit.methods' entry points are always loaded)")


def run_list_methods(args: argparse.Namespace) -> int:
    """``hashkit list-methods``: the registry, one line per method (defaults with -v)."""
    from ._plugins import load_plugins

    load_plugins(getattr(args, "plugin", None) or ())
    rows = []
    for name in list_methods():
        cls = get_method(name)
        rows.append({"name": name, "supervised": cls.supervised, "torch": cls.uses_torch,
                     "description": cls.describe(), "defaults": cls.default_config(),
                     "dataset_defaults": cls.dataset_defaults})
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2, default=json_default))
        return 0
    for r in rows:
        kind = "supervised" if r["supervised"] else "unsupervised"
        print(f"{r['name']:<12} {kind:<12} {r['description']}")
        if getattr(args, "verbose", False):
            print(f"{'':<12} defaults: {json.dumps(r['defaults'], sort_keys=True)}")
            for ds_name, over in sorted(r["dataset_defaults"].items()):
                print(f"{'':<12} on {ds_name}: {json.dumps(over, sort_keys=True)}")
    return 0
