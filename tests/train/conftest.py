"""Tiny shard directories and configs shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tinyshards import make_shards

from inception3.config import TrainConfig
from inception3.train.options import make_config


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
