"""`inception3 inspect`: the summary a user reads when the labels are suspect, and --verify."""

from __future__ import annotations

import json
import shutil

from imagefolders import make_folder

from inception3.cli import main
from inception3.config import BuildConfig
from inception3.data.build import build_dataset
from inception3.data.inspect import format_inspection, inspect_dataset


def test_summary_lists_splits_shards_labels_and_offset(built):
    report = inspect_dataset(built, progress=False)
    text = format_inspection(report)
    assert "train: 9 records in 3 shards (3..3 per shard)" in text
    assert "validation: 3 records in 2 shards" in text
    assert "label offset 0" in text and "stored labels 0..2" in text
    assert "image height 75..78" in text
    assert not report.problems


def test_tensorflow_built_shards_get_a_label_offset_hint(built, tmp_path):
    copy = tmp_path / "tf"
    shutil.copytree(built, copy)
    (copy / "dataset.json").unlink()
    text = format_inspection(inspect_dataset(copy, progress=False))
    assert "no dataset.json" in text and "looks 0-based" in text


def test_verify_reports_a_corrupted_byte_by_shard_and_record(built, tmp_path, capsys):
    copy = tmp_path / "bad"
    shutil.copytree(built, copy)
    shard = copy / "train-00002-of-00003"
    raw = bytearray(shard.read_bytes())
    raw[raw.rfind(b"\xff\xd8\xff") + 200] ^= 0x10  # inside the last record's JPEG
    shard.write_bytes(bytes(raw))
    assert main(["inspect", str(copy)]) == 0, "without --verify checksums are not read"
    capsys.readouterr()
    assert main(["inspect", str(copy), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "verified: 1 bad records" in out
    assert "train-00002-of-00003: record 2: data checksum mismatch" in out


def test_labels_that_do_not_fit_the_recorded_offset_are_a_problem(tmp_path, capsys):
    make_folder(tmp_path / "images", per_class=1)
    build_dataset(
        BuildConfig(tmp_path / "images", tmp_path / "out", workers=1, label_offset=1, progress=False)
    )
    meta_path = tmp_path / "out" / "dataset.json"
    meta = json.loads(meta_path.read_text())
    meta["label_offset"] = 0  # the mistake a 1-based dataset described as 0-based makes
    meta_path.write_text(json.dumps(meta))
    assert main(["inspect", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "stored labels 1..3" in out
    assert "train: 1 records have labels outside 0..2 (3 classes, offset 0)" in out
