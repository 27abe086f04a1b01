"""A tiny network and a checkpoint dict of it, for the checkpoint and weights tests."""

from __future__ import annotations

import dataclasses

import torch

from inception3.model import InceptionV3


def tiny_model(num_classes: int = 5, seed: int = 0) -> InceptionV3:
    torch.manual_seed(seed)
    return InceptionV3(num_classes=num_classes, depth_multiplier=0.25, image_size=75)


def checkpoint_state(model: InceptionV3, ema: InceptionV3 | None = None) -> dict:
    return {
        "model_config": dataclasses.asdict(model.config),
        "model": model.state_dict(),
        "ema": (ema or model).state_dict(),
        "optimizer": {},
        "data": {"position": 8},
        "rng": {"torch": torch.get_rng_state()},
        "config": {"seed": 0},
        "class_names": ["a", "b", "c", "d", "e"],
        "image_size": 75,
    }
