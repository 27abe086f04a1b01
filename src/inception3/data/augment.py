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
import simplejpeg
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


def _is_jpeg(encoded: bytes) -> bool:
    return encoded[:2] == b"\xff\xd8"


def image_size(encoded: bytes) -> tuple[int, int]:
    """(height, width) in pixels from the header alone; OSError/ValueError when it is unreadable."""
    if _is_jpeg(encoded):
        try:
            height, width, _, _ = simplejpeg.decode_jpeg_header(encoded)
            return height, width
        except ValueError:
            pass  # a JPEG libjpeg-turbo's header reader refuses; Pillow decides
    with open_image(encoded) as image:
        return image.height, image.width


def _decode_pixels(encoded: bytes, min_height: int = 0, min_width: int = 0) -> np.ndarray:
    """uint8 RGB [H', W', 3]; a JPEG is DCT-scaled down as far as (min_height, min_width) allow."""
    if _is_jpeg(encoded):
        try:
            # fastdct: the integer fast DCT, TensorFlow's decode_jpeg default (dct_method="")
            return simplejpeg.decode_jpeg(encoded, colorspace="RGB", fastdct=True, min_height=min_height,
                                          min_width=min_width)
        except ValueError:
            pass  # CMYK and other JPEGs libjpeg-turbo cannot give as RGB: Pillow converts them
    with open_image(encoded) as image:
        return np.array(image.convert("RGB"))


def decode_image(encoded: bytes) -> torch.Tensor:
    """Encoded JPEG (or any format Pillow reads) -> uint8 RGB [3, H, W]; ValueError/OSError if corrupt."""
    return torch.from_numpy(_decode_pixels(encoded)).permute(2, 0, 1)


