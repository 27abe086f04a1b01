"""Tiny shards shared by the training and fault tests: five colours, noisy 90×84 JPEGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image

from inception3.config import BuildConfig
from inception3.data.build import build_dataset

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
    build_dataset(
        BuildConfig(
            root / "images",
            root / "shards",
            train_shards=2,
            workers=1,
            progress=False,
            label_offset=label_offset,
        )
    )
    return root / "shards"
