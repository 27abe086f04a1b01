"""The demo's built-in image dataset: five kinds of shape drawn on textured, noisy backgrounds.

Photographs cannot be downloaded everywhere, so the demo draws its own: a circle, square, triangle,
star or cross in a random colour, size, position and rotation on a background of smooth colour
blobs or stripes with pixel noise, saved as JPEGs of 200-600 px in class folders, with a CSV of
each shape's bounding box (`filename,xmin,ymin,xmax,ymax`, fractions of the image size) for
`inception3 build --bounding-boxes`. Colour says nothing about the class; only the outline does.

Every image is drawn from its own random stream, seeded by (seed, index), so the same seed gives
the same bytes whatever the number of worker processes.
"""

from __future__ import annotations

import csv
import io
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw

from inception3.errors import Inception3Error

SHAPES = ("circle", "square", "triangle", "star", "cross")
SPLITS = ("train", "validation")
BOXES_CSV = "boxes.csv"
JPEG_QUALITY = 90
MIN_SIDE, MAX_SIDE = 200, 600  # pixels, each of width and height
MAX_ASPECT = 1.5  # width / height between 1/1.5 and 1.5: a shape squeezed flat would change class
RADIUS_RANGE = (0.25, 0.42)  # the shape's outer radius as a fraction of the image's shorter side
MIN_COLOUR_DISTANCE = 110.0  # RGB distance between the shape and the background's mean colour
TEXTURE_AMPLITUDE = 20.0  # grey levels of the background's blobs or stripes around its mean
STAR_INNER_RATIO = 0.45  # inner / outer radius of the five-pointed star
CROSS_ARM_RATIO = 0.34  # half the arm's width / half its length


@dataclass(frozen=True)
class ShapeImage:
    """One drawn image: the picture, the shape's pixels, and its box in pixels (x0, y0, x1, y1)."""

    image: PIL.Image.Image
    mask: np.ndarray  # bool [H, W]: True where the shape was painted
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class ShapesDataset:
    """Where `make_shapes` put the images: one folder of class folders per split, and the box CSV."""

    root: Path
    split_dirs: dict[str, Path]
    boxes_csv: Path
    counts: dict[str, int]  # images per split


def outline(shape: str, radius: float, angle: float) -> np.ndarray:
    """The shape's polygon, [N, 2] (x, y) around the origin, outer radius `radius` px, rotated `angle` rad."""
    if shape == "circle":
        theta = np.linspace(0.0, 2 * math.pi, 96, endpoint=False)
        r = np.full_like(theta, radius)
    elif shape in ("square", "triangle"):
        corners = 4 if shape == "square" else 3
        theta = np.arange(corners) * 2 * math.pi / corners
        r = np.full_like(theta, radius)
    elif shape == "star":
        theta = np.arange(10) * math.pi / 5
        r = np.where(np.arange(10) % 2 == 0, radius, radius * STAR_INNER_RATIO)
    elif shape == "cross":
        a = radius / math.hypot(1.0, CROSS_ARM_RATIO)  # half the arm's length: the corners lie on `radius`
        t = a * CROSS_ARM_RATIO
        points = np.array(
            [
                (t, t),
                (a, t),
                (a, -t),
                (t, -t),
                (t, -a),
                (-t, -a),
                (-t, -t),
                (-a, -t),
                (-a, t),
                (-t, t),
                (-t, a),
                (t, a),
            ]
        )
        theta, r = np.arctan2(points[:, 1], points[:, 0]), np.hypot(points[:, 0], points[:, 1])
    else:
        raise Inception3Error(f"unknown shape '{shape}'; choose one of {', '.join(SHAPES)}")
    return np.stack([r * np.cos(theta + angle), r * np.sin(theta + angle)], axis=1)


