"""Training: the loop, the optimizer and schedules, moving averages, checkpoints, data parallelism.

`inception3.train(config, data_dir, train_dir)` calls `train.loop.train`: this package is callable
(`callable_module.py`), and `train` is imported on first use, so that importing a module of the
package (options.py, which the CLI reads its config with) does not load the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inception3.callable_module import make_callable

if TYPE_CHECKING:
    from inception3.train.loop import TrainResult, train

__all__ = ["TrainResult", "train"]


def __getattr__(name: str) -> object:
    """`train` and `TrainResult` of loop.py, looked up at each use (so that patching loop.train is seen)."""
    if name in __all__:
        from inception3.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'inception3.train' has no attribute {name!r}")


make_callable(__name__)  # `inception3.train(...)` is `train.loop.train`
