"""Class balance: a class-balanced record order that resumes exactly, class weights, recorded counts."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from imagefolders import constant_image, level_of, write_jpeg

from inception3.config import BuildConfig
from inception3.data.balance import balanced_order, class_weights
from inception3.data.build import build_dataset
from inception3.data.dataset import open_split, record_labels, train_batches
from inception3.data.loader import TrainLoader
from inception3.data.meta import load_dataset_info
from inception3.errors import Inception3Error

IMBALANCED = {"ant": 6, "bee": 2, "cat": 1}  # images per class


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory) -> Path:
    """9 training records in 2 shards: 6 ants, 2 bees, 1 cat; each image's grey level is its record's."""
    root = tmp_path_factory.mktemp("imbalanced")
    level = 5
    for name, count in IMBALANCED.items():
        for i in range(count):
            write_jpeg(root / "images" / name / f"{name}{i}.jpg", constant_image(level), quality=100)
            level += 10
    build_dataset(BuildConfig(root / "images", root / "shards", train_shards=2, workers=1, progress=False))
    return root / "shards"


def test_each_class_is_drawn_equally_often_in_an_epoch() -> None:
    labels = np.array([0] * 50 + [2] * 7 + [3] * 3 + [-1] * 2)  # class 1 has no records; two left out
    order = balanced_order(labels, seed=3, epoch=0)
    assert len(order) == len(labels)
    drawn = Counter(labels[order].tolist())
    assert set(drawn) == {0, 2, 3} and max(drawn.values()) - min(drawn.values()) <= 1
    assert sorted(set(order[labels[order] == 3].tolist())) == [57, 58, 59]  # the rare class's records
    assert np.array_equal(order, balanced_order(labels, seed=3, epoch=0))
    assert not np.array_equal(order, balanced_order(labels, seed=3, epoch=1))
    assert not np.array_equal(order, balanced_order(labels, seed=4, epoch=0))


def test_class_weights_are_inverse_frequency_with_mean_one_over_the_images() -> None:
    counts = np.array([6, 2, 0, 4])
    weights = class_weights(counts)
    np.testing.assert_allclose(weights, [12 / 18, 12 / 6, 0.0, 12 / 12], rtol=1e-6)
    assert weights.dtype == np.float32
    assert abs(float((weights * counts).sum() / counts.sum()) - 1.0) < 1e-6


def test_the_build_records_each_class_count_and_the_shards_hold_those_labels(imbalanced: Path) -> None:
    info = load_dataset_info(imbalanced)
    assert info.class_counts["train"] == (6, 2, 1)
    labels = record_labels(open_split(info, "train"))
    assert np.bincount(labels).tolist() == [6, 2, 1]


def test_the_labels_come_from_the_builds_file_without_reading_a_record_or_from_the_records(
    imbalanced: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = load_dataset_info(imbalanced)
    records = open_split(info, "train")
    read = np.array([records.read(i)[1] for i in range(len(records))])
    saved = np.load(imbalanced / "train-record-labels.npy")
    assert saved.dtype == np.int32 and np.array_equal(saved, read)
    with monkeypatch.context() as patch:
        patch.setattr(type(records), "read", lambda *_: pytest.fail("a record was read for its label"))
        assert np.array_equal(TrainLoader(info, 3, 75, num_workers=0, balance_classes=True).labels, read)
    # A file that is not the one dataset.json names (the same labels in another order, other labels) is
    # not used: the labels are read from the records instead.
    copy = tmp_path / "copy"
    shutil.copytree(imbalanced, copy)
    np.save(copy / "train-record-labels.npy", read[::-1].astype(np.int32))
    assert np.array_equal(record_labels(open_split(load_dataset_info(copy), "train")), read)
    np.save(copy / "train-record-labels.npy", np.zeros(9, dtype=np.int32))
    assert open_split(load_dataset_info(copy), "train").saved_labels() is None
    # A header declaring 2^40 labels in a file of a few bytes: refused from the header, nothing read.
    header = {"descr": "<i4", "fortran_order": False, "shape": (2**40,)}
    with open(copy / "train-record-labels.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
    assert open_split(load_dataset_info(copy), "train").saved_labels() is None


def test_counts_that_do_not_add_up_are_refused_in_one_line(imbalanced: Path, tmp_path: Path) -> None:
    document = json.loads((imbalanced / "dataset.json").read_text())
    document["splits"]["train"]["class_counts"] = [6, 2, 2]
    (tmp_path / "dataset.json").write_text(json.dumps(document))
    with pytest.raises(Inception3Error, match=r"class_counts add up to 10, but the split holds 9"):
        load_dataset_info(tmp_path)


def test_balanced_loader_draws_classes_equally_and_resumes_mid_epoch_exactly(imbalanced: Path) -> None:
    info = load_dataset_info(imbalanced)
    loader = TrainLoader(info, 3, 75, seed=5, num_workers=0, balance_classes=True)
    iterator = iter(loader)
    straight = [next(iterator) for _ in range(6)]  # two epochs of 9 records
    for epoch in (straight[:3], straight[3:]):
        assert Counter(torch.cat([b.labels for b in epoch]).tolist()) == {0: 3, 1: 3, 2: 3}
    levels = sum((level_of(b.images) for b in straight), [])
    assert levels.count(85) == 6  # the one cat, drawn three times an epoch
    resumed = TrainLoader(info, 3, 75, seed=5, num_workers=0, balance_classes=True)
    first = TrainLoader(info, 3, 75, seed=5, num_workers=0, balance_classes=True)
    it = iter(first)
    next(it)
    resumed.load_state_dict(first.state_dict())  # one batch into the first epoch
    again = iter(resumed)
    for a in straight[1:]:
        b = next(again)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_balanced_batches_on_two_ranks_are_the_one_rank_stream_cut_in_two() -> None:
    labels = np.array([0] * 9 + [1] * 3)
    one = next(train_batches(np.array([12]), 1, 0, 1, 4, labels=labels))[0]
    two = [next(train_batches(np.array([12]), 1, r, 2, 2, labels=labels))[0] for r in range(2)]
    assert np.array_equal(one, np.concatenate(two))
