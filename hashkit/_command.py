"""Running one sub-command: parse its arguments, run it, turn user errors into one line.

Shared by ``hashkit COMMAND`` (:mod:`hashkit.cli`) and the modules that can also be run on their
own (``python -m hashkit.eval``), so a command behaves the same either way.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

__all__ = ["run_command"]

# Errors a user causes (bad input, missing file, missing backend): one line, no traceback.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, RuntimeError)


def run_command(prog: str, description: str, add_arguments: Callable, run: Callable,
                argv: Sequence[str]) -> int:
    """Parse ``argv`` with the command's arguments and run it; returns the exit status.

    A user error prints ``PROG: error: MESSAGE`` on stderr and returns 1; ``HASHKIT_DEBUG=1``
    lets the traceback through instead.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(parser)
    args = parser.parse_args(list(argv))
    try:
        return int(run(args) or 0)
    except USER_ERRORS as exc:
        if os.environ.get("HASHKIT_DEBUG"):
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
