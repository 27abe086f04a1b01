"""Hostile data: each command answers in one line (exit code 2) or skips and lists the bad part.

Images whose few bytes declare more pixels than Pillow's limit, in shards (inspect --verify, train with
and without skip_corrupt, eval) and in an image folder (build); file, class-folder and run-directory
names that are not UTF-8; a byte that is not UTF-8 in an eval results file or a bounding-box CSV;
JSON and TOML nested past Python's recursion limit; an Example with two labels. The commands run in
a subprocess where a warning printed by a library would show beside the one line.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import PIL.Image
import pytest
from faultkit import ENV, eval_args, inception3, one_thread, train_args
from tinyshards import make_shards

from inception3.data.example import ImageRecord, decode_example, encode_example
from inception3.data.records import iter_records, write_records

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

LIMIT = PIL.Image.MAX_IMAGE_PIXELS  # Pillow warns above it and refuses above twice it


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("hostile-data"), per_class=2)


def _run(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(inception3(*args), env=ENV, capture_output=True, text=True, timeout=timeout)


def _one_line(done: subprocess.CompletedProcess, command: str) -> str:
    """The single error line of a command that exited 2; no traceback, no warning beside it."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.count("\n") == 1, done.stderr[-3000:]
    assert done.stderr.startswith(f"inception3 {command}: error: ")
    return done.stderr.strip()


