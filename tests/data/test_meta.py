"""Dataset directories: dataset.json, TensorFlow-built shards and their labels file, shard names."""

from __future__ import annotations

import json
import shutil

import pytest

from inception3.data.meta import load_dataset_info, split_shards
from inception3.errors import Inception3Error


def test_info_comes_from_dataset_json(built):
    info = load_dataset_info(built)
    assert info.class_names == ("ant", "bee", "cat") and info.num_classes == 3
    assert info.label_offset == 0
    assert info.split_sizes == {"train": 9, "validation": 3}


def test_given_values_that_contradict_dataset_json_are_refused(built):
    with pytest.raises(Inception3Error, match="offset 0, but label_offset=1"):
        load_dataset_info(built, label_offset=1)
    with pytest.raises(Inception3Error, match="3 classes, but num_classes=1000"):
        load_dataset_info(built, num_classes=1000)


def _tensorflow_style_copy(built, tmp_path):
    copy = tmp_path / "tf"
    shutil.copytree(built, copy)
    (copy / "dataset.json").unlink()
    return copy


def test_tensorflow_built_shards_need_the_offset_and_never_guess(built, tmp_path):
    copy = _tensorflow_style_copy(built, tmp_path)
    with pytest.raises(Inception3Error, match="--label-offset 1"):
        load_dataset_info(copy)
    with pytest.raises(Inception3Error, match="--set num_classes=N"):
        load_dataset_info(copy, label_offset=1)
    info = load_dataset_info(copy, label_offset=1, num_classes=5)
    assert (info.label_offset, info.num_classes, info.split_sizes) == (1, 5, {"train": 9, "validation": 3})


def test_tensorflow_built_shards_take_class_names_from_labels_txt(built, tmp_path):
    copy = _tensorflow_style_copy(built, tmp_path)
    (copy / "labels.txt").write_text("ant\nbee\ncat\n")
    assert load_dataset_info(copy, label_offset=1).class_names == ("ant", "bee", "cat")


def test_a_labels_file_that_lists_a_class_twice_is_refused(built, tmp_path):
    copy = _tensorflow_style_copy(built, tmp_path)
    (copy / "labels.txt").write_text("ant\nbee\n\nant\n")
    with pytest.raises(Inception3Error, match="labels.txt: a class is listed twice"):
        load_dataset_info(copy, label_offset=1)


def test_a_missing_shard_is_named(built, tmp_path):
    copy = _tensorflow_style_copy(built, tmp_path)
    (copy / "train-00001-of-00003").unlink()
    with pytest.raises(Inception3Error, match="train-00001-of-00003 is missing"):
        split_shards(copy, "train")


def test_a_damaged_dataset_json_is_a_clear_error(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps({"class_names": ["a"]}))
    with pytest.raises(Inception3Error, match="not a valid dataset.json"):
        load_dataset_info(tmp_path)
