"""Each augmentation op alone, on a tiny batch, with draws chosen by hand."""

from __future__ import annotations

import torch

from inception3.config import BRIGHTNESS_MAX_DELTA, AugmentConfig
from inception3.data.augment import scale_to_unit
from inception3.data.augment.ops import distort_color, flip_left_right, scale_to_unit_op

CFG = AugmentConfig()


def _ramps(n: int) -> torch.Tensor:
    """n uint8 images [3, 4, 6], brightening left to right, each a little brighter than the last."""
    ramp = torch.arange(6, dtype=torch.uint8).mul(50).expand(n, 3, 4, 6)
    return (ramp + torch.arange(n, dtype=torch.uint8).view(-1, 1, 1, 1)).contiguous()


def _draws(n: int, **columns: float) -> dict[str, torch.Tensor]:
    return {name: torch.full((n,), value, dtype=torch.float64) for name, value in columns.items()}


def test_flip_left_right_mirrors_exactly_the_images_whose_draw_is_below_one_half():
    images = _ramps(3)
    kept = images.clone()
    out = flip_left_right(images, {"flip": torch.tensor([0.2, 0.7, 0.4999], dtype=torch.float64)}, CFG)
    assert out.dtype == torch.uint8
    assert torch.equal(out[0], images[0].flip(-1)) and torch.equal(out[2], images[2].flip(-1))
    assert torch.equal(out[1], images[1])
    assert torch.equal(images, kept)


def test_distort_color_at_the_middle_of_every_range_only_scales():
    images = _ramps(2)
    out = distort_color(
        images, _draws(2, order=0.2, brightness=0.5, saturation=0.5, hue=0.5, contrast=0.5), CFG
    )
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, scale_to_unit(images), atol=1e-6, rtol=0)


def test_distort_color_brightens_by_at_most_32_levels_and_clips():
    images = _ramps(2)
    out = distort_color(
        images, _draws(2, order=0.7, brightness=1.0, saturation=0.5, hue=0.5, contrast=0.5), CFG
    )
    expected = (images.float() / 255.0 + BRIGHTNESS_MAX_DELTA).clamp(0.0, 1.0) * 2.0 - 1.0
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert out.max() == 1.0  # 250 + 32 levels is past white


def test_distort_color_halves_the_contrast_around_each_channels_mean():
    images = _ramps(1)
    out = distort_color(
        images, _draws(1, order=0.2, brightness=0.5, saturation=0.5, hue=0.5, contrast=0.0), CFG
    )
    pixels = images.float() / 255.0
    mean = pixels.mean(dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(out, ((pixels - mean) * 0.5 + mean) * 2.0 - 1.0, atol=1e-6, rtol=0)


def test_distort_color_turns_hue_per_image():
    red = torch.tensor([200, 50, 50], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 2, 2).contiguous()
    hue = torch.tensor([0.5, 1.0], dtype=torch.float64)  # no turn, then +0.2 of a turn: red towards yellow
    draws = _draws(2, order=0.2, brightness=0.5, saturation=0.5, contrast=0.5) | {"hue": hue}
    out = (distort_color(red, draws, CFG) + 1.0) * 127.5
    torch.testing.assert_close(out[0], red[0].float(), atol=1e-3, rtol=0)
    assert out[1, 1, 0, 0] > 100 and out[1, 2, 0, 0] < 51  # green rose, blue stayed at the minimum


def test_scale_to_unit_op_is_scale_to_unit():
    images = _ramps(2)
    assert torch.equal(scale_to_unit_op(images, {}, CFG), scale_to_unit(images))