def _png_header(side: int) -> bytes:
    """A PNG of a few dozen bytes whose header declares side × side RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _jpeg_header(side: int) -> bytes:
    """A small JPEG whose frame header (SOF0) declares side × side pixels: libjpeg-turbo's path."""
    out = io.BytesIO()
    PIL.Image.new("RGB", (16, 16), (200, 30, 30)).save(out, format="JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


# Over twice the limit (Pillow raises), between it and twice (Pillow only warns), and a JPEG (decoded
# by libjpeg-turbo, which knows no limit): (shard, record) -> encoded image.
_OVER_THE_LIMIT = {
    (0, 1): _png_header(15000),
    (0, 3): _png_header(10000),
    (1, 2): _jpeg_header(12000),
}


@pytest.fixture(scope="module")
def too_large(shards, tmp_path_factory) -> Path:
    """A copy of the tiny shards with three images over Pillow's pixel limit in place of three."""
    assert 2 * LIMIT < 15000**2 and LIMIT < 10000**2 < 2 * LIMIT and LIMIT < 12000**2
    copy = tmp_path_factory.mktemp("too-large") / "shards"
    shutil.copytree(shards, copy)
    for index in (0, 1):
        path = copy / f"train-0000{index}-of-00002"
        records = [ImageRecord.parse(data) for data in iter_records(path)]
        for (shard, record), encoded in _OVER_THE_LIMIT.items():
            if shard == index:
                records[record] = dataclasses.replace(records[record], encoded=encoded)
        write_records(path, (r.serialize() for r in records))
    return copy


@pytest.fixture(scope="module")
def skipping_run(too_large, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One step with skip_corrupt on the shards with images over the limit: all 10 records read once."""
    run = tmp_path_factory.mktemp("skipping") / "run"
    extra = ("--set=skip_corrupt=true",)
    done = _run(*train_args(too_large, run, max_steps=1, batch_size=10, extra=extra))
    return run, done


def test_inspect_verify_lists_each_image_over_the_pixel_limit(too_large):
    done = _run("inspect", too_large, "--verify")
    assert done.returncode == 1 and done.stderr == "", done.stderr[-3000:]
    listed = [line.strip() for line in done.stdout.splitlines() if ": record " in line]
    assert sorted(listed) == sorted(
        f"train-0000{shard}-of-00002: record {record}: image does not decode ({_too_many(shard, record)})"
        for shard, record in _OVER_THE_LIMIT
    )


def _too_many(shard: int, record: int) -> str:
    pixels = {(0, 1): "225000000", (0, 3): "100000000", (1, 2): "144000000"}[shard, record]
    return f"image of {pixels} pixels is over the limit of {LIMIT} pixels " + (
        "(PIL.Image.MAX_IMAGE_PIXELS): too large to decode safely"
    )


def test_training_with_skip_corrupt_skips_and_counts_images_over_the_pixel_limit(skipping_run):
    _, done = skipping_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr[-3000:]
    assert "skip_corrupt: 3 corrupt record(s) were left out of training so far" in done.stdout


def test_training_without_skip_corrupt_stops_in_one_line_at_an_image_over_the_pixel_limit(
    too_large, tmp_path
):
    line = _one_line(_run(*train_args(too_large, tmp_path / "run", max_steps=2)), "train")
    assert "too large to decode safely" in line
    assert "record" in line and "skip_corrupt" in line


def test_eval_stops_in_one_line_at_an_image_over_the_pixel_limit(skipping_run, too_large):
    run, _ = skipping_run
    (checkpoint,) = sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1:]
    done = _run(*eval_args(checkpoint, too_large))
    line = _one_line(done, "eval")
    assert "train-00000-of-00002: record 1 is corrupt" in line and "too large to decode safely" in line


def test_build_skips_and_lists_images_over_the_pixel_limit(tmp_path):
    images = tmp_path / "images"
    for name in ("a", "b"):
        (images / name).mkdir(parents=True)
        for i in range(2):
            PIL.Image.new("RGB", (80, 80), (40 * i, 90, 200)).save(images / name / f"{i}.jpg")
    bad = {"a/png15000.png": _png_header(15000), "a/png10000.png": _png_header(10000)}
    bad["b/jpeg12000.jpg"] = _jpeg_header(12000)
    for name, data in bad.items():
        (images / name).write_bytes(data)
    done = _run("build", "--train-dir", images, "--output-dir", tmp_path / "out", "--workers", "1")
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    assert "wrote 4 train records" in done.stdout and "skipped 3 unreadable images" in done.stdout
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    skipped = {Path(entry["file"]).name: entry["reason"] for entry in meta["build"]["skipped"]}
    assert sorted(skipped) == sorted(Path(name).name for name in bad)
    assert all("too large to decode safely" in why for why in skipped.values())


# Names that are not UTF-8: os.fsdecode keeps the byte 0xff as the lone surrogate \udcff.
NOT_UTF8 = b"\xff".decode("utf-8", "surrogateescape")
STRICT_STDOUT = ENV | {"PYTHONIOENCODING": "utf-8:strict"}  # a UTF-8 locale's stdout, as users have


def _images(root: Path, classes: tuple[str, ...] = ("a", "b"), per_class: int = 2) -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            PIL.Image.new("RGB", (80, 80), (90 * c, 40 * i, 200)).save(root / name / f"{i}.jpg")
    return root


def test_build_refuses_a_class_folder_whose_name_is_not_utf8(tmp_path):
    images = _images(tmp_path / "images", classes=("a", f"b{NOT_UTF8}"))
    out = tmp_path / "out"
    done = _run("build", "--train-dir", images, "--output-dir", out, "--workers", "1")
    line = _one_line(done, "build")
    assert "b\\xff: a class folder's name is not UTF-8" in line
    assert not out.exists()


def test_build_keeps_files_whose_names_are_not_utf8_and_lists_them_readably(tmp_path):
    images = _images(tmp_path / "images")
    PIL.Image.new("L", (80, 80), 100).save(images / "a" / f"grey{NOT_UTF8}.png")  # converted, so listed
    PIL.Image.new("RGB", (80, 80)).save(images / "b" / f"plain{NOT_UTF8}.jpg")
    (images / "b" / f"text{NOT_UTF8}.jpg").write_text("not an image\n")  # skipped, so listed
    out = tmp_path / "out"
    done = subprocess.run(
        inception3("build", "--train-dir", images, "--output-dir", out, "--workers", "1"),
        env=STRICT_STDOUT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    assert "grey\\xff.png (was PNG L)" in done.stdout and "text\\xff.jpg: " in done.stdout
    names = {ImageRecord.parse(r).filename for r in iter_records(out / "train-00000-of-00001")}
    replaced = "\N{REPLACEMENT CHARACTER}"  # the stored bytes are the file's own: not UTF-8, read back so
    assert names == {"0.jpg", "1.jpg", f"grey{replaced}.png", f"plain{replaced}.jpg"}
    raw = {_stored_filename(r) for r in iter_records(out / "train-00000-of-00001")}
    assert b"grey\xff.png" in raw and b"plain\xff.jpg" in raw
    meta = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    assert [Path(e["file"]).name for e in meta["build"]["converted"]] == ["grey\\xff.png"]
    assert [Path(e["file"]).name for e in meta["build"]["skipped"]] == ["text\\xff.jpg"]


def _stored_filename(record: bytes) -> bytes:
    return decode_example(record)["image/filename"][0]


@pytest.mark.parametrize("command", ["train", "eval"])
def test_a_run_directory_whose_name_is_not_utf8_is_refused_before_anything_is_written(
    command, shards, tmp_path
):
    run = tmp_path / f"run{NOT_UTF8}"
    if command == "train":
        args = train_args(shards, run, max_steps=1)
    else:
        args = ["eval", "--train-dir", run, "--once", "--data-dir", shards, "--split", "train"]
    line = _one_line(_run(*args), command)
    assert "run\\xff: the run directory's path is not UTF-8" in line
    assert not run.exists()


def test_report_names_the_file_and_line_of_a_byte_that_is_not_utf8_in_the_results(tmp_path):
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    good = json.dumps({"step": 1, "precision_at_1": 0.5, "recall_at_5": 0.9}).encode()
    (run / "eval" / "validation.jsonl").write_bytes(good + b"\n" + good.replace(b"0.5", b"0.\xff5") + b"\n")
    line = _one_line(_run("report", run), "report")
    assert f"{run / 'eval' / 'validation.jsonl'}:2: byte 0xff at column 33 is not UTF-8 text" in line
    assert sorted(p.name for p in run.rglob("*")) == ["eval", "validation.jsonl"]


def test_build_names_the_line_of_a_byte_that_is_not_utf8_in_a_bounding_box_csv(tmp_path):
    images = _images(tmp_path / "images")
    boxes = tmp_path / "boxes.csv"
    boxes.write_bytes(b"filename,xmin,ymin,xmax,ymax\n0.jpg,0.1,0.1,0.9,0.9\n1\xff.jpg,0.2,0.2,0.8,0.8\n")
    out = tmp_path / "out"
    done = _run("build", "--train-dir", images, "--output-dir", out, "--bounding-boxes", boxes)
    line = _one_line(done, "build")
    assert f"{boxes}:3: byte 0xff at column 2 is not UTF-8 text" in line
    assert not out.exists()


DEEP = 100_000  # far past Python's recursion limit: the JSON and TOML readers recurse per level


@pytest.mark.parametrize("where", ["dataset.json", "--config"])
def test_train_refuses_a_file_nested_too_deeply_in_one_line(where, shards, tmp_path):
    data, extra = shards, ()
    if where == "dataset.json":
        data = tmp_path / "shards"
        shutil.copytree(shards, data)
        (data / "dataset.json").write_text("[" * DEEP + "]" * DEEP)
    else:
        config = tmp_path / "deep.toml"
        config.write_text("batch_size = " + "[" * DEEP + "]" * DEEP + "\n")
        extra = ("--config", str(config))
    run = tmp_path / "run"
    line = _one_line(_run(*train_args(data, run, max_steps=1, extra=extra)), "train")
    if where == "dataset.json":
        assert f"{data / 'dataset.json'}: not a valid dataset.json (maximum recursion depth" in line
    else:
        assert f"{config}: not a config file (nested too deeply to read)" in line
    assert not run.exists()


@pytest.fixture(scope="module")
def two_labels(shards, tmp_path_factory) -> Path:
    """A copy of the tiny shards whose record 2 of shard 0 holds two labels (its own and another)."""
    copy = tmp_path_factory.mktemp("two-labels") / "shards"
    shutil.copytree(shards, copy)
    path = copy / "train-00000-of-00002"
    records = list(iter_records(path))
    features = ImageRecord.parse(records[2]).to_features()
    features["image/class/label"] = [*features["image/class/label"], 4]
    records[2] = encode_example(features)
    write_records(path, records)
    return copy


TWO_LABELS = "record 2: not an image Example: image/class/label holds 2 values, not one"


def test_inspect_verify_lists_an_example_with_two_labels(two_labels):
    done = _run("inspect", two_labels, "--verify")
    assert done.returncode == 1 and done.stderr == "", done.stderr[-3000:]
    assert f"train-00000-of-00002: {TWO_LABELS}" in done.stdout


def test_training_treats_an_example_with_two_labels_as_a_corrupt_record(two_labels, tmp_path):
    stops = train_args(two_labels, tmp_path / "stops", max_steps=1, batch_size=10)  # reads all 10
    line = _one_line(_run(*stops), "train")
    assert "train-00000-of-00002: record 2 is corrupt (not an image Example: image/class/label" in line
    extra = ("--set=skip_corrupt=true",)
    done = _run(*train_args(two_labels, tmp_path / "skips", max_steps=1, batch_size=10, extra=extra))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skip_corrupt: 1 corrupt record(s) were left out of training so far" in done.stdout
