"""The workers' ring of shared buffers: reused in turn, grown when needed, a reused slot detected."""

from __future__ import annotations

import pytest
import torch

from inception3.data.shared_slots import SlotRing, check_stamp


def test_slots_come_round_in_turn_and_grow_when_a_batch_needs_more():
    ring = SlotRing(count=2)
    first = ring.take(100)
    stamp = ring.seal(first)
    second = ring.take(100)
    ring.seal(second)
    again = ring.take(50)
    assert again.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()  # slot 0 reused
    assert again.untyped_storage().is_shared() and again.numel() == 50
    ring.seal(again)
    bigger = ring.take(1000)
    assert (
        bigger.numel() == 1000 and bigger.untyped_storage().data_ptr() != second.untyped_storage().data_ptr()
    )
    with pytest.raises(RuntimeError, match=f"reused the shared memory of batch {stamp}"):
        check_stamp(first, stamp)  # slot 0 now holds the third batch


def test_a_slot_still_holding_its_batch_passes_and_one_being_filled_does_not():
    ring = SlotRing(count=2)
    view = ring.take(8)
    view.copy_(torch.arange(8, dtype=torch.uint8))
    stamp = ring.seal(view)
    check_stamp(view, stamp)
    ring.take(8)
    refill = ring.take(8)  # slot 0 again, stamped busy while it is filled
    with pytest.raises(RuntimeError, match=r"now -1"):
        check_stamp(refill, stamp)
