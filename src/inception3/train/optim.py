"""The optimizers (the original's RMSProp as TensorFlow computes it, AdamW, SGD), their parameter
groups (weight decay, layer-wise learning-rate decay) and the learning-rate schedules.

TensorFlow's `tf.train.RMSPropOptimizer(lr, decay, momentum, epsilon)` differs from
`torch.optim.RMSprop` in three ways that matter with the recipe's epsilon of 1.0:

    ms  <- decay * ms + (1 - decay) * g²          ms starts at 1.0, not 0
    mom <- momentum * mom + lr * g / sqrt(ms + ε)  ε inside the square root; lr inside the momentum
    w   <- w - mom

PyTorch starts the square average at 0, adds ε outside the root and applies lr after the
momentum buffer, so a change of learning rate acts at once instead of fading in.

Weight decay, per group (`weight_decay` of the group; batch-norm betas and biases get 0):
  rmsprop, sgd  L2: the gradient of `weight_decay * sum(w²) / 2` (TF's `l2_loss`) is added to g
                before the update, as the original added the regularisation losses to the loss; it
                passes through the optimizer's scaling like any gradient.
  adamw         decoupled (Loshchilov & Hutter, torch.optim.AdamW): w <- w - lr * weight_decay * w
                each step, beside the Adam update and untouched by its scaling; the same number is
                a far weaker pull than as L2 (AdamW recipes use ~0.05, the original's L2 is 4e-5).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from inception3.config import TrainConfig
from inception3.errors import Inception3Error
from inception3.model import parameter_groups


class RMSPropTF(torch.optim.Optimizer):
    """RMSProp with TensorFlow's update rule (see the module docstring); state: square_avg, momentum.

    Each group's tensors are updated together by `torch._foreach_*` ops (one call per operation
    per device and dtype, as torch's own foreach optimizers), not one call per tensor.
    """

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
            # (params, grads, square_avgs, momenta) per (device, dtype): foreach ops take one of each
            buckets: dict[tuple[torch.device, torch.dtype], tuple[list, list, list, list]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    state["momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                tensors = buckets.setdefault((p.device, p.dtype), ([], [], [], []))
                for into, value in zip(
                    tensors, (p, p.grad, state["square_avg"], state["momentum"]), strict=True
                ):
                    into.append(value)
            for params, grads, square_avgs, momenta in buckets.values():
                _rmsprop_tf(
                    params,
                    grads,
                    square_avgs,
                    momenta,
                    lr=group["lr"],
                    decay=group["decay"],
                    momentum=group["momentum"],
                    epsilon=group["epsilon"],
                    weight_decay=group["weight_decay"],
                )
        return loss


def _rmsprop_tf(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    square_avgs: list[torch.Tensor],
    momenta: list[torch.Tensor],
    *,
    lr: float,
    decay: float,
    momentum: float,
    epsilon: float,
    weight_decay: float,
) -> None:
    """The module docstring's three lines over tensors of one device and dtype, 7 or 8 calls."""
    if weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_mul_(square_avgs, decay)
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1.0 - decay)
    denominators = torch._foreach_add(square_avgs, epsilon)
    torch._foreach_sqrt_(denominators)
    torch._foreach_mul_(momenta, momentum)
    torch._foreach_addcdiv_(momenta, grads, denominators, value=lr)
    torch._foreach_sub_(params, momenta)


