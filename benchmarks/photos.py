"""Real photographs for the input benchmarks: ImageNet-like JPEGs cut from scikit-image's sample photos.

Decoding speed depends on what a JPEG holds (detail, noise, chroma), so the input pipeline is measured
on photographs, not on generated scenes. scikit-image ships a few (`skimage.data`); the colour ones
that are photographs, not drawings or test patterns, are listed in `PHOTOS`. From them `make_photos`
cuts random crops (35-100 % of the area, aspect 3:4 to 4:3), rescales each to 0.12-0.28 megapixels
(0.2 on average, about ImageNet's mean) and saves it at JPEG quality 90: the same files for the same
count, on any machine.

The sample files are read where pip installed them (`pip install scikit-image`, the `bench` extra),
without importing scikit-image, or straight out of a scikit-image wheel in benchmarks/wheels (the GPU
machine's, which `benchmarks/gpu_wheels.sh` downloads): only the image files are needed.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image

# skimage.data's colour photographs (file names in skimage/data): a person, a cat, a table, a rocket,
# a motorcycle seen by each eye of a stereo pair, the Hubble deep field, a retina.
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
)
WHEELS = Path(__file__).resolve().parent / "wheels"


def _sample_files() -> dict[str, bytes]:
    """The bytes of each of `PHOTOS`, from the installed scikit-image or a wheel of it."""
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "data"
        if all((folder / name).exists() for name in PHOTOS):
            return {name: (folder / name).read_bytes() for name in PHOTOS}
    for wheel in sorted(WHEELS.glob("scikit_image-*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            return {name: archive.read(f"skimage/data/{name}") for name in PHOTOS}
    raise SystemExit(
        "the benchmark's photographs come from scikit-image: pip install scikit-image "
        "(or put its wheel in benchmarks/wheels: bash benchmarks/gpu_wheels.sh)"
    )


def _cut(photo: PIL.Image.Image, rng: np.random.Generator) -> PIL.Image.Image:
    """A random crop of `photo`, rescaled to 0.12-0.28 megapixels and perhaps mirrored."""
    width, height = photo.size
    area = rng.uniform(0.35, 1.0) * width * height
    aspect = rng.uniform(3 / 4, 4 / 3)
    crop_w = min(width, round((area * aspect) ** 0.5))
    crop_h = min(height, round((area / aspect) ** 0.5))
    left = int(rng.integers(width - crop_w + 1))
    top = int(rng.integers(height - crop_h + 1))
    scale = (rng.uniform(0.12e6, 0.28e6) / (crop_w * crop_h)) ** 0.5
    size = (max(1, round(crop_w * scale)), max(1, round(crop_h * scale)))
    image = photo.resize(size, PIL.Image.LANCZOS, box=(left, top, left + crop_w, top + crop_h))
    return image.transpose(PIL.Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


def photo_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """`count` ImageNet-like JPEGs (quality 90), cut from the photographs in turn; deterministic."""
    photos = [PIL.Image.open(io.BytesIO(data)).convert("RGB") for data in _sample_files().values()]
    jpegs = []
    for i in range(count):
        buffer = io.BytesIO()
        _cut(photos[i % len(photos)], np.random.default_rng([seed, i])).save(buffer, "JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    return jpegs


def make_photos(root: Path, count: int, classes: int, seed: int = 0) -> int:
    """`count` photo JPEGs in `classes` class folders (class = index mod classes) under `root`; bytes."""
    total = 0
    for i, data in enumerate(photo_jpegs(count, seed)):
        path = root / f"class{i % classes:02d}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total += len(data)
    return total
