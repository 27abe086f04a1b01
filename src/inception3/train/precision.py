"""The step's arithmetic: `precision` made concrete for a device, and fp16's dynamic loss scaling.

bf16 keeps float32's exponent range, so its gradients need no help; fp16's (5 exponent bits) underflow
without it. fp16 runs through `torch.amp.GradScaler` (the loss multiplied by a scale before the
backward pass, the gradients divided by it before the update): a step whose gradients came out inf or
NaN is skipped and the scale halved; after `growth_interval` clean steps it doubles. The skipped steps
are counted (the log line's `skipped steps = N`), and only a scale that keeps falling, below
`MIN_LOSS_SCALE`, is divergence.
"""

from __future__ import annotations

import torch

# Below this the gradients overflow unscaled: every step since the scale left its start was skipped
# (the default start, 2^16, halves below 1 after 17 skips in a row). DeepSpeed stops a run the same
# way, at its `min_loss_scale` (default 1: deepspeed/runtime/fp16/loss_scaler.py, DynamicLossScaler).
MIN_LOSS_SCALE = 1.0
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # fp32: no autocast


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` made concrete: bf16 where the GPU computes it natively (compute capability 8.0 on),
    else fp16 on CUDA (V100, T4: their tensor cores are fp16's), fp32 on a CPU."""
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    # Without including_emulation=False, torch answers yes on a V100 too: bf16 emulated, slower than fp32.
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """The forward pass's autocast: bf16 or fp16 where asked, none (a disabled one) for fp32."""
    dtype = AUTOCAST_DTYPES.get(precision, torch.bfloat16)
    return torch.autocast(device.type, dtype=dtype, enabled=precision in AUTOCAST_DTYPES)


class LossScaler:
    """fp16's `GradScaler`, with the count of the steps it skipped and a divergence test; on the device.

    Nothing here reads the device (GradScaler's own step does once, to skip or not).
    """

    def __init__(self, device: torch.device) -> None:
        self.scaler = torch.amp.GradScaler(device.type)
        self.skipped = torch.zeros((), dtype=torch.int64, device=device)  # steps skipped, whole run
        self._last_skipped = torch.zeros((), dtype=torch.bool, device=device)

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of the scaled loss; accumulated micro-batches add up their scaled gradients."""
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The update through the scaler (unscaled gradients; none when inf or NaN), then the new scale."""
        self.scaler.step(optimizer)
        before = self.scaler._scale.clone()  # the scale falls exactly when this step's gradients overflowed
        self.scaler.update()
        self._last_skipped = self.scaler._scale < before
        self.skipped += self._last_skipped

    def diverged(self, loss: torch.Tensor) -> torch.Tensor:
        """Whether the last step diverged: a non-finite loss it did not skip, or a scale below the floor."""
        scale = self.scaler._scale
        collapsed = scale < MIN_LOSS_SCALE if scale is not None else torch.zeros_like(self._last_skipped)
        return (~torch.isfinite(loss) & ~self._last_skipped) | collapsed

    def state_dict(self) -> dict:
        """GradScaler's state (scale, growth tracker, factors) and the skipped-step count."""
        return {"scaler": self.scaler.state_dict(), "skipped_steps": int(self.skipped)}

    def load_state_dict(self, state: dict) -> None:
        self.scaler.load_state_dict(state["scaler"])
        self.skipped.fill_(int(state.get("skipped_steps", 0)))


def loss_scaler(precision: str, device: torch.device) -> LossScaler | None:
    """A LossScaler for fp16; None for bf16 and fp32, whose steps run as they always have."""
    return LossScaler(device) if precision == "fp16" else None
