"""One training step: augment on the device, forward, the original's loss, backward, update.

Every random draw of a step (the colour distortion and flips, the dropout masks) comes from
seeds derived from (seed, step, rank), so a resumed run repeats the very same step and ranks
draw differently from one another.
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
from inception3.model import InceptionOutputs
from inception3.train.precision import LossScaler, autocast

AUGMENT_STREAM, DROPOUT_STREAM = 0, 1
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
    outputs: torch.Tensor | InceptionOutputs, labels: torch.Tensor, cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax cross entropy with label smoothing on the logits, plus the weighted aux head's.

    TF's `label_smoothing` (one-hot · (1 − ε) + ε / K) is PyTorch's; losses are in float32
    even under autocast. Returns (total, cross_entropy, aux); aux is 0 without the head.
    """
    if isinstance(outputs, InceptionOutputs):
        logits, aux_logits = outputs
    else:
        logits, aux_logits = outputs, None
    main = F.cross_entropy(logits.float(), labels, label_smoothing=cfg.label_smoothing)
    if aux_logits is None:
        return main, main, torch.zeros_like(main)
    aux = F.cross_entropy(aux_logits.float(), labels, label_smoothing=cfg.label_smoothing)
    return main + cfg.aux_loss_weight * aux, main, aux


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
    scaler: LossScaler | None = None,
) -> StepResult:
    """Run global step `step` on this rank's uint8 batch (already on the device); returns its losses.

    `keep_inputs`: also return the distorted batch (for the input-image summary). `scaler`: fp16's
    loss scaling (train/precision.py), through which the backward passes and the update then go.
    The batch is split into `cfg.grad_accum` micro-batches whose gradients add up (DDP
    synchronises only on the last), each loss scaled so the sum is the batch mean.
    """
    device = images.device
    generator = torch.Generator(device=device)
    generator.manual_seed(step_seed(cfg.seed, step, rank, AUGMENT_STREAM))
    torch.manual_seed(step_seed(cfg.seed, step, rank, DROPOUT_STREAM))
    x = build_pipeline(cfg.augment)(images, generator)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer.zero_grad(set_to_none=True)
    parts = cfg.grad_accum
    sums = torch.zeros(len(LOSSES), device=device)
    for i, (xi, yi) in enumerate(zip(x.chunk(parts), labels.chunk(parts), strict=True)):
        last = i == parts - 1
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        weight = yi.shape[0] / labels.shape[0]
        with sync:
            with autocast(cfg.precision, device):
                outputs = model(xi)
            total, main, aux = inception_loss(outputs, yi, cfg)
            if scaler is None:
                (total * weight).backward()
            else:
                scaler.backward(total * weight)
        sums += torch.stack([total, main, aux]).detach() * weight
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
    return StepResult(**dict(zip(LOSSES, sums.unbind(), strict=True)), inputs=x if keep_inputs else None)
