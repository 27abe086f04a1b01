"""Mixup and CutMix: soft targets, their λ's statistics, the pasted areas, and fixed draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inception3.config import TrainConfig
from inception3.data.augment.mix import draw_mixing, mix_batch, mixing_on


def _batch(size: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is the constant i (so a pixel says which image it came from); labels differ from their
    flipped partner's."""
    images = torch.arange(size, dtype=torch.float32)[:, None, None, None].expand(size, 3, 20, 24).clone()
    return images, torch.arange(size)


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("alphas", [(0.2, 0.0), (0.0, 1.0), (0.2, 1.0)])
def test_targets_are_probabilities_mixing_each_label_with_its_flipped_partner(mode, alphas) -> None:
    cfg = TrainConfig(mixup_alpha=alphas[0], cutmix_alpha=alphas[1], mix_mode=mode)
    images, labels = _batch()
    for seed in range(5):
        _, targets = mix_batch(images, labels, 6, cfg, np.random.default_rng(seed))
        assert targets.dtype == torch.float32 and targets.shape == (6, 6)
        torch.testing.assert_close(targets.sum(1), torch.ones(6))
        own = targets[torch.arange(6), labels]
        partner = targets[torch.arange(6), labels.flip(0)]
        torch.testing.assert_close(own + partner, torch.ones(6))  # all mass on the two labels


def test_lambda_follows_beta_and_the_probabilities() -> None:
    n, alpha = 20_000, 0.4
    mixup = draw_mixing(n, 32, 32, TrainConfig(mixup_alpha=alpha, mix_mode="elem"), np.random.default_rng(0))
    assert not mixup.cutmix.any()
    assert abs(mixup.lam.mean() - 0.5) < 0.01
    assert abs(mixup.lam.var() - 1 / (4 * (2 * alpha + 1))) < 0.005  # Beta(α, α)'s variance
    sometimes = TrainConfig(mixup_alpha=alpha, mix_prob=0.3, mix_mode="elem")
    some = draw_mixing(n, 32, 32, sometimes, np.random.default_rng(1))
    assert abs((some.lam < 1).mean() - 0.3) < 0.015
    both = TrainConfig(mixup_alpha=0.2, cutmix_alpha=1.0, mix_switch_prob=0.25, mix_mode="elem")
    assert abs(draw_mixing(n, 32, 32, both, np.random.default_rng(2)).cutmix.mean() - 0.25) < 0.015
    per_batch = draw_mixing(8, 32, 32, TrainConfig(mixup_alpha=alpha), np.random.default_rng(3))
    assert len(set(per_batch.lam.tolist())) == 1


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_cutmix_target_weight_is_the_pasted_area_fraction(mode) -> None:
    cfg = TrainConfig(cutmix_alpha=1.0, mix_mode=mode)
    images, labels = _batch()
    pasted_any = False
    for seed in range(10):
        mixed, targets = mix_batch(images, labels, 6, cfg, np.random.default_rng(seed))
        from_partner = (mixed == images.flip(0)).float().mean((1, 2, 3))  # the partner's pixels
        torch.testing.assert_close(targets[torch.arange(6), labels.flip(0)], from_partner)
        pixels = mixed[:, 0]
        rows, cols = (pixels == images.flip(0)[:, 0]).any(2), (pixels == images.flip(0)[:, 0]).any(1)
        box = rows[:, :, None] & cols[:, None, :]
        assert torch.equal(box, pixels == images.flip(0)[:, 0])  # one rectangle per image
        pasted_any |= bool((from_partner > 0).any())
    assert pasted_any


def test_mixup_image_is_the_weighted_sum_with_the_flipped_batch() -> None:
    cfg = TrainConfig(mixup_alpha=0.2)
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3])
    mixed, targets = mix_batch(images, labels, 4, cfg, np.random.default_rng(7))
    lam = float(targets[0, 0])
    assert 0 < lam < 1
    torch.testing.assert_close(mixed, lam * images + (1 - lam) * images.flip(0))


def test_same_generator_seed_mixes_bitwise_the_same_and_another_differently() -> None:
    cfg = TrainConfig(mixup_alpha=0.2, cutmix_alpha=1.0, mix_mode="elem")
    images, labels = torch.rand(8, 3, 16, 16), torch.arange(8)
    a = mix_batch(images, labels, 8, cfg, np.random.default_rng(3))
    b = mix_batch(images, labels, 8, cfg, np.random.default_rng(3))
    c = mix_batch(images, labels, 8, cfg, np.random.default_rng(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_one_image_is_mixed_with_itself_and_left_as_it_was() -> None:
    cfg = TrainConfig(mixup_alpha=1.0, cutmix_alpha=1.0)
    images, labels = torch.rand(1, 3, 16, 16), torch.tensor([2])
    for seed in range(4):
        mixed, targets = mix_batch(images, labels, 3, cfg, np.random.default_rng(seed))
        torch.testing.assert_close(mixed, images)
        torch.testing.assert_close(targets, torch.tensor([[0.0, 0.0, 1.0]]))


def test_mixing_is_off_by_default_and_with_no_chance() -> None:
    assert not mixing_on(TrainConfig())
    assert not mixing_on(TrainConfig(mixup_alpha=0.2, mix_prob=0.0))
    assert mixing_on(TrainConfig(cutmix_alpha=1.0))
