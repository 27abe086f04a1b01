"""The original's optimizer (RMSProp as TensorFlow computes it) and learning-rate schedules.

TensorFlow's `tf.train.RMSPropOptimizer(lr, decay, momentum, epsilon)` differs from
`torch.optim.RMSprop` in three ways that matter with the recipe's epsilon of 1.0:

    ms  <- decay * ms + (1 - decay) * g²          ms starts at 1.0, not 0
    mom <- momentum * mom + lr * g / sqrt(ms + ε)  ε inside the square root; lr inside the momentum
    w   <- w - mom

PyTorch starts the square average at 0, adds ε outside the root and applies lr after the
momentum buffer, so a change of learning rate acts at once instead of fading in. L2 weight decay
is the gradient of `weight_decay * sum(w²) / 2` (TF's `l2_loss`), added to g before the update,
as the original added the regularisation losses to the total loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from inception3.config import TrainConfig
from inception3.errors import Inception3Error


class RMSPropTF(torch.optim.Optimizer):
    """RMSProp with TensorFlow's update rule (see the module docstring); state: square_avg, momentum."""

    def __init__(
        self,
        params: Iterable,
        lr: float,
        decay: float = 0.9,
        momentum: float = 0.9,
        epsilon: float = 1.0,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or not 0.0 <= decay < 1.0 or momentum < 0 or epsilon <= 0 or weight_decay < 0:
            raise Inception3Error(
                f"RMSProp needs lr >= 0, 0 <= decay < 1, momentum >= 0, epsilon > 0 and "
                f"weight_decay >= 0; got lr={lr}, decay={decay}, momentum={momentum}, "
                f"epsilon={epsilon}, weight_decay={weight_decay}"
            )
        super().__init__(
            params,
            {
                "lr": lr,
                "decay": decay,
                "momentum": momentum,
                "epsilon": epsilon,
                "weight_decay": weight_decay,
            },
        )

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - the torch.optim signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, decay, momentum = group["lr"], group["decay"], group["momentum"]
            epsilon, weight_decay = group["epsilon"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=weight_decay) if weight_decay else p.grad
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    state["momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                square_avg, buf = state["square_avg"], state["momentum"]
                square_avg.mul_(decay).addcmul_(grad, grad, value=1.0 - decay)
                buf.mul_(momentum).addcdiv_(grad, square_avg.add(epsilon).sqrt_(), value=lr)
                p.sub_(buf)
        return loss


def build_optimizer(param_groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer `cfg.optimizer` names over `param_groups` (each with its own weight_decay)."""
    if cfg.optimizer == "rmsprop":
        return RMSPropTF(
            param_groups,
            lr=cfg.learning_rate,
            decay=cfg.rmsprop_decay,
            momentum=cfg.momentum,
            epsilon=cfg.rmsprop_epsilon,
        )
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.learning_rate, momentum=cfg.momentum)
    raise Inception3Error(f"optimizer must be 'rmsprop' or 'sgd', got {cfg.optimizer!r}")


def decay_steps(cfg: TrainConfig, train_examples: int) -> int:
    """Steps between staircase decays: int(batches per epoch × epochs per decay), as the original."""
    return max(1, int(train_examples / cfg.batch_size * cfg.num_epochs_per_decay))


def learning_rate(step: int, cfg: TrainConfig, train_examples: int) -> float:
    """The learning rate of global step `step` (0-based), a pure function of the step.

    "exponential": lr × factor^floor(step / decay_steps) (TF's staircase exponential_decay);
    "cosine": lr × (1 + cos(π · step / max_steps)) / 2; "constant": lr. With `warmup_steps`,
    the rate rises linearly from lr/warmup to the schedule's value over the first steps.
    """
    if cfg.lr_schedule == "exponential":
        decays = step // decay_steps(cfg, train_examples)
        rate = cfg.learning_rate * cfg.learning_rate_decay_factor**decays
    elif cfg.lr_schedule == "cosine":
        rate = cfg.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(step, cfg.max_steps) / cfg.max_steps))
    elif cfg.lr_schedule == "constant":
        rate = cfg.learning_rate
    else:
        raise Inception3Error(
            f"lr_schedule must be 'exponential', 'cosine' or 'constant', got {cfg.lr_schedule!r}"
        )
    if step < cfg.warmup_steps:
        rate *= (step + 1) / cfg.warmup_steps
    return rate


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    """Give every parameter group the learning rate `rate`."""
    for group in optimizer.param_groups:
        group["lr"] = rate
