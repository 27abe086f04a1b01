"""Examples/s of inception3's training step against a plain PyTorch loop over torchvision's inception_v3.

Ours: `inception3.train.step.train_step` (uint8 batch → flips and colour distortion on the device →
forward of both heads → smoothed cross entropy + 0.4 aux → backward → RMSProp-TF with L2 decay)
plus the moving-average update, as the trainer runs it. Baseline: torchvision's
`inception_v3(aux_logits=True)` in the loop a PyTorch user would write — uint8 → float scaled to
[-1, 1], random flip, forward, the same loss, backward, `torch.optim.RMSprop`. Both run in one process
at the same batch, interleaved step by step; the ratio is ours / baseline in examples/s (above 1.0 means
inception3 is faster).

On a CUDA device it also times bf16 autocast + channels_last + torch.compile for both, reports the
model FLOPs utilisation (forward + backward FLOPs counted by PyTorch, over the device's dense peak for
the arithmetic used: benchmarks/gpu_train.py's table, or --peak-tflops), and uses timm's
inception_v3 as the baseline when timm is installed. --variants and --baselines pick what runs
(benchmarks/gpu.sh: bf16-cl against timm and torchvision at batch 128); --json writes the figures.

    python benchmarks/train_step.py [--batch 8] [--size 299] [--steps 5]
        [--variants fp32,fp32-cl,bf16-cl,bf16-cl-compile] [--baselines timm,torchvision] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

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


def _baseline_model(name: str) -> nn.Module:
    """timm's or torchvision's inception_v3 with its aux head, 1000 classes, untrained."""
    if name == "timm":
        import timm

        return timm.create_model("inception_v3", pretrained=False, num_classes=1000, aux_logits=True)
    return torchvision.models.inception_v3(
        weights=None, init_weights=False, aux_logits=True, transform_input=False
    )


def _baseline_names(choice: str, device: torch.device) -> list[str]:
    """--baselines: "auto" is timm on CUDA when installed (what GPU users train), else torchvision."""
    if choice != "auto":
        return [name.strip() for name in choice.split(",") if name.strip()]
    if device.type == "cuda":
        try:
            import timm  # noqa: F401

            return ["timm"]
        except ImportError:
            pass
    return ["torchvision"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_all(steps_of: list[Callable[[], None]], steps: int, device: torch.device) -> list[float]:
    """Median seconds per step of each, the steps taken in turn so that all see the same conditions."""
    for _ in range(2):  # warm-up: allocator, kernel selection, compilation
        for fn in steps_of:
            fn()
    times: list[list[float]] = [[] for _ in steps_of]
    for _ in range(steps):
        for fn, spent in zip(steps_of, times, strict=True):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def _train_flops(model: nn.Module, batch: int, size: int, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(batch, 3, size, size, device=device)
    with FlopCounterMode(display=False) as counter:
        logits, aux = model(x)
        (logits.sum() + aux.sum()).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


VARIANTS: dict[str, tuple[str, dict]] = {
    "fp32": ("fp32, NCHW", {"precision": "fp32", "channels_last": False}),
    "fp32-cl": ("fp32, channels_last", {"precision": "fp32", "channels_last": True}),
    "bf16-cl": ("bf16, channels_last", {"precision": "bf16", "channels_last": True}),
    "bf16-cl-compile": (
        "bf16, channels_last, compile",
        {"precision": "bf16", "channels_last": True, "compile": True},
    ),
}


def _peak(args: argparse.Namespace, device: torch.device, precision: str) -> float | None:
    """TFLOPS for MFU: --peak-tflops, else the device's dense peak for `precision` from gpu_train.py."""
    if args.peak_tflops is not None:
        return args.peak_tflops
    if device.type != "cuda":
        return None
    from gpu_train import conv_uses_tf32, peak_tflops  # benchmarks/, this script's folder

    return peak_tflops(torch.cuda.get_device_name(), precision, conv_uses_tf32())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (median)")
    parser.add_argument(
        "--variants",
        help=f"comma-separated, of {', '.join(VARIANTS)} "
        "(default: fp32,fp32-cl, and on CUDA bf16-cl-compile)",
    )
    parser.add_argument(
        "--baselines",
        default="auto",
        help="comma-separated, of timm and torchvision "
        "(default: timm on CUDA when installed, else torchvision)",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        help="the device's dense peak for MFU (default on CUDA: by device name and precision)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8, generator=g)
    images, labels = images.to(device), torch.randint(0, 1000, (args.batch,), generator=g).to(device)
    chosen = args.variants.split(",") if args.variants else ["fp32", "fp32-cl"]
    if not args.variants and device.type == "cuda":
        chosen.append("bf16-cl-compile")
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    names = _baseline_names(args.baselines, device)
    print(
        f"torch {torch.__version__}, {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, "
        f"{torch.get_num_threads()} threads, batch {args.batch}, {args.size}x{args.size}, "
        f"median of {args.steps} steps"
    )
    flops, rows = None, []
    for key in chosen:
        what, overrides = VARIANTS[key]
        cfg = TrainConfig(model=ModelConfig(image_size=args.size), batch_size=args.batch, **overrides)
        ours, our_model = _ours(cfg, images, labels)
        if flops is None:
            flops = _train_flops(our_model, args.batch, args.size, device)
        theirs = [_baseline(_baseline_model(name), cfg, images, labels) for name in names]
        seconds = _time_all([ours, *theirs], args.steps, device)
        rates = [args.batch / t for t in seconds]
        peak = _peak(args, device, cfg.precision)
        mfu = flops / seconds[0] / (peak * 1e12) if peak else None
        line = f"{what:<30} inception3 {rates[0]:8.2f} ex/s"
        for name, rate in zip(names, rates[1:], strict=True):
            line += f"   {name} {rate:8.2f} ex/s (ratio {rates[0] / rate:5.2f}x)"
        if mfu is not None:
            line += f"   MFU {mfu:6.1%}"
        print(line, flush=True)
        rows.append(
            {
                "variant": what,
                "inception3": rates[0],
                "baselines": dict(zip(names, rates[1:], strict=True)),
                "mfu": mfu,
                "peak_tflops": peak,
            }
        )
        del ours, our_model, theirs
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json is not None:
        record = {
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "torch": torch.__version__,
            "batch": args.batch,
            "size": args.size,
            "steps": args.steps,
            "train_flops_per_step": flops,
            "rows": rows,
        }
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
