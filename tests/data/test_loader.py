"""Loaders: the same batches for any worker count, exact resume, every eval record exactly once."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from imagefolders import level_of, make_folder, write_jpeg

from inception3.config import AugmentConfig, BuildConfig
from inception3.data.build import build_dataset
from inception3.data.loader import EvalLoader, TrainLoader, synthetic_batches
from inception3.data.meta import load_dataset_info
from inception3.errors import Inception3Error


def _take(loader, n):
    iterator = iter(loader)
    return [next(iterator) for _ in range(n)]


def test_train_batches_are_uint8_crops_with_0_based_labels(built):
    batch = _take(TrainLoader(load_dataset_info(built), 4, 75, num_workers=0), 1)[0]
    assert batch.images.shape == (4, 3, 75, 75) and batch.images.dtype == torch.uint8
    assert batch.labels.dtype == torch.int64 and set(batch.labels.tolist()) <= {0, 1, 2}


def test_the_crop_rule_is_the_loaders_to_choose(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 120).astype(np.uint8)[None, :, None], (120, 1, 3))  # dark to light
    for i in range(4):
        write_jpeg(tmp_path / "images" / "ramp" / f"{i}.jpg", ramp, quality=100)
    build_dataset(BuildConfig(tmp_path / "images", tmp_path / "shards", workers=1))
    info = load_dataset_info(tmp_path / "shards")

    def spans(**crop) -> list[int]:
        augment = AugmentConfig(**crop)
        images = _take(TrainLoader(info, 4, 75, num_workers=0, augment=augment), 1)[0].images.int()
        return (images.amax(dim=(1, 2, 3)) - images.amin(dim=(1, 2, 3))).tolist()

    assert min(spans(crop_area_range=(1.0, 1.0), crop_min_object_covered=0.0)) > 240  # the whole ramp
    assert max(spans(crop_area_range=(0.05, 0.06), crop_min_object_covered=0.0)) < 120  # a quarter at most
    # Covering 10% of the whole-image box is impossible with 6% of its area: the whole image, as TF does.
    assert min(spans(crop_area_range=(0.05, 0.06))) > 240


def test_train_batches_do_not_depend_on_the_worker_count(built):
    info = load_dataset_info(built)
    alone = _take(TrainLoader(info, 4, 75, seed=3, num_workers=0), 5)
    pooled = _take(TrainLoader(info, 4, 75, seed=3, num_workers=2), 5)
    for a, b in zip(alone, pooled, strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_each_epoch_visits_every_training_record_once(built):
    batches = _take(TrainLoader(load_dataset_info(built), 3, 75, num_workers=0), 6)
    levels = [level_of(b.images) for b in batches]
    first, second = sum(levels[:3], []), sum(levels[3:], [])
    assert len(set(first)) == 9 and set(first) == set(second)
    assert first != second, "the order is reshuffled each epoch"


def test_resume_continues_exactly_where_the_state_was_taken(built):
    info = load_dataset_info(built)
    straight = _take(TrainLoader(info, 2, 75, seed=7, num_workers=2), 8)
    first = TrainLoader(info, 2, 75, seed=7, num_workers=2)
    _take(first, 3)
    state = first.state_dict()
    assert all(type(v) in (int, str) for v in state.values())  # plain values: weights-only loadable
    resumed = TrainLoader(info, 2, 75, seed=7, num_workers=0)
    resumed.load_state_dict(state)
    for a, b in zip(straight[3:], _take(resumed, 5), strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_device_batches_copy_one_ahead_but_the_position_counts_those_handed_out(built):
    info = load_dataset_info(built)
    straight = _take(TrainLoader(info, 2, 75, seed=7, num_workers=0), 4)
    loader = TrainLoader(info, 2, 75, seed=7, num_workers=0)
    batches = loader.device_batches(torch.device("cpu"))
    for expected in straight[:3]:
        batch = next(batches)
        assert torch.equal(batch.images, expected.images) and torch.equal(batch.labels, expected.labels)
    assert loader.state_dict()["position"] == 3 * 2  # the fourth batch, already read, is not counted
    resumed = TrainLoader(info, 2, 75, seed=7, num_workers=0)
    resumed.load_state_dict(loader.state_dict())
    assert torch.equal(_take(resumed, 1)[0].images, straight[3].images)


def test_synthetic_batches_are_one_random_batch_of_the_right_shape_on_the_device():
    batches = synthetic_batches(4, 75, 10, torch.device("cpu"), seed=1)
    first, second = next(batches), next(batches)
    assert first.images.shape == (4, 3, 75, 75) and first.images.dtype == torch.uint8
    assert first.images is second.images and int(first.labels.max()) < 10


def test_resume_refuses_a_state_from_another_seed(built):
    info = load_dataset_info(built)
    state = TrainLoader(info, 2, 75, seed=1, num_workers=0).state_dict()
    with pytest.raises(Inception3Error, match="seed=1"):
        TrainLoader(info, 2, 75, seed=2, num_workers=0).load_state_dict(state)


def test_training_ranks_never_share_a_record_within_an_epoch(built):
    info = load_dataset_info(built)
    seen = [
        sum(
            (
                level_of(b.images)
                for b in _take(TrainLoader(info, 1, 75, rank=r, world_size=3, num_workers=0), 3)
            ),
            [],
        )
        for r in range(3)
    ]
    assert len(set(sum(seen, []))) == 9


@pytest.mark.parametrize(("world_size", "workers"), [(1, 0), (2, 2), (3, 1)])
def test_evaluation_sees_every_record_exactly_once(built, world_size, workers):
    info = load_dataset_info(built)
    seen = []
    for rank in range(world_size):
        loader = EvalLoader(info, 2, 75, split="train", rank=rank, world_size=world_size, num_workers=workers)
        batches = list(loader)
        assert len(batches) == len(loader)
        seen += sum((level_of(b.images) for b in batches), [])
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 9


def _corrupt_one_record(built, tmp_path):
    copy = tmp_path / "corrupt"
    shutil.copytree(built, copy)
    shard = copy / "train-00001-of-00003"
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF  # inside the first record's data
    shard.write_bytes(bytes(raw))
    return copy


def test_a_corrupt_record_stops_training_naming_shard_and_record(built, tmp_path):
    info = load_dataset_info(_corrupt_one_record(built, tmp_path))
    with pytest.raises(Inception3Error, match=r"train-00001-of-00003: record 0 is corrupt"):
        _take(TrainLoader(info, 3, 75, num_workers=2), 3)


def test_skip_corrupt_leaves_the_record_out_and_counts_it(built, tmp_path):
    info = load_dataset_info(_corrupt_one_record(built, tmp_path))
    loader = TrainLoader(info, 3, 75, num_workers=0, skip_corrupt=True)
    batches = _take(loader, 3)
    assert sum(len(b.labels) for b in batches) == 8
    assert loader.skipped_records == 1 and loader.state_dict()["skipped_records"] == 1


def test_tensorflow_style_one_based_labels_come_out_0_based(tmp_path):
    made = make_folder(tmp_path / "images", per_class=1)
    build_dataset(
        BuildConfig(
            tmp_path / "images", tmp_path / "tf", train_shards=1, workers=1, label_offset=1, progress=False
        )
    )
    (tmp_path / "tf" / "dataset.json").unlink()
    info = load_dataset_info(tmp_path / "tf", label_offset=1, num_classes=3)
    batch = next(iter(EvalLoader(info, 3, 75, split="train", num_workers=0)))
    by_level = {level: ["ant", "bee", "cat"].index(name) for name, level in made.values()}
    assert batch.labels.tolist() == [by_level[level] for level in level_of(batch.images)]


def test_an_image_folder_can_be_read_without_building_shards(tmp_path):
    made = make_folder(tmp_path / "train", per_class=2)
    make_folder(tmp_path / "validation", per_class=1)
    info = load_dataset_info(tmp_path)
    assert info.class_names == ("ant", "bee", "cat") and info.label_offset == 0
    assert info.split_sizes == {"train": 6, "validation": 3}
    levels = {level: ["ant", "bee", "cat"].index(name) for name, level in made.values()}
    batches = _take(TrainLoader(info, 3, 75, num_workers=0), 2)
    seen = sum((level_of(b.images) for b in batches), [])
    assert sorted(seen) == sorted(levels)
    assert sum((b.labels.tolist() for b in batches), []) == [levels[level] for level in seen]
    assert sum(len(b.labels) for b in EvalLoader(info, 2, 75, num_workers=0)) == 3


def test_an_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(Inception3Error, match="no shards, no dataset.json and no class folders"):
        load_dataset_info(tmp_path)
