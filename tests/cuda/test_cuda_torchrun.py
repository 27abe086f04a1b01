"""`torchrun --nproc-per-node 2` on two GPUs: NCCL forms the group, both ranks train, rank 0 checkpoints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import bf16_supported, subprocess_env

from inception3.run.checkpoint import list_checkpoints, load_checkpoint

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        torch.cuda.is_available() and torch.cuda.device_count() < 2,
        reason=f"needs 2 CUDA devices for NCCL (found {torch.cuda.device_count()})",
    ),
]


def test_two_ranks_with_nccl_train_a_few_steps(shards: Path, tmp_path: Path) -> None:
    sets = {
        "image_size": 75,
        "depth_multiplier": 0.25,
        "batch_size": 16,  # 8 a rank: the fewest per-rank batch-norm statistics allow without sync
        "learning_rate": 0.01,
        "lr_schedule": "constant",
        "device": "cuda",
        "precision": "bf16" if bf16_supported() else "fp32",
        "channels_last": "true",
        "num_workers": 1,
        "log_every": 1,
        "summary_every": 1000,
        "checkpoint_every": 1000,
        "max_steps": 4,
    }
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += ["-m", "inception3", "train", "--data-dir", str(shards), "--train-dir", str(run)]
    command += [f"--set={key}={value}" for key, value in sets.items()]
    done = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    steps = [int(s) for s in re.findall(r"^step (\d+), loss = ", done.stdout, re.MULTILINE)]
    assert steps == [0, 1, 2, 3], output  # rank 0 alone prints
    [(step, path)] = list_checkpoints(run)
    state = load_checkpoint(path)
    assert step == 4 and state["step"] == 4
    assert state["data"]["world_size"] == 2  # the data position counts both ranks' share
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
