"""Writing a build's shards: one task per shard, run in worker processes behind one progress bar.

Each task checks, converts and writes its images (`prepare_image`), then records what went into
the shard beside the unfinished build (`ShardResult`), so that a re-run need not redo it.

Ctrl-C reaches every process of the terminal's group, workers included. Workers ignore it from the
moment they are forked (`_sigint_deferred`); the parent alone stops: it terminates the workers,
removes the shards they left half-written, and lets the interrupt reach the CLI (one line, exit
code 130).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import Value
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from tqdm import tqdm

from inception3.data.example import Box, ImageRecord
from inception3.data.images import BadImageError, prepare_image
from inception3.data.records import write_records
from inception3.files import leftover_temporaries, write_text_atomic


@dataclass(frozen=True)
class ShardTask:
    """One shard to write: its path, where its result goes, its files and their boxes."""

    path: Path
    state_path: Path
    files: tuple[tuple[str, int, str], ...]  # (file path, stored label, class name)
    boxes: dict[str, tuple[Box, ...]]


@dataclass
class ShardResult:
    """What went into one shard; kept beside an unfinished build so a re-run need not redo it."""

    name: str
    records: int = 0
    boxes: int = 0
    heights: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)  # (file, what it was)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)


_progress = None  # a worker process's handle on the parent's image counter, for the progress bar


def _init_worker(counter: Synchronized) -> None:
    """A worker's start: Ctrl-C is the parent's to handle."""
    global _progress
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _progress = counter


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """While the pool forks its workers, a Ctrl-C is remembered, then raised once they are started.

    A forked worker inherits the parent's handler until `_init_worker` ignores SIGINT: this one, which
    raises nothing, rather than Python's, which would print a traceback from the worker (or "Exception
    ignored" from a fork hook). Blocking the signal instead would not do: torch's threads, which do not
    block it, would take it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: interrupted.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt


def _stop(pool: ProcessPoolExecutor, tasks: list[ShardTask]) -> None:
    """Stop the workers now (they ignore Ctrl-C) and remove the shards they were writing."""
    pool.shutdown(wait=False, cancel_futures=True)
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()
    for folder in {task.path.parent for task in tasks}:
        names = {task.path.name for task in tasks} | {task.state_path.name for task in tasks}
        for leftover in leftover_temporaries(folder, names.__contains__):
            leftover.unlink(missing_ok=True)


def _write_shard(task: ShardTask) -> ShardResult:
    """Check, convert and write the images of one shard; bad files are listed, never fatal."""
    result = ShardResult(task.path.name)

    def records() -> Iterator[bytes]:
        for file, label, class_name in task.files:
            try:
                image = prepare_image(Path(file))
            except BadImageError as error:
                result.skipped.append((file, str(error)))
            else:
                boxes = task.boxes.get(Path(file).stem, ())
                result.records += 1
                result.boxes += len(boxes)
                result.heights.append(image.height)
                result.widths.append(image.width)
                if image.converted_from:
                    result.converted.append((file, image.converted_from))
                yield ImageRecord(
                    encoded=image.jpeg,
                    label=label,
                    height=image.height,
                    width=image.width,
                    filename=Path(file).name,
                    text=class_name,
                    synset=class_name,
                    boxes=boxes,
                ).serialize()
            if _progress is not None:
                with _progress.get_lock():
                    _progress.value += 1

    write_records(task.path, records())
    write_text_atomic(task.state_path, json.dumps(asdict(result)))
    return result


def write_shards(tasks: list[ShardTask], workers: int, progress: bool | None) -> Iterator[ShardResult]:
    """Write the shards, `workers` processes at a time, with an images/s progress bar."""
    total = sum(len(t.files) for t in tasks)
    disable = not sys.stderr.isatty() if progress is None else not progress
    with tqdm(total=total, unit="img", desc="build", disable=disable) as bar:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                result = _write_shard(task)
                bar.update(result.records + len(result.skipped))
                yield result
            return
        counter = Value("q", 0)
        pool = ProcessPoolExecutor(min(workers, len(tasks)), initializer=_init_worker, initargs=(counter,))
        try:
            with _sigint_deferred():  # the workers are forked at the first submit
                pending = {pool.submit(_write_shard, task) for task in tasks}
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                bar.update(counter.value - bar.n)
                for future in done:
                    yield future.result()
            bar.update(counter.value - bar.n)
        except BaseException:  # Ctrl-C, a failed shard, or the caller closing the generator
            _stop(pool, tasks)
            raise
        pool.shutdown()
