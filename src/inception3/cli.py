"""`inception3 <command>`: parses arguments, calls one function, prints user errors as one line.

Each command has an `_add_<command>` function that declares its arguments and sets `run`, a
function of the parsed namespace returning an exit code. Imports of the heavy modules happen
inside `run`, so that `inception3 --help` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from inception3.errors import Inception3Error


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inception3",
        description="Inception v3 on PyTorch: build shards, train, evaluate, predict, export.")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(commands)
    return parser


def _version() -> str:
    from inception3 import __version__

    return f"inception3 {__version__}"


_COMMANDS: list = []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `inception3` console script; returns the process exit code."""
    args = _build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except Inception3Error as error:
        print(f"inception3 {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"inception3 {args.command}: interrupted", file=sys.stderr)
        return 130
