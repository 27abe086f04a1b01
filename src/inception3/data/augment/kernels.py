"""Batched image kernels with a parameter per image, computed as torchvision's v2 functionals do.

Each takes 0-255 pixels [n, 3, H, W], uint8 or float32 (not rounded), and one parameter per image
(a float64 or int64 tensor [n]), and returns a new batch of the same dtype. On uint8 they round
as torchvision's uint8 paths do (blends truncate, the resampling rounds), so one image here equals
`torchvision.transforms.v2.functional` on it up to float arithmetic; on float they clamp to
[0, 255] and do not round. RandAugment's and TrivialAugment's ops (`policies.py`) are made of these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_BOUND = 255.0  # the largest pixel value


def _column(values: torch.Tensor) -> torch.Tensor:
    """A per-image float64 parameter [n] as float32 [n, 1, 1, 1], to broadcast over an image."""
    return values.to(torch.float32).view(-1, 1, 1, 1)


def _as(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Float32 `out` back to `like`'s dtype: uint8 truncates, as torchvision's `.to(image.dtype)`."""
    return out if like.is_floating_point() else out.to(like.dtype)


def _blend(images: torch.Tensor, degenerate: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """images × ratio + degenerate × (1 − ratio), clamped: torchvision's `_blend`, a ratio per image."""
    out = images.mul(_column(ratio))
    out.addcmul_(degenerate, _column(1.0 - ratio))
    return _as(out.clamp_(0.0, _BOUND), images)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma [n, 1, H, W] in float32, floored on uint8: torchvision's grayscale for blends."""
    r, g, b = images.unbind(dim=-3)
    gray = r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3)
    return gray if images.is_floating_point() else gray.floor_()


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Each image times its factor, clamped: a blend with black."""
    return _as(images.mul(_column(factor)).clamp_(0.0, _BOUND), images)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """A blend with the image's own grayscale: 0 is gray, 1 the image (RandAugment's "Color")."""
    return _blend(images, _grayscale(images), factor)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """A blend with the mean of the image's grayscale: 0 is flat gray, 1 the image."""
    return _blend(images, _grayscale(images).mean(dim=(-3, -2, -1), keepdim=True), factor)


def adjust_sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """A blend of the inner pixels with a 3×3 smoothing (1s around a 5, over 13): 0 smooth, 2 sharper.

    The border row and column stay as they are, as in torchvision (and PIL).
    """
    height, width = images.shape[-2:]
    if height <= 2 or width <= 2:
        return images.clone()
    a, b = 1.0 / 13.0, 5.0 / 13.0
    kernel = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], dtype=torch.float32, device=images.device)
    out = images.to(torch.float32, copy=True)
    blurred = F.conv2d(out, kernel.expand(3, 1, 3, 3), groups=3)
    if not images.is_floating_point():
        blurred.round_()
    inner = out[..., 1:-1, 1:-1]
    inner.addcmul_(blurred.sub_(inner), _column(1.0 - factor))
    return _as(out.clamp_(0.0, _BOUND), images)


def posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep each image's `bits` (int64, 0-8) highest bits: floor pixels to multiples of 2^(8 − bits)."""
    if images.is_floating_point():
        step = torch.pow(2.0, 8 - bits).to(torch.float32).view(-1, 1, 1, 1)
        return images.div(step).floor_().mul_(step).clamp_(0.0, _BOUND)
    mask = torch.bitwise_left_shift(torch.full_like(bits, 255), 8 - bits).bitwise_and_(255)
    return images & mask.to(torch.uint8).view(-1, 1, 1, 1)


