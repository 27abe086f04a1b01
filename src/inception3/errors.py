"""The one exception type for user mistakes; the CLI prints it as a single line and exits 2.

And `interrupts_win`: a Ctrl-C reaches the CLI as KeyboardInterrupt (exit code 130) whatever the
libraries it went through made of it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Inception3Error(Exception):
    """A problem the user can fix: bad input, a missing file, a config that cannot work.

    The message names the file or value at fault and says what to do about it.
    """


@contextlib.contextmanager
def interrupts_win() -> Iterator[None]:
    """A Ctrl-C during the block ends it as KeyboardInterrupt, whatever the code inside made of it.

    Libraries catch exceptions around their imports and their work: torch, interrupted while its C
    extension imports NumPy, warns and carries on (a build then ran to its end, exit code 0), and
    torch.onnx, interrupted while it imports torch._dynamo, reports the half-imported module's failure
    instead (a traceback). The signal is remembered here: an exception that ends the block after it,
    or the block's normal end, becomes KeyboardInterrupt. Blocks nest; a handler of the caller's own
    (a training run's stop request), an ignored SIGINT or another thread leave the block as it is.
    """
    previous = signal.getsignal(signal.SIGINT)
    ours = previous is signal.default_int_handler or getattr(previous, "interrupts_win", False)
    if threading.current_thread() is not threading.main_thread() or not ours:
        yield
        return
    interrupted = False

    def interrupt(number: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted = True
        previous(number, frame)  # type: ignore[operator]  # raises KeyboardInterrupt (an outer block's first)

    interrupt.interrupts_win = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    except BaseException:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:  # swallowed inside, and the block went on to its end
        raise KeyboardInterrupt
