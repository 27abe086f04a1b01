"""Tiny shard directories and configs shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tinyshards import make_shards

from inception3.config import TrainConfig
from inception3.model import InceptionV3, parameter_groups
from inception3.train.optim import build_optimizer
from inception3.train.options import make_config
from inception3.train.step import StepResult, train_step


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> None:
    """One intra-op thread: tiny convolutions only lose time to thread hand-offs, most on a busy CPU."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("tiny"))


def tiny_config(**overrides) -> TrainConfig:
    """A network and batch small enough for a step in well under a second on one CPU core."""
    values = {
        "image_size": 75,
        "depth_multiplier": 0.25,
        "batch_size": 8,
        "max_steps": 4,
        "learning_rate": 0.01,
        "lr_schedule": "constant",
        "num_workers": 0,
        "log_every": 1,
        "summary_every": 1000,
        "checkpoint_every": 1000,
        "device": "cpu",
    }
    return make_config(values | overrides)


def one_step(cfg: TrainConfig, step: int, rank: int = 0) -> tuple[StepResult, dict[str, torch.Tensor]]:
    """Global step `step` of rank `rank` on a fresh tiny network (5 classes, seeded) and a fixed random
    uint8 batch of 8: its losses and the weights after it."""
    torch.manual_seed(0)
    model = InceptionV3(num_classes=5, depth_multiplier=0.25, image_size=75).train()
    optimizer = build_optimizer(parameter_groups(model, cfg.weight_decay), cfg)
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (8, 3, 75, 75), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 5, (8,), generator=g)
    result = train_step(model, optimizer, images, labels, step, rank, cfg, num_classes=5)
    return result, {k: v.clone() for k, v in model.state_dict().items()}
