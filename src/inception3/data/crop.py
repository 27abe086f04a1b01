"""Crops of a record's image, in the loader's worker processes: decoded pixels in, cropped pixels out.

Training: `sample_distorted_box` draws a box by the rules of `tf.image.sample_distorted_bounding_box`
and `crop_and_resize` decodes just enough of the JPEG to cut it out at the output size (the crop and
resize of the original's `distort_image`), as uint8. Evaluation: `eval_image`, the original's
`central_crop` 0.875 and TF1's bilinear resize, unrounded float pixels as TensorFlow computes them
(`preprocess.py` names it beside other projects' evaluation preprocessings). The rest of the
training distortions run on whole batches, on the training device (`augment/`).
"""

from __future__ import annotations

import math

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from inception3.config import (
    AREA_RANGE,
    ASPECT_RATIO_RANGE,
    EVAL_CENTRAL_FRACTION,
    MAX_CROP_ATTEMPTS,
    MIN_OBJECT_COVERED,
)
from inception3.data.decode import decode_pixels, image_size
from inception3.data.example import Box


def _lrint(value: float) -> int:
    """C's lrintf: round half to even, as TensorFlow's sampler rounds."""
    return int(round(value))


def _random_crop(
    width: int,
    height: int,
    min_area_frac: float,
    max_area_frac: float,
    aspect: float,
    rng: np.random.Generator,
) -> tuple[int, int, int, int] | None:
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


def _covers_an_object(
    crop: tuple[int, int, int, int], objects: list[tuple[int, int, int, int]], min_covered: float
) -> bool:
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


def sample_distorted_box(
    height: int,
    width: int,
    boxes: tuple[Box, ...] | list[Box],
    rng: np.random.Generator,
    *,
    min_object_covered: float = MIN_OBJECT_COVERED,
    aspect_ratio_range: tuple[float, float] = ASPECT_RATIO_RANGE,
    area_range: tuple[float, float] = AREA_RANGE,
    max_attempts: int = MAX_CROP_ATTEMPTS,
) -> tuple[int, int, int, int]:
    """A random crop (top, left, crop_height, crop_width) in pixels of a `height`×`width` image.

    Same rules as `tf.image.sample_distorted_bounding_box(use_image_if_no_bounding_boxes=True)`:
    up to `max_attempts` draws of an aspect ratio (width/height) and an area fraction; a draw is
    kept when the box covers at least `min_object_covered` of one object box (the whole image when
    `boxes` is empty); after `max_attempts` failures the whole image is the crop.
    """
    objects = [
        (
            int(min(max(b[1], 0.0), 1.0) * width),
            int(min(max(b[0], 0.0), 1.0) * height),
            int(min(max(b[3], 0.0), 1.0) * width),
            int(min(max(b[2], 0.0), 1.0) * height),
        )
        for b in boxes
    ]
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


def crop_minimums(height: int, width: int, box: tuple[int, int, int, int], size: int) -> tuple[int, int]:
    """The smallest (height, width) a height × width image may be decoded at for `box` (top, left,
    height, width in its pixels) still to span `size` pixels a side or more."""
    return math.ceil(height * size / box[2]), math.ceil(width * size / box[3])


def scale_box(
    box: tuple[int, int, int, int], full: tuple[int, int], decoded: tuple[int, int]
) -> tuple[int, int, int, int]:
    """`box` (top, left, height, width) in the pixels of an image of size `full`, snapped to the grid of
    the same image decoded at size `decoded`."""
    top, left, height, width = box
    scale_y, scale_x = decoded[0] / full[0], decoded[1] / full[1]
    y0, y1 = round(top * scale_y), round((top + height) * scale_y)
    x0, x1 = round(left * scale_x), round((left + width) * scale_x)
    return y0, x0, y1 - y0, x1 - x0


def decode_crop(
    encoded: bytes, box: tuple[int, int, int, int], size: int, buffer: np.ndarray | None = None
) -> np.ndarray:
    """Decode just enough of the image to cut `box` (top, left, height, width in pixels) out of it at
    `size` pixels a side or more: uint8 [h, w, 3] RGB, a view of the decoded pixels.

    libjpeg-turbo (via simplejpeg) decodes with DCT scaling by the largest of 1/2, 1/4 and 1/8 that
    still leaves the crop at least `size` pixels a side (`decode.scaled_size`): a crop much larger
    than the output costs a fraction of a full decode. The crop is snapped to the scaled pixel grid.
    `buffer`: see `decode.decode_pixels` (the crop is then a view of it).
    """
    full = image_size(encoded)
    pixels = decode_pixels(encoded, *crop_minimums(*full, box, size), buffer=buffer)
    top, left, height, width = scale_box(box, full, pixels.shape[:2])
    return pixels[top : top + height, left : left + width]


