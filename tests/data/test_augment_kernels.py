"""Each batched kernel against `torchvision.transforms.v2.functional` on the same images and parameters.

The images are uint8 75×75, each with its own parameter; torchvision gets them one at a time. The
kernels repeat torchvision's float32 arithmetic in its order, so most match exactly. The blends
(brightness, color, contrast, sharpness) are allowed one level on a few pixels: torchvision adds
`alpha × degenerate` with a scalar alpha, the kernels with a per-image tensor (`addcmul_`), and a
kernel that fuses the multiply-add (CUDA, some vector units) can round the product differently
before uint8 truncation moves it across a level.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from inception3.data.augment import kernels

N = 6


def _images(seed: int = 0) -> torch.Tensor:
    """Noise on smooth ramps: edges for sharpness, a spread of levels for equalize and autocontrast."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, 75)[None, None, None, :] + np.linspace(0, 40, 75)[None, None, :, None]
    noise = rng.integers(0, 56, (N, 3, 75, 75))
    return torch.from_numpy((ramp + noise).astype(np.uint8))


def _assert_within_a_level_on_few_pixels(ours: torch.Tensor, reference: torch.Tensor) -> None:
    assert ours.dtype == reference.dtype == torch.uint8
    off = (ours.int() - reference.int()).abs()
    assert int(off.max()) <= 1 and float((off > 0).float().mean()) < 1e-3


FACTORS = torch.tensor([0.1, 0.37, 1.0, 1.45, 1.9, 0.0], dtype=torch.float64)


@pytest.mark.parametrize(
    ("kernel", "reference"),
    [
        (kernels.adjust_brightness, TF.adjust_brightness),
        (kernels.adjust_saturation, TF.adjust_saturation),
        (kernels.adjust_contrast, TF.adjust_contrast),
        (kernels.adjust_sharpness, TF.adjust_sharpness),
    ],
)
def test_each_blend_matches_torchvision_with_its_own_factor_per_image(kernel, reference):
    images = _images()
    expected = torch.stack([reference(x, float(f)) for x, f in zip(images, FACTORS, strict=True)])
    _assert_within_a_level_on_few_pixels(kernel(images, FACTORS), expected)


def test_posterize_matches_torchvision_exactly():
    images, bits = _images(), torch.tensor([8, 7, 6, 5, 4, 2])
    expected = torch.stack([TF.posterize(x, int(b)) for x, b in zip(images, bits, strict=True)])
    assert torch.equal(kernels.posterize(images, bits), expected)


def test_solarize_matches_torchvision_exactly_also_at_thresholds_just_above_a_level():
    """255 × float32(14/15) is 238.0000010 in float64, 238 in float32, as torchvision compares it."""
    images = _images()
    threshold = torch.tensor(
        [255 * float(np.float32(14 / 15)), 0.0, 128.0, 255.0, 200.5, 17.0], dtype=torch.float64
    )
    expected = torch.stack([TF.solarize(x, float(t)) for x, t in zip(images, threshold, strict=True)])
    assert torch.equal(kernels.solarize(images, threshold), expected)


@pytest.mark.parametrize(
    ("kernel", "reference"), [(kernels.autocontrast, TF.autocontrast), (kernels.equalize, TF.equalize)]
)
def test_autocontrast_and_equalize_match_torchvision_exactly(kernel, reference):
    images = _images() // 2 + 30  # levels 30-157: both have work to do
    images[-1] = 77  # a flat image: both leave it as it is
    expected = torch.stack([reference(x) for x in images])
    assert torch.equal(kernel(images), expected)
    assert torch.equal(kernel(images)[-1], images[-1])


def _zeros() -> torch.Tensor:
    return torch.zeros(N, dtype=torch.float64)


@pytest.mark.parametrize("axis", ["x", "y"])
def test_a_shear_per_image_matches_torchvisions_affine_about_the_top_left_corner(axis):
    images, z = _images(), _zeros()
    tangent = torch.tensor([-0.99, -0.3, 0.0, 0.17, 0.5, 0.99], dtype=torch.float64)
    degrees = kernels.shear_degrees(tangent)
    shear = (degrees, z) if axis == "x" else (z, degrees)
    matrices = kernels.inverse_affine_matrices(z, (z, z), shear, (z - 37.5, z - 37.5))
    expected = []
    for x, t in zip(images, tangent.tolist(), strict=True):
        angle = math.degrees(math.atan(t))
        pair = [angle, 0.0] if axis == "x" else [0.0, angle]
        expected.append(TF.affine(x, 0.0, [0, 0], 1.0, pair, InterpolationMode.NEAREST, center=[0, 0]))
    assert torch.equal(kernels.affine(images, matrices), torch.stack(expected))


def test_a_translation_per_image_matches_torchvisions_affine():
    images, z = _images(), _zeros()
    tx = torch.tensor([-32.0, -7.0, 0.0, 3.0, 31.0, 74.0], dtype=torch.float64)
    ty = torch.tensor([5.0, -12.0, 9.0, 0.0, -31.0, 1.0], dtype=torch.float64)
    matrices = kernels.inverse_affine_matrices(z, (tx, ty), (z, z), (z, z))
    expected = torch.stack(
        [
            TF.affine(x, 0.0, [int(a), int(b)], 1.0, [0.0, 0.0], InterpolationMode.NEAREST)
            for x, a, b in zip(images, tx.tolist(), ty.tolist(), strict=True)
        ]
    )
    assert torch.equal(kernels.affine(images, matrices), expected)


def test_a_rotation_per_image_matches_torchvisions_rotate_including_its_right_angle_shortcuts():
    """torchvision turns 90° and 180° with rot90, not resampling; the matrices land on the same pixels."""
    images, z = _images(), _zeros()
    angle = torch.tensor([-135.0, -90.0, -28.7, 4.5, 90.0, 180.0], dtype=torch.float64)
    matrices = kernels.inverse_affine_matrices(-torch.remainder(angle, 360.0), (z, z), (z, z), (z, z))
    expected = torch.stack(
        [TF.rotate(x, a, InterpolationMode.NEAREST) for x, a in zip(images, angle.tolist(), strict=True)]
    )
    assert torch.equal(kernels.affine(images, matrices), expected)


@pytest.mark.parametrize(
    ("kernel", "parameter"),
    [
        (kernels.adjust_brightness, FACTORS),
        (kernels.adjust_saturation, FACTORS),
        (kernels.adjust_contrast, FACTORS),
        (kernels.adjust_sharpness, FACTORS),
        (kernels.posterize, torch.tensor([8, 7, 6, 5, 4, 2])),
        (kernels.solarize, torch.tensor([10.0, 0.0, 128.0, 255.0, 200.5, 17.0], dtype=torch.float64)),
    ],
)
def test_float_pixels_give_the_unrounded_values_within_two_levels_of_the_uint8_result(kernel, parameter):
    """uint8 truncates the result (under a level) and floors or rounds the grayscale or smoothed
    image it blends with (under a level more, times |1 - factor| <= 1); float does neither."""
    images = _images()
    ours = kernel(images.float(), parameter)
    assert ours.dtype == torch.float32 and ours.min() >= 0 and ours.max() <= 255
    torch.testing.assert_close(ours, kernel(images, parameter).float(), atol=2.0, rtol=0)
