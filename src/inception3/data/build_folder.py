"""A build's output folder: its lock, the state of an unfinished build, a killed build's leftovers.

A build holds the folder's lock while it writes there, keeps per-shard results in `STATE_DIR`
until it completes, and refuses to mix its files with another build's.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from inception3.data.meta import DATASET_JSON, read_dataset_json, shard_splits
from inception3.errors import Inception3Error
from inception3.files import leftover_temporaries

STATE_DIR = ".inception3-build"  # per-shard results of an unfinished build; removed when it completes
LOCK_FILE = ".build.lock"  # held (flock) by the build writing into an output folder; removed at the end


@contextmanager
def locked(output_dir: Path) -> Iterator[None]:
    """Hold the output folder's lock for the build; a second build into it is refused in one line.

    `flock` is released by the kernel when the process ends, however it ends, so a killed build
    never leaves the folder locked; the file itself is removed by the build that holds it.
    """
    path = output_dir / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise Inception3Error(
                f"{output_dir}: another inception3 build (process {holder}) is writing there; wait "
                "for it to finish, or use another --output-dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder before us may have removed the file we opened: lock the one that is there
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        Path(path).unlink(missing_ok=True)
        os.close(fd)


def is_built_already(output_dir: Path, state_dir: Path, fingerprint: str) -> bool:
    """True when this exact build is already complete; an unfinished one of the same plan is resumed.

    Raises Inception3Error rather than mix with, or overwrite, another build's files.
    """
    plan_path = state_dir / "plan.json"
    if plan_path.exists():
        if json.loads(plan_path.read_text()).get("fingerprint") != fingerprint:
            raise Inception3Error(
                f"{output_dir}: holds an unfinished build of other images or shard counts; "
                "use an empty --output-dir, or repeat the original command to finish it"
            )
        return False
    recorded = read_dataset_json(output_dir)
    if recorded is not None:
        if recorded.build.get("fingerprint") == fingerprint:
            return True
        raise Inception3Error(
            f"{output_dir}: already holds a dataset built from other images or shard "
            f"counts ({DATASET_JSON}); use an empty --output-dir"
        )
    if output_dir.exists() and shard_splits(output_dir):
        raise Inception3Error(f"{output_dir}: already holds shards; use an empty --output-dir")
    return False


def remove_partial_writes(output_dir: Path, names: set[str]) -> None:
    """Delete the temporaries of `names` that a killed build left half-written."""
    for path in leftover_temporaries(output_dir, names.__contains__):
        path.unlink(missing_ok=True)
