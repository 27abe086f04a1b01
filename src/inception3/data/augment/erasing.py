"""Random erasing (Zhong et al. 2017) as timm's `RandomErasing(mode="pixel")`, a box per image, batched.

timm erases after normalisation and fills with N(0, 1) noise in normalised units; with Inception's
mean = std = 0.5 (timm's IMAGENET_INCEPTION_MEAN/STD) those units are this network's [-1, 1] scale,
so the op works on "unit" batches and fills with the pipeline's standard normal noise, unclipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from inception3.config import ERASING_MAX_ATTEMPTS, AugmentConfig

_ATTEMPT_DRAWS = ("area", "aspect", "top", "left")


def erasing_draws(cfg: AugmentConfig) -> tuple[str, ...]:
    """Whether to erase, then four columns for each of timm's attempts at a box that fits."""
    return ("erase",) + tuple(f"{name}{i}" for i in range(ERASING_MAX_ATTEMPTS) for name in _ATTEMPT_DRAWS)


def random_erasing(
    images: torch.Tensor, draws: Mapping[str, torch.Tensor], cfg: AugmentConfig
) -> torch.Tensor:
    """Replace a box of each image whose `erase` draw is below `erasing_prob` with the noise there.

    As timm's `_erase`: up to 10 attempts, each an area (uniform in `erasing_area_range` of the
    image's) and an aspect h/w (log-uniform in `erasing_aspect_range`), h and w rounded; the first
    attempt with h < height and w < width is placed at a uniform top-left corner, and when none fits
    the image stays as it is. A new batch; pixels outside the boxes are the input's.
    """
    _, _, height, width = images.shape
    attempts = {
        name: torch.stack([draws[f"{name}{i}"] for i in range(ERASING_MAX_ATTEMPTS)], 1)
        for name in _ATTEMPT_DRAWS
    }
    low, high = cfg.erasing_area_range
    area = (low + (high - low) * attempts["area"]) * (height * width)
    log_low, log_high = (math.log(a) for a in cfg.erasing_aspect_range)
    aspect = torch.exp(log_low + (log_high - log_low) * attempts["aspect"])
    box_h, box_w = torch.round(torch.sqrt(area * aspect)), torch.round(torch.sqrt(area / aspect))
    fits = (box_h < height) & (box_w < width)
    first = fits.long().argmax(dim=1, keepdim=True)  # the first attempt that fits (0 when none does)

    def chosen(values: torch.Tensor) -> torch.Tensor:
        return values.gather(1, first).view(-1, 1)

    h, w = chosen(box_h), chosen(box_w)
    top = torch.floor(chosen(attempts["top"]) * (height - h + 1))
    left = torch.floor(chosen(attempts["left"]) * (width - w + 1))
    erase = ((draws["erase"] < cfg.erasing_prob) & fits.any(dim=1)).view(-1, 1, 1)
    rows = torch.arange(height, device=images.device, dtype=top.dtype)
    cols = torch.arange(width, device=images.device, dtype=left.dtype)
    in_rows = (rows >= top) & (rows < top + h)  # [n, H]
    in_cols = (cols >= left) & (cols < left + w)  # [n, W]
    box = in_rows.unsqueeze(2) & in_cols.unsqueeze(1) & erase  # [n, H, W]
    return torch.where(box.unsqueeze(1), draws["noise"], images)
