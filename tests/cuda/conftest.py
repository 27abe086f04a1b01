"""The CUDA checks: skipped, every one, where no CUDA device is visible; run with `pytest -m cuda tests/cuda`.

They prove on a GPU what the CPU suite cannot: the device's colour distortion, bf16 and channels_last
steps, checkpoints that cross between CUDA and the CPU, exact resume on CUDA, eval and predict against
the CPU, the absence of host syncs in a step, and NCCL under torchrun. All at 75×75, width 0.25.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tinyshards import make_shards

import inception3
from inception3.config import TrainConfig
from inception3.train.options import make_config

HERE = Path(__file__).resolve().parent
CUDA = torch.cuda.is_available()
# The directory `inception3` is imported from, for the subprocesses (an absolute PYTHONPATH=src).
PACKAGE_ROOT = Path(inception3.__file__).resolve().parents[1]


@pytest.hookimpl(tryfirst=True)  # before `-m cuda` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this folder `cuda`, and skip them all without a CUDA device."""
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        path = Path(str(getattr(item, "path", None) or item.fspath))  # item.path: pytest >= 7
        if HERE in path.resolve().parents:
            item.add_marker(pytest.mark.cuda)
            if not CUDA:
                item.add_marker(skip)


def bf16_supported() -> bool:
    """Native bf16 (compute capability 8.0, Ampere, or later); older GPUs only emulate it, slowly."""
    return CUDA and torch.cuda.get_device_capability() >= (8, 0)


# Without CUDA the conftest's "needs a CUDA device" is the reason given, not this one.
needs_bf16 = pytest.mark.skipif(
    CUDA and not bf16_supported(), reason="needs bf16 (compute capability 8.0 or later)"
)


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment with the package importable from anywhere, plus `extra`."""
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return os.environ | {"PYTHONPATH": path} | extra


@contextlib.contextmanager
def ieee_fp32() -> Iterator[None]:
    """Full fp32 in cuDNN convolutions and cuBLAS matmuls (no TF32), so CUDA matches the CPU to rounding.

    cuDNN convolutions use TF32 by default on Ampere and later: 10-bit mantissas, errors of ~1e-3
    per layer. torch >= 2.9 has per-backend `fp32_precision` settings; reading the legacy
    `allow_tf32` flags after they were used raises, so only the new ones are touched where they
    exist (torch 2.11 and 2.14 both have them).
    """
    conv, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if hasattr(conv, "conv") and hasattr(matmul, "fp32_precision"):
        before = conv.conv.fp32_precision, matmul.fp32_precision
        conv.conv.fp32_precision, matmul.fp32_precision = "ieee", "ieee"
        try:
            yield
        finally:
            conv.conv.fp32_precision, matmul.fp32_precision = before
        return
    before_legacy = conv.allow_tf32, matmul.allow_tf32
    conv.allow_tf32, matmul.allow_tf32 = False, False
    try:
        yield
    finally:
        conv.allow_tf32, matmul.allow_tf32 = before_legacy


@pytest.fixture
def full_fp32() -> Iterator[None]:
    """`ieee_fp32` for the length of one test."""
    with ieee_fp32():
        yield


@pytest.fixture(scope="session")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tinyshards' 5 colour classes: 40 noisy 90×84 JPEGs in 2 train shards (images in ../images)."""
    return make_shards(tmp_path_factory.mktemp("cuda-tiny"))


def cuda_config(**overrides: object) -> TrainConfig:
    """A tiny CUDA run (75×75, width 0.25, batch 16) that learns within a few dozen steps."""
    values: dict[str, object] = {
        "image_size": 75,
        "depth_multiplier": 0.25,
        "batch_size": 16,
        "max_steps": 30,
        "learning_rate": 0.01,
        "lr_schedule": "constant",
        "num_workers": 0,
        "log_every": 10,
        "summary_every": 1000,
        "checkpoint_every": 1000,
        "device": "cuda",
        "precision": "fp32",
        "channels_last": True,
    }
    return make_config(values | overrides)


@pytest.fixture(scope="session")
def cuda_checkpoint(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The final checkpoint of 60 fp32 steps trained on CUDA through `train()`: weights that tell the
    classes apart (on the CPU: top-1 1.0, loss 0.34), so that top-1 comparisons are not decided by
    near-ties of an untrained network. Batch-norm decay 0.9: statistics that have caught up by then."""
    from inception3.train.loop import train

    cfg = cuda_config(max_steps=60, batch_norm_decay=0.9)
    result = train(cfg, shards, tmp_path_factory.mktemp("cuda-run") / "run", out=io.StringIO())
    assert result.step == 60 and result.checkpoint is not None
    return result.checkpoint
