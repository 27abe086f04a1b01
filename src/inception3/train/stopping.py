"""Stopping on request: SIGTERM (what schedulers and torchrun send) or Ctrl-C ends the run cleanly.

The first signal asks the loop to stop at its next check step, save a checkpoint and return, so that
running the same command again resumes exactly there; a second one stops at once, as before. Check
steps come every `log_every` steps and before each checkpoint: there the ranks agree in one all-reduce,
so that every rank stops after the same step, and the steps between them never wait on the host.
Handlers are installed only in the main thread (Python allows no other) and restored on exit.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)  # USR1: what `sbatch --signal=USR1@SECONDS` sends


class StopRequest:
    """Signal handlers, between `install` and `restore`; `requested` is the first signal's name."""

    def __init__(self, say: Callable[[str], None], every: int = 1) -> None:
        """`every`: the most steps between two check steps, which the first signal's line says."""
        self.requested: str | None = None
        self._say = say
        self._every = every
        self._previous: dict[int, object] = {}
        self._pid = os.getpid()

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._previous = {}

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            return  # a forked data loader worker, which Ctrl-C reaches too: the trainer shuts it down
        if self.requested is not None:  # the second signal: stop now, the way it would have
            signal.signal(number, self._previous.get(number, signal.SIG_DFL))  # type: ignore[arg-type]
            signal.raise_signal(number)
            return
        self.requested = signal.Signals(number).name
        within = "after this step" if self._every == 1 else f"within {self._every} steps"
        self._say(
            f"{self.requested}: stopping at the next check step ({within}) and saving a checkpoint "
            "(send it again to stop at once)"
        )
