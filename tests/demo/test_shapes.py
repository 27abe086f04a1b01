"""The demo's drawn dataset: deterministic bytes, class folders, sizes, and boxes around each shape."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from inception3.data.boxes import read_bounding_boxes
from inception3.demo.shapes import (
    MAX_ASPECT,
    MAX_SIDE,
    MIN_SIDE,
    SHAPES,
    draw_shape,
    make_shapes,
    outline,
)
from inception3.errors import Inception3Error


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_shapes(
        tmp_path_factory.mktemp("shapes"), train_per_class=3, validation_per_class=1, seed=7, workers=1
    )


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _smooth(image: PIL.Image.Image) -> np.ndarray:
    """8x8 block means: the drawing without the pixel noise that JPEG compression blurs."""
    return np.asarray(image.resize((image.width // 8, image.height // 8), PIL.Image.BOX), dtype=np.float32)


def test_same_seed_gives_identical_bytes_whatever_the_worker_count(dataset, tmp_path):
    again = make_shapes(tmp_path / "again", train_per_class=3, validation_per_class=1, seed=7, workers=2)
    assert _files(again.root) == _files(dataset.root)


def test_another_seed_draws_other_images(dataset, tmp_path):
    other = make_shapes(tmp_path / "other", train_per_class=3, validation_per_class=1, seed=8, workers=1)
    ours, theirs = _files(dataset.root), _files(other.root)
    assert ours.keys() == theirs.keys()
    assert all(ours[name] != theirs[name] for name in ours if name.endswith(".jpg"))


def test_each_split_has_one_folder_per_shape_with_the_asked_count(dataset):
    assert dataset.counts == {"train": 15, "validation": 5}
    for split, per_class in (("train", 3), ("validation", 1)):
        folder = dataset.split_dirs[split]
        assert sorted(p.name for p in folder.iterdir()) == sorted(SHAPES)
        for shape in SHAPES:
            assert len(list((folder / shape).glob("*.jpg"))) == per_class
    names = [p.name for p in dataset.root.rglob("*.jpg")]
    assert len(set(names)) == len(names) == 20, "the box CSV is keyed by file name: names must be unique"


def test_images_are_rgb_jpegs_of_200_to_600_pixels_with_bounded_aspect(dataset):
    sizes = set()
    for path in dataset.root.rglob("*.jpg"):
        with PIL.Image.open(path) as image:
            assert (image.format, image.mode) == ("JPEG", "RGB")
            width, height = image.size
        assert MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE
        assert max(width, height) / min(width, height) <= MAX_ASPECT + 0.01
        sizes.add((width, height))
    assert len(sizes) > 10, "sizes vary from image to image"


def test_box_csv_lists_every_image_with_a_relative_box_around_its_shape(dataset):
    with open(dataset.boxes_csv, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["filename", "xmin", "ymin", "xmax", "ymax"]
    boxes = {row[0]: tuple(float(v) for v in row[1:]) for row in rows[1:]}
    paths = {p.name: p for p in dataset.root.rglob("*.jpg")}
    assert boxes.keys() == paths.keys()
    for name, (xmin, ymin, xmax, ymax) in boxes.items():
        assert 0.0 <= xmin < xmax <= 1.0 and 0.0 <= ymin < ymax <= 1.0
        shape, index = name.removesuffix(".jpg").split("-")
        drawn = draw_shape(shape, seed=7, index=int(index))
        with PIL.Image.open(paths[name]) as image:
            pixels = np.asarray(image, dtype=np.float32)
            assert np.abs(_smooth(image) - _smooth(drawn.image)).mean() < 4, "the file is that drawing"
        height, width, _ = pixels.shape
        ys, xs = np.nonzero(drawn.mask)
        assert xmin * width - 1 <= xs.min() and xs.max() + 1 <= xmax * width + 1
        assert ymin * height - 1 <= ys.min() and ys.max() + 1 <= ymax * height + 1
        # The shape is one flat colour (plus noise), unlike the textured background around it.
        assert pixels[drawn.mask].std(axis=0).max() < 25
        shape_colour = pixels[drawn.mask].mean(axis=0)
        assert np.linalg.norm(pixels[~drawn.mask].mean(axis=0) - shape_colour) > 30


def test_drawn_box_is_the_tight_box_of_the_painted_shape():
    for index, shape in enumerate(SHAPES):
        drawn = draw_shape(shape, seed=3, index=index)
        ys, xs = np.nonzero(drawn.mask)
        x0, y0, x1, y1 = drawn.box
        assert abs(xs.min() - x0) <= 1.5 and abs(xs.max() + 1 - x1) <= 1.5
        assert abs(ys.min() - y0) <= 1.5 and abs(ys.max() + 1 - y1) <= 1.5


def test_build_reads_the_box_csv_for_every_image(dataset):
    boxes = read_bounding_boxes(dataset.boxes_csv)
    assert set(boxes) == {p.stem for p in dataset.root.rglob("*.jpg")}
    assert all(len(b) == 1 for b in boxes.values())


@pytest.mark.parametrize(("shape", "corners"), [("square", 4), ("triangle", 3), ("star", 10), ("cross", 12)])
def test_outlines_have_their_corners_on_the_outer_radius(shape, corners):
    polygon = outline(shape, radius=50.0, angle=0.3)
    assert polygon.shape == (corners, 2)
    assert np.hypot(polygon[:, 0], polygon[:, 1]).max() == pytest.approx(50.0)


def test_circle_outline_is_round():
    polygon = outline("circle", radius=20.0, angle=1.0)
    assert np.allclose(np.hypot(polygon[:, 0], polygon[:, 1]), 20.0)


def test_unknown_shape_and_empty_dataset_are_user_errors(tmp_path):
    with pytest.raises(Inception3Error, match="hexagon"):
        outline("hexagon", 10.0, 0.0)
    with pytest.raises(Inception3Error, match="at least one image"):
        make_shapes(tmp_path, train_per_class=0, validation_per_class=1)
