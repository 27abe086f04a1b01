"""Evaluation throughput: `inception3 eval`'s pass (shards + EvalLoader + InceptionV3 + exact tally)
against the evaluation loop of torchvision's classification reference (`references/classification`:
ImageFolder + Resize(342) + CenterCrop(299) + ToTensor + Normalize, DataLoader, `inception_v3`,
cross entropy and top-1/top-5 under `inference_mode`).

Both read the same photo-sized JPEGs (made here, as in `input_pipeline.py`), with the same batch
size, worker processes and thread count, full-width Inception v3 at 299×299, in one run. Each side
gets a warm-up pass, then the two are timed in turn for `--rounds` rounds; the best round counts.
Time is the pass itself (first batch requested to last batch scored); the checkpoint load is not
timed. images/s per core divides by the cores available.

    python benchmarks/eval.py [--images 96] [--batch-size 16] [--workers 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from input_pipeline import _photo  # the same photo-like JPEGs as the input pipeline benchmark
from torch.utils.data import DataLoader
from torchvision import datasets, transforms
from torchvision.models import inception_v3

from inception3.config import IMAGE_SIZE, BuildConfig, EvalConfig, ModelConfig
from inception3.data.build import build_dataset
from inception3.evaluate import evaluate_checkpoint
from inception3.model import InceptionV3
from inception3.run.checkpoint import save_checkpoint

CLASSES = 4


def _make_images(root: Path, count: int, height: int, width: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        path = root / f"class{i % CLASSES}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_photo(rng, height, width))


def _checkpoint(run_dir: Path) -> Path:
    cfg = ModelConfig(num_classes=CLASSES)
    with torch.device("meta"):
        model = InceptionV3.from_config(cfg)
    model = model.to_empty(device="cpu")
    for value in model.state_dict().values():
        value.normal_(0, 0.01) if value.dim() > 1 else value.uniform_(0.5, 1.0)
    state = model.state_dict()
    return save_checkpoint(
        run_dir,
        1,
        {
            "model_config": dataclasses.asdict(cfg),
            "model": state,
            "ema": state,
            "class_names": [f"class{i}" for i in range(CLASSES)],
            "image_size": IMAGE_SIZE,
        },
    )


def _reference_pass(model: torch.nn.Module, folder: Path, batch_size: int, workers: int) -> tuple[int, float]:
    """torchvision's reference `evaluate()`: returns (examples, seconds)."""
    transform = transforms.Compose(
        [
            transforms.Resize(342),
            transforms.CenterCrop(IMAGE_SIZE),
            transforms.ToTensor(),
            transforms.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )
    loader = DataLoader(
        datasets.ImageFolder(str(folder), transform), batch_size=batch_size, num_workers=workers
    )
    start = time.perf_counter()
    seen, correct_1, correct_5, loss = 0, 0, 0, 0.0
    with torch.inference_mode():
        for images, target in loader:
            output = model(images)
            loss += float(F.cross_entropy(output, target, reduction="sum"))
            top = output.topk(min(5, CLASSES), dim=1).indices
            correct_1 += int((top[:, 0] == target).sum())
            correct_5 += int((top == target[:, None]).any(dim=1).sum())
            seen += len(target)
    return seen, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _make_images(root / "validation", args.images, args.height, args.width)
        _make_images(root / "train", CLASSES, args.height, args.width)
        build_dataset(
            BuildConfig(
                root / "train",
                root / "shards",
                validation_dir=root / "validation",
                workers=args.workers,
                progress=False,
            )
        )
        checkpoint = _checkpoint(root / "run")
        reference = inception_v3(
            weights=None, num_classes=CLASSES, aux_logits=True, init_weights=False, transform_input=False
        ).eval()

        def ours() -> tuple[int, float]:
            cfg = EvalConfig(
                batch_size=args.batch_size, device="cpu", num_workers=args.workers, progress=False
            )
            result = evaluate_checkpoint(checkpoint, root / "shards", cfg)
            return result.examples, result.seconds

        def theirs() -> tuple[int, float]:
            return _reference_pass(reference, root / "validation", args.batch_size, args.workers)

        ours(), theirs()
        best = {"inception3 eval": 0.0, "torchvision reference": 0.0}
        for _ in range(args.rounds):
            for name, run in (("inception3 eval", ours), ("torchvision reference", theirs)):
                examples, seconds = run()
                assert examples == args.images, (name, examples)
                best[name] = max(best[name], examples / seconds)
    print(
        f"{args.images} JPEGs {args.width}x{args.height}, batch {args.batch_size}, {args.workers} workers, "
        f"{torch.get_num_threads()} threads, {cores} cores, torch {torch.__version__}"
    )
    print(f"{'pipeline':<24}{'images/s':>10}{'per core':>10}{'ratio':>8}")
    base = best["torchvision reference"]
    for name, rate in best.items():
        print(f"{name:<24}{rate:>10.2f}{rate / cores:>10.2f}{rate / base:>7.2f}x")


if __name__ == "__main__":
    main()
