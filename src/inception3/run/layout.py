"""The run directory: the one place that knows its names, and the evaluator's JSON lines in it.

RUN/config.toml               the effective training config (older ones kept as config-to-STEP.toml)
RUN/events.out.tfevents.*     the trainer's TensorBoard summaries
RUN/checkpoints/ckpt-STEP.pt  checkpoints, with `latest` (the newest complete one) and `kept`
RUN/eval/SPLIT.jsonl          one JSON line per evaluated checkpoint, and the evaluator's events
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from inception3.errors import Inception3Error

CHECKPOINTS = "checkpoints"
LATEST = "latest"  # inside checkpoints/: the file name of the newest complete checkpoint
KEPT = "kept"  # inside checkpoints/: names of checkpoints never pruned, one a line
CONFIG = "config.toml"
EVAL = "eval"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def config_path(run_dir: Path) -> Path:
    return Path(run_dir) / CONFIG


def retired_config_path(run_dir: Path, step: int) -> Path:
    """Where a config that stopped being used at `step` is kept when a restart changes it."""
    return Path(run_dir) / f"config-to-{step}.toml"


def eval_dir(run_dir: Path) -> Path:
    return Path(run_dir) / EVAL


def results_path(run_dir: Path, split: str) -> Path:
    return eval_dir(run_dir) / f"{split}.jsonl"


def result_splits(run_dir: Path) -> list[str]:
    """The splits that have evaluation records, sorted."""
    return sorted(path.stem for path in eval_dir(run_dir).glob("*.jsonl"))


def read_results(run_dir: Path, split: str) -> list[dict]:
    """The evaluation records of one split, in the order they were written ('step' made an int).

    A line that is not a record with a 'step' is a user error naming the file and line.
    """
    path = results_path(run_dir, split)
    if not path.exists():
        return []
    records: list[dict] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
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


def append_result(run_dir: Path, split: str, record: dict) -> Path:
    """Append one record as a JSON line, flushed to disk before returning."""
    path = results_path(run_dir, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path
