"""Tiny shard directories and configs shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from inception3.config import TrainConfig
from inception3.data.build import build_dataset
from inception3.train.options import make_config

COLOURS = ((220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 230, 230), (20, 20, 20))


def make_shards(root: Path, per_class: int = 8, label_offset: int = 0) -> Path:
    """5 classes of noisy single-colour 90×84 JPEGs (40 train records in 2 shards); returns the shard dir."""
    rng = np.random.default_rng(0)
    for c, colour in enumerate(COLOURS):
        folder = root / "images" / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.asarray(colour)[None, None, :] + rng.normal(0, 20, (84, 90, 3))
            PIL.Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i}.jpg")
    build_dataset(root / "images", root / "shards", train_shards=2, workers=1, progress=False,
                  label_offset=label_offset)
    return root / "shards"


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> None:
    """One intra-op thread: tiny convolutions only lose time to thread hand-offs, most on a busy CPU."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("tiny"))


def tiny_config(**overrides) -> TrainConfig:
    """A network and batch small enough for a step in well under a second on one CPU core."""
    values = {"image_size": 75, "depth_multiplier": 0.25, "batch_size": 8, "max_steps": 4,
              "learning_rate": 0.01, "lr_schedule": "constant", "num_workers": 0, "log_every": 1,
              "summary_every": 1000, "checkpoint_every": 1000, "device": "cpu"}
    return make_config(values | overrides)
