"""Training steps on CUDA: bf16 + channels_last learns, and a step that does not log never waits for the GPU.

A device→host sync (`.item()`, `.tolist()`, `float(tensor)`, a blocking copy) stalls the CPU until the
GPU has drained its queue, so the next step's kernels cannot be queued behind the current ones.
`torch.cuda.set_sync_debug_mode("error")` turns every such sync into an exception.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import bf16_supported, cuda_config, needs_bf16

from inception3.config import TrainConfig
from inception3.model import InceptionV3, parameter_groups
from inception3.train import loop
from inception3.train.ema import ExponentialMovingAverage
from inception3.train.optim import build_optimizer
from inception3.train.precision import loss_scaler
from inception3.train.step import train_step

pytestmark = pytest.mark.cuda

GREYS = (15, 75, 135, 195, 250)  # one class each; hue and saturation shifts leave a grey image grey


def fixed_batch(device: torch.device, n: int = 16, size: int = 75) -> tuple[torch.Tensor, torch.Tensor]:
    """n noisy flat images of 5 grey levels, 60/255 apart: brightness moves them by 32/255 at most, so
    the classes stay apart under the distortion and the loss falls steadily within a few dozen steps."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % len(GREYS)
    levels = torch.tensor(GREYS, dtype=torch.float32)[labels][:, None, None, None]
    images = (levels + 20 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 255).to(torch.uint8)
    return images.to(device), labels.to(device)


def build(cfg: TrainConfig, device: torch.device) -> tuple[InceptionV3, torch.optim.Optimizer, Callable]:
    """The trainer's model, optimizer and moving averages on `device`; returns a step(i) -> total loss."""
    torch.manual_seed(cfg.seed)
    model = InceptionV3.from_config(cfg.model_config(len(GREYS))).to(device).train()
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(parameter_groups(model, cfg.weight_decay), cfg)
    ema = ExponentialMovingAverage(model, cfg.ema_decay)
    images, labels = fixed_batch(device)
    scaler = loss_scaler(cfg.precision, device)  # fp16's; None otherwise

    def step(i: int) -> torch.Tensor:
        result = train_step(model, optimizer, images, labels, i, 0, cfg, scaler=scaler)
        ema.update(model, i)
        return result.total

    return model, optimizer, step


def losses_over_fixed_batch(cfg: TrainConfig, device: torch.device, steps: int = 30) -> torch.Tensor:
    """The total loss of `steps` steps on one fixed batch, read once at the end (no per-step sync)."""
    _, _, step = build(cfg, device)
    return torch.stack([step(i) for i in range(steps)]).float().cpu()


@needs_bf16
def test_bf16_channels_last_step_is_finite_and_learns() -> None:
    losses = losses_over_fixed_batch(cuda_config(precision="bf16", channels_last=True), torch.device("cuda"))
    assert torch.isfinite(losses).all(), losses
    # On the CPU (bf16 autocast, seeds 0-4) the last 10 steps' mean was 0.53-0.66 of the first 10's.
    first, last = losses[:10].mean().item(), losses[-10:].mean().item()
    assert last < 0.8 * first, f"mean loss {first:.3f} (steps 0-9) -> {last:.3f} (steps 20-29)"


@needs_bf16
def test_bf16_keeps_fp32_weights_and_the_channels_last_layout() -> None:
    """Autocast computes in bf16 but the weights, their gradients and the optimizer state stay fp32."""
    cfg = cuda_config(precision="bf16", channels_last=True)
    model, optimizer, step = build(cfg, torch.device("cuda"))
    for i in range(2):
        step(i)
    for name, p in model.named_parameters():
        assert p.dtype == torch.float32 and torch.isfinite(p).all(), name
        assert p.grad is None or p.grad.dtype == torch.float32, name
        if p.dim() == 4:
            assert p.is_contiguous(memory_format=torch.channels_last), name
    for state in optimizer.state.values():
        assert all(t.dtype == torch.float32 for t in state.values() if isinstance(t, torch.Tensor))


def test_fp16_channels_last_step_with_loss_scaling_is_finite_and_learns() -> None:
    """fp16, what precision=auto picks on a V100 or T4: the first steps overflow at GradScaler's starting
    scale and are skipped (their forward losses stay finite), then the loss falls as in bf16."""
    losses = losses_over_fixed_batch(
        cuda_config(precision="fp16", channels_last=True), torch.device("cuda"), steps=40
    )
    assert torch.isfinite(losses).all(), losses
    first, last = losses[:10].mean().item(), losses[-10:].mean().item()
    assert last < 0.8 * first, f"mean loss {first:.3f} (steps 0-9) -> {last:.3f} (steps 30-39)"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_step_and_its_moving_average_update_never_sync(precision: str) -> None:
    """train_step + the EMA update, after two warm-up steps (cuDNN, cuBLAS and allocator set-up),
    queue their kernels without once waiting for the device."""
    if precision == "bf16" and not bf16_supported():
        pytest.skip("needs bf16 (compute capability 8.0 or later)")
    cfg = cuda_config(precision=precision, channels_last=True)
    _, _, step = build(cfg, torch.device("cuda"))
    losses = [step(0), step(1)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses += [step(i) for i in range(2, 6)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(torch.stack(losses)).all()


def test_the_trainer_does_not_sync_in_steps_that_do_not_log(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In `train()`, from one non-logging step's train_step to the next step's (the EMA update, the
    losses' bookkeeping, the stop and checkpoint checks, the next batch's transfer), nothing waits for
    the GPU; logging steps (every 5th) may. Wraps `loop.train_step` to switch the check on and off."""
    log_every, max_steps = 5, 16  # steps 0..15; the last one (15) logs, then the final checkpoint syncs
    real_step = loop.train_step
    checked: list[int] = []

    def step_with_sync_check(*args, **kwargs):
        step = kwargs["step"] if "step" in kwargs else args[4]
        quiet = step % log_every != 0 and step != max_steps - 1
        torch.cuda.set_sync_debug_mode("error" if quiet else "default")
        if quiet:
            checked.append(step)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", step_with_sync_check)
    cfg = cuda_config(max_steps=max_steps, log_every=log_every, precision="fp32")
    try:
        result = loop.train(cfg, shards, tmp_path / "run", out=io.StringIO())
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert result.step == max_steps
    assert checked == [s for s in range(max_steps - 1) if s % log_every], checked
