"""Atomic writes: a file appears whole or not at all, whatever instant a kill or a full disk strikes.

The one way this project writes a file that something else reads: under a temporary sibling named
`.NAME.tmp-PID` (so two processes never share one, and leftovers are recognisable by name),
flushed and fsynced, renamed over NAME, then the directory fsynced so the rename itself survives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_TEMPORARY = re.compile(r"\.(.+)\.tmp-\d+")


def temporary_name(path: Path) -> Path:
    """The temporary sibling `atomic_write` writes `path` under in this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def leftover_temporaries(directory: Path, ours: Callable[[str], bool]) -> list[Path]:
    """The temporaries of `atomic_write`s that a kill left in `directory` (any process's), for the file
    names `ours` accepts. They are never complete; delete them before writing those files again."""
    found = [(path, _TEMPORARY.fullmatch(path.name)) for path in directory.glob(".*.tmp-*")]
    return sorted(path for path, match in found if match and ours(match[1]))


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary sibling of `path` for binary writing; on a clean exit, make it `path` atomically.

    On an exception the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """`path` holds exactly `text`, written atomically."""
    with atomic_write(path) as f:
        f.write(text.encode())
