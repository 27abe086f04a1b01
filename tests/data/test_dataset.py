"""The record order: a seeded permutation per epoch, shared by the ranks without overlap."""

from __future__ import annotations

import numpy as np
import pytest

from inception3.data.dataset import epoch_order, train_batches


@pytest.mark.parametrize("buffer", [4, 10_000])
def test_epoch_order_is_a_seeded_permutation_that_changes_each_epoch(buffer):
    sizes = np.array([5, 7, 3, 9])
    first = epoch_order(sizes, seed=1, epoch=0, shuffle_buffer=buffer)
    assert sorted(first.tolist()) == list(range(24))
    assert np.array_equal(first, epoch_order(sizes, seed=1, epoch=0, shuffle_buffer=buffer))
    assert not np.array_equal(first, epoch_order(sizes, seed=1, epoch=1, shuffle_buffer=buffer))
    assert not np.array_equal(first, epoch_order(sizes, seed=2, epoch=0, shuffle_buffer=buffer))


def _records(sizes: np.ndarray, world: int, per_rank: int, steps: int, position: int = 0) -> list[int]:
    """The records `steps` global batches read, from global record `position`, in rank order."""
    streams = [train_batches(sizes, 3, rank, world, per_rank, position) for rank in range(world)]
    return [int(n) for _ in range(steps) for stream in streams for n in next(stream)[0]]


def test_ranks_split_each_global_batch_without_overlap():
    sizes = np.array([10, 11])
    ranks = [train_batches(sizes, 0, rank, 3, 7) for rank in range(3)]
    first = [next(stream)[0] for stream in ranks]
    assert [len(share) for share in first] == [7, 7, 7]
    assert sorted(np.concatenate(first).tolist()) == sorted(epoch_order(sizes, seed=0, epoch=0)[:21].tolist())


@pytest.mark.parametrize(("before", "after"), [(2, 1), (1, 2), (4, 2)])
def test_a_run_resumed_on_another_number_of_ranks_reads_the_same_records(before, after):
    """Global batch 8: 5 steps on `before` ranks, then 7 on `after`, read what 12 steps on one read."""
    sizes = np.array([9, 6, 11])  # 26 records: the run crosses three epoch boundaries
    straight = _records(sizes, 1, 8, 12)
    resumed = _records(sizes, before, 8 // before, 5) + _records(sizes, after, 8 // after, 7, position=5 * 8)
    assert resumed == straight