def _background(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Float [H, W, 3] texture (smooth blobs or stripes) around a random base colour, and that colour."""
    base = rng.uniform(30, 225, size=3)
    if rng.random() < 0.5:
        grid = rng.normal(0.0, TEXTURE_AMPLITUDE, size=(int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3))
        channels = [PIL.Image.fromarray(grid[..., c].astype(np.float32), mode="F") for c in range(3)]
        texture = np.stack([np.asarray(c.resize((width, height), PIL.Image.BICUBIC)) for c in channels], 2)
    else:
        direction = rng.uniform(0, math.pi)
        period = rng.uniform(12, 60)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        wave = np.sin((xs * math.cos(direction) + ys * math.sin(direction)) * 2 * math.pi / period)
        texture = wave[..., None] * (rng.uniform(-1, 1, size=3) * TEXTURE_AMPLITUDE).astype(np.float32)
    return base.astype(np.float32) + texture, base


def _shape_colour(rng: np.random.Generator, background: np.ndarray) -> tuple[int, int, int]:
    """A random colour far enough from the background's base colour to be seen."""
    while True:
        colour = rng.integers(0, 256, size=3)
        if np.linalg.norm(colour - background) >= MIN_COLOUR_DISTANCE:
            return tuple(int(c) for c in colour)


def draw_shape(shape: str, seed: int, index: int) -> ShapeImage:
    """Draw image `index` of the dataset seeded `seed`: same arguments, same pixels."""
    rng = np.random.default_rng([seed, index])
    side, aspect = rng.uniform(MIN_SIDE, MAX_SIDE), math.exp(rng.uniform(-0.5, 0.5) * math.log(MAX_ASPECT))
    width, height = (int(np.clip(round(v), MIN_SIDE, MAX_SIDE)) for v in (side * aspect, side / aspect))
    radius = rng.uniform(*RADIUS_RANGE) * min(width, height)
    polygon = outline(shape, radius, rng.uniform(0, 2 * math.pi))
    low, high = polygon.min(axis=0), polygon.max(axis=0)
    centre = np.array([rng.uniform(-low[0], width - high[0]), rng.uniform(-low[1], height - high[1])])
    polygon = polygon + centre

    pixels, base = _background(rng, width, height)
    mask_image = PIL.Image.new("L", (width, height), 0)
    PIL.ImageDraw.Draw(mask_image).polygon([tuple(p) for p in polygon], fill=255)
    mask = np.asarray(mask_image) > 0
    pixels[mask] = _shape_colour(rng, base)
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(rng.uniform(3.0, 12.0))
    image = PIL.Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    low, high = polygon.min(axis=0), polygon.max(axis=0)
    box = (max(0.0, low[0]), max(0.0, low[1]), min(float(width), high[0]), min(float(height), high[1]))
    return ShapeImage(image, mask, box)


def _write_image(task: tuple[Path, str, int, int]) -> tuple[str, tuple[float, float, float, float]]:
    """Draw, save as JPEG, and return (file name, relative box xmin, ymin, xmax, ymax)."""
    path, shape, seed, index = task
    drawn = draw_shape(shape, seed, index)
    buffer = io.BytesIO()
    drawn.image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    path.write_bytes(buffer.getvalue())
    width, height = drawn.image.size
    x0, y0, x1, y1 = drawn.box
    return path.name, (x0 / width, y0 / height, x1 / width, y1 / height)


def make_shapes(
    out_dir: Path,
    *,
    train_per_class: int,
    validation_per_class: int,
    seed: int = 0,
    workers: int | None = None,
) -> ShapesDataset:
    """Write `out_dir/train/<shape>/`, `out_dir/validation/<shape>/` and `out_dir/boxes.csv`.

    Image names are unique across splits (`<shape>-<index>.jpg`) because the box CSV is keyed by
    file name. `workers` processes draw in parallel (default: all cores); the bytes do not depend on it.
    """
    if train_per_class < 1 or validation_per_class < 1:
        raise Inception3Error(
            f"shapes dataset needs at least one image per class and split, got "
            f"{train_per_class} train and {validation_per_class} validation"
        )
    out_dir = Path(out_dir)
    per_split = {"train": train_per_class, "validation": validation_per_class}
    tasks, index = [], 0
    for split in SPLITS:
        for shape in SHAPES:
            folder = out_dir / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for _ in range(per_split[split]):
                tasks.append((folder / f"{shape}-{index:06d}.jpg", shape, seed, index))
                index += 1
    workers = workers or len(os.sched_getaffinity(0))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(_write_image, tasks, chunksize=32))
    else:
        rows = [_write_image(task) for task in tasks]
    boxes_csv = out_dir / BOXES_CSV
    with open(boxes_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("filename", "xmin", "ymin", "xmax", "ymax"))
        writer.writerows((name, *(f"{v:.6f}" for v in box)) for name, box in rows)
    return ShapesDataset(
        out_dir,
        {split: out_dir / split for split in SPLITS},
        boxes_csv,
        {split: n * len(SHAPES) for split, n in per_split.items()},
    )
