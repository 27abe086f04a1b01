"""Presets: small override sets on top of TrainConfig's defaults, each with its source."""

from __future__ import annotations

from inception3.config.recipe import (
    BATCH_SIZE,
    DIST_BATCH_SIZE_PER_RANK,
    DIST_INITIAL_LEARNING_RATE,
    DIST_LEARNING_RATE_DECAY_FACTOR,
    DIST_NUM_EPOCHS_PER_DECAY,
    FINE_TUNE_LEARNING_RATE,
    FINETUNE_ERASING_PROB,
    FINETUNE_LAYER_DECAY,
    FINETUNE_LEARNING_RATE,
    FINETUNE_WEIGHT_DECAY,
    MIN_IMAGE_SIZE,
    TORCH_BATCH_NORM_DECAY,
    TORCHVISION_CUTMIX_ALPHA,
    TORCHVISION_MIXUP_ALPHA,
    TV_RECIPE_BATCH_SIZE,
    TV_RECIPE_ERASING_PROB,
    TV_RECIPE_LEARNING_RATE,
    TV_RECIPE_WEIGHT_DECAY,
)
from inception3.errors import Inception3Error

PRESETS: dict[str, dict[str, object]] = {
    "imagenet": {},  # [train] the single-machine recipe, as the defaults
    "imagenet-distributed": {  # [dist] the synchronous distributed recipe
        "batch_size_per_rank": DIST_BATCH_SIZE_PER_RANK,
        "learning_rate": DIST_INITIAL_LEARNING_RATE,
        "num_epochs_per_decay": DIST_NUM_EPOCHS_PER_DECAY,
        "learning_rate_decay_factor": DIST_LEARNING_RATE_DECAY_FACTOR,
    },
    "flowers": {  # inception README: fine-tune from an ImageNet checkpoint, lr 0.001, new logits
        "learning_rate": FINE_TUNE_LEARNING_RATE,
        "fine_tune": True,
    },
    # [tv-recipe] torchvision's from-scratch recipe at the default global batch of 32 (the rate
    # scaled with it); left out: its 5 warm-up epochs (warmup_steps counts steps: set it for your
    # data), its 176 px training crops and its repeated-augmentation sampler. Its erasing fills with
    # zeros, ours with noise (timm's). The crop stays the original's bounding-box crop.
    "modern": {
        "optimizer": "sgd",
        "learning_rate": TV_RECIPE_LEARNING_RATE * BATCH_SIZE / TV_RECIPE_BATCH_SIZE,
        "lr_schedule": "cosine",
        "weight_decay": TV_RECIPE_WEIGHT_DECAY,
        "augment_ops": ("flip_left_right", "trivialaugment", "random_erasing"),
        "erasing_prob": TV_RECIPE_ERASING_PROB,
        "mixup_alpha": TORCHVISION_MIXUP_ALPHA,
        "cutmix_alpha": TORCHVISION_CUTMIX_ALPHA,
        "batch_norm_decay": TORCH_BATCH_NORM_DECAY,
    },
    # [convnext-ft] fine-tuning from a checkpoint (--init-from): fresh logits, AdamW, layer-wise
    # decay, cosine, RandAugment m9 and erasing, no mixing.
    "finetune": {
        "fine_tune": True,
        "optimizer": "adamw",
        "learning_rate": FINETUNE_LEARNING_RATE,
        "weight_decay": FINETUNE_WEIGHT_DECAY,
        "layer_decay": FINETUNE_LAYER_DECAY,
        "lr_schedule": "cosine",
        "augment_ops": ("flip_left_right", "randaugment", "random_erasing"),
        "erasing_prob": FINETUNE_ERASING_PROB,
        "batch_norm_decay": TORCH_BATCH_NORM_DECAY,
    },
    "tiny": {  # a CPU-sized network for trying the pipeline end to end in minutes
        "image_size": MIN_IMAGE_SIZE,
        "depth_multiplier": 0.25,
        "batch_size": 16,
        "learning_rate": 0.01,
        "lr_schedule": "constant",
        "log_every": 10,
        "summary_every": 50,
        "checkpoint_every": 100,
    },
}


def _shown(value: object) -> str:
    """A preset's value as `--set` takes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_presets() -> str:
    """Each preset and the keys it sets, as `--set` would write them (for `train --help`)."""
    described = [
        f"{name}: " + (" ".join(f"{key}={_shown(value)}" for key, value in keys.items()) or "the defaults")
        for name, keys in PRESETS.items()
    ]
    return "Presets and the keys each sets: " + "; ".join(described) + "."


def with_preset(preset: str | None, mine: dict[str, object]) -> dict[str, object]:
    """Flat config keys: the preset's overrides (None: none), then `mine` over them.

    A global `batch_size` of one's own replaces a preset's `batch_size_per_rank`; both in `mine`
    cannot be meant together and are refused.
    """
    values: dict[str, object] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise Inception3Error(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    if "batch_size" in mine and mine.get("batch_size_per_rank") is not None:
        raise Inception3Error(
            "config: batch_size (global) and batch_size_per_rank are both set; keep one of them"
        )
    if "batch_size" in mine:
        values.pop("batch_size_per_rank", None)
    return values | mine
