"""Shared-memory buffers that a loader worker reuses batch after batch, instead of new ones per batch.

A batch handed from a worker to the training process travels in shared memory. A fresh segment per
batch costs more CPU than the batch's decoding saves: every page of it is zero-filled on first touch
in the worker and mapped again in the training process (measured: about 16 ms of CPU for a 9.6 MB
batch, against 1-2 ms for ordinary memory; benchmarks/input_pipeline.py). So each worker keeps a ring
of `SLOTS` segments, grown when a batch needs more, and the training process copies each batch out
(to the device, or to memory of its own) as soon as it arrives.

`torch.utils.data.DataLoader` hands each worker a new batch only when the training process takes one
of its batches, at most `PREFETCH` ahead; a worker's slot comes round again only `SLOTS` of its own
batches later, so it is never written while still being read. Each slot also starts with a stamp the
worker sets to -1 while filling it and to the batch's own number when done: the reader checks the
stamp after its copy, so that a reused slot could never pass for a batch unnoticed.
"""

from __future__ import annotations

import torch

PREFETCH = 2  # batches each worker works ahead: DataLoader's prefetch_factor
SLOTS = PREFETCH + 2  # a worker's batches in flight (PREFETCH), the one being copied out, one spare
_HEADER = 8  # bytes of the int64 stamp at the start of each slot


class SlotRing:
    """A worker's ring of shared uint8 buffers; `take` the next, fill it, `seal` it, hand it over."""

    def __init__(self, count: int = SLOTS) -> None:
        self.slots: list[torch.Tensor | None] = [None] * count
        self.turn = 0  # batches handed out so far: the next slot and the next stamp

    def take(self, nbytes: int) -> torch.Tensor:
        """A uint8 [nbytes] view of the next slot, stamped busy (the slot grows when too small)."""
        index = self.turn % len(self.slots)
        slot = self.slots[index]
        if slot is None or slot.numel() < _HEADER + nbytes:
            size = _HEADER + max(nbytes, int(1.25 * (slot.numel() if slot is not None else 0)))
            slot = torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(size))
            self.slots[index] = slot
        _stamp(slot).fill_(-1)
        return slot[_HEADER : _HEADER + nbytes]

    def seal(self, view: torch.Tensor) -> int:
        """Mark `view`'s slot complete; the stamp the reader checks."""
        self.turn += 1
        _stamp(view).fill_(self.turn)
        return self.turn


def _stamp(view: torch.Tensor) -> torch.Tensor:
    """The int64 stamp at the start of `view`'s storage."""
    return torch.empty(0, dtype=torch.int64).set_(view.untyped_storage(), 0, (1,))


def check_stamp(view: torch.Tensor, stamp: int) -> None:
    """Raise if `view`'s slot no longer holds batch `stamp`: called after copying the batch out."""
    found = int(_stamp(view))
    if found != stamp:
        raise RuntimeError(
            f"a loader worker reused the shared memory of batch {stamp} (now {found}) before it was "
            "copied out: its data cannot be trusted (a bug in inception3's loader; please report it)"
        )
