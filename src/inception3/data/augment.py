"""The original's preprocessing (`image_processing.py`) as small ops, each testable alone.

Per record, on the CPU workers: decode, sample a crop box (`sample_distorted_box`, the rules of
`tf.image.sample_distorted_bounding_box`), crop and resize to uint8 (`crop_and_resize`); for
evaluation `central_crop` 0.875 and a bilinear resize (`eval_image`). Per batch, on the training
device: random flip, colour distortion in one of the original's two orders, clip, scale to [-1, 1]
(`distort_batch`). Nothing becomes float on the CPU that need not.
"""

from __future__ import annotations

import io
import math

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from inception3.config import (
    AREA_RANGE,
    ASPECT_RATIO_RANGE,
    BRIGHTNESS_MAX_DELTA,
    CONTRAST_RANGE,
    EVAL_CENTRAL_FRACTION,
    HUE_MAX_DELTA,
    MAX_CROP_ATTEMPTS,
    MIN_OBJECT_COVERED,
    SATURATION_RANGE,
)

Box = tuple[float, float, float, float]  # (ymin, xmin, ymax, xmax), relative to the image, as TF


def _lrint(value: float) -> int:
    """C's lrintf: round half to even, as TensorFlow's sampler rounds."""
    return int(round(value))


def _random_crop(width: int, height: int, min_area_frac: float, max_area_frac: float, aspect: float,
                 rng: np.random.Generator) -> tuple[int, int, int, int] | None:
    """TF's GenerateRandomCrop: one box (x, y, w, h) of the given aspect ratio, or None."""
    min_area = min_area_frac * width * height
    max_area = max_area_frac * width * height
    crop_h = _lrint(math.sqrt(min_area / aspect))
    max_h = _lrint(math.sqrt(max_area / aspect))
    if _lrint(max_h * aspect) > width:
        max_h = int((width + 0.5 - 1e-7) / aspect)
        if _lrint(max_h * aspect) > width:
            max_h -= 1
    max_h = min(max_h, height)
    crop_h = min(crop_h, max_h)
    if crop_h < max_h:
        crop_h += int(rng.integers(max_h - crop_h + 1))
    crop_w = _lrint(crop_h * aspect)
    area = crop_w * crop_h
    if area < min_area:
        crop_h += 1
        crop_w = _lrint(crop_h * aspect)
        area = crop_w * crop_h
    if area > max_area:
        crop_h -= 1
        crop_w = _lrint(crop_h * aspect)
        area = crop_w * crop_h
    if area < min_area or area > max_area or crop_w > width or crop_h > height or crop_w <= 0 or crop_h <= 0:
        return None
    y = int(rng.integers(height - crop_h)) if crop_h < height else 0
    x = int(rng.integers(width - crop_w)) if crop_w < width else 0
    return x, y, crop_w, crop_h


def _covers_an_object(crop: tuple[int, int, int, int], objects: list[tuple[int, int, int, int]],
                      min_covered: float) -> bool:
    """TF's SatisfiesOverlapConstraints: the crop holds `min_covered` of at least one object box."""
    x, y, w, h = crop
    if w * h < 1:
        return False
    for x0, y0, x1, y1 in objects:
        area = (x1 - x0) * (y1 - y0)
        if area < 1:
            continue
        inter_w = min(x + w, x1) - max(x, x0)
        inter_h = min(y + h, y1) - max(y, y0)
        if inter_w > 0 and inter_h > 0 and inter_w * inter_h / area >= min_covered:
            return True
    return False


def sample_distorted_box(height: int, width: int, boxes: tuple[Box, ...] | list[Box],
                         rng: np.random.Generator, *,
                         min_object_covered: float = MIN_OBJECT_COVERED,
                         aspect_ratio_range: tuple[float, float] = ASPECT_RATIO_RANGE,
                         area_range: tuple[float, float] = AREA_RANGE,
                         max_attempts: int = MAX_CROP_ATTEMPTS) -> tuple[int, int, int, int]:
    """A random crop (top, left, crop_height, crop_width) in pixels of a `height`×`width` image.

    Same rules as `tf.image.sample_distorted_bounding_box(use_image_if_no_bounding_boxes=True)`:
    up to `max_attempts` draws of an aspect ratio (width/height) and an area fraction; a draw is
    kept when the box covers at least `min_object_covered` of one object box (the whole image when
    `boxes` is empty); after `max_attempts` failures the whole image is the crop.
    """
    objects = [(int(min(max(b[1], 0.0), 1.0) * width), int(min(max(b[0], 0.0), 1.0) * height),
                int(min(max(b[3], 0.0), 1.0) * width), int(min(max(b[2], 0.0), 1.0) * height)) for b in boxes]
    if not objects:
        objects = [(0, 0, width, height)]
    low, high = aspect_ratio_range
    for _ in range(max_attempts):
        aspect = rng.random() * (high - low) + low
        crop = _random_crop(width, height, area_range[0], area_range[1], aspect, rng)
        if crop is not None and _covers_an_object(crop, objects, min_object_covered):
            x, y, w, h = crop
            return y, x, h, w
    return 0, 0, height, width


def open_image(encoded: bytes) -> PIL.Image.Image:
    """A lazily decoded image (header read, pixels not yet); raises PIL/OSError on bad bytes."""
    return PIL.Image.open(io.BytesIO(encoded))


