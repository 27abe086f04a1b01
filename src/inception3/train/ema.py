"""The exponential moving average of the weights and batch-norm statistics the evaluator uses.

As the original's `tf.train.ExponentialMovingAverage(0.9999, global_step)` applied to the
trainable variables and the batch-norm moving statistics: after each step,

    decay  = min(ema_decay, (1 + step) / (10 + step))     (TF's num_updates warm-up)
    shadow <- shadow - (1 - decay) * (shadow - value)

so early averages follow the weights closely instead of staying near the initialisation for the
~10,000 steps a fixed 0.9999 would take to forget it. Shadows start as copies of the values.
"""

from __future__ import annotations

import torch
from torch import nn


class ExponentialMovingAverage:
    """Shadow copies of every floating-point entry of `model.state_dict()`, same keys."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {key: value.detach().clone() for key, value in model.state_dict().items()}

    def decay_at(self, step: int) -> float:
        """The decay used after global step `step` (0-based): TF's num_updates warm-up."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move every shadow toward the model's current value, after global step `step`."""
        rate = 1.0 - self.decay_at(step)
        floats, values, counts, counted = [], [], [], []
        # The state dict's entries by name, without `state_dict()`: it detaches each (one call apiece).
        every = (
            *model.named_parameters(remove_duplicate=False),
            *model.named_buffers(remove_duplicate=False),
        )
        for key, value in every:
            if key not in self.shadow:  # a buffer the state dict leaves out (persistent=False)
                continue
            if value.is_floating_point():
                floats.append(self.shadow[key])
                values.append(value)
            else:  # batch norms' update counts: copied, all in one call (one per layer is ~100 kernels)
                counts.append(self.shadow[key])
                counted.append(value)
        if floats:
            torch._foreach_lerp_(floats, values, rate)
        if counts:
            torch._foreach_copy_(counts, counted)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights and statistics, loadable into the model with `load_state_dict`."""
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key, value in state.items():
            self.shadow[key].copy_(value)
