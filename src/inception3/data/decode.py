"""Encoded image bytes -> uint8 RGB pixels, in the loader's worker processes.

JPEGs go to libjpeg-turbo (through simplejpeg) with TensorFlow's default integer fast DCT, and can be
decoded DCT-scaled when only a smaller image is needed; whatever libjpeg-turbo refuses (CMYK JPEGs,
PNG and the other formats) goes to Pillow. `crop.py` crops what is decoded here.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import PIL.Image
import simplejpeg
import torch


class ImageTooLargeError(ValueError):
    """An image whose header declares more pixels than Pillow's limit (`PIL.Image.MAX_IMAGE_PIXELS`).

    A few bytes can declare billions of pixels: decoding them could take all memory, so every reader
    refuses such an image as it refuses a corrupt one, whichever decoder would have read it.
    """


# What the decoders here raise on bytes that are not a whole image (PIL.UnidentifiedImageError is an
# OSError; Pillow raises SyntaxError and RuntimeError on some malformed headers; ImageTooLargeError is
# a ValueError; DecompressionBombError, not an OSError, should Pillow meet a bomb after the header).
DECODE_ERRORS = (OSError, RuntimeError, ValueError, SyntaxError, PIL.Image.DecompressionBombError)


def _too_large(pixels: int | str) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"image of {pixels} pixels is over the limit of {PIL.Image.MAX_IMAGE_PIXELS} pixels "
        "(PIL.Image.MAX_IMAGE_PIXELS): too large to decode safely"
    )


def _check_pixels(height: int, width: int) -> None:
    """Raise ImageTooLargeError when height × width is over Pillow's pixel limit (None: no limit)."""
    limit = PIL.Image.MAX_IMAGE_PIXELS
    if limit is not None and height * width > limit:
        raise _too_large(height * width)


def open_image(encoded: bytes) -> PIL.Image.Image:
    """A lazily decoded image (header read, pixels not yet); raises one of DECODE_ERRORS on bad bytes.

    Pillow only warns (DecompressionBombWarning) between its pixel limit and twice it, and raises
    DecompressionBombError above: both become ImageTooLargeError, so one rule holds for every size.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
        try:
            return PIL.Image.open(io.BytesIO(encoded))
        except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as error:
            size = re.search(r"\((\d+) pixels\)", str(error))  # Pillow says "Image size (N pixels) ..."
            raise _too_large(size[1] if size else "too many") from None


def _is_jpeg(encoded: bytes) -> bool:
    return encoded[:2] == b"\xff\xd8"


def _jpeg_size(encoded: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG header libjpeg-turbo reads, checked against the pixel limit; None
    for bytes that are not such a JPEG (Pillow decides)."""
    if not _is_jpeg(encoded):
        return None
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(encoded)
    except ValueError:
        return None  # a JPEG libjpeg-turbo's header reader refuses
    _check_pixels(height, width)
    return height, width


def image_size(encoded: bytes) -> tuple[int, int]:
    """(height, width) in pixels from the header alone; one of DECODE_ERRORS when it is unreadable or
    declares more pixels than the limit."""
    size = _jpeg_size(encoded)
    if size is not None:
        return size
    with open_image(encoded) as image:
        return image.height, image.width


def decode_pixels(
    encoded: bytes, min_height: int = 0, min_width: int = 0, buffer: np.ndarray | None = None
) -> np.ndarray:
    """uint8 RGB [H', W', 3]; a JPEG is DCT-scaled down as far as (min_height, min_width) pixels allow.

    Scaling by 7/8, 3/4, ... 1/8 while decoding costs a fraction of a full decode, so a caller that
    needs only a smaller image says how small it may be. A JPEG is decoded into `buffer` (the result is
    a view of it) when one of at least height × width × 3 bytes is given: a caller that decodes image
    after image spares the zero-filled fresh memory each decode would otherwise touch.
    """
    size = _jpeg_size(encoded)
    if size is not None:
        if buffer is not None and buffer.size < size[0] * size[1] * 3:
            buffer = None
        try:
            # fastdct: the integer fast DCT, TensorFlow's decode_jpeg default (dct_method="")
            return simplejpeg.decode_jpeg(
                encoded,
                colorspace="RGB",
                fastdct=True,
                min_height=min_height,
                min_width=min_width,
                buffer=buffer,
            )
        except ValueError:
            pass  # CMYK and other JPEGs libjpeg-turbo cannot give as RGB: Pillow converts them
    with open_image(encoded) as image:
        return np.array(image.convert("RGB"))


def decode_image(encoded: bytes) -> torch.Tensor:
    """Encoded JPEG (or any format Pillow reads) -> uint8 RGB [3, H, W]; one of DECODE_ERRORS if corrupt."""
    return torch.from_numpy(decode_pixels(encoded)).permute(2, 0, 1)
