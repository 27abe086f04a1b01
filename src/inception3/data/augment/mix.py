"""Mixup and CutMix on the training device: a batch and its labels -> mixed images and soft targets.

As timm's `Mixup` (timm/data/mixup.py): image i is mixed with image B − 1 − i (the batch flipped),
in one draw for the whole batch (`mix_mode="batch"`) or one per image ("elem"). With probability
`mix_prob` a batch (image) is mixed at all; when both mixup and CutMix are on, CutMix is chosen
with probability `mix_switch_prob`. Mixup's weight λ ~ Beta(mixup_alpha, mixup_alpha):
x = λ·x + (1 − λ)·x_flipped. CutMix's λ ~ Beta(cutmix_alpha, cutmix_alpha) sets a box of side
√(1 − λ) of the image's, centred uniformly and clipped by the image's edges, pasted from the
flipped batch; λ is then 1 − the pasted area's fraction (timm's `correct_lam`). The targets are
λ·one_hot(y) + (1 − λ)·one_hot(y_flipped); label smoothing is the loss's (train/step.py), which
is the same as timm's mixing of smoothed one-hots, smoothing being linear.

Every random number comes from the numpy `Generator` given (seeded per step and rank by the
trainer), a few per image, drawn on the host and copied to the device once: torch's Beta sampler
takes no generator. A batch of one image is mixed with itself, which leaves it as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from inception3.config import TrainConfig


def mixing_on(cfg: TrainConfig) -> bool:
    """Whether `cfg` mixes at all: an alpha above 0 and a chance above 0."""
    return (cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0) and cfg.mix_prob > 0


@dataclass(frozen=True)
class MixDraws:
    """One step's mixing parameters per image (host arrays of length B).

    `lam`: the weight of the image's own label (1: unmixed); `cutmix`: whether it is pasted into
    rather than blended; `box`: the pasted box (top, bottom, left, right), rows and columns,
    bottom and right exclusive (empty where not CutMix).
    """

    lam: np.ndarray  # float64 [B]
    cutmix: np.ndarray  # bool [B]
    box: np.ndarray  # int64 [B, 4]


def draw_mixing(batch: int, height: int, width: int, cfg: TrainConfig, rng: np.random.Generator) -> MixDraws:
    """The mixing parameters of a batch of `batch` images of height × width pixels.

    The numbers are drawn in a fixed order and count for a given config and batch size (apply,
    switch, mixup λ, CutMix λ, box centre row, box centre column; a λ only where its alpha is on),
    so that which number means what never depends on another's value.
    """
    n = batch if cfg.mix_mode == "elem" else 1
    apply = rng.random(n) < cfg.mix_prob
    switch = rng.random(n) < cfg.mix_switch_prob
    mixup_lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha, n) if cfg.mixup_alpha > 0 else np.ones(n)
    cutmix_lam = rng.beta(cfg.cutmix_alpha, cfg.cutmix_alpha, n) if cfg.cutmix_alpha > 0 else np.ones(n)
    centre_y, centre_x = rng.integers(0, height, n), rng.integers(0, width, n)
    both = cfg.mixup_alpha > 0 and cfg.cutmix_alpha > 0
    cutmix = (switch if both else np.full(n, cfg.cutmix_alpha > 0)) & apply
    lam = np.where(cutmix, cutmix_lam, mixup_lam)
    lam = np.where(apply, lam, 1.0)
    # timm's rand_bbox: a box of side sqrt(1 - λ) of the image's, clipped by its edges
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = (height * ratio).astype(np.int64), (width * ratio).astype(np.int64)
    top, bottom = np.clip(centre_y - cut_h // 2, 0, height), np.clip(centre_y + (cut_h + 1) // 2, 0, height)
    left, right = np.clip(centre_x - cut_w // 2, 0, width), np.clip(centre_x + (cut_w + 1) // 2, 0, width)
    box = np.stack([top, bottom, left, right], axis=1) * cutmix[:, None]
    area = (box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2])
    lam = np.where(cutmix, 1.0 - area / float(height * width), lam)  # timm's correct_lam
    return MixDraws(*(np.broadcast_to(a, (batch, *a.shape[1:])).copy() for a in (lam, cutmix, box)))


def mix_batch(
    images: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: TrainConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """float [B, C, H, W] images and int64 [B] labels -> mixed images and float32 [B, K] targets.

    Each target row sums to one. See the module doc for the draws and the formulas.
    """
    batch, _, height, width = images.shape
    draws = draw_mixing(batch, height, width, cfg, rng)
    one_hot = F.one_hot(labels, num_classes).to(torch.float32)
    if (draws.lam == 1).all():  # nothing mixed this step (mix_prob): the batch as it came
        return images, one_hot
    host = torch.from_numpy(np.concatenate([draws.lam[:, None], draws.cutmix[:, None], draws.box], axis=1))
    if images.device.type == "cuda":  # page-locked, so the copy queues without waiting for the device
        host = host.pin_memory()
    params = host.to(images.device, non_blocking=True)  # one copy: [B, 6] float64
    lam, cutmix, box = params[:, 0], params[:, 1].bool(), params[:, 2:].long()
    rows = torch.arange(height, device=images.device)[None, :, None]
    cols = torch.arange(width, device=images.device)[None, None, :]
    inside = (
        (rows >= box[:, 0, None, None])
        & (rows < box[:, 1, None, None])
        & (cols >= box[:, 2, None, None])
        & (cols < box[:, 3, None, None])
    )  # B x H x W, empty for images that are not CutMix
    # The partner's share of each pixel: 1 inside a CutMix box, 1 − λ for mixup, else 0; one lerp
    # mixes the batch, and torch.lerp gives its ends exactly at shares 0 and 1.
    blend = torch.where(cutmix, 0.0, 1.0 - lam).to(images.dtype)[:, None, None]
    share = torch.where(inside, torch.ones((), dtype=images.dtype, device=images.device), blend)
    mixed = torch.lerp(images, images.flip(0), share[:, None])
    lam32 = lam.to(torch.float32)[:, None]
    targets = one_hot * lam32 + one_hot.flip(0) * (1 - lam32)
    return mixed, targets