def crop_and_resize(encoded: bytes, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """Decode, crop `box` (top, left, height, width in pixels) and resize it to uint8 [3, size, size].

    libjpeg-turbo (via simplejpeg) decodes with DCT scaling by the largest of its factors (7/8,
    3/4, ... 1/8) that still leaves the crop at least `size` pixels a side: a crop much larger than
    the output costs a fraction of a full decode. The crop is then snapped to the scaled pixel grid
    and resized bilinearly with antialiasing (Pillow's filter, PyTorch's fast uint8 kernel).
    """
    top, left, height, width = box
    full_height, full_width = image_size(encoded)
    pixels = _decode_pixels(encoded, min_height=math.ceil(full_height * size / height),
                            min_width=math.ceil(full_width * size / width))
    scale_y, scale_x = pixels.shape[0] / full_height, pixels.shape[1] / full_width
    region = pixels[round(top * scale_y):round((top + height) * scale_y),
                    round(left * scale_x):round((left + width) * scale_x)]
    batch = torch.from_numpy(region).permute(2, 0, 1)[None]  # channels-last: the fast kernel's layout
    return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


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


def _contrast_(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """In place: (x - channel mean) * factor + channel mean, one factor per image."""
    mean = images.mean(dim=(-2, -1), keepdim=True)
    return images.sub_(mean).mul_(factors.view(-1, 1, 1, 1)).add_(mean)


def _saturation_hue_(images: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """In place: TF's saturation scaling then hue shift, through HSV, one factor and shift per image.

    With value v = max, chroma c = max - min and hue H in sixths of a turn (TF's rgb_to_hsv: red
    wins ties, then green), the new chroma is min(c * factor, v) (saturation c/v scaled, clipped
    to 1), H moves by 6 * hue modulo 6, and each channel becomes (v - c') + c' * X(H), X being
    the standard hue ramps. Written with in-place arithmetic and no branches or comparisons, which
    are several times slower on a CPU; two scratch planes do all the work.
    """
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    value = images.amax(dim=1, keepdim=True)
    chroma = images.amin(dim=1, keepdim=True)
    torch.sub(value, chroma, out=chroma)
    # hue * chroma for a maximum in blue, replaced where green, then red, is the maximum: there
    # sign(v - channel) is 0, elsewhere 1.
    h = torch.sub(r, g).add_(chroma, alpha=4.0)
    scratch = torch.sub(b, r).add_(chroma, alpha=2.0).sub_(h)
    is_max = torch.sub(value, g).sign_().neg_().add_(1.0)
    h.addcmul_(scratch, is_max)
    torch.sub(g, b, out=scratch).sub_(h)
    torch.sub(value, r, out=is_max).sign_().neg_().add_(1.0)
    h.addcmul_(scratch, is_max)
    h.div_(torch.clamp(chroma, min=1e-12, out=scratch)).add_(hue.view(-1, 1, 1, 1) * 6.0)
    # H is now in [-2.2, 6.2]: wrap into [0, 6).
    h.sub_(torch.sub(h, 6.0, out=scratch).sign_().clamp_(min=0.0), alpha=6.0)
    h.sub_(torch.sign(h, out=scratch).clamp_(max=0.0), alpha=6.0)
    torch.minimum(chroma.mul_(saturation.view(-1, 1, 1, 1)), value, out=chroma).clamp_(min=0.0)
    base = value.sub_(chroma)
    ramp = scratch
    torch.addcmul(base, chroma, torch.sub(h, 3.0, out=ramp).abs_().sub_(1.0).clamp_(0.0, 1.0), out=r)
    torch.addcmul(base, chroma, torch.sub(h, 2.0, out=ramp).abs_().neg_().add_(2.0).clamp_(0.0, 1.0), out=g)
    torch.addcmul(base, chroma, torch.sub(h, 4.0, out=ramp).abs_().neg_().add_(2.0).clamp_(0.0, 1.0), out=b)
    return images


def adjust_contrast(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """`tf.image.adjust_contrast` per image: (x - channel mean) * factor + channel mean."""
    return _contrast_(images.clone(), factors)


def adjust_saturation_hue(images: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """`tf.image.adjust_saturation` then `adjust_hue`, per image, in one RGB -> HSV -> RGB round trip.

    Saturation is multiplied and clipped to [0, 1]; hue is shifted by `hue` turns, modulo 1.
    """
    return _saturation_hue_(images.clone(), saturation, hue)


_CPU_CHUNK = 1  # images distorted at a time on a CPU: scratch planes stay in cache


def distort_batch(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 [B, 3, S, S] on any device -> float32 in [-1, 1] with the original's training distortions.

    Per image: flip left-right with probability 1/2; brightness ±32/255; then, in order 0,
    saturation 0.5–1.5, hue ±0.2, contrast 0.5–1.5, or in order 1 contrast, saturation, hue (the
    original picked the order by preprocessing thread; here each image draws it); clip to [0, 1];
    scale to [-1, 1]. Random numbers come from `generator` (on its own device), so a run that
    saves and restores the generator repeats its distortions exactly. On a CPU the batch is done
    one image at a time, in place, several times faster than with whole-batch temporaries.
    """
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

    # Brightness, contrast and the final scaling are affine per image and channel, so each run of
    # them is one multiply-add: order 1 does pixel/255 + brightness then contrast before the HSV
    # step, order 0 does contrast after it, and the clip to [0, 1] becomes a clip to [-1, 1].
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    step = _CPU_CHUNK if images.device.type == "cpu" else max(n, 1)
    for start in range(0, n, step):
        part = slice(start, start + step)
        x = out[part]
        if images.device.type == "cpu":  # per image: a masked select over the batch is slow on a CPU
            for j, flipped in enumerate(flip[part].tolist()):
                x[j].copy_(images[start + j].flip(-1) if flipped else images[start + j])
        else:
            x.copy_(torch.where(flip[part, None, None, None], images[part].flip(-1), images[part]))
        f, b = contrast[part], brightness[part]
        mean = x.mean(dim=(-2, -1), keepdim=True).mul_(1.0 / 255.0)
        scale = torch.where(contrast_first[part], f, torch.ones_like(f)).mul_(1.0 / 255.0)
        shift = torch.where(contrast_first[part], (1.0 - f) * mean + b, b.expand_as(mean))
        x.mul_(scale).add_(shift)
        _saturation_hue_(x, saturation[part], hue[part])
        mean = x.mean(dim=(-2, -1), keepdim=True)
        scale = torch.where(contrast_first[part], torch.full_like(f, 2.0), 2.0 * f)
        shift = torch.where(contrast_first[part], torch.full_like(mean, -1.0), 2.0 * (1.0 - f) * mean - 1.0)
        x.mul_(scale).add_(shift).clamp_(-1.0, 1.0)
    return out
