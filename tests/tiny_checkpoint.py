"""Tiny checkpoints (75×75 inputs, depth multiplier 0.25) written through the trainer's API."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from inception3.config import ModelConfig
from inception3.model import InceptionV3
from inception3.train.checkpoint import save_checkpoint

CLASS_NAMES = ["circle", "square", "triangle"]


def tiny_config(num_classes: int = len(CLASS_NAMES)) -> ModelConfig:
    return ModelConfig(num_classes=num_classes, depth_multiplier=0.25, image_size=75)


def tiny_state(seed: int = 0, num_classes: int = len(CLASS_NAMES)) -> dict:
    """A checkpoint dict whose raw and averaged weights differ (the EMA is the raw plus noise)."""
    torch.manual_seed(seed)
    cfg = tiny_config(num_classes)
    model = InceptionV3.from_config(cfg)
    ema = {k: (v + 0.05 * torch.randn_like(v)) if v.is_floating_point() and "variance" not in k else v.clone()
           for k, v in model.state_dict().items()}
    return {"model_config": dataclasses.asdict(cfg), "model": model.state_dict(), "ema": ema,
            "class_names": CLASS_NAMES[:num_classes], "image_size": cfg.image_size}


def write_tiny_checkpoint(run_dir: Path, step: int = 10, *, seed: int = 0, final: bool = False,
                          keep: int = 5) -> Path:
    return save_checkpoint(run_dir, step, tiny_state(seed), keep=keep, final=final)
