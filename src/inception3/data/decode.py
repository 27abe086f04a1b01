"""Encoded image bytes -> uint8 RGB pixels, in the loader's worker processes.

JPEGs go to libjpeg-turbo (through simplejpeg) with TensorFlow's default integer fast DCT, and can be
decoded DCT-scaled when only a smaller image is needed; whatever libjpeg-turbo refuses (CMYK JPEGs,
PNG and the other formats) goes to Pillow. `crop.py` crops what is decoded here.
"""

from __future__ import annotations

import io

import numpy as np
import PIL.Image
import simplejpeg
import torch

# What the decoders here raise on bytes that are not a whole image (PIL.UnidentifiedImageError is an
# OSError; Pillow raises SyntaxError and RuntimeError on some malformed headers).
DECODE_ERRORS = (OSError, RuntimeError, ValueError, SyntaxError)


def open_image(encoded: bytes) -> PIL.Image.Image:
    """A lazily decoded image (header read, pixels not yet); raises PIL/OSError on bad bytes."""
    return PIL.Image.open(io.BytesIO(encoded))


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


def decode_pixels(encoded: bytes, min_height: int = 0, min_width: int = 0) -> np.ndarray:
    """uint8 RGB [H', W', 3]; a JPEG is DCT-scaled down as far as (min_height, min_width) pixels allow.

    Scaling by 7/8, 3/4, ... 1/8 while decoding costs a fraction of a full decode, so a caller that
    needs only a smaller image says how small it may be.
    """
    if _is_jpeg(encoded):
        try:
            # fastdct: the integer fast DCT, TensorFlow's decode_jpeg default (dct_method="")
            return simplejpeg.decode_jpeg(
                encoded, colorspace="RGB", fastdct=True, min_height=min_height, min_width=min_width
            )
        except ValueError:
            pass  # CMYK and other JPEGs libjpeg-turbo cannot give as RGB: Pillow converts them
    with open_image(encoded) as image:
        return np.array(image.convert("RGB"))


def decode_image(encoded: bytes) -> torch.Tensor:
    """Encoded JPEG (or any format Pillow reads) -> uint8 RGB [3, H, W]; one of DECODE_ERRORS if corrupt."""
    return torch.from_numpy(decode_pixels(encoded)).permute(2, 0, 1)