def build_optimizer(param_groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer `cfg.optimizer` names over `param_groups` (each with its own weight_decay).

    AdamW runs torch's fused kernel where torch has one for every parameter's device (CUDA, the
    CPU; tests/train/test_optim.py checks it against the foreach form), else the foreach form; SGD
    runs the foreach form.
    """
    if cfg.optimizer == "rmsprop":
        return RMSPropTF(
            param_groups,
            lr=cfg.learning_rate,
            decay=cfg.rmsprop_decay,
            momentum=cfg.momentum,
            epsilon=cfg.rmsprop_epsilon,
        )
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            param_groups, lr=cfg.learning_rate, momentum=cfg.momentum, nesterov=cfg.nesterov, foreach=True
        )
    if cfg.optimizer == "adamw":
        fused = all(
            p.device.type in FUSED_ADAMW_DEVICES and p.is_floating_point()
            for group in param_groups
            for p in group["params"]
        )
        return torch.optim.AdamW(
            param_groups,
            lr=cfg.learning_rate,
            betas=(cfg.adamw_beta1, cfg.adamw_beta2),
            eps=cfg.adamw_epsilon,
            foreach=None if fused else True,
            fused=fused or None,
        )
    raise Inception3Error(f"optimizer must be 'rmsprop', 'sgd' or 'adamw', got {cfg.optimizer!r}")


# Devices with torch's fused AdamW kernel (torch/optim/adamw.py, `_get_fused_kernels_supported_devices`).
FUSED_ADAMW_DEVICES = ("cuda", "cpu")


# --- parameter groups -----------------------------------------------------------------------------
def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The optimizer's groups for `model`: weight decay on convolution and logits weights only (the
    original's two groups), split further by depth when `cfg.layer_decay` < 1.

    Layer-wise decay (BEiT; timm's `param_groups_layer_decay`): each group's `lr_scale` is
    layer_decay^(top - depth), which `set_learning_rate` applies. Depths as timm's
    `InceptionV3.group_matcher`: 0 = Conv2d_1a..2b, 1 = Conv2d_3b..4a, then one per Mixed block
    (5b .. 7c); the top, scale 1, holds the heads AuxLogits and Logits (timm puts AuxLogits in
    module order after Mixed_6e; here both heads are the layers a fine-tuning replaces). Groups
    are ordered by depth, decayed before undecayed within a depth.
    """
    groups = parameter_groups(model, cfg.weight_decay)
    if cfg.layer_decay == 1.0:
        return groups
    depths = layer_depths(model)
    top = max(depths.values())
    names = {id(p): name for name, p in model.named_parameters()}
    by_key: dict[tuple[int, int], dict] = {}  # (depth, decayed first)
    for position, group in enumerate(groups):
        for p in group["params"]:
            depth = depths[names[id(p)]]
            scale = cfg.layer_decay ** (top - depth)
            new = {"params": [], "weight_decay": group["weight_decay"], "lr_scale": scale}
            by_key.setdefault((depth, position), new)["params"].append(p)
    return [by_key[key] for key in sorted(by_key)]


def layer_depths(model: nn.Module) -> dict[str, int]:
    """Each parameter's depth by name: stem 0 and 1, the Mixed blocks in order, then the heads."""
    blocks = [name for name, _ in model.named_children() if name.startswith("Mixed_")]
    top = 2 + len(blocks)
    depths = {}
    for name, _ in model.named_parameters():
        scope = name.split(".")[0]
        if scope.startswith(("Conv2d_1", "Conv2d_2")):
            depths[name] = 0
        elif scope.startswith(("Conv2d_3", "Conv2d_4")):
            depths[name] = 1
        elif scope in blocks:
            depths[name] = 2 + blocks.index(scope)
        else:  # AuxLogits, Logits: the heads
            depths[name] = top
    return depths


# --- learning rate --------------------------------------------------------------------------------
def decay_steps(cfg: TrainConfig, train_examples: int) -> int:
    """Steps between staircase decays: int(batches per epoch × epochs per decay), as the original."""
    return max(1, int(train_examples / cfg.batch_size * cfg.num_epochs_per_decay))


def learning_rate(step: int, cfg: TrainConfig, train_examples: int) -> float:
    """The learning rate of global step `step` (0-based), a pure function of the step.

    "exponential": lr × factor^floor(step / decay_steps) (TF's staircase exponential_decay);
    "cosine": min + (lr − min) × (1 + cos(π · step / max_steps)) / 2, min = `min_learning_rate`
    (timm's `lr_min`); "constant": lr. With `warmup_steps`, the rate rises linearly over the first
    steps from min + (rate − min)/warmup to the schedule's value (min is 0 but for cosine).
    """
    floor = 0.0
    if cfg.lr_schedule == "exponential":
        decays = step // decay_steps(cfg, train_examples)
        rate = cfg.learning_rate * cfg.learning_rate_decay_factor**decays
    elif cfg.lr_schedule == "cosine":
        floor = cfg.min_learning_rate
        progress = math.pi * min(step, cfg.max_steps) / cfg.max_steps
        rate = floor + (cfg.learning_rate - floor) * 0.5 * (1.0 + math.cos(progress))
    elif cfg.lr_schedule == "constant":
        rate = cfg.learning_rate
    else:
        raise Inception3Error(
            f"lr_schedule must be 'exponential', 'cosine' or 'constant', got {cfg.lr_schedule!r}"
        )
    if step < cfg.warmup_steps:
        rate = floor + (rate - floor) * ((step + 1) / cfg.warmup_steps)
    return rate


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    """Give every parameter group the learning rate `rate`, times its `lr_scale` (layer-wise decay)."""
    for group in optimizer.param_groups:
        group["lr"] = rate * group.get("lr_scale", 1.0)
