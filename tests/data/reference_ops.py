"""TensorFlow's colour ops one at a time, as the original applied them: what `distort_batch` must equal."""

from __future__ import annotations

import torch

from inception3.data.augment import adjust_saturation_hue_


def adjust_contrast(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """`tf.image.adjust_contrast` per image: (x - channel mean) * factor + channel mean."""
    mean = images.mean(dim=(-2, -1), keepdim=True)
    return (images - mean) * factors.view(-1, 1, 1, 1) + mean


def adjust_saturation_hue(images: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """`tf.image.adjust_saturation` then `adjust_hue` per image, leaving `images` as they are."""
    return adjust_saturation_hue_(images.clone(), saturation, hue)
