"""Examples/s of inception3's training step in NCHW against channels_last, on this machine's CPU or GPU.

The trainer's own step (`train_step`: flips and colour distortion, forward of both heads, the
original's loss, backward, RMSProp-TF) plus the moving-average update, fp32, with one model per
layout built from the same seed. The two are timed in turn, step by step, so that load from other
processes hits both alike; the table gives medians and the ratio channels_last / NCHW (above 1.0:
channels_last is faster). `channels_last=auto` on a CPU follows what this measures
(docs/performance.md).

    python benchmarks/memory_format.py [--size 299] [--batch 8] [--depth 1.0] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from inception3.model import InceptionV3, parameter_groups
from inception3.train.ema import ExponentialMovingAverage
from inception3.train.optim import build_optimizer
from inception3.train.options import make_config
from inception3.train.step import train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--depth", type=float, default=1.0, help="depth_multiplier")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per layout (median)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps = {}
    for layout, channels_last in (("NCHW", False), ("channels_last", True)):
        cfg = make_config(
            {"image_size": args.size, "depth_multiplier": args.depth, "precision": "fp32"}
            | {"channels_last": channels_last, "batch_size": args.batch}
        )
        torch.manual_seed(0)
        model = InceptionV3.from_config(cfg.model_config(1000)).to(device).train()
        if channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(parameter_groups(model, cfg.weight_decay), cfg)
        steps[layout] = (model, optimizer, ExponentialMovingAverage(model, cfg.ema_decay), cfg)
    generator = torch.Generator().manual_seed(1)
    shape = (args.batch, 3, args.size, args.size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(device)
    labels = torch.randint(0, 1000, (args.batch,), generator=generator).to(device)
    times: dict[str, list[float]] = {layout: [] for layout in steps}
    for step in range(args.steps + 2):  # two warm-up steps
        for layout, (model, optimizer, ema, cfg) in steps.items():
            start = time.perf_counter()
            train_step(model, optimizer, images, labels, step, 0, cfg)
            ema.update(model, step)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                times[layout].append(time.perf_counter() - start)
    rate = {layout: args.batch / statistics.median(t) for layout, t in times.items()}
    name = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"{name}; torch {torch.__version__}; {args.size}×{args.size}, batch {args.batch}, width {args.depth}"
    )
    print("| layout | examples/s |\n|---|---:|")
    for layout, value in rate.items():
        print(f"| {layout} | {value:.1f} |")
    print(f"channels_last / NCHW: {rate['channels_last'] / rate['NCHW']:.2f}×")


if __name__ == "__main__":
    main()
