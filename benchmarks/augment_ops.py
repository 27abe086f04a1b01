"""Time per batch of each device-side augmentation pipeline, against torchvision's per-image policies.

A batch of `--batch` uint8 images `--size` px (smooth random scenes) goes through each pipeline
(`augment_ops` = the original's two ops, randaugment, trivialaugment, random_erasing; each ends with
the scaling to [-1, 1]) on `--device`, `--repeats` times after a warm-up; the table gives the median
ms per batch. For scale, torchvision's v2 RandAugment and TrivialAugmentWide run one image at a time
on the same batch on the CPU, as a DataLoader worker would.

    python benchmarks/augment_ops.py [--device cpu|cuda] [--batch 32] [--size 299] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from inception3.config import AugmentConfig
from inception3.data.augment import build_pipeline

PIPELINES = {
    "original (flip_left_right, distort_color)": ("flip_left_right", "distort_color"),
    "scale_to_unit alone": (),
    "randaugment": ("randaugment",),
    "trivialaugment": ("trivialaugment",),
    "random_erasing": ("random_erasing",),
}


def _images(batch: int, size: int, device: torch.device) -> torch.Tensor:
    coarse = torch.rand(batch, 3, size // 16, size // 16, generator=torch.Generator().manual_seed(0))
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (smooth * 255).round().to(torch.uint8).to(device)


def _median_ms(run: Callable[[], object], repeats: int, device: torch.device) -> float:
    run()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    images = _images(args.batch, args.size, device)
    print(f"{args.batch} images of {args.size} px on {device}, {torch.get_num_threads()} CPU threads")
    print(f"{'pipeline':48s} ms/batch")
    for name, ops in PIPELINES.items():
        pipeline = build_pipeline(AugmentConfig(augment_ops=ops))
        ms = _median_ms(
            lambda p=pipeline: p(images, torch.Generator(device=device).manual_seed(1)), args.repeats, device
        )
        print(f"{name:48s} {ms:8.1f}")
    on_cpu = images.cpu()
    for name, policy in (
        ("torchvision RandAugment, per image (CPU)", v2.RandAugment()),
        ("torchvision TrivialAugmentWide, per image (CPU)", v2.TrivialAugmentWide()),
    ):
        ms = _median_ms(lambda p=policy: [p(x) for x in on_cpu], args.repeats, torch.device("cpu"))
        print(f"{name:48s} {ms:8.1f}")


if __name__ == "__main__":
    main()
