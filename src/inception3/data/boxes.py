"""Bounding boxes for `image/object/bbox/*`: ImageNet's XML annotations, or a CSV of relative boxes.

Boxes are keyed by the image's file name without extension and given as (ymin, xmin, ymax, xmax)
fractions of the image size, the order `tf.image.sample_distorted_bounding_box` takes them in.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

from inception3.data.example import Box
from inception3.errors import Inception3Error
from inception3.files import read_utf8

_XML_KEYS = ("xmin", "ymin", "xmax", "ymax")


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def read_bounding_boxes(source: Path) -> dict[str, tuple[Box, ...]]:
    """Boxes per image stem from a CSV file `filename,xmin,ymin,xmax,ymax` or a directory of XML files."""
    source = Path(source)
    if source.is_dir():
        return _read_xml_dir(source)
    if source.is_file():
        return _read_csv(source)
    raise Inception3Error(
        f"{source}: no such bounding-box file or directory; pass a CSV file "
        "(filename,xmin,ymin,xmax,ymax, relative) or ImageNet's XML annotation directory"
    )


def _read_csv(path: Path) -> dict[str, tuple[Box, ...]]:
    boxes: dict[str, list[Box]] = {}
    text = read_utf8(path, "a bounding-box CSV is UTF-8 text (filename,xmin,ymin,xmax,ymax): fix the line")
    with io.StringIO(text, newline="") as f:
        for line_number, row in enumerate(csv.reader(f), start=1):
            if not row or row[0].startswith("#"):
                continue
            try:
                xmin, ymin, xmax, ymax = (float(v) for v in row[1:5])
                if len(row) != 5:
                    raise ValueError(f"{len(row)} fields")
            except ValueError as error:
                if line_number == 1:
                    continue  # a header line
                raise Inception3Error(
                    f"{path}:{line_number}: expected filename,xmin,ymin,xmax,ymax with "
                    f"relative coordinates ({error})"
                ) from error
            if not (0.0 <= xmin <= xmax <= 1.0 and 0.0 <= ymin <= ymax <= 1.0):
                raise Inception3Error(
                    f"{path}:{line_number}: box {row[1:5]} is not within [0, 1] with "
                    "min <= max; coordinates must be fractions of the image size"
                )
            boxes.setdefault(Path(row[0].strip()).stem, []).append((ymin, xmin, ymax, xmax))
    return {stem: tuple(b) for stem, b in boxes.items()}


def _read_xml_dir(directory: Path) -> dict[str, tuple[Box, ...]]:
    """ImageNet's annotation XML: pixel boxes, converted to fractions and clipped to [0, 1]."""
    boxes: dict[str, tuple[Box, ...]] = {}
    for path in sorted(directory.rglob("*.xml")):
        try:
            root = ET.parse(path).getroot()
            width = float(root.findtext("size/width"))
            height = float(root.findtext("size/height"))
            found = []
            for box in root.iter("bndbox"):
                xmin, ymin, xmax, ymax = (float(box.findtext(key)) for key in _XML_KEYS)
                xmin, xmax = sorted((_clip(xmin / width), _clip(xmax / width)))
                ymin, ymax = sorted((_clip(ymin / height), _clip(ymax / height)))
                found.append((ymin, xmin, ymax, xmax))
        except (ET.ParseError, TypeError, ValueError, ZeroDivisionError) as error:
            raise Inception3Error(
                f"{path}: not an ImageNet bounding-box annotation ({error}); fix or remove the file"
            ) from error
        if found:
            boxes[path.stem] = tuple(found)
    return boxes
