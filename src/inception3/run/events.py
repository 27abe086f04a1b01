"""TensorBoard event files written in the caller's thread, for training and evaluation alike.

torch's SummaryWriter writes from a thread of its own, which prints its own traceback when the disk
fills; `EventFile` raises where the write is made, naming the file.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from pathlib import Path

import torch

_FILE_NUMBERS = itertools.count()  # two event files of one process in one second get distinct names


def _tensorflow_bins() -> list[float]:
    """TensorFlow's histogram bucket edges, as torch's SummaryWriter uses: ±1e-12 growing by 10 % to 1e20."""
    edges, v = [], 1e-12
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    return [-v for v in reversed(edges)] + [0.0] + edges


HISTOGRAM_BINS = _tensorflow_bins()


class EventFile:
    """One TensorBoard event file (TFRecord framing of `Event` protos), written in the caller's thread.

    torch's SummaryWriter writes from a thread of its own: when the disk fills, that thread prints a
    traceback beside the command's own line, and the error reaches the caller only at a later call (or,
    at the end of a run, never). Here a failed write raises where it is made, as an OSError naming the
    file, which the CLI prints as its one line; after one failure nothing more is written and `close`
    stays quiet. Records are buffered and flushed at each `flush` (every logged step) and at `close`;
    TensorBoard reads a file whose last record was cut short up to that record.
    """

    def __init__(self, log_dir: Path) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        host, number = socket.gethostname(), next(_FILE_NUMBERS)
        self.path = (
            Path(log_dir) / f"events.out.tfevents.{int(time.time()):010d}.{host}.{os.getpid()}.{number}"
        )
        self._failed = False
        self._file = open(self.path, "xb")  # noqa: SIM115 - open until close()
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        from torch.utils.tensorboard.summary import scalar

        self._add(scalar(tag, value), step)

    def add_histogram(self, tag: str, values: torch.Tensor, step: int) -> None:
        from torch.utils.tensorboard.summary import histogram

        self._add(histogram(tag, values, HISTOGRAM_BINS), step)

    def add_images(self, tag: str, images: torch.Tensor, step: int) -> None:
        """A grid of `images` [N, C, H, W] in [0, 1]."""
        from torch.utils.tensorboard.summary import image

        self._add(image(tag, images, dataformats="NCHW"), step)

    def flush(self) -> None:
        """What was added so far onto the disk (where TensorBoard sees it)."""
        self._guarded(self._file.flush)

    def close(self) -> None:
        """Flush and close; after a failed write, only close (the error was raised then)."""
        if self._file.closed:
            return
        if self._failed:
            with contextlib.suppress(OSError):
                self._file.close()
            return
        self._guarded(self._file.close)

    def __enter__(self) -> EventFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add(self, summary, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._write(Event(wall_time=time.time(), step=int(step), summary=summary))

    def _write(self, event) -> None:
        from inception3.data.records import frame

        data = frame(event.SerializeToString())
        self._guarded(lambda: self._file.write(data))

    def _guarded(self, action) -> None:
        """Run one write of the file, raising its OSError with the file's name once it fails."""
        if self._failed:
            return
        try:
            action()
        except OSError as error:
            self._failed = True
            if error.filename is None:  # a write's error names no file: name ours
                error.filename = str(self.path)
            raise