def crop_and_resize(
    encoded: bytes, box: tuple[int, int, int, int], size: int, buffer: np.ndarray | None = None
) -> torch.Tensor:
    """Decode, crop `box` (top, left, height, width in pixels) and resize it to uint8 [3, size, size].

    `decode_crop`, then a bilinear resize with antialiasing (Pillow's filter, PyTorch's fast uint8
    kernel). `device_crop.resize` is the same resize, for crops finished on the training device.
    """
    batch = torch.from_numpy(decode_crop(encoded, box, size, buffer)).permute(2, 0, 1)[None]  # NHWC
    return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def central_crop(image: torch.Tensor, fraction: float = EVAL_CENTRAL_FRACTION) -> torch.Tensor:
    """`tf.image.central_crop`: keep the centre `fraction` of each side of a [..., H, W] image.

    As TF, the margin is `H // int(1 / ((1 - fraction) / 2))` pixels (H // 16 for 0.875) per side.
    """
    divisor = int(1 / ((1 - fraction) / 2))
    height, width = image.shape[-2:]
    top, left = height // divisor, width // divisor
    return image[..., top : height - top, left : width - left]


def _sample_points(
    in_size: int, out_size: int, half_pixel_centers: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TensorFlow's `compute_interpolation_weights`, in its float32 arithmetic: for each output pixel,
    the lower and upper source pixels and the weight of the upper one.

    TF1's legacy scaler samples output pixel i at source coordinate i × in/out (pixel corners
    aligned at 0, not pixel centres); with half-pixel centres (TF2) at (i + 0.5) × in/out − 0.5.
    """
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    points = torch.arange(out_size, dtype=torch.float32)
    source = (points + 0.5) * scale - 0.5 if half_pixel_centers else points * scale
    floor = source.floor()
    lower = floor.long().clamp_(min=0)
    upper = source.ceil().long().clamp_(max=in_size - 1)
    return lower, upper, source - floor


def resize_bilinear(image: torch.Tensor, size: int, *, half_pixel_centers: bool = False) -> torch.Tensor:
    """[C, H, W] (uint8 or float) -> float32 [C, size, size]: TensorFlow's bilinear resize, unrounded.

    The default is TF1's `tf.image.resize_bilinear(align_corners=False)`, which the original and
    TF-Slim evaluated with: it has no half-pixel centres, so its grid sits 0.5 × (in/out − 1) source
    pixels up and left of PyTorch's `F.interpolate(align_corners=False)`. `half_pixel_centers` gives
    TF2's `tf.image.resize(method="bilinear")`. The arithmetic (the lerp order and float32) is
    TensorFlow's, and the result is not rounded: TensorFlow resizes the float image.
    """
    channels, height, width = image.shape
    y0, y1, wy = _sample_points(height, size, half_pixel_centers)
    x0, x1, wx = _sample_points(width, size, half_pixel_centers)
    # Rows first (only the 2 × size needed, converted to float), then columns by `gather` on the rows
    # flattened: a dozen times faster than advanced indexing, the same arithmetic.
    top = image.index_select(1, y0).float().view(-1, width)
    bottom = image.index_select(1, y1).float().view(-1, width)
    left, right = x0.expand(top.shape[0], -1), x1.expand(top.shape[0], -1)
    upper = top.gather(1, left)
    upper += (top.gather(1, right) - upper).mul_(wx)  # top_left + (top_right - top_left) * x_lerp
    lower = bottom.gather(1, left)
    lower += (bottom.gather(1, right) - lower).mul_(wx)
    upper += (lower - upper).mul_(wy.repeat(channels)[:, None])  # top + (bottom - top) * y_lerp
    return upper.view(channels, size, size)


def _to_tensor(image: PIL.Image.Image) -> torch.Tensor:
    """RGB PIL image -> uint8 [3, H, W]."""
    array = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def eval_image(
    image: PIL.Image.Image | torch.Tensor, size: int, *, half_pixel_centers: bool = False
) -> torch.Tensor:
    """The original's eval_image: a decoded image (PIL, or uint8 [3, H, W] RGB) -> float32 [3, size, size]
    pixels on the 0-255 scale, unrounded: `central_crop` 0.875, then TF1's `resize_bilinear`
    (TF2's with `half_pixel_centers`). `augment.scale_to_unit` maps them to [-1, 1]."""
    tensor = _to_tensor(image) if isinstance(image, PIL.Image.Image) else image
    return resize_bilinear(central_crop(tensor), size, half_pixel_centers=half_pixel_centers)
