"""The augmentation ops: small pure functions of a batch and each image's random draws.

An op takes the batch [B, 3, S, S], its own draws (one float64 column of uniform [0, 1) numbers per
name it declared in the registry, `pipeline.py`) and the `AugmentConfig` (for ops with settings of
their own), and returns a new batch; it never writes into the batch it was given. Ops on "pixels"
take 0-255 values (uint8, or float32 from an evaluation preprocessing that does not round); ops on
"unit" take float32 in [-1, 1], the network's input. The original's: `flip_left_right`, then
`distort_color` (`image_processing.py`'s `distort_color`, which ends at the network's scale), or
`scale_to_unit` alone, as evaluation does. RandAugment and TrivialAugmentWide (`policies.py`) and
random erasing (`erasing.py`) are ops of the same form.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from inception3.config import (
    BRIGHTNESS_MAX_DELTA,
    CONTRAST_RANGE,
    HUE_MAX_DELTA,
    SATURATION_RANGE,
    AugmentConfig,
)
from inception3.data.augment.color import adjust_saturation_hue_

# An op's named per-image uniform draws, float64 [B] each; for an op that declares noise, also
# "noise", standard normal float32 of the batch's shape.
Draws = Mapping[str, torch.Tensor]

_CPU_CHUNK = 1  # images done at a time on a CPU: the scratch planes stay in cache


def scale_to_unit(images: torch.Tensor) -> torch.Tensor:
    """0-255 pixels [B, 3, S, S] -> float32 in [-1, 1], as the original's `(x - 0.5) * 2` on [0, 1] pixels.

    uint8, or float32 from an evaluation preprocessing that does not round (`preprocess.py`); a new
    tensor either way (`.float()` of a float tensor is the tensor itself, which must not be scaled twice).
    """
    return images.to(torch.float32, copy=True).mul_(2.0 / 255.0).sub_(1.0)


def scale_to_unit_op(images: torch.Tensor, draws: Draws, cfg: AugmentConfig) -> torch.Tensor:
    """`scale_to_unit` as an op: pixels in, the network's [-1, 1] out; no draws."""
    return scale_to_unit(images)


def flip_left_right(images: torch.Tensor, draws: Draws, cfg: AugmentConfig) -> torch.Tensor:
    """Mirror left-right each image whose `flip` draw is below 1/2; any scale, any dtype."""
    flip = draws["flip"] < 0.5
    if images.device.type == "cpu" and len(images):  # per image: a masked select is slow on a CPU
        return torch.stack([x.flip(-1) if f else x for x, f in zip(images, flip.tolist(), strict=True)])
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def _uniform(draw: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """A uniform [0, 1) float64 draw mapped onto [low, high), then float32."""
    return (low + (high - low) * draw).float()


def distort_color(images: torch.Tensor, draws: Draws, cfg: AugmentConfig) -> torch.Tensor:
    """Pixels -> float32 in [-1, 1] with the original's colour distortion, clipped, at the network's scale.

    Per image: brightness ±32/255; then, in order 0, saturation 0.5–1.5, hue ±0.2, contrast 0.5–1.5,
    or in order 1 contrast, saturation, hue (the original picked the order by preprocessing thread;
    here each image draws it); clip to [0, 1]; scale to [-1, 1]. On a CPU the batch is done one
    image at a time, in place, several times faster than with whole-batch temporaries.
    """
    n = images.shape[0]
    brightness = _uniform(draws["brightness"], -BRIGHTNESS_MAX_DELTA, BRIGHTNESS_MAX_DELTA).view(-1, 1, 1, 1)
    saturation = _uniform(draws["saturation"], *SATURATION_RANGE)
    hue = _uniform(draws["hue"], -HUE_MAX_DELTA, HUE_MAX_DELTA)
    contrast = _uniform(draws["contrast"], *CONTRAST_RANGE).view(-1, 1, 1, 1)
    contrast_first = (draws["order"] < 0.5).view(-1, 1, 1, 1)

    # Brightness, contrast and the final scaling are affine per image and channel, so each run of
    # them is one multiply-add: order 1 does pixel/255 + brightness then contrast before the HSV
    # step, order 0 does contrast after it, and the clip to [0, 1] becomes a clip to [-1, 1].
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    step = _CPU_CHUNK if images.device.type == "cpu" else max(n, 1)
    for start in range(0, n, step):
        part = slice(start, start + step)
        x = out[part]
        x.copy_(images[part])
        f, b, first = contrast[part], brightness[part], contrast_first[part]
        mean = x.mean(dim=(-2, -1), keepdim=True).mul_(1.0 / 255.0)
        scale = torch.where(first, f, torch.ones_like(f)).mul_(1.0 / 255.0)
        shift = torch.where(first, (1.0 - f) * mean + b, b.expand_as(mean))
        x.mul_(scale).add_(shift)
        adjust_saturation_hue_(x, saturation[part], hue[part])
        mean = x.mean(dim=(-2, -1), keepdim=True)
        scale = torch.where(first, torch.full_like(f, 2.0), 2.0 * f)
        shift = torch.where(first, torch.full_like(mean, -1.0), 2.0 * (1.0 - f) * mean - 1.0)
        x.mul_(scale).add_(shift).clamp_(-1.0, 1.0)
    return out
