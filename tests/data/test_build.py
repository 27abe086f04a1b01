"""`inception3 build`: folders -> shards and back, bad images, bounding boxes, resuming a crashed build."""

from __future__ import annotations

import fcntl
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from imagefolders import CLASSES, make_folder, write_jpeg

import inception3.data.build as build_module
import inception3.data.build_folder as build_folder
import inception3.data.shard_writer as shard_writer
from inception3.cli import main
from inception3.config import BuildConfig
from inception3.data.build import build_dataset
from inception3.data.example import ImageRecord
from inception3.data.meta import load_dataset_info, split_shards
from inception3.data.records import iter_records
from inception3.errors import Inception3Error


def _records(shard_dir, split):
    return [ImageRecord.parse(data) for path in split_shards(shard_dir, split) for data in iter_records(path)]


def test_folder_to_shards_gives_back_every_image_and_label(tmp_path):
    made = make_folder(tmp_path / "images", per_class=3)
    report = build_dataset(
        BuildConfig(
            tmp_path / "images",
            tmp_path / "out",
            validation_fraction=0.34,
            train_shards=2,
            validation_shards=1,
            workers=2,
            progress=False,
        )
    )
    assert report.records == {"train": 6, "validation": 3} and not report.skipped and not report.converted
    records = _records(tmp_path / "out", "train") + _records(tmp_path / "out", "validation")
    assert sorted(r.filename for r in records) == sorted(made)
    for record in records:
        name, _ = made[record.filename]
        assert (record.label, record.text) == (CLASSES.index(name), name)
        original = (tmp_path / "images" / name / record.filename).read_bytes()
        assert record.encoded == original, "RGB JPEGs are stored as they were"
        with PIL.Image.open(io.BytesIO(record.encoded)) as image:
            assert image.size == (record.width, record.height)
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert meta["splits"]["train"]["shards"] == {"train-00000-of-00002": 3, "train-00001-of-00002": 3}
    assert meta["label_offset"] == 0 and meta["class_names"] == list(CLASSES)
    assert load_dataset_info(tmp_path / "out").split_sizes == {"train": 6, "validation": 3}


def test_labels_file_sets_the_class_order_and_offset_1_writes_1_based_labels(tmp_path):
    make_folder(tmp_path / "images", per_class=1)
    (tmp_path / "labels.txt").write_text("cat\nant\nbee\n")
    build_dataset(
        BuildConfig(
            tmp_path / "images",
            tmp_path / "out",
            labels_file=tmp_path / "labels.txt",
            workers=1,
            label_offset=1,
            progress=False,
        )
    )
    labels = {r.text: r.label for r in _records(tmp_path / "out", "train")}
    assert labels == {"cat": 1, "ant": 2, "bee": 3}
    assert load_dataset_info(tmp_path / "out").label_offset == 1


