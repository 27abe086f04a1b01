"""The pipeline of named ops: the registry, the draws by name, and the original recipe bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inception3.config import (
    BRIGHTNESS_MAX_DELTA,
    CONTRAST_RANGE,
    HUE_MAX_DELTA,
    SATURATION_RANGE,
    AugmentConfig,
)
from inception3.data.augment import OPS, adjust_saturation_hue_, build_pipeline, distort_batch, scale_to_unit
from inception3.errors import Inception3Error
from inception3.train.loop import train
from inception3.train.options import resolve_config


def _fused_distort_batch(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """`distort_batch` as it was before the ops were named (one fused function), kept to compare with."""
    n = images.shape[0]
    device = generator.device if generator is not None else torch.device("cpu")
    draws = torch.rand(n, 6, generator=generator, device=device, dtype=torch.float64).to(images.device)
    flip, order = draws[:, 0] < 0.5, draws[:, 1] < 0.5

    def uniform(column: int, low: float, high: float) -> torch.Tensor:
        return (low + (high - low) * draws[:, column]).float()

    brightness = uniform(2, -BRIGHTNESS_MAX_DELTA, BRIGHTNESS_MAX_DELTA).view(-1, 1, 1, 1)
    saturation = uniform(3, *SATURATION_RANGE)
    hue = uniform(4, -HUE_MAX_DELTA, HUE_MAX_DELTA)
    contrast = uniform(5, *CONTRAST_RANGE).view(-1, 1, 1, 1)
    contrast_first = order.view(-1, 1, 1, 1)
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    step = 1 if images.device.type == "cpu" else max(n, 1)
    for start in range(0, n, step):
        part = slice(start, start + step)
        x = out[part]
        if images.device.type == "cpu":
            for j, flipped in enumerate(flip[part].tolist()):
                x[j].copy_(images[start + j].flip(-1) if flipped else images[start + j])
        else:
            x.copy_(torch.where(flip[part, None, None, None], images[part].flip(-1), images[part]))
        f, b = contrast[part], brightness[part]
        mean = x.mean(dim=(-2, -1), keepdim=True).mul_(1.0 / 255.0)
        scale = torch.where(contrast_first[part], f, torch.ones_like(f)).mul_(1.0 / 255.0)
        shift = torch.where(contrast_first[part], (1.0 - f) * mean + b, b.expand_as(mean))
        x.mul_(scale).add_(shift)
        adjust_saturation_hue_(x, saturation[part], hue[part])
        mean = x.mean(dim=(-2, -1), keepdim=True)
        scale = torch.where(contrast_first[part], torch.full_like(f, 2.0), 2.0 * f)
        shift = torch.where(contrast_first[part], torch.full_like(mean, -1.0), 2.0 * (1.0 - f) * mean - 1.0)
        x.mul_(scale).add_(shift).clamp_(-1.0, 1.0)
    return out


def _images(n: int = 16, height: int = 33, width: int = 47, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, 3, height, width), dtype=np.uint8))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_original_pipeline_equals_the_fused_distortion_bit_for_bit(seed):
    images = _images(seed=seed)
    fused_generator, generator = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    expected = _fused_distort_batch(images, fused_generator)
    ours = build_pipeline(AugmentConfig())(images, generator)
    assert torch.equal(ours, expected)
    assert torch.equal(generator.get_state(), fused_generator.get_state())  # the stream used as before
    assert torch.equal(distort_batch(images, torch.Generator().manual_seed(seed)), expected)


def test_the_pipeline_leaves_its_input_as_it_was():
    images = _images()
    kept = images.clone()
    build_pipeline(AugmentConfig())(images, torch.Generator().manual_seed(3))
    assert torch.equal(images, kept)


def test_an_unknown_op_is_refused_in_one_line_naming_every_registered_op():
    with pytest.raises(Inception3Error) as refused:
        build_pipeline(AugmentConfig(augment_ops=("flip_left_right", "sharpen")))
    message = str(refused.value)
    assert "unknown op 'sharpen'" in message and "\n" not in message
    assert all(name in message for name in OPS)


def test_training_refuses_an_unknown_op_before_anything_starts(tmp_path):
    cfg = resolve_config(overrides=["augment_ops=flip, distort_color", "device=cpu"])
    with pytest.raises(Inception3Error, match="^config: augment_ops names an unknown op 'flip'; choose from"):
        train(cfg, tmp_path / "shards", tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert resolve_config(overrides=["augment_ops=distort_color"]).augment.augment_ops == ("distort_color",)


def test_an_op_on_pixels_after_the_batch_is_scaled_is_refused():
    with pytest.raises(
        Inception3Error, match="distort_color works on 0-255 pixels and must come before scale_to_unit"
    ):
        build_pipeline(AugmentConfig(augment_ops=("scale_to_unit", "distort_color")))


@pytest.mark.parametrize("ops", [(), ("flip_left_right",), ("scale_to_unit", "flip_left_right")])
def test_every_pipeline_ends_at_the_networks_scale(ops):
    images = _images(n=4)
    out = build_pipeline(AugmentConfig(augment_ops=ops))(images, torch.Generator().manual_seed(1))
    assert out.dtype == torch.float32 and out.min() >= -1.0 and out.max() <= 1.0
    unflipped = scale_to_unit(images)
    for x, y in zip(out, unflipped, strict=True):
        assert torch.equal(x, y) or torch.equal(x, y.flip(-1))


def test_each_op_gets_its_own_columns_of_draws():
    """Two flips draw two columns: an image ends mirrored when exactly one of its draws is below 1/2."""
    images = _images(n=64)
    out = build_pipeline(AugmentConfig(augment_ops=("flip_left_right", "flip_left_right")))(
        images, torch.Generator().manual_seed(4)
    )
    draws = torch.rand(64, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    mirrored = (draws[:, 0] < 0.5) ^ (draws[:, 1] < 0.5)
    expected = scale_to_unit(torch.where(mirrored.view(-1, 1, 1, 1), images.flip(-1), images))
    assert torch.equal(out, expected)
    assert 0 < int(mirrored.sum()) < 64


def test_the_policy_and_erasing_keys_are_read_by_set_and_refused_in_one_line_when_out_of_range():
    cfg = resolve_config(
        overrides=[
            "augment_ops=flip_left_right, randaugment, distort_color, random_erasing",
            "randaugment_num_ops=3",
            "randaugment_magnitude=7.5",
            "randaugment_magnitude_std=0",
            "erasing_prob=0.25",
            "erasing_area_range=0.1, 0.2",
            "erasing_aspect_range=0.5, 2",
        ]
    ).augment
    assert (cfg.randaugment_num_ops, cfg.randaugment_magnitude, cfg.randaugment_magnitude_std) == (
        3,
        7.5,
        0.0,
    )
    assert (cfg.erasing_prob, cfg.erasing_area_range, cfg.erasing_aspect_range) == (
        0.25,
        (0.1, 0.2),
        (0.5, 2.0),
    )
    for setting, message in (
        ("randaugment_num_ops=0", "config: randaugment_num_ops must be at least 1, got 0 (ops randaugment"),
        (
            "randaugment_magnitude=11",
            "config: randaugment_magnitude must be at most 10, got 11.0 (timm's level",
        ),
        ("erasing_prob=1.5", "config: erasing_prob must be at most 1, got 1.5"),
        (
            "erasing_area_range=0.3, 0.1",
            "config: erasing_area_range must be two fractions 0 < low <= high <= 1",
        ),
        (
            "erasing_aspect_range=3, 0.3",
            "config: erasing_aspect_range must be two ratios 0 < low <= high <= 100",
        ),
        ("erasing_aspect_range=0, 3", "config: erasing_aspect_range must be 2 numbers, each in (0, 100]"),
    ):
        with pytest.raises(Inception3Error) as refused:
            resolve_config(overrides=[setting])
        assert str(refused.value).startswith(message) and "\n" not in str(refused.value), str(refused.value)


def test_the_policies_work_on_pixels_and_erasing_on_the_networks_scale():
    with pytest.raises(
        Inception3Error, match="randaugment works on 0-255 pixels and must come before distort_color"
    ):
        build_pipeline(AugmentConfig(augment_ops=("distort_color", "randaugment")))
    ops = build_pipeline(AugmentConfig(augment_ops=("trivialaugment", "random_erasing"))).ops
    assert [op.apply.__name__ for op in ops] == ["trivialaugment", "scale_to_unit_op", "random_erasing"]
