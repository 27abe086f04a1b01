"""Bad data never costs a run: rotten shards, bad images and killed builds, made here on purpose."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from inception3.config import BuildConfig
from inception3.data import load_dataset_info
from inception3.data.build import build_dataset
from inception3.data.example import ImageRecord
from inception3.data.loader import EvalLoader, TrainLoader
from inception3.data.records import iter_records
from inception3.errors import Inception3Error

SHARDS = 3


def _images(root: Path, per_class: int = 6, size: int = 80) -> None:
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size + i, 3), dtype=np.uint8)
            PIL.Image.fromarray(pixels).save(root / c / f"{c}{i}.jpg", quality=90)


@pytest.fixture()
def shards(tmp_path) -> Path:
    _images(tmp_path / "images")
    build_dataset(
        BuildConfig(tmp_path / "images", tmp_path / "shards", train_shards=SHARDS, workers=1, progress=False)
    )
    return tmp_path / "shards"


def _shard(shards: Path, i: int) -> Path:
    return shards / f"train-0000{i}-of-0000{SHARDS}"


def _flip_byte_in_record(path: Path, record: int) -> None:
    """Flip one byte inside the image data of record `record` (header and length stay intact)."""
    offset = 0
    data = bytearray(path.read_bytes())
    for _ in range(record):
        offset += 12 + int.from_bytes(data[offset : offset + 8], "little") + 4
    length = int.from_bytes(data[offset : offset + 8], "little")
    at = offset + 12 + random.Random(record).randrange(length)
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _read_all(loader) -> int:
    return sum(len(batch.labels) for batch in loader)


def _damage(shards: Path, how: str) -> tuple[Path, str]:
    """Damage shard 1 in one of three ways; returns it and the record the error must name."""
    path = _shard(shards, 1)
    if how == "flipped byte":
        _flip_byte_in_record(path, 2)
        return path, "record 2"
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) - 10])
        return path, f"record {len(list(iter_records(_shard(shards, 0)))) - 1}"
    path.write_bytes(data + b"garbage appended to the shard")
    return path, f"record {len(list(iter_records(_shard(shards, 0))))}"


@pytest.mark.parametrize("how", ["flipped byte", "truncated", "garbage appended"])
def test_rotten_shards_stop_reading_with_an_error_naming_shard_and_record(shards, how):
    path, record = _damage(shards, how)
    info = load_dataset_info(shards)
    with pytest.raises(Inception3Error) as caught:
        _read_all(EvalLoader(info, 4, 75, split="train", num_workers=0))
    message = str(caught.value)
    assert path.name in message and record in message and "\n" not in message


@pytest.mark.parametrize("how", ["flipped byte", "truncated", "garbage appended"])
def test_with_skip_corrupt_training_goes_on_and_counts_what_it_skipped(shards, how):
    _damage(shards, how)
    info = load_dataset_info(shards)
    loader = TrainLoader(info, 4, 75, seed=1, num_workers=0, skip_corrupt=True)
    batches = iter(loader)
    seen = sum(len(next(batches).labels) for _ in range(6))  # two epochs of 12 records
    assert loader.skipped_records >= 1
    assert seen == 24 - loader.skipped_records if how == "flipped byte" else seen > 0


def _bad_image_corpus(folder: Path, monkeypatch) -> dict[str, str]:
    """Every kind of bad file the issue names; returns name -> what it is."""
    folder.mkdir(parents=True)
    pixels = np.random.default_rng(1).integers(0, 256, (60, 70, 3), dtype=np.uint8)
    made = {}

    def add(name: str, what: str) -> Path:
        made[name] = what
        return folder / name

    add("zero.jpg", "zero bytes").write_bytes(b"")
    good = folder / "good.jpg"
    PIL.Image.fromarray(pixels).save(good, quality=90)
    add("truncated.jpg", "truncated JPEG").write_bytes(good.read_bytes()[:300])
    PIL.Image.fromarray(pixels).save(add("png_named.jpg", "PNG named .jpg"), format="PNG")
    PIL.Image.fromarray(pixels).convert("CMYK").save(add("cmyk.jpg", "CMYK JPEG"), format="JPEG")
    sixteen = np.arange(60 * 70, dtype=np.uint16).reshape(60, 70) * 15
    PIL.Image.fromarray(sixteen).save(add("sixteen.png", "16-bit PNG"))
    PIL.Image.fromarray(pixels).convert("L").save(add("grey.jpg", "greyscale"), format="JPEG")
    palette = PIL.Image.fromarray(pixels).convert("P")
    palette.save(add("palette.png", "palette with transparency"), transparency=0)
    PIL.Image.new("L", (12000, 12000), 128).save(add("huge.jpg", "12000x12000 image"), quality=50)
    add("text.jpg", "text file named .jpg").write_text("not an image at all\n")
    os.symlink("loop.jpg", add("loop.jpg", "symlink loop"))
    locked = add("locked.jpg", "unreadable file")
    PIL.Image.fromarray(pixels).save(locked, quality=90)
    locked.chmod(0)
    # Root reads any file whatever its mode: make the read fail as it does for other users.
    real = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path.name == "locked.jpg":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return made


def test_every_bad_image_is_converted_or_listed_and_the_build_completes(tmp_path, monkeypatch):
    made = _bad_image_corpus(tmp_path / "images" / "odd", monkeypatch)
    report = build_dataset(BuildConfig(tmp_path / "images", tmp_path / "out", workers=1, progress=False))
    converted = {Path(path).name for path, _ in report.converted}
    skipped = {Path(path).name: why for path, why in report.skipped}
    assert converted | set(skipped) == set(made)
    assert {"cmyk.jpg", "png_named.jpg", "sixteen.png", "grey.jpg", "palette.png"} <= converted
    assert {"zero.jpg", "truncated.jpg", "text.jpg", "loop.jpg", "locked.jpg"} <= set(skipped)
    assert "Permission denied" in skipped["locked.jpg"]
    records = [ImageRecord.parse(r) for r in iter_records(tmp_path / "out" / "train-00000-of-00001")]
    assert len(records) == report.records["train"] == len(made) - len(skipped) + 1  # + good.jpg
    assert {r.filename for r in records} == converted | {"good.jpg"}
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert sorted(Path(entry["file"]).name for entry in meta["build"]["skipped"]) == sorted(skipped)


def _build_command(images: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "inception3",
        "build",
        "--train-dir",
        str(images),
        "--output-dir",
        str(out),
        "--train-shards",
        "24",
        "--workers",
        "1",
    ]


def _records_by_shard(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("train-*-of-*"))}


def test_a_build_killed_mid_way_finishes_on_rerun_with_exactly_the_same_records(tmp_path):
    _images(tmp_path / "images", per_class=48, size=160)
    subprocess.run(_build_command(tmp_path / "images", tmp_path / "clean"), check=True, capture_output=True)
    clean = _records_by_shard(tmp_path / "clean")

    out = tmp_path / "out"
    kills = 0
    for delay in (0.0, 0.05, 0.1):
        process = subprocess.Popen(
            _build_command(tmp_path / "images", out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        complete_before = len(list(out.glob("train-*-of-*")))
        while process.poll() is None and len(list(out.glob("train-*-of-*"))) <= complete_before:
            time.sleep(0.005)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 1, "the build always finished before it could be killed"
    assert not (out / "dataset.json").exists() or len(list(out.glob("train-*-of-*"))) == 24

    result = subprocess.run(_build_command(tmp_path / "images", out), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert _records_by_shard(out) == clean
    labels = "train-record-labels.npy"
    assert (out / labels).read_bytes() == (tmp_path / "clean" / labels).read_bytes()
    assert sorted(p.name for p in out.iterdir() if "-of-" not in p.name) == ["dataset.json", labels]
