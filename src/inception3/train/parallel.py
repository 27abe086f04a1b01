"""Synchronous data parallelism for training: DDP averages gradients every step; optional sync batch norm."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from inception3.compat import ddp_without_buffer_sync
from inception3.model import BatchNorm
from inception3.run.distributed import Distributed


def wrap_model(model: nn.Module, ctx: Distributed) -> nn.Module:
    """The model DDP averages gradients for (the model itself when alone)."""
    if not ctx.enabled:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # Each rank keeps its own batch-norm statistics between steps, as the original's towers did.
    return ddp_without_buffer_sync(model, ids)


class SyncBatchNorm(BatchNorm):
    """TF-Slim's batch norm with the batch statistics taken over every rank's batch.

    Each rank's mean and variance (two-pass, `var_mean`) and count are all-gathered with autograd
    (`torch.distributed.nn`), so it runs on gloo (CPU) as on NCCL, and combined exactly (Chan's
    parallel variance); the moving statistics get the global mean and biased variance (`tf.nn.moments`').
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        from torch.distributed.nn import all_gather

        channels = x.shape[1]
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        local = torch.cat([mean, var, x.new_full((1,), x.numel() / channels)])
        gathered = torch.stack(all_gather(local))
        means, variances, counts = gathered[:, :channels], gathered[:, channels:-1], gathered[:, -1:]
        total = counts.sum()
        mean = (means * counts).sum(0) / total
        var = ((variances + (means - mean) ** 2) * counts).sum(0) / total
        self.update_statistics(mean.detach(), var.detach())
        shape = (1, channels, 1, 1)
        return (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.epsilon) + self.beta.view(shape)


def convert_sync_batch_norm(model: nn.Module) -> nn.Module:
    """Make every batch norm a `SyncBatchNorm` in place: same beta, statistics and state-dict keys."""
    for module in model.modules():
        if type(module) is BatchNorm:
            module.__class__ = SyncBatchNorm
    return model
