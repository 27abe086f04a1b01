"""What training reports: the original's log line, and TensorBoard event files in the run directory.

Every `log_every` steps: the line `step N, loss = L (E examples/sec; S sec/batch)` with the
learning rate, and scalars (losses, learning rate, throughput). Every `summary_every` steps:
histograms and sparsity (fraction of zeros) of the end points, gradient norms, and a grid of the
distorted input images, as the original's summaries.

The event files are written by `run.events.EventFile`, in the caller's thread.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import torch
from torch import nn

from inception3.model import BASE_END_POINTS
from inception3.run.events import EventFile

SKIPPED_TAG = "data/skipped_records"
SKIPPED_STEPS_TAG = "fp16/skipped_steps"  # steps fp16's loss scaling skipped (inf or NaN gradients)


def log_line(step: int, loss: float, examples_per_sec: float, sec_per_batch: float, lr: float) -> str:
    """The original's progress line, plus the learning rate."""
    return (
        f"step {step}, loss = {loss:.2f} ({examples_per_sec:.1f} examples/sec; "
        f"{sec_per_batch:.3f} sec/batch), learning rate = {lr:.6g}"
    )


class Summaries:
    """TensorBoard writer of rank 0 (a silent stand-in on other ranks) and the log output."""

    def __init__(
        self, run_dir: Path, enabled: bool, batch_size: int, out: TextIO | None = None, write=None
    ) -> None:
        """`batch_size`: the global batch, for examples/sec; `write`: prints a line (a progress bar's)."""
        self.enabled = enabled
        self.batch_size = batch_size
        self.write = write or (lambda text: print(text, file=out or sys.stdout, flush=True))
        self.writer: EventFile | None = None
        if enabled:
            self.writer = EventFile(run_dir)
        self.end_points: dict[str, torch.Tensor] = {}
        self._window_start, self._window_steps = time.perf_counter(), 0

    def count_step(self) -> None:
        """One more step in the throughput window of the next log line."""
        self._window_steps += 1

    def log(
        self,
        step: int,
        losses: dict[str, float],
        lr: float,
        *,
        skipped_records: int | None = None,
        skipped_steps: int | None = None,
    ) -> None:
        """Print the progress line and write the scalars of `step`; speed is over the steps since the last.

        `skipped_records` (with skip_corrupt): corrupt records left out so far, over all ranks;
        written as a scalar, and added to the line once there are any. `skipped_steps` (fp16): the
        steps loss scaling skipped so far, the same way.
        """
        elapsed = time.perf_counter() - self._window_start
        sec_per_batch = elapsed / max(1, self._window_steps)
        examples_per_sec = self.batch_size / sec_per_batch
        self._window_start, self._window_steps = time.perf_counter(), 0
        if not self.enabled:
            return
        line = log_line(step, losses["total"], examples_per_sec, sec_per_batch, lr)
        if skipped_records:
            line += f", skipped records = {skipped_records}"
        if skipped_steps:
            line += f", skipped steps = {skipped_steps}"
        self.write(line)
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", value, step)
        self.writer.add_scalar("learning_rate", lr, step)
        self.writer.add_scalar("examples_per_sec", examples_per_sec, step)
        if skipped_records is not None:
            self.writer.add_scalar(SKIPPED_TAG, skipped_records, step)
        if skipped_steps is not None:
            self.writer.add_scalar(SKIPPED_STEPS_TAG, skipped_steps, step)
        self.writer.flush()

    def skipped_records(self, step: int, count: int) -> None:
        """The run's total of skipped corrupt records, at its end: one line and the last scalar."""
        if not self.enabled:
            return
        self.write(
            f"skip_corrupt: {count} corrupt record(s) were left out of training so far "
            "(`inception3 inspect --verify` lists them)"
        )
        self.writer.add_scalar(SKIPPED_TAG, count, step)
        self.writer.flush()

    @contextlib.contextmanager
    def record_end_points(self, model: nn.Module, active: bool) -> Iterator[None]:
        """Keep the first output of every end-point module during the block (when `active`)."""
        if not (active and self.enabled):
            yield
            return
        self.end_points.clear()

        def keep(name: str):
            def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
                self.end_points.setdefault(name, output.detach())

            return hook

        handles = [getattr(model, name).register_forward_hook(keep(name)) for name in BASE_END_POINTS]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def histograms(
        self,
        step: int,
        model: nn.Module,
        images: torch.Tensor,
        decayed: list[torch.Tensor],
        weight_decay: float,
    ) -> None:
        """End-point histograms and sparsity, gradient norms, input images, the L2 loss of `decayed`."""
        if not self.enabled:
            return
        regularization = sum(float(p.detach().float().pow(2).sum()) for p in decayed) * weight_decay / 2
        w = self.writer
        for name, value in self.end_points.items():
            value = value.float()
            w.add_histogram(f"activations/{name}", value.cpu(), step)
            w.add_scalar(f"sparsity/{name}", float((value == 0).float().mean()), step)
        self.end_points.clear()
        norms = {
            name: p.grad.detach().float().norm() for name, p in model.named_parameters() if p.grad is not None
        }
        if norms:
            w.add_scalar("gradient_norm/total", float(torch.stack(list(norms.values())).norm()), step)
            for scope in dict.fromkeys(name.split(".")[0] for name in norms):
                scoped = [n for name, n in norms.items() if name.split(".")[0] == scope]
                w.add_scalar(f"gradient_norm/{scope}", float(torch.stack(scoped).norm()), step)
        w.add_scalar("loss/regularization", regularization, step)
        w.add_images("images", (images[:8].float().cpu() + 1.0) / 2.0, step)
        w.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
