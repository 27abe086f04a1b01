"""Encoded image bytes -> uint8 RGB pixels, in the loader's worker processes.

JPEGs go to libjpeg-turbo (through simplejpeg) with TensorFlow's default integer fast DCT, and can be
decoded DCT-scaled to 1/2, 1/4 or 1/8 when only a smaller image is needed; whatever libjpeg-turbo
refuses (CMYK JPEGs, PNG and the other formats) goes to Pillow. `crop.py` crops what is decoded here.
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


# The DCT scales a decode may use, as divisors of each side. libjpeg-turbo has SIMD inverse DCTs for
# 1/2, 1/4 and 1/8 only: its 7/8, 3/4 and 5/8 run generic C and cost more than a full decode (on
# 0.2-megapixel photos, per image: full 0.64 ms, 7/8 0.96, 3/4 0.79, 5/8 0.68, 1/2 0.43, 1/4 0.40,
# 1/8 0.37; benchmarks/input_pipeline.py, docs/performance.md), so they are never asked for.
SCALE_DIVISORS = (8, 4, 2)

# JPEG colour spaces libjpeg-turbo gives as RGB (simplejpeg's names); CMYK and YCCK go to Pillow.
_RGB_DECODABLE = ("YCbCr", "Gray", "RGB")


def _is_jpeg(encoded: bytes) -> bool:
    return encoded[:2] == b"\xff\xd8"


def _jpeg_header(encoded: bytes) -> tuple[int, int, str] | None:
    """(height, width, colour space) from a JPEG header libjpeg-turbo reads, checked against the pixel
    limit; None for bytes that are not such a JPEG (Pillow decides)."""
    if not _is_jpeg(encoded):
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(encoded)
    except ValueError:
        return None  # a JPEG libjpeg-turbo's header reader refuses
    _check_pixels(height, width)
    return height, width, colorspace


def scaled_size(height: int, width: int, min_height: int, min_width: int) -> tuple[int, int]:
    """The smallest size a height × width JPEG decodes to at one of `SCALE_DIVISORS` that is still at
    least min_height × min_width (libjpeg-turbo rounds each side up); the full size when none is, or
    when neither minimum is positive (no minimum: no scaling, as simplejpeg)."""
    if min_height <= 0 and min_width <= 0:
        return height, width
    for divisor in SCALE_DIVISORS:
        scaled = -(-height // divisor), -(-width // divisor)
        if scaled[0] >= min_height and scaled[1] >= min_width:
            return scaled
    return height, width


def image_size(encoded: bytes) -> tuple[int, int]:
    """(height, width) in pixels from the header alone; one of DECODE_ERRORS when it is unreadable or
    declares more pixels than the limit."""
    header = _jpeg_header(encoded)
    if header is not None:
        return header[:2]
    with open_image(encoded) as image:
        return image.height, image.width


def decoded_size(encoded: bytes, min_height: int = 0, min_width: int = 0) -> tuple[int, int]:
    """(height, width) of what `decode_pixels` gives for these minimums, from the header alone: one of
    DECODE_ERRORS when the header is unreadable. Bytes whose pixels turn out damaged may still decode
    another way (Pillow salvages some JPEGs libjpeg-turbo refuses), at the full size."""
    header = _jpeg_header(encoded)
    if header is not None and header[2] in _RGB_DECODABLE:
        return scaled_size(header[0], header[1], min_height, min_width)
    return image_size(encoded)


def decode_pixels(
    encoded: bytes, min_height: int = 0, min_width: int = 0, buffer: np.ndarray | None = None
) -> np.ndarray:
    """uint8 RGB [H', W', 3]; a JPEG is DCT-scaled down as far as (min_height, min_width) pixels allow.

    Scaling by 1/2, 1/4 or 1/8 while decoding costs a fraction of a full decode, so a caller that
    needs only a smaller image says how small it may be (`scaled_size`). A JPEG is decoded into
    `buffer` (the result is a view of its start) when one of at least H' × W' × 3 bytes is given: a
    caller that decodes image after image spares the zero-filled fresh memory each decode would
    otherwise touch.
    """
    header = _jpeg_header(encoded)
    if header is not None and header[2] in _RGB_DECODABLE:
        height, width = scaled_size(header[0], header[1], min_height, min_width)
        if buffer is not None and buffer.size < height * width * 3:
            buffer = None
        try:
            # fastdct: the integer fast DCT, TensorFlow's decode_jpeg default (dct_method="")
            return simplejpeg.decode_jpeg(
                encoded,
                colorspace="RGB",
                fastdct=True,
                min_height=height,
                min_width=width,
                buffer=buffer,
            )
        except ValueError:
            pass  # CMYK and other JPEGs libjpeg-turbo cannot give as RGB: Pillow converts them
    with open_image(encoded) as image:
        return np.array(image.convert("RGB"))


def decode_image(encoded: bytes) -> torch.Tensor:
    """Encoded JPEG (or any format Pillow reads) -> uint8 RGB [3, H, W]; one of DECODE_ERRORS if corrupt."""
    return torch.from_numpy(decode_pixels(encoded)).permute(2, 0, 1)
