"""The ``hashkit`` command line: ``hashkit COMMAND [options]``.

Each command lives in the module that owns its work; this file only names the commands and
imports the one that was asked for, so ``hashkit info`` does not pay for importing PyTorch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from ._command import missing_extra, run_command

# command -> (module, function adding its arguments, function running it, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "train": ("hashkit.train", "add_train_arguments", "run_train", "train a method on a dataset"),
    "encode": ("hashkit.encode", "add_encode_arguments", "run_encode", "encode features with a trained run"),
    "list-methods": ("hashkit.methods._cli", "add_list_methods_arguments", "run_list_methods",
                     "list the registered methods"),
    "eval": ("hashkit.eval", "add_eval_arguments", "run_eval", "evaluate saved code files"),
    "report": ("hashkit.tables", "add_report_arguments", "run_report",
               "tables (mean ± std over seeds) and figures of several runs, for a paper"),
    "search": ("hashkit.search_cli", "add_search_arguments", "run_search", "exact top-k / radius search"),
    "datasets": ("hashkit.data.cli", "add_datasets_arguments", "run_datasets",
                 "list supported datasets, or check a dataset file"),
    "bench": ("hashkit._bench", "add_bench_arguments", "run_bench", "quick kernel timing on this machine"),
    "info": ("hashkit.kernels._select", "add_info_arguments", "run_info", "what was built and which kernels run"),
}


# Commands that need PyTorch (the "train" extra). Checked before the command's module is
# imported: without torch the method registry would offer only the methods that import without
# it, and "invalid choice: 'dcmh'" would hide what is missing.
NEEDS_TORCH = ("train", "encode", "list-methods")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _top_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hashkit", description="Cross-modal hashing: train, encode, search, evaluate.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, _, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _top_parser().print_help()
        return 0
    if argv[0] == "--version":
        from ._version import __version__

        print(__version__)
        return 0
    command = argv[0]
    if command not in COMMANDS:
        _top_parser().print_usage(sys.stderr)
        print(f"hashkit: unknown command {command!r}; expected one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, add_name, run_name, help_ = COMMANDS[command]
    if command in NEEDS_TORCH and not _installed("torch") and "-h" not in argv and "--help" not in argv:
        print(f"hashkit {command}: error: this needs torch, which is not installed: pip install 'hashkit[train]'",
              file=sys.stderr)
        return 1
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        # hashkit train / encode / list-methods need PyTorch, an extra since the core (eval,
        # report, search, metrics) installs without it.
        hint = missing_extra(exc)
        if hint is None:
            raise
        print(f"hashkit {command}: error: {hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nhashkit {command}: interrupted", file=sys.stderr)
        return 130
    return run_command(f"hashkit {command}", help_, getattr(mod, add_name), getattr(mod, run_name), argv[1:])


if __name__ == "__main__":
    sys.exit(main())
