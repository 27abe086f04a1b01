"""The batched distortions on the training device: scaling, TF's colour ops, `distort_batch`."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from reference_ops import adjust_contrast, adjust_saturation_hue

from inception3.data.augment import distort_batch, scale_to_unit


def test_scale_to_unit_maps_0_and_255_to_minus_one_and_one():
    images = torch.tensor([0, 255, 51], dtype=torch.uint8).reshape(1, 3, 1, 1)
    assert scale_to_unit(images).flatten().tolist() == pytest.approx([-1.0, 1.0, 51 / 127.5 - 1])


def test_saturation_and_hue_follow_tensorflow_semantics():
    red = torch.tensor([0.8, 0.2, 0.2]).reshape(1, 3, 1, 1)
    one, zero = torch.ones(1), torch.zeros(1)
    assert torch.allclose(adjust_saturation_hue(red, one, zero), red, atol=1e-6)
    assert torch.allclose(adjust_saturation_hue(red, zero, zero).flatten(), torch.full((3,), 0.8))
    green = adjust_saturation_hue(red, one, torch.tensor([1 / 3]))
    assert torch.allclose(green.flatten(), torch.tensor([0.2, 0.8, 0.2]), atol=1e-5)
    doubled = adjust_saturation_hue(red, torch.tensor([2.0]), zero)  # s 0.75 -> clipped to 1
    assert torch.allclose(doubled.flatten(), torch.tensor([0.8, 0.0, 0.0]), atol=1e-6)


def test_contrast_scales_around_each_channel_mean():
    images = torch.tensor([0.2, 0.4, 0.6, 0.8]).reshape(1, 1, 2, 2).repeat(1, 3, 1, 1)
    out = adjust_contrast(images, torch.tensor([0.5]))
    assert torch.allclose(out[0, 0].flatten(), torch.tensor([0.35, 0.45, 0.55, 0.65]))


def test_distort_batch_is_reproducible_bounded_and_distorts():
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (8, 3, 16, 16), dtype=np.uint8))
    first = distort_batch(images, torch.Generator().manual_seed(5))
    again = distort_batch(images, torch.Generator().manual_seed(5))
    assert first.shape == (8, 3, 16, 16) and first.dtype == torch.float32
    assert torch.equal(first, again)
    assert first.min() >= -1.0 and first.max() <= 1.0
    assert not torch.allclose(first, scale_to_unit(images), atol=0.05)


def test_distort_batch_flips_about_half_the_images():
    ramp = torch.arange(16, dtype=torch.uint8).mul(16).expand(64, 3, 16, 16).contiguous()
    out = distort_batch(ramp, torch.Generator().manual_seed(0))
    flipped = out[:, :, :, 0].mean(dim=(1, 2)) > out[:, :, :, -1].mean(dim=(1, 2))
    assert 16 < int(flipped.sum()) < 48


def test_saturation_and_hue_agree_with_colorsys_on_random_pixels():
    rng = np.random.default_rng(2)
    pixels = rng.random((6, 3, 5, 7)).astype(np.float32)
    pixels[:, 1, 0] = pixels[:, 0, 0]  # ties between channels
    pixels[:, :, 1] = 0.5  # grey
    saturation = rng.uniform(0.5, 1.5, 6).astype(np.float32)
    hue = rng.uniform(-0.2, 0.2, 6).astype(np.float32)
    ours = adjust_saturation_hue(*(torch.from_numpy(a) for a in (pixels, saturation, hue)))
    reference = np.empty_like(pixels)
    for i in range(6):
        for y in range(5):
            for x in range(7):
                h, s, v = colorsys.rgb_to_hsv(*pixels[i, :, y, x])
                shifted = ((h + hue[i]) % 1.0, min(s * saturation[i], 1.0), v)
                reference[i, :, y, x] = colorsys.hsv_to_rgb(*shifted)
    assert np.allclose(ours.numpy(), reference, atol=1e-5)


def test_distort_batch_equals_the_original_sequence_of_ops():
    """Flip, brightness, (saturation, hue, contrast) or (contrast, saturation, hue), clip, scale."""
    rng = np.random.default_rng(4)
    images = torch.from_numpy(rng.integers(0, 256, (12, 3, 9, 11), dtype=np.uint8))
    draws = torch.rand(12, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    expected = []
    for image, draw in zip(images, draws.tolist(), strict=True):
        flip, contrast_first, brightness, saturation, hue, contrast = draw
        x = image.float()[None] / 255.0
        x = x.flip(-1) if flip < 0.5 else x
        x = x + (-32 / 255 + 64 / 255 * brightness)
        saturation, hue = torch.tensor([0.5 + saturation]), torch.tensor([-0.2 + 0.4 * hue])
        contrast = torch.tensor([0.5 + contrast])
        if contrast_first < 0.5:
            x = adjust_saturation_hue(adjust_contrast(x, contrast), saturation, hue)
        else:
            x = adjust_contrast(adjust_saturation_hue(x, saturation, hue), contrast)
        expected.append(x.clamp(0.0, 1.0) * 2.0 - 1.0)
    ours = distort_batch(images, torch.Generator().manual_seed(8))
    assert torch.allclose(ours, torch.cat(expected), atol=1e-5)
