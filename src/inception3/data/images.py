"""Image files -> JPEG bytes the readers can decode: checks and conversions done at build time.

The original re-encoded ImageNet's 22 CMYK JPEGs and one PNG disguised as a JPEG so that every
record holds an RGB JPEG; here every image is decoded once to prove it is whole, and anything
that is not already an RGB JPEG (PNG, GIF, BMP, WebP, CMYK, greyscale, palette, alpha) becomes one.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import PIL.Image

from inception3.config import REENCODE_JPEG_QUALITY
from inception3.data.decode import ImageTooLargeError, open_image


class BadImageError(Exception):
    """A file that is not a readable image; the build skips it and lists it in its report."""


@dataclass(frozen=True)
class PreparedImage:
    """An RGB JPEG ready for a record, and what was done to it (None: stored as it was)."""

    jpeg: bytes
    height: int
    width: int
    converted_from: str | None


def _describe(image: PIL.Image.Image) -> str:
    return f"{image.format or 'unknown'} {image.mode}"


def _to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """RGB pixels; transparent parts (alpha, palette transparency) are laid on white."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = PIL.Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def prepare_image(path: Path) -> PreparedImage:
    """Read, fully decode and, where needed, re-encode one image file as an RGB JPEG.

    Raises BadImageError (with the reason) for a file that cannot be read or decoded whole.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # reading a FIFO or a device would never end
            raise BadImageError("not a regular file (a FIFO, socket or device)")
        data = Path(path).read_bytes()
        with open_image(data) as image:
            image.load()
            if image.format == "JPEG" and image.mode == "RGB":
                return PreparedImage(data, image.height, image.width, None)
            source = _describe(image)
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            rgb = _to_rgb(image)
    except BadImageError:
        raise
    except ImageTooLargeError as error:
        raise BadImageError(str(error)) from error
    except PIL.UnidentifiedImageError as error:
        raise BadImageError("not an image in a format Pillow reads") from error
    except Exception as error:  # noqa: BLE001 - any failure to decode makes the file unusable, never the build
        raise BadImageError(f"{type(error).__name__}: {error}") from error
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=REENCODE_JPEG_QUALITY)
    return PreparedImage(out.getvalue(), rgb.height, rgb.width, source)
