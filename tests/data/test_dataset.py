"""The record order: a seeded permutation per epoch, shared by the ranks without overlap."""

from __future__ import annotations

import numpy as np
import pytest

from inception3.data.dataset import epoch_order, rank_records


@pytest.mark.parametrize("buffer", [4, 10_000])
def test_epoch_order_is_a_seeded_permutation_that_changes_each_epoch(buffer):
    sizes = np.array([5, 7, 3, 9])
    first = epoch_order(sizes, seed=1, epoch=0, shuffle_buffer=buffer)
    assert sorted(first.tolist()) == list(range(24))
    assert np.array_equal(first, epoch_order(sizes, seed=1, epoch=0, shuffle_buffer=buffer))
    assert not np.array_equal(first, epoch_order(sizes, seed=1, epoch=1, shuffle_buffer=buffer))
    assert not np.array_equal(first, epoch_order(sizes, seed=2, epoch=0, shuffle_buffer=buffer))


def test_ranks_share_an_epoch_without_overlap():
    order = epoch_order(np.array([10, 11]), seed=0, epoch=0)
    shares = [rank_records(order, rank, 3) for rank in range(3)]
    assert [len(s) for s in shares] == [7, 7, 7]
    assert len(set(np.concatenate(shares).tolist())) == 21
