"""Decoding: JPEGs through libjpeg-turbo, everything else through Pillow, always RGB."""

from __future__ import annotations

import io

import numpy as np
import PIL.Image
import torch

from inception3.data.decode import decode_image, decode_pixels, decoded_size, image_size


def test_decode_image_reads_jpeg_and_other_formats_as_rgb():
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, "PNG")
    assert torch.equal(decode_image(buffer.getvalue()), torch.from_numpy(pixels).permute(2, 0, 1))
    grey = io.BytesIO()
    PIL.Image.fromarray(pixels[..., 0]).save(grey, "JPEG")
    assert decode_image(grey.getvalue()).shape == (3, 20, 30)


def test_image_size_is_height_then_width_for_jpeg_and_other_formats():
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    for image_format in ("JPEG", "PNG"):
        buffer = io.BytesIO()
        PIL.Image.fromarray(pixels).save(buffer, image_format)
        assert image_size(buffer.getvalue()) == (20, 30)


def test_jpegs_scale_down_only_by_a_half_a_quarter_or_an_eighth():
    # libjpeg-turbo's 7/8, 3/4 and 5/8 scales cost more than a full decode: a crop that needs 350 of
    # 400 rows is decoded at full size, one that needs 200 at 1/2, one that needs 40 at 1/8.
    pixels = np.random.default_rng(1).integers(0, 256, (400, 300, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, "JPEG")
    encoded = buffer.getvalue()
    for minimum, expected in [(350, (400, 300)), (200, (200, 150)), (100, (100, 75)), (40, (50, 38))]:
        assert decoded_size(encoded, minimum, 1) == expected
        assert decode_pixels(encoded, minimum, 1).shape == (*expected, 3)
    assert decode_pixels(encoded).shape == (400, 300, 3), "no minimum: full size"
    png = io.BytesIO()
    PIL.Image.fromarray(pixels).save(png, "PNG")
    assert decoded_size(png.getvalue(), 40, 40) == (400, 300), "Pillow's formats never scale"
