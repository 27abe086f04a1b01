"""The run directory: the one place that knows its names, and the evaluator's JSON lines in it.

RUN/config.toml               the effective training config (older ones kept as config-to-STEP.toml)
RUN/.trainer.lock             the running trainer's hold on the run (run/lock.py)
RUN/.trainer.lock.guard       locked for a moment while the lock changes hands (run/lock.py)
RUN/events.out.tfevents.*     the trainer's TensorBoard summaries
RUN/checkpoints/ckpt-STEP.pt  checkpoints, with `latest` (the newest complete one) and `kept`
RUN/eval/SPLIT.jsonl          one JSON line per evaluated checkpoint, and the evaluator's events

A run's folders and files are its own: `checkpoint_dir` and `eval_dir` refuse a link that leads out
of the run (another run's checkpoints would be resumed, written over and pruned as this run's), and
the results files a link out of RUN/eval. What a run owns (`is_run_dir`, `is_run_name`) no other
command writes (`files.check_output`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from inception3.errors import Inception3Error
from inception3.files import decode_utf8, inside, require_utf8_path

CHECKPOINTS = "checkpoints"
LATEST = "latest"  # inside checkpoints/: the file name of the newest complete checkpoint
KEPT = "kept"  # inside checkpoints/: names of checkpoints never pruned, one a line
CONFIG = "config.toml"
LOCK = ".trainer.lock"  # the running trainer's hold on the run (run/lock.py)
LOCK_GUARD = LOCK + ".guard"  # locked for a moment while the lock changes hands (run/lock.py)
EVAL = "eval"


def require_utf8_run_dir(run_dir: Path) -> Path:
    """`run_dir` when its path is UTF-8; refused in one line otherwise, before anything is written there:
    TensorBoard's event writer takes only UTF-8 paths."""
    return require_utf8_path(Path(run_dir), "run directory", "TensorBoard's event files need a UTF-8 path")


def checkpoint_dir(run_dir: Path) -> Path:
    """RUN/checkpoints; refused when it is a link that leads out of the run (`_own`)."""
    return _own(
        Path(run_dir) / CHECKPOINTS,
        "checkpoints are its own: another run's would be resumed, written over and pruned as this one's",
    )


def lock_path(run_dir: Path) -> Path:
    return Path(run_dir) / LOCK


def config_path(run_dir: Path) -> Path:
    return Path(run_dir) / CONFIG


def retired_config_path(run_dir: Path, step: int) -> Path:
    """Where a config that stopped being used at `step` is kept when a restart changes it."""
    return Path(run_dir) / f"config-to-{step}.toml"


def eval_dir(run_dir: Path) -> Path:
    """RUN/eval; refused when it is a link that leads out of the run (`_own`)."""
    return _own(Path(run_dir) / EVAL, "evaluation records are its own")


def is_run_dir(path: Path) -> bool:
    """Whether `path` is (or looks like) a training run: it holds a config, checkpoints, evaluation
    records or a trainer's lock."""
    path = Path(path)
    return (
        (path / CONFIG).is_file()
        or (path / CHECKPOINTS).is_dir()
        or (path / EVAL).is_dir()
        or (path / LOCK).exists()
    )


_RUN_FILE = re.compile(r"config(-to-\d+)?\.toml|.*tfevents.*")


def is_run_name(name: str) -> bool:
    """Whether `name`, directly in a run directory, is one of the run's own files or folders."""
    return name in (CHECKPOINTS, EVAL, LOCK, LOCK_GUARD) or _RUN_FILE.fullmatch(name) is not None


_SPLIT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def results_path(run_dir: Path, split: str) -> Path:
    """RUN/eval/SPLIT.jsonl; a split name that is not a plain name (a path, `..`) is refused."""
    if not _SPLIT.fullmatch(split) or len(split) > 200:
        raise Inception3Error(
            f"split {split[:100]!r}: not a plain name (letters, digits, '_', '-', '.'); its results "
            f"file would not be in {eval_dir(run_dir)}"
        )
    return eval_dir(run_dir) / f"{split}.jsonl"


def _own(path: Path, why: str) -> Path:
    """`path`, unless it is a link that leads out of its folder (a link to a sibling is fine); `why`
    says why the run's files there are its own."""
    if path.is_symlink() and not inside(path, path.parent):
        kind = "folder" if path.name in (CHECKPOINTS, EVAL) else "file"
        raise Inception3Error(
            f"{path}: a link to {os.readlink(path)}, outside {path.parent}; a run's {why}: replace the "
            f"link with a {kind} (or remove it)"
        )
    return path


def _own_file(path: Path) -> Path:
    """`path`, unless it is a link that leads out of RUN/eval: the run's results are its own."""
    return _own(path, "evaluation records are its own")


def result_splits(run_dir: Path) -> list[str]:
    """The splits that have evaluation records, sorted (files only, under plain names)."""
    found = eval_dir(run_dir).glob("*.jsonl")
    return sorted(p.stem for p in found if _SPLIT.fullmatch(p.stem) and (p.is_file() or p.is_symlink()))


def read_results(run_dir: Path, split: str) -> list[dict]:
    """The evaluation records of one split, in the order they were written ('step' made an int).

    A line that is not a record with a 'step' is a user error naming the file and line. Read under a
    shared lock, so never while `append_result` is part way through a line.
    """
    path = _own_file(results_path(run_dir, split))
    if not path.exists():
        return []
    with open(path, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)  # released when the file is closed
        return _parse(path, f.read())


def _parse(path: Path, data: bytes) -> list[dict]:
    records: list[dict] = []
    text = decode_utf8(data, path, "an evaluation results file holds JSON lines: fix or remove the line")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records.append(record | {"step": int(record["step"])})
        except (ValueError, KeyError, TypeError) as error:
            raise Inception3Error(
                f"{path}:{number}: not an evaluation record with a 'step' ({error}); "
                "remove the line and run again"
            ) from None
    return records


def append_result(
    run_dir: Path, split: str, record: dict, *, duplicate: Callable[[dict], bool] | None = None
) -> dict | None:
    """Append one record as a JSON line, flushed to disk before returning (never out of RUN/eval),
    unless a record already there is a `duplicate` of it: then that record, and nothing is written.

    Check and append are one step under an exclusive lock of the file (`flock`), so of evaluators
    racing to record one step exactly one does. A write that fails part way (a full disk) is cut
    back off, so the file never holds half a line. Returns None once the record is appended.
    """
    path = _own_file(results_path(run_dir, split))
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record) + "\n").encode()
    with open(path, "a+b", buffering=0) as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        if duplicate is not None:
            f.seek(0)
            found = next((old for old in _parse(path, f.readall()) if duplicate(old)), None)
            if found is not None:
                return found
        start = f.seek(0, os.SEEK_END)
        try:
            written = 0
            while written < len(line):
                written += f.write(line[written:])
            os.fsync(f.fileno())
        except OSError:
            os.ftruncate(f.fileno(), start)
            raise
    return None