def solarize(images: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert the pixels at or above each image's threshold (0-255).

    The threshold is compared in float32, as torchvision compares a uint8 image with a Python float.
    """
    return torch.where(
        images >= _column(threshold), _BOUND - images if images.is_floating_point() else ~images, images
    )


def autocontrast(images: torch.Tensor) -> torch.Tensor:
    """Stretch each channel of each image to span 0-255 (a constant channel stays as it is)."""
    x = images.to(torch.float32, copy=True)
    low = x.amin(dim=(-2, -1), keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True)
    flat = high == low
    inv_scale = torch.where(flat, 1.0, high.sub_(low).mul_(1.0 / _BOUND))
    low = torch.where(flat, 0.0, low)  # not low[flat] = 0: a masked store waits for the device
    return x.sub_(low).div_(inv_scale).clamp_(0.0, _BOUND).to(images.dtype)


def equalize(images: torch.Tensor) -> torch.Tensor:
    """Equalise each channel's histogram with PIL's lookup table, as torchvision does.

    Float pixels are rounded to 256 levels first; a channel with one level besides its top is kept.
    """
    levels = images if images.dtype == torch.uint8 else images.clamp(0.0, _BOUND).round().to(torch.uint8)
    flat = levels.flatten(start_dim=-2).to(torch.long)  # [n, 3, H·W]
    hist = flat.new_zeros((*flat.shape[:-1], 256), dtype=torch.int32)
    hist.scatter_add_(-1, flat, hist.new_ones(1).expand_as(flat))
    cumulative = hist.cumsum(dim=-1)
    top = cumulative.argmax(dim=-1, keepdim=True)  # the last level present
    step = (flat.shape[-1] - hist.gather(-1, top)).div_(255, rounding_mode="floor")
    lut = cumulative[..., :-1].add_(step // 2).div_(step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    lut = torch.cat([lut.new_zeros((*lut.shape[:-1], 1)), lut], dim=-1).to(torch.uint8)
    out = torch.where(step.ne(0), lut.gather(-1, flat).to(torch.uint8), flat.to(torch.uint8)).view_as(levels)
    return out if images.dtype == torch.uint8 else out.to(images.dtype)


def inverse_affine_matrices(
    angle: torch.Tensor,
    translate: tuple[torch.Tensor, torch.Tensor],
    shear: tuple[torch.Tensor, torch.Tensor],
    center: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Per image, torchvision's `_get_inverse_affine_matrix` at scale 1: float64 [n, 2, 3].

    Angles and shears in degrees, translation in pixels, the centre in pixels from the image's
    middle (torchvision's convention: output = T · C · RotateShear · C⁻¹ · input; this is its inverse,
    mapping an output pixel to the input pixel it samples).
    """
    rot = torch.deg2rad(angle)
    sx, sy = torch.deg2rad(shear[0]), torch.deg2rad(shear[1])
    cx, cy = center
    cx_plus_tx, cy_plus_ty = cx + translate[0], cy + translate[1]
    cos_sy, tan_sx = torch.cos(sy), torch.tan(sx)
    a = torch.cos(rot - sy) / cos_sy
    b = -(a * tan_sx + torch.sin(rot))
    c = torch.sin(rot - sy) / cos_sy
    d = torch.cos(rot) - c * tan_sx
    m0, m1, m3, m4 = d, -b, -c, a
    m2 = cx - m0 * cx_plus_tx - m1 * cy_plus_ty
    m5 = cy - m3 * cx_plus_tx - m4 * cy_plus_ty
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=-1).view(-1, 2, 3)


def affine(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Resample each image through its inverse matrix [n, 2, 3] (`inverse_affine_matrices`).

    NEAREST, fill 0 outside the image; the grid is torchvision's `_affine_grid` (pixel centres,
    normalised after the matrix) in float32, one grid_sample for the whole batch.
    """
    n, _, height, width = images.shape
    device = images.device
    theta = matrices.to(torch.float32)
    base = torch.empty(1, height, width, 3, dtype=torch.float32, device=device)
    base[..., 0].copy_(torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=device))
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, device=device)
    base[..., 1].copy_(ys.unsqueeze_(-1))
    base[..., 2].fill_(1.0)
    scale = torch.tensor([0.5 * width, 0.5 * height], dtype=torch.float32, device=device)
    rescaled = theta.transpose(1, 2).div(scale)  # [n, 3, 2]
    grid = base.view(1, height * width, 3).expand(n, -1, -1).bmm(rescaled).view(n, height, width, 2)
    x = images if images.is_floating_point() else images.to(torch.float32)
    out = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out if images.is_floating_point() else out.round_().to(images.dtype)


def shear_degrees(tangent: torch.Tensor) -> torch.Tensor:
    """A shear given as the tangent of its angle (RandAugment's magnitude) in degrees, as torchvision
    converts it (`math.degrees(math.atan(magnitude))`)."""
    return torch.rad2deg(torch.atan(tangent))
