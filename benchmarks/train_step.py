"""Examples/s of inception3's training step against a plain PyTorch loop over torchvision's inception_v3.

Ours: `inception3.train.step.train_step` (uint8 batch → flips and colour distortion on the device →
forward of both heads → smoothed cross entropy + 0.4 aux → backward → RMSProp-TF with L2 decay)
plus the moving-average update, as the trainer runs it. Baseline: torchvision's
`inception_v3(aux_logits=True)` in the loop a PyTorch user would write — uint8 → float scaled to
[-1, 1], random flip, forward, the same loss, backward, `torch.optim.RMSprop`. Both run in one process
at the same batch, interleaved step by step; the ratio is ours / baseline in examples/s (above 1.0 means
inception3 is faster).

On a CUDA device it also times bf16 autocast + channels_last + torch.compile for both, reports the
model FLOPs utilisation (forward + backward FLOPs counted by PyTorch, over --peak-tflops), and uses
timm's inception_v3 as the baseline when timm is installed.

    python benchmarks/train_step.py [--batch 8] [--size 299] [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from inception3.config import ModelConfig, TrainConfig
from inception3.model import InceptionV3, parameter_groups
from inception3.train.ema import ExponentialMovingAverage
from inception3.train.optim import build_optimizer
from inception3.train.step import train_step


def _ours(
    cfg: TrainConfig, images: torch.Tensor, labels: torch.Tensor
) -> tuple[Callable[[], None], nn.Module]:
    model = InceptionV3(num_classes=1000, image_size=cfg.model.image_size).to(images.device).train()
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(parameter_groups(model, cfg.weight_decay), cfg)
    ema = ExponentialMovingAverage(model, cfg.ema_decay)
    net = torch.compile(model) if cfg.compile else model
    counter = iter(range(10**9))

    def step() -> None:
        i = next(counter)
        train_step(net, optimizer, images, labels, i, 0, cfg)
        ema.update(model, i)

    return step, model


def _baseline(
    model: nn.Module, cfg: TrainConfig, images: torch.Tensor, labels: torch.Tensor
) -> Callable[[], None]:
    model = model.to(images.device).train()
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.RMSprop(
        model.parameters(), lr=0.1, alpha=0.9, eps=1.0, momentum=0.9, weight_decay=cfg.weight_decay
    )
    net = torch.compile(model) if cfg.compile else model

    def step() -> None:
        x = images.float().mul_(2.0 / 255.0).sub_(1.0)
        flip = torch.rand(x.shape[0], device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            logits, aux = net(x)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=0.1)
        loss = loss + 0.4 * F.cross_entropy(aux.float(), labels, label_smoothing=0.1)
        loss.backward()
        optimizer.step()

    return step


def _baseline_model(device: torch.device) -> tuple[str, nn.Module]:
    if device.type == "cuda":
        try:
            import timm

            return "timm", timm.create_model(
                "inception_v3", pretrained=False, num_classes=1000, aux_logits=True
            )
        except ImportError:
            pass
    return "torchvision", torchvision.models.inception_v3(
        weights=None, init_weights=False, aux_logits=True, transform_input=False
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_pair(
    ours: Callable[[], None], theirs: Callable[[], None], steps: int, device: torch.device
) -> tuple[float, float]:
    for fn in (ours, theirs, ours, theirs):  # warm-up: allocator, kernel selection, compilation
        fn()
    a, b = [], []
    for _ in range(steps):
        for fn, times in ((ours, a), (theirs, b)):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def _train_flops(model: nn.Module, batch: int, size: int, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(batch, 3, size, size, device=device)
    with FlopCounterMode(display=False) as counter:
        logits, aux = model(x)
        (logits.sum() + aux.sum()).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (median)")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=989.0,
        help="the device's dense bf16 peak for MFU (H100 SXM: 989)",
    )
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8, generator=g)
    images, labels = images.to(device), torch.randint(0, 1000, (args.batch,), generator=g).to(device)
    variants = {"fp32, NCHW": {}, "fp32, channels_last": {"channels_last": True}}
    if device.type == "cuda":
        variants["bf16, channels_last, compile"] = {
            "precision": "bf16",
            "channels_last": True,
            "compile": True,
        }
    print(
        f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"{args.size}x{args.size}, median of {args.steps} steps"
    )
    flops = None
    for what, overrides in variants.items():
        cfg = TrainConfig(model=ModelConfig(image_size=args.size), batch_size=args.batch, **overrides)
        name, theirs_model = _baseline_model(device)
        ours, our_model = _ours(cfg, images, labels)
        if flops is None:
            flops = _train_flops(our_model, args.batch, args.size, device)
        t_ours, t_theirs = _time_pair(ours, _baseline(theirs_model, cfg, images, labels), args.steps, device)
        eps_ours, eps_theirs = args.batch / t_ours, args.batch / t_theirs
        line = (
            f"{what:<30} inception3 {eps_ours:8.2f} ex/s   {name} {eps_theirs:8.2f} ex/s   "
            f"ratio {eps_ours / eps_theirs:5.2f}x"
        )
        if device.type == "cuda":
            line += f"   MFU {flops / t_ours / (args.peak_tflops * 1e12):6.1%}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
