"""The optimizers on CUDA: the foreach and fused kernels agree with the CPU's forms, and a step of each
optimizer (with layer-wise decay's many groups) never waits for the GPU."""

from __future__ import annotations

import pytest
import torch
from conftest import cuda_config

from inception3.config import TrainConfig
from inception3.model import InceptionV3
from inception3.train.optim import build_optimizer, param_groups, set_learning_rate
from inception3.train.step import train_step

pytestmark = pytest.mark.cuda


def steps_on(
    device: str, cfg: TrainConfig, shapes: list[tuple[int, ...]], steps: int = 5
) -> list[torch.Tensor]:
    """Parameters after `steps` updates of `cfg.optimizer` on `device`, from the same seeded values
    and gradients (drawn on the CPU), two groups: weight decay and none; the last gets no gradient."""
    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape, generator=g).to(device)) for shape in shapes]
    groups = [{"params": params[::2], "weight_decay": 0.05}, {"params": params[1::2], "weight_decay": 0.0}]
    optimizer = build_optimizer(groups, cfg)
    for _ in range(steps):
        for p in params[:-1]:
            p.grad = torch.randn(p.shape, generator=g).to(device)
        optimizer.step()
    return [p.detach().cpu() for p in params]


@pytest.mark.parametrize("optimizer", ["rmsprop", "sgd", "adamw"])
def test_cuda_updates_equal_the_cpus(optimizer: str) -> None:
    """RMSProp-TF's foreach ops, SGD's and AdamW's fused kernel on CUDA against the same on the CPU
    (checked there against the written-out equations and the foreach form)."""
    cfg = TrainConfig(optimizer=optimizer, learning_rate=0.01, nesterov=optimizer == "sgd")
    shapes = [(32, 16, 3, 3), (32,), (10, 2048), (10,), (5, 5)]
    for cpu, cuda in zip(steps_on("cpu", cfg, shapes), steps_on("cuda", cfg, shapes), strict=True):
        torch.testing.assert_close(cuda, cpu, rtol=0, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["rmsprop", "sgd", "adamw"])
def test_a_step_with_layer_decay_never_waits_for_the_gpu(optimizer: str) -> None:
    cfg = cuda_config(optimizer=optimizer, layer_decay=0.75, channels_last=True)
    torch.manual_seed(0)
    model = InceptionV3.from_config(cfg.model_config(5)).cuda().train().to(memory_format=torch.channels_last)
    opt = build_optimizer(param_groups(model, cfg), cfg)
    images = torch.randint(0, 256, (16, 3, 75, 75), dtype=torch.uint8, device="cuda")
    labels = torch.arange(16, device="cuda") % 5
    losses = [train_step(model, opt, images, labels, 0, 0, cfg).total]  # makes the optimizer's state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(1, 4):
            set_learning_rate(opt, 0.01)
            losses.append(train_step(model, opt, images, labels, step, 0, cfg).total)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(torch.stack(losses)).all()
