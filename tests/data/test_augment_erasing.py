"""Random erasing: timm's boxes and odds, the pipeline's noise inside the boxes only, nothing when off."""

from __future__ import annotations

import random

import torch
from timm.data.random_erasing import RandomErasing

from inception3.config import ERASING_MAX_ATTEMPTS, AugmentConfig
from inception3.data.augment import build_pipeline, scale_to_unit
from inception3.data.augment.erasing import erasing_draws, random_erasing

SIZE = 40


def _draws(n: int, seed: int, noise_value: float | None = None) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    names = erasing_draws(AugmentConfig())
    columns = torch.rand(n, len(names), generator=generator, dtype=torch.float64)
    draws = {name: columns[:, i] for i, name in enumerate(names)}
    noise = torch.randn(n, 3, SIZE, SIZE, generator=generator)
    draws["noise"] = noise if noise_value is None else torch.full_like(noise, noise_value)
    return draws


def _erased(out: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Per image, the fraction of its pixels that changed."""
    return (out != images).any(dim=1).flatten(1).float().mean(dim=1)


def test_the_erased_area_and_odds_are_timms_pixel_mode():
    """2000 images each: how often a box is erased and its mean area, against timm's own RandomErasing
    (probability 0.5, mode "pixel") on zero images; both Monte Carlo (seeded), so within about four
    standard errors of the difference: 0.016 for the odds, 0.004 for the area."""
    n = 2000
    zeros = torch.zeros(n, 3, SIZE, SIZE)
    ours = _erased(random_erasing(zeros, _draws(n, 0), AugmentConfig(erasing_prob=0.5)), zeros)
    random.seed(0)
    theirs = _erased(RandomErasing(probability=0.5, mode="pixel", device="cpu")(zeros.clone()), zeros)
    assert abs(float((ours > 0).float().mean()) - float((theirs > 0).float().mean())) < 0.06
    assert abs(float(ours[ours > 0].mean()) - float(theirs[theirs > 0].mean())) < 0.02
    assert 0.1 < float(ours[ours > 0].mean()) < 0.2  # areas 2%-33%, the large ones often not fitting
    assert float(ours.max()) < 1.0 / 3.0 + 0.01


def test_the_noise_fills_one_box_per_erased_image_and_nothing_else():
    n = 32
    images = scale_to_unit(
        torch.randint(0, 256, (n, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(1))
    )
    draws = _draws(n, 2)
    out = random_erasing(images, draws, AugmentConfig(erasing_prob=1.0))
    changed = (out != images).any(dim=1)  # [n, H, W]
    assert int(changed.flatten(1).any(dim=1).sum()) > n * 0.9  # nearly every image: prob 1, 10 attempts
    for x, y, noise, box in zip(images, out, draws["noise"], changed, strict=True):
        rows, cols = box.any(dim=1).nonzero().flatten(), box.any(dim=0).nonzero().flatten()
        if len(rows):
            rectangle = torch.zeros_like(box)
            rectangle[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
            assert torch.equal(box, rectangle)  # one solid box
            assert rows.max() - rows.min() + 1 < SIZE and cols.max() - cols.min() + 1 < SIZE
        assert torch.equal(y[:, box], noise[:, box]) and torch.equal(y[:, ~box], x[:, ~box])


def test_probability_zero_leaves_every_image_as_it_was():
    images = scale_to_unit(
        torch.randint(0, 256, (16, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(3))
    )
    assert torch.equal(random_erasing(images, _draws(16, 4), AugmentConfig(erasing_prob=0.0)), images)


def test_the_pipeline_draws_the_noise_after_the_columns_and_scales_first():
    """Erasing alone: scale_to_unit first (it takes [-1, 1]), the uniform columns in one call, then
    one standard normal tensor of the batch's shape, from the same generator."""
    cfg = AugmentConfig(augment_ops=("random_erasing",), erasing_prob=0.7)
    pipeline = build_pipeline(cfg)
    assert [op.apply.__name__ for op in pipeline.ops] == ["scale_to_unit_op", "random_erasing"]
    images = torch.randint(
        0, 256, (8, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(5), dtype=torch.uint8
    )
    out = pipeline(images, torch.Generator().manual_seed(6))
    generator = torch.Generator().manual_seed(6)
    names = erasing_draws(cfg)
    assert len(names) == 1 + 4 * ERASING_MAX_ATTEMPTS
    columns = torch.rand(8, len(names), generator=generator, dtype=torch.float64)
    draws = {name: columns[:, i] for i, name in enumerate(names)} | {
        "noise": torch.randn(8, 3, SIZE, SIZE, generator=generator)
    }
    assert torch.equal(out, random_erasing(scale_to_unit(images), draws, cfg))
