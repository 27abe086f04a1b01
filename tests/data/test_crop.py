"""The loader workers' crops: the sampler's rules (TF's), the DCT-scaled crop, the eval crop."""

from __future__ import annotations

import io

import numpy as np
import PIL.Image
import pytest
import torch

from inception3.data.crop import central_crop, crop_and_resize, eval_image, sample_distorted_box


def _boxes(height, width, boxes, draws=2000, seed=0, **options):
    rng = np.random.default_rng(seed)
    return np.array([sample_distorted_box(height, width, boxes, rng, **options) for _ in range(draws)])


def test_sampled_crops_respect_area_and_aspect_ranges_and_stay_inside():
    height, width = 375, 500
    crops = _boxes(height, width, [])
    top, left, h, w = crops.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= height).all() and (left + w <= width).all()
    area = h * w / (height * width)
    sampled = area < 1.0  # the whole image is the fall-back and also a legal full-area draw
    assert area.min() >= 0.05 - 1e-9 and area.max() <= 1.0
    aspect = w[sampled] / h[sampled]
    # lrint rounding of the width moves the ratio by at most half a pixel over the height
    assert aspect.min() >= 0.75 - 0.5 / h[sampled].min() and aspect.max() <= 1.33 + 0.5 / h[sampled].min()
    assert sampled.mean() > 0.9, "most draws succeed at the first attempts"
    assert 0.3 < area.mean() < 0.7, "areas spread over the range"


def test_every_crop_covers_at_least_a_tenth_of_the_object():
    height, width = 300, 400
    box = (0.1, 0.7, 0.3, 0.9)  # ymin, xmin, ymax, xmax: a 60x80 object in the top-right
    oy0, ox0, oy1, ox1 = 30, 280, 90, 360
    crops = _boxes(height, width, [box], draws=1000)
    top, left, h, w = crops.T
    inter = np.clip(np.minimum(left + w, ox1) - np.maximum(left, ox0), 0, None) * np.clip(
        np.minimum(top + h, oy1) - np.maximum(top, oy0), 0, None
    )
    assert (inter / ((oy1 - oy0) * (ox1 - ox0)) >= 0.1).all()
    assert (left + w / 2).mean() > width / 2, "crops are pulled towards the object"


def test_impossible_constraints_fall_back_to_the_whole_image():
    crops = _boxes(200, 200, [(0.0, 0.0, 1.0, 1.0)], draws=20, min_object_covered=0.9, area_range=(0.05, 0.1))
    assert (crops == [0, 0, 200, 200]).all()


def test_sampler_is_a_function_of_its_generator():
    first = _boxes(100, 150, [], draws=50, seed=3)
    assert (first == _boxes(100, 150, [], draws=50, seed=3)).all()
    assert (first != _boxes(100, 150, [], draws=50, seed=4)).any()


def test_eval_crop_equals_hand_computed_reference():
    image = torch.arange(3 * 32 * 32, dtype=torch.int64).reshape(3, 32, 32) % 251
    image = image.to(torch.uint8)
    cropped = central_crop(image)
    assert cropped.shape == (3, 28, 28)  # margin 32 // 16 = 2 pixels a side
    assert torch.equal(cropped, image[:, 2:30, 2:30])
    # TF1's resize_bilinear samples output pixel i at source i × 28/14 = 2i, a whole pixel: halving
    # keeps every other pixel, unblended and unrounded (TF2's half-pixel centres would average 2×2).
    reference = cropped[:, ::2, ::2].float()
    assert torch.equal(eval_image(image, 14), reference)
    pil = PIL.Image.fromarray(image.permute(1, 2, 0).numpy())
    assert torch.equal(eval_image(pil, 14), reference)
    blocks = cropped.float().reshape(3, 14, 2, 14, 2).mean(dim=(2, 4))
    assert torch.allclose(eval_image(image, 14, half_pixel_centers=True), blocks)


def test_tf_central_crop_margins_for_odd_sizes():
    image = torch.zeros(3, 299, 250, dtype=torch.uint8)
    assert central_crop(image).shape == (3, 299 - 2 * 18, 250 - 2 * 15)


def _smooth_jpeg(height: int, width: int) -> bytes:
    """A photo-like JPEG: random colours blended smoothly over the frame."""
    cells = np.random.default_rng(0).integers(0, 255, (height // 100, width // 100, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(cells).resize((width, height), PIL.Image.BICUBIC).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def _reference_crop(encoded: bytes, box, size: int) -> torch.Tensor:
    top, left, height, width = box
    full = PIL.Image.open(io.BytesIO(encoded)).convert("RGB")
    resized = full.resize((size, size), PIL.Image.BILINEAR, box=(left, top, left + width, top + height))
    return torch.from_numpy(np.array(resized)).permute(2, 0, 1)


@pytest.mark.parametrize("box", [(100, 200, 1000, 1200), (10, 20, 120, 100)], ids=["reduced", "full"])
def test_crop_and_resize_matches_pillow_on_the_fully_decoded_image(box):
    encoded = _smooth_jpeg(1200, 1600)  # the first crop is 1000 px for 75: decoded at 1/8
    ours = crop_and_resize(encoded, box, 75)
    assert ours.shape == (3, 75, 75) and ours.dtype == torch.uint8
    difference = (ours.float() - _reference_crop(encoded, box, 75).float()).abs().mean()
    assert difference < 2.5, "DCT scaling filters a little differently, nothing more"
