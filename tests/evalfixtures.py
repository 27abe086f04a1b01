"""Tiny datasets and checkpoints shared by the evaluation, prediction and export tests."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from inception3.config import BuildConfig
from inception3.data.build import build_dataset
from inception3.model import BatchNorm, InceptionV3
from inception3.run.checkpoint import save_checkpoint

CLASSES = ("ant", "bee", "cat")
IMAGE_SIZE = 75


def write_image(path: Path, seed: int, height: int = 80, width: int = 90) -> Path:
    """A textured RGB JPEG (smooth random colours), different for every seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    image = PIL.Image.fromarray(coarse).resize((width, height), PIL.Image.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=95)
    return path


def make_folders(root: Path, counts: dict[str, int]) -> Path:
    """root/<split>/<class>/<i>.jpg with counts[split] images spread over CLASSES."""
    seed = 0
    for split, count in counts.items():
        for i in range(count):
            write_image(root / split / CLASSES[i % len(CLASSES)] / f"{split}{i}.jpg", seed)
            seed += 1
    return root


def make_shards(root: Path, validation: int = 7, train: int = 3) -> Path:
    """Shards of `train` + `validation` tiny images in 3 classes: root/shards."""
    images = make_folders(root / "images", {"train": train, "validation": validation})
    build_dataset(
        BuildConfig(
            images / "train",
            root / "shards",
            validation_dir=images / "validation",
            train_shards=1,
            validation_shards=2,
            workers=1,
            progress=False,
        )
    )
    return root / "shards"


def tiny_model(seed: int) -> InceptionV3:
    torch.manual_seed(seed)
    return InceptionV3(num_classes=len(CLASSES), depth_multiplier=0.25, image_size=IMAGE_SIZE).eval()


def randomize_statistics(model: InceptionV3, seed: int) -> InceptionV3:
    """Moving statistics of random images (so activations keep their scale) and random betas."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith("beta"):
                value.copy_(torch.randn(value.shape, generator=generator) * 0.5)
        for module in model.modules():
            if isinstance(module, BatchNorm):  # a debiased first update keeps the batch's statistics
                module.num_batches_tracked.zero_()
        model.train()(torch.rand(8, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 2 - 1)
    return model.eval()


@functools.cache
def _state(seed: int, ema_seed: int | None) -> dict:
    model = randomize_statistics(tiny_model(seed), seed)
    ema = randomize_statistics(tiny_model(ema_seed), ema_seed) if ema_seed is not None else model
    return {
        "model_config": dataclasses.asdict(model.config),
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": {},
        "data": {"position": 0},
        "rng": {},
        "config": {},
        "class_names": list(CLASSES),
        "image_size": IMAGE_SIZE,
    }


def write_checkpoint(
    run_dir: Path,
    step: int,
    *,
    seed: int = 0,
    ema_seed: int | None = None,
    final: bool = False,
    keep: int = 0,
) -> Path:
    """A checkpoint in the trainer's layout: raw weights from `seed`, averaged ones from `ema_seed`."""
    return save_checkpoint(run_dir, step, _state(seed, ema_seed), keep=keep, final=final)
