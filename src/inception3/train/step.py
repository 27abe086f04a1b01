"""One training step: augment on the device, forward, the original's loss, backward, update.

Every random draw of a step (the colour distortion and flips, the dropout masks, the mixing)
comes from seeds derived from (seed, step, rank), so a resumed run repeats the very same step and
ranks draw differently from one another.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inception3.config import TrainConfig
from inception3.data.augment import build_pipeline
from inception3.data.augment.mix import mix_batch, mixing_on
from inception3.model import InceptionOutputs
from inception3.train.precision import LossScaler, autocast

AUGMENT_STREAM, DROPOUT_STREAM, MIX_STREAM = 0, 1, 2
LOSSES = ("total", "cross_entropy", "aux")  # StepResult's losses, in the order inception_loss returns them


def step_seed(seed: int, step: int, rank: int, stream: int) -> int:
    """A 63-bit seed for one random stream of one step on one rank, well mixed (SeedSequence)."""
    state = np.random.SeedSequence([seed, step, rank, stream]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


@dataclass
class StepResult:
    """What a step leaves for logging: its losses (detached, on the device), and its inputs if asked.

    total = cross_entropy + aux_loss_weight · aux. `inputs` is the distorted batch in [-1, 1].
    """

    total: torch.Tensor
    cross_entropy: torch.Tensor
    aux: torch.Tensor
    inputs: torch.Tensor | None = None


def inception_loss(
    outputs: torch.Tensor | InceptionOutputs,
    labels: torch.Tensor,
    cfg: TrainConfig,
    class_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax cross entropy with label smoothing on the logits, plus the weighted aux head's.

    TF's `label_smoothing` (one-hot · (1 − ε) + ε / K) is PyTorch's; losses are in float32
    even under autocast. Returns (total, cross_entropy, aux); aux is 0 without the head.
    `labels`: int64 [B] class indices, or float [B, K] probability targets (mixing), smoothed the
    same way: t · (1 − ε) + ε / K. `class_weights` [K] (class_balance=loss): each image's loss is
    weighted by its target's class weight (Σ_k t_k·w_k for soft targets) and the batch's mean taken.
    """
    if isinstance(outputs, InceptionOutputs):
        logits, aux_logits = outputs
    else:
        logits, aux_logits = outputs, None
    main = _cross_entropy(logits, labels, cfg.label_smoothing, class_weights)
    if aux_logits is None:
        return main, main, torch.zeros_like(main)
    aux = _cross_entropy(aux_logits, labels, cfg.label_smoothing, class_weights)
    return main + cfg.aux_loss_weight * aux, main, aux


def _cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, smoothing: float, class_weights: torch.Tensor | None
) -> torch.Tensor:
    if class_weights is None:
        return F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)
    losses = F.cross_entropy(logits.float(), labels, label_smoothing=smoothing, reduction="none")
    weights = class_weights[labels] if labels.dim() == 1 else labels.float() @ class_weights
    return (losses * weights).mean()


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    step: int,
    rank: int,
    cfg: TrainConfig,
    *,
    keep_inputs: bool = False,
    num_classes: int | None = None,
    class_weights: torch.Tensor | None = None,
    scaler: LossScaler | None = None,
) -> StepResult:
    """Run global step `step` on this rank's uint8 batch (already on the device); returns its losses.

    `keep_inputs`: also return the distorted batch (for the input-image summary).
    `num_classes`: the logits' count, which mixing (`mixup_alpha`, `cutmix_alpha`) needs for its
    targets; the whole batch is mixed before it is split. `class_weights`: see `inception_loss`.
    `scaler`: fp16's loss scaling (train/precision.py), through which the backward passes and the
    update then go.
    The batch is split into `cfg.grad_accum` micro-batches whose gradients add up (DDP
    synchronises only on the last), each loss scaled so the sum is the batch mean.
    """
    device = images.device
    generator = torch.Generator(device=device)
    generator.manual_seed(step_seed(cfg.seed, step, rank, AUGMENT_STREAM))
    torch.manual_seed(step_seed(cfg.seed, step, rank, DROPOUT_STREAM))
    x = build_pipeline(cfg.augment)(images, generator)
    targets = labels
    if mixing_on(cfg):
        if num_classes is None:
            raise ValueError("mixing needs num_classes for its targets")
        rng = np.random.default_rng(step_seed(cfg.seed, step, rank, MIX_STREAM))
        x, targets = mix_batch(x, labels, num_classes, cfg, rng)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer.zero_grad(set_to_none=True)
    parts = cfg.grad_accum
    micro_batches = zip(x.chunk(parts), targets.chunk(parts), strict=True) if parts > 1 else [(x, targets)]
    sums: torch.Tensor | None = None  # the batch's (total, cross_entropy, aux)
    for i, (xi, yi) in enumerate(micro_batches):
        last = i == parts - 1
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        weight = yi.shape[0] / labels.shape[0]
        with sync:
            with autocast(cfg.precision, device):
                outputs = model(xi)
            total, main, aux = inception_loss(outputs, yi, cfg, class_weights)
            # Scaling by a weight of 1 changes no bit: one batch skips its two calls.
            scaled = total * weight if parts > 1 else total
            if scaler is None:
                scaled.backward()
            else:
                scaler.backward(scaled)
        with torch.no_grad():
            losses = torch.stack([total, main, aux])
            losses = losses * weight if parts > 1 else losses
            sums = losses if sums is None else sums + losses
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
    return StepResult(**dict(zip(LOSSES, sums.unbind(), strict=True)), inputs=x if keep_inputs else None)
