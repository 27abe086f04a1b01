"""Tiny shards, the CLI command of a tiny run, and a bitwise comparison of two runs' final states."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

# One intra-op thread in every process: the same arithmetic in every run, and fair to a shared CPU.
ENV = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
STEP_LINE = re.compile(r"^step (\d+), loss = ", re.MULTILINE)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread in-process too (use with `pytestmark`): the same arithmetic in every run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the command in this process; it must exit 2 with exactly one line on stderr (no traceback,
    no warning). Returns that line."""
    from inception3.cli import main

    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"inception3 {argv[0]}: error: ") and "Traceback" not in err
    return err.strip()


def eval_args(checkpoint: Path, data_dir: Path, split: str = "train") -> list[str]:
    """`eval` arguments scoring one checkpoint file on the CPU, in the process (no workers)."""
    return [
        "eval",
        "--checkpoint",
        str(checkpoint),
        "--data-dir",
        str(data_dir),
        "--split",
        split,
        "--num-workers",
        "0",
        "--device",
        "cpu",
    ]


def inception3(*args: object) -> list[str]:
    """The command line of `inception3 ARGS...` in this interpreter."""
    return [sys.executable, "-m", "inception3", *map(str, args)]


def train_args(
    shards: Path,
    run: Path,
    *,
    max_steps: int,
    checkpoint_every: int = 1000,
    batch_size: int = 8,
    extra: tuple[str, ...] = (),
    ranks: int = 1,
) -> list[str]:
    """`train ...` arguments of a tiny CPU run (75×75, depth 0.25) that logs every step.

    On more than one rank, `--force` lets each rank's batch norm see fewer than 8 images.
    """
    sets = {
        "batch_size": batch_size,
        "num_workers": 0,
        "device": "cpu",
        "log_every": 1,
        "checkpoint_every": checkpoint_every,
    }
    return [
        "train",
        "--data-dir",
        str(shards),
        "--train-dir",
        str(run),
        "--preset",
        "tiny",
        "--max-steps",
        str(max_steps),
        *(f"--set={k}={v}" for k, v in sets.items()),
        *extra,
        *(["--force"] if ranks > 1 else []),
    ]


def logged_steps(text: str) -> list[int]:
    """The steps of the `step N, loss = ...` lines in a trainer's output."""
    return [int(step) for step in STEP_LINE.findall(text)]


def _tensors(state: dict, key: str) -> dict[str, torch.Tensor]:
    if key == "optimizer":
        return {
            f"{i}.{name}": t
            for i, s in state["optimizer"]["state"].items()
            for name, t in s.items()
            if isinstance(t, torch.Tensor)
        }
    return state[key]


def assert_same_state(a: dict, b: dict) -> int:
    """Two checkpoints hold the same step, data position, weights, averages and optimizer state, bit for
    bit; returns how many tensors were compared."""
    assert a["step"] == b["step"] and a["final"] == b["final"]
    assert a["data"] == b["data"]
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    compared = 0
    for key in ("model", "ema", "optimizer"):
        ta, tb = _tensors(a, key), _tensors(b, key)
        assert ta.keys() == tb.keys() and ta, key
        for name in ta:
            assert torch.equal(ta[name], tb[name]), f"{key} {name} differs"
            compared += 1
    return compared


def flip_byte_in_record(shard: Path, record: int, seed: int = 0) -> None:
    """Flip one byte inside the data of record `record` (its length and header CRC stay intact)."""
    data = bytearray(shard.read_bytes())
    offset = 0
    for _ in range(record):
        offset += 12 + int.from_bytes(data[offset : offset + 8], "little") + 4
    length = int.from_bytes(data[offset : offset + 8], "little")
    data[offset + 12 + np.random.default_rng(seed).integers(length)] ^= 0xFF
    shard.write_bytes(bytes(data))
