"""Checkpoints of CUDA runs: they load on a machine without CUDA, and a resumed CUDA run is exact.

Each run is its own `inception3 train` process with `torch.use_deterministic_algorithms(True)` (and
CUBLAS_WORKSPACE_CONFIG, which cuBLAS reads when it starts), in fp32, so that two processes doing the
same steps do the same arithmetic. Compared bit for bit between a straight 6-step run and one
stopped at step 3 and resumed to 6: every tensor of the weights, the batch-norm statistics and
their update counts, the moving averages of both, and the optimizer state (RMSProp's mean squares
and momenta), plus the step, the data position, the optimizer's hyper-parameters and the logged
losses of steps 3-5. Not compared: wall-clock figures (examples/sec) and the random-generator
states of the checkpoint, which every step re-seeds from (seed, step, rank) anyway.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import subprocess_env

from inception3.run.checkpoint import list_checkpoints, load_checkpoint

pytestmark = pytest.mark.cuda

DETERMINISTIC_TRAIN = (
    "import sys, torch; "
    "torch.use_deterministic_algorithms(True); "
    "torch.backends.cudnn.benchmark = False; "
    "from inception3.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)
LOSS_LINE = re.compile(r"^(step \d+, loss = \S+) \(", re.MULTILINE)


def _train(shards: Path, run: Path, max_steps: int) -> str:
    sets = {
        "image_size": 75,
        "depth_multiplier": 0.25,
        "batch_size": 8,
        "learning_rate": 0.01,
        "lr_schedule": "constant",
        "device": "cuda",
        "precision": "fp32",
        "channels_last": "true",
        "compile": "false",
        "num_workers": 0,
        "log_every": 1,
        "summary_every": 1000,
        "checkpoint_every": 1000,
        "max_steps": max_steps,
    }
    args = ["train", "--data-dir", str(shards), "--train-dir", str(run)]
    args += [f"--set={key}={value}" for key, value in sets.items()]
    done = subprocess.run(
        [sys.executable, "-c", DETERMINISTIC_TRAIN, *args],
        env=subprocess_env(CUBLAS_WORKSPACE_CONFIG=":4096:8"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _tensors(state: dict) -> dict[str, torch.Tensor]:
    """Every tensor the comparison covers, by a name that says where it is."""
    tensors = {f"model.{k}": v for k, v in state["model"].items()}
    tensors |= {f"ema.{k}": v for k, v in state["ema"].items()}
    for index, per_param in state["optimizer"]["state"].items():
        tensors |= {f"optimizer.{index}.{k}": v for k, v in per_param.items() if isinstance(v, torch.Tensor)}
    return tensors


def _assert_loads_without_cuda(checkpoint: Path) -> None:
    """In a process that sees no CUDA device: weights-only load to the CPU, the model, a forward pass."""
    code = (
        "import sys, torch\n"
        "from inception3.weights import load_model\n"
        "assert not torch.cuda.is_available()\n"
        "state = torch.load(sys.argv[1], map_location='cpu', weights_only=True)\n"
        "assert state['step'] == 3, state['step']\n"
        "model, meta = load_model(sys.argv[1])\n"
        "assert all(p.device.type == 'cpu' for p in model.state_dict().values())\n"
        "logits = model(torch.zeros(2, 3, 75, 75))\n"
        "assert logits.shape == (2, 5) and torch.isfinite(logits).all()\n"
        "print('ok', meta.step)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(checkpoint)],
        env=subprocess_env(CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok 3", done.stdout + done.stderr


def test_a_cuda_checkpoint_loads_on_the_cpu_and_resuming_on_cuda_is_bitwise_exact(
    shards: Path, tmp_path: Path
) -> None:
    straight_log = _train(shards, tmp_path / "straight", max_steps=6)
    _train(shards, tmp_path / "resumed", max_steps=3)
    [(step, stopped)] = list_checkpoints(tmp_path / "resumed")
    assert step == 3

    # Written by a CUDA process, read back on the CPU: every tensor lands there, and the model runs.
    state = torch.load(stopped, map_location="cpu", weights_only=True)
    assert all(t.device.type == "cpu" for t in _tensors(state).values())
    _assert_loads_without_cuda(stopped)

    resumed_log = _train(shards, tmp_path / "resumed", max_steps=6)
    assert "resuming from" in resumed_log and "at step 3" in resumed_log

    a = load_checkpoint(list_checkpoints(tmp_path / "straight")[-1][1])
    b = load_checkpoint(list_checkpoints(tmp_path / "resumed")[-1][1])
    assert a["step"] == b["step"] == 6
    assert a["data"] == b["data"]
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys() and len(ta) > 100
    differ = [name for name in ta if not torch.equal(ta[name], tb[name])]
    assert not differ, f"{len(differ)} of {len(ta)} tensors differ after resuming, e.g. {differ[:5]}"
    # The logged losses of the steps the resumed process ran are those of the straight run.
    later = [line for line in LOSS_LINE.findall(straight_log) if int(line.split()[1].rstrip(",")) >= 3]
    assert LOSS_LINE.findall(resumed_log) == later and len(later) == 3