def _to_tensor(image: PIL.Image.Image) -> torch.Tensor:
    """RGB PIL image -> uint8 [3, H, W]."""
    array = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def crop_and_resize(image: PIL.Image.Image, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """Crop `box` (top, left, height, width in pixels of the full image) and resize it to size×size.

    For a JPEG whose crop is much larger than `size`, the decoder is asked for a reduced image
    (DCT scaling by 1/2, 1/4 or 1/8) that still gives the crop at least `size` pixels a side, which
    makes decoding several times faster. The resize is bilinear with antialiasing; uint8 [3, S, S].
    """
    top, left, height, width = box
    full_w, full_h = image.size
    if image.format == "JPEG":
        image.draft("RGB", (math.ceil(full_w * size / width), math.ceil(full_h * size / height)))
    scale_x, scale_y = image.size[0] / full_w, image.size[1] / full_h
    if image.mode != "RGB":
        image = image.convert("RGB")
    region = (left * scale_x, top * scale_y, (left + width) * scale_x, (top + height) * scale_y)
    return _to_tensor(image.resize((size, size), PIL.Image.BILINEAR, box=region))


def central_crop(image: torch.Tensor, fraction: float = EVAL_CENTRAL_FRACTION) -> torch.Tensor:
    """`tf.image.central_crop`: keep the centre `fraction` of each side of a [..., H, W] image.

    As TF, the margin is `H // int(1 / ((1 - fraction) / 2))` pixels (H // 16 for 0.875) per side.
    """
    divisor = int(1 / ((1 - fraction) / 2))
    height, width = image.shape[-2:]
    top, left = height // divisor, width // divisor
    return image[..., top:height - top, left:width - left]


def resize_bilinear(image: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [3, H, W] -> uint8 [3, size, size], bilinear with half-pixel centres, rounded."""
    resized = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", align_corners=False)
    return resized[0].round_().clamp_(0, 255).to(torch.uint8)


def eval_image(image: PIL.Image.Image | torch.Tensor, image_size: int) -> torch.Tensor:
    """One decoded image (PIL, or uint8 [3, H, W] RGB) -> uint8 [3, S, S]: central crop 0.875, resize."""
    tensor = _to_tensor(image) if isinstance(image, PIL.Image.Image) else image
    return resize_bilinear(central_crop(tensor), image_size)


def scale_to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, S, S] -> float32 in [-1, 1], as the original's `(x - 0.5) * 2` on [0, 1] pixels."""
    return images.float().mul_(2.0 / 255.0).sub_(1.0)


def adjust_contrast(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """`tf.image.adjust_contrast` per image: (x - channel mean) * factor + channel mean."""
    mean = images.mean(dim=(-2, -1), keepdim=True)
    return (images - mean).mul_(factors[:, None, None, None]).add_(mean)


def adjust_saturation_hue(images: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """`tf.image.adjust_saturation` then `adjust_hue`, per image, in one RGB -> HSV -> RGB round trip.

    Saturation is multiplied and clipped to [0, 1]; hue is shifted by `hue` turns, modulo 1.
    """
    value, _ = images.max(dim=1, keepdim=True)
    chroma = value - images.min(dim=1, keepdim=True)[0]
    sat = torch.where(value > 0, chroma / value.clamp_min(1e-12), torch.zeros_like(value))
    safe = chroma.clamp_min(1e-12)
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    h = torch.where(value == r, (g - b) / safe,
                    torch.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = torch.where(chroma > 0, h, torch.zeros_like(h))
    h6 = torch.remainder(h + 6.0 * hue[:, None, None, None], 6.0)
    sat = sat.mul_(saturation[:, None, None, None]).clamp_(0.0, 1.0)
    # HSV -> RGB, channel n in (5, 3, 1): v - v*s*clamp(min(k, 4 - k), 0, 1) with k = (n + h6) mod 6.
    k = torch.remainder(torch.tensor([5.0, 3.0, 1.0], device=images.device)[None, :, None, None] + h6, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return value - value * sat * ramp


def distort_batch(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 [B, 3, S, S] on any device -> float32 in [-1, 1] with the original's training distortions.

    Per image: flip left-right with probability 1/2; brightness ±32/255; then, in order 0,
    saturation 0.5–1.5, hue ±0.2, contrast 0.5–1.5, or in order 1 contrast, saturation, hue (the
    original picked the order by preprocessing thread; here each image draws it); clip to [0, 1];
    scale to [-1, 1]. Random numbers come from `generator` (on its own device), so a run that
    saves and restores the generator repeats its distortions exactly.
    """
    n = images.shape[0]
    device = generator.device if generator is not None else torch.device("cpu")
    draws = torch.rand(n, 6, generator=generator, device=device, dtype=torch.float64).to(images.device)
    flip, order = draws[:, 0] < 0.5, draws[:, 1] < 0.5

    def uniform(column: int, low: float, high: float) -> torch.Tensor:
        return (low + (high - low) * draws[:, column]).float()

    brightness = uniform(2, -BRIGHTNESS_MAX_DELTA, BRIGHTNESS_MAX_DELTA)
    saturation = uniform(3, *SATURATION_RANGE)
    hue = uniform(4, -HUE_MAX_DELTA, HUE_MAX_DELTA)
    contrast = uniform(5, *CONTRAST_RANGE)

    x = images.float().mul_(1.0 / 255.0)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    x = x.add_(brightness[:, None, None, None])
    contrast_first = order.nonzero().flatten()
    if len(contrast_first):
        x[contrast_first] = adjust_contrast(x[contrast_first], contrast[contrast_first])
    x = adjust_saturation_hue(x, saturation, hue)
    contrast_last = (~order).nonzero().flatten()
    if len(contrast_last):
        x[contrast_last] = adjust_contrast(x[contrast_last], contrast[contrast_last])
    return x.clamp_(0.0, 1.0).mul_(2.0).sub_(1.0)
