"""Image folders for the data tests: flat grey images whose level identifies each record."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import PIL.Image

CLASSES = ("ant", "bee", "cat")


def write_jpeg(path: Path, pixels: np.ndarray, **options) -> bytes:
    """Save uint8 HxWx3 pixels as a JPEG file and return its bytes."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, format="JPEG", **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def constant_image(level: int, height: int = 80, width: int = 96) -> np.ndarray:
    """A flat grey image: any crop or resize of it keeps the value, which identifies the record."""
    return np.full((height, width, 3), level, dtype=np.uint8)


def make_folder(root: Path, per_class: int = 4) -> dict[str, tuple[str, int]]:
    """Class folders of flat JPEGs, grey level 10*i + 5 for image i; returns file name -> (class, level)."""
    made = {}
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            level = 10 * (c * per_class + i) + 5
            write_jpeg(root / name / f"{name}{i}.jpg", constant_image(level, 75 + i, 90), quality=100)
            made[f"{name}{i}.jpg"] = (name, level)
    return made


def level_of(images) -> list[int]:
    """The grey level of each flat image in a uint8 [B, 3, S, S] batch (its record's identity)."""
    return [int(round(float(image.float().mean()) - 5, -1)) + 5 for image in images]
