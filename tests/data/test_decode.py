"""Decoding: JPEGs through libjpeg-turbo, everything else through Pillow, always RGB."""

from __future__ import annotations

import io

import numpy as np
import PIL.Image
import torch

from inception3.data.decode import decode_image, image_size


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
