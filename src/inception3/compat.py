"""What differs between the torch releases inception3 supports (pyproject.toml: 2.11 up), in one place.

Each difference is told by the feature, not the version number, so a backport or a nightly behaves
as its API does. `make smoke-oldest` runs the smoke tests on the oldest release.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator

from torch import nn
from torch.nn.parallel import DistributedDataParallel

# torch 2.13 renamed DDP's `broadcast_buffers` to `forward_sync_buffers` and deprecated the old name.
_DDP_FORWARD_SYNC_BUFFERS = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters


def ddp_without_buffer_sync(model: nn.Module, device_ids: list[int] | None) -> DistributedDataParallel:
    """DDP that leaves each rank's buffers (batch-norm statistics) its own between steps.

    torch >= 2.13: `forward_sync_buffers=False`, which still broadcasts rank 0's buffers once when
    wrapping; older: `broadcast_buffers=False`, which does not. Both give the same run, as every rank
    builds (same seed) or loads (same checkpoint) the same buffers before it wraps.
    """
    if _DDP_FORWARD_SYNC_BUFFERS:
        return DistributedDataParallel(model, device_ids=device_ids, forward_sync_buffers=False)
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


@contextlib.contextmanager
def onnx_exporter_quiet() -> Iterator[None]:
    """torch.onnx.export without torch 2.11's FutureWarning about its own deprecated pytree `LeafSpec`
    (raised inside the exporter when it copies the program's tree specs; nothing a user can act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning
        )
        yield
