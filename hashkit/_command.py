"""Running one sub-command: parse its arguments, run it, turn user errors into one line.

Shared by ``hashkit COMMAND`` (:mod:`hashkit.cli`) and the modules that can also be run on their
own (``python -m hashkit.eval``), so a command behaves the same either way.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

__all__ = ["run_command", "IntList", "missing_extra", "EXTRAS"]

# Errors a user causes (bad input, missing file, missing backend, a folder that cannot be
# written, a full disk): one line, no traceback.
USER_ERRORS = (ValueError, TypeError, OSError, RuntimeError)

# optional dependency -> the extra that installs it
EXTRAS = {"torch": "train", "tqdm": "train", "cupy": "cuda", "faiss": "bench"}


def missing_extra(exc: BaseException) -> str | None:
    """For an ImportError of an optional dependency: one line saying what to install."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if isinstance(exc, ImportError) and name in EXTRAS:
        extra = EXTRAS[name]
        return f"this needs {name}, which is not installed: pip install 'hashkit[{extra}]'"
    return None


class IntList(argparse.Action):
    """A list of integers in either syntax: ``-k 50 100``, ``-k 50,100`` (or ``-k 50 -k 100``)."""

    def __init__(self, option_strings, dest, nargs="+", **kwargs):
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        out = []
        for v in values if isinstance(values, list) else [values]:
            for part in str(v).split(","):
                if not part.strip():
                    continue
                try:
                    out.append(int(part))
                except ValueError:
                    raise argparse.ArgumentError(self, f"expected integers (50 100 or 50,100), got {v!r}") from None
        previous = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, (list(previous) if isinstance(previous, list) else []) + out)


def _quiet_broken_pipe() -> int:
    # The reader went away (``hashkit eval ... | head``): stop without a traceback, and point
    # stdout at /dev/null so the interpreter's final flush does not raise again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return 141  # what a shell reports for SIGPIPE (128 + 13)


def run_command(prog: str, description: str, add_arguments: Callable, run: Callable,
                argv: Sequence[str]) -> int:
    """Parse ``argv`` with the command's arguments and run it; returns the exit status.

    A user error prints ``PROG: error: MESSAGE`` on stderr and returns 1; Ctrl-C returns 130 and
    a closed pipe 141, each without a traceback; ``HASHKIT_DEBUG=1`` lets tracebacks through.
    """
    debug = bool(os.environ.get("HASHKIT_DEBUG"))
    try:
        parser = argparse.ArgumentParser(prog=prog, description=description)
        add_arguments(parser)
        args = parser.parse_args(list(argv))
        return int(run(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if debug:
            raise
        return _quiet_broken_pipe()
    except ImportError as exc:
        hint = missing_extra(exc)
        if hint is None or debug:
            raise
        print(f"{prog}: error: {hint}", file=sys.stderr)
        return 1
    except USER_ERRORS as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