def _bad_image_corpus(root):
    """One file of every kind the original met, plus the ones that cannot be read at all."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    folder = root / "odd"
    folder.mkdir(parents=True)
    PIL.Image.fromarray(pixels).convert("CMYK").save(folder / "cmyk.jpg", format="JPEG")
    PIL.Image.fromarray(pixels).save(folder / "png_in_disguise.jpg", format="PNG")
    PIL.Image.fromarray(pixels).convert("L").save(folder / "grey.jpg", format="JPEG")
    palette = PIL.Image.fromarray(pixels).convert("P")
    palette.save(folder / "palette_alpha.png", transparency=int(np.asarray(palette)[0, 0]))
    PIL.Image.fromarray(pixels).save(folder / "image.gif")
    PIL.Image.fromarray(pixels).save(folder / "image.bmp")
    PIL.Image.fromarray(pixels).save(folder / "image.webp")
    rgba = np.dstack([pixels, np.full((40, 50), 128, dtype=np.uint8)])
    PIL.Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    whole = write_jpeg(folder / "fine.jpg", pixels)
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.jpg").write_bytes(b"this is not an image")


def test_bad_images_are_converted_or_skipped_and_listed_never_fatal(tmp_path):
    _bad_image_corpus(tmp_path / "images")
    report = build_dataset(BuildConfig(tmp_path / "images", tmp_path / "out", workers=1, progress=False))
    converted = {path.rsplit("/", 1)[1]: what for path, what in report.converted}
    assert converted == {
        "cmyk.jpg": "JPEG CMYK",
        "png_in_disguise.jpg": "PNG RGB",
        "grey.jpg": "JPEG L",
        "palette_alpha.png": "PNG P",
        "image.gif": "GIF P",
        "image.bmp": "BMP RGB",
        "image.webp": "WEBP RGB",
        "alpha.png": "PNG RGBA",
    }
    assert sorted(path.rsplit("/", 1)[1] for path, _ in report.skipped) == ["notes.jpg", "truncated.jpg"]
    records = _records(tmp_path / "out", "train")
    assert len(records) == 9 and report.records == {"train": 9}
    for record in records:
        with PIL.Image.open(io.BytesIO(record.encoded)) as image:
            assert (image.format, image.mode) == ("JPEG", "RGB")
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert len(meta["build"]["skipped"]) == 2 and len(meta["build"]["converted"]) == 8


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)  # fully transparent black
    (tmp_path / "images" / "a").mkdir(parents=True)
    PIL.Image.fromarray(rgba, "RGBA").save(tmp_path / "images" / "a" / "clear.png")
    build_dataset(BuildConfig(tmp_path / "images", tmp_path / "out", workers=1, progress=False))
    (record,) = _records(tmp_path / "out", "train")
    assert np.asarray(PIL.Image.open(io.BytesIO(record.encoded))).min() >= 250


def test_an_interrupted_build_resumes_keeping_complete_shards(tmp_path, monkeypatch):
    make_folder(tmp_path / "images", per_class=3)
    options = {"train_shards": 3, "workers": 1, "progress": False}
    build_dataset(BuildConfig(tmp_path / "images", tmp_path / "clean", **options))
    order = [r.filename for r in _records(tmp_path / "clean", "train")]

    real = shard_writer.prepare_image

    def crash_on_the_fifth_image(path):
        if path.name == order[4]:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(shard_writer, "prepare_image", crash_on_the_fifth_image)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(BuildConfig(tmp_path / "images", tmp_path / "out", **options))
    out = tmp_path / "out"
    assert (out / "train-00000-of-00003").exists() and not (out / "train-00001-of-00003").exists()
    assert not (out / "dataset.json").exists()
    kept = (out / "train-00000-of-00003").stat().st_mtime_ns
    (out / ".train-00001-of-00003.tmp-4242").write_bytes(b"half")  # as a build killed mid-shard leaves it

    monkeypatch.setattr(shard_writer, "prepare_image", real)
    report = build_dataset(BuildConfig(tmp_path / "images", out, **options))
    assert report.reused_shards == 1
    assert (out / "train-00000-of-00003").stat().st_mtime_ns == kept
    for i in range(3):
        name = f"train-0000{i}-of-00003"
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    shards = [f"train-0000{i}-of-00003" for i in range(3)]
    expected = ["dataset.json", *shards, "train-record-labels.npy"]
    assert sorted(p.name for p in out.iterdir()) == expected, "no temporary files left"
    again = build_dataset(BuildConfig(tmp_path / "images", out, **options))
    assert again.reused_shards == 3, "a finished build is kept"


def test_a_build_killed_while_it_cleans_up_is_complete_and_tidy_on_rerun(tmp_path):
    make_folder(tmp_path / "images", per_class=2)
    options = {"workers": 1, "progress": False}
    build_dataset(BuildConfig(tmp_path / "images", tmp_path / "out", **options))
    # As if killed inside the final rmtree after it removed plan.json: a state dir with shard results.
    state = tmp_path / "out" / build_folder.STATE_DIR
    state.mkdir()
    (state / "train-00000-of-00001.json").write_text("{}")
    assert build_dataset(BuildConfig(tmp_path / "images", tmp_path / "out", **options)).reused_shards == 1
    assert not state.exists()


def test_a_different_build_into_the_same_directory_is_refused(tmp_path):
    make_folder(tmp_path / "images", per_class=2)
    build_dataset(BuildConfig(tmp_path / "images", tmp_path / "out", workers=1, progress=False))
    with pytest.raises(Inception3Error, match="use an empty --output-dir"):
        build_dataset(
            BuildConfig(tmp_path / "images", tmp_path / "out", train_shards=2, workers=1, progress=False)
        )


def test_bounding_boxes_from_csv_and_from_imagenet_xml(tmp_path):
    make_folder(tmp_path / "images", per_class=1)
    (tmp_path / "boxes.csv").write_text("ant0.jpg,0.1,0.2,0.5,0.6\nant0.jpg,0.0,0.0,1.0,1.0\n")
    build_dataset(
        BuildConfig(
            tmp_path / "images",
            tmp_path / "csv",
            bounding_boxes=tmp_path / "boxes.csv",
            workers=1,
            progress=False,
        )
    )
    boxes = {r.filename: r.boxes for r in _records(tmp_path / "csv", "train")}
    assert boxes["bee0.jpg"] == ()
    assert np.allclose(boxes["ant0.jpg"], [(0.2, 0.1, 0.6, 0.5), (0.0, 0.0, 1.0, 1.0)])

    (tmp_path / "xml" / "bee").mkdir(parents=True)
    (tmp_path / "xml" / "bee" / "bee0.xml").write_text(
        "<annotation><size><width>90</width><height>75</height></size>"
        "<object><bndbox><xmin>9</xmin><ymin>15</ymin><xmax>45</xmax><ymax>90</ymax></bndbox></object>"
        "</annotation>"
    )
    build_dataset(
        BuildConfig(
            tmp_path / "images",
            tmp_path / "xmlout",
            bounding_boxes=tmp_path / "xml",
            workers=1,
            progress=False,
        )
    )
    boxes = {r.filename: r.boxes for r in _records(tmp_path / "xmlout", "train")}
    assert np.allclose(boxes["bee0.jpg"], [(0.2, 0.1, 1.0, 0.5)]), "pixels -> fractions, clipped to 1"


def test_a_malformed_box_csv_names_the_line(tmp_path):
    make_folder(tmp_path / "images", per_class=1)
    (tmp_path / "boxes.csv").write_text("ant0.jpg,0.1,0.2,0.5,0.6\nbee0.jpg,0.5,0.2,0.1,0.6\n")
    with pytest.raises(Inception3Error, match=r"boxes.csv:2: box"):
        build_dataset(
            BuildConfig(tmp_path / "images", tmp_path / "out", bounding_boxes=tmp_path / "boxes.csv")
        )


def test_cli_build_reports_and_exits_0_and_bad_input_exits_2(tmp_path, capsys):
    make_folder(tmp_path / "images", per_class=1)
    (tmp_path / "images" / "ant" / "broken.jpg").write_bytes(b"\xff\xd8 nothing")
    code = main(
        [
            "build",
            "--train-dir",
            str(tmp_path / "images"),
            "--output-dir",
            str(tmp_path / "out"),
            "--workers",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "wrote 3 train records in 1 shards" in out and "broken.jpg" in out
    assert main(["build", "--train-dir", str(tmp_path / "none"), "--output-dir", str(tmp_path / "x")]) == 2
    assert "none: no such directory" in capsys.readouterr().err


def test_a_validation_folder_becomes_the_validation_split(tmp_path):
    make_folder(tmp_path / "train", per_class=2)
    made = make_folder(tmp_path / "val", per_class=1)
    report = build_dataset(
        BuildConfig(
            tmp_path / "train",
            tmp_path / "out",
            validation_dir=tmp_path / "val",
            validation_shards=2,
            workers=1,
            progress=False,
        )
    )
    assert report.records == {"train": 6, "validation": 3} and report.shards["validation"] == 2
    validation = _records(tmp_path / "out", "validation")
    assert sorted((r.filename, r.label) for r in validation) == sorted(
        (name, CLASSES.index(cls)) for name, (cls, _) in made.items()
    )


def test_a_second_build_into_a_locked_output_folder_is_refused_in_one_line(tmp_path, capsys):
    make_folder(tmp_path / "images", per_class=1)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["build", "--train-dir", str(tmp_path / "images"), "--output-dir", str(out), "--workers", "1"]
    fd = os.open(out / build_folder.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"4242\n")
        fcntl.flock(fd, fcntl.LOCK_EX)  # a build writing there now (flock: per open file, even in-process)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "another inception3 build (process 4242) is writing there" in err
        assert sorted(p.name for p in out.iterdir()) == [build_folder.LOCK_FILE], "nothing touched"
    finally:
        os.close(fd)
    # A holder killed with the lock held: the kernel released it, so the next build goes ahead.
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fcntl, os, signal, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.kill(os.getpid(), signal.SIGKILL)",
            str(out / build_folder.LOCK_FILE),
        ]
    )
    assert killed.returncode == -9
    assert main(argv) == 0
    assert "wrote 3 train records" in capsys.readouterr().out
    built = ["dataset.json", "train-00000-of-00001", "train-record-labels.npy"]
    assert sorted(p.name for p in out.iterdir()) == built, "lock removed"


def test_the_summary_names_the_first_few_converted_files_not_every_one(tmp_path, capsys):
    for i in range(12):
        write_jpeg(tmp_path / "images" / "grey" / f"{i:02d}.jpg", np.full((20, 20), 10 * i, dtype=np.uint8))
    argv = ["build", "--train-dir", str(tmp_path / "images"), "--output-dir", str(tmp_path / "out")]
    assert main([*argv, "--workers", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        f"converted 12 images to RGB JPEG (the first {build_module.SHOWN_FILES}; "
        f"{tmp_path / 'out' / 'dataset.json'} lists all):"
    )
    assert len(lines) == 2 + build_module.SHOWN_FILES and all("(was JPEG L)" in line for line in lines[2:])
    assert len(json.loads((tmp_path / "out" / "dataset.json").read_text())["build"]["converted"]) == 12


def test_a_fifo_among_the_images_is_skipped_not_waited_on(tmp_path):
    make_folder(tmp_path / "images", per_class=1)
    os.mkfifo(tmp_path / "images" / "ant" / "pipe.jpg")  # reading it would never end
    report = build_dataset(BuildConfig(tmp_path / "images", tmp_path / "out", workers=1, progress=False))
    assert report.records == {"train": 3}
    assert [(Path(f).name, why) for f, why in report.skipped] == [
        ("pipe.jpg", "not a regular file (a FIFO, socket or device)")
    ]
