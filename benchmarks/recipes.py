"""Each training preset against the original recipe, on the same small network, data and steps.

Two small real data sets, each made here with no download:

- **digits-20**: scikit-learn's handwritten digits (8x8 scans, 10 classes), 20 training images per
  class (the small-data regime where augmentation matters), the other 1,597 for validation;
  upscaled to the network's size.
- **shapes**: the demo's drawn shapes (`inception3.demo.shapes`), 100 training and 60 validation
  images per class.

Every run trains the same network (75 px, depth multiplier 0.25, batch 32) for the same number of
steps; only what the preset sets differs. From scratch: `original` (the defaults: the 2016 recipe,
lr 0.1), `original-small` (the same recipe with lr 0.01 and batch-norm decay 0.9, sized for small
data) and `modern`. Fine-tuning (digits only): a network first trained on shapes with `modern`
is fine-tuned with `flowers` (the original's fine-tuning: lr 0.001, fresh logits) and with
`finetune`. Top-1 is the moving averages' on the whole validation split, as `inception3 eval`
scores it; the mean and spread over `--seeds` (a class is 5 points of digits-20's accuracy, and
one run moves by about 6 with the seed, so one seed says little).

    python benchmarks/recipes.py [--steps 600] [--seeds 0 1 2] [--only digits-20] [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image

import inception3
from inception3.config import PRESETS
from inception3.demo.shapes import make_shapes
from inception3.run.checkpoint import latest_checkpoint
from inception3.train.options import parse_set

# The network, input and batch every run shares; a preset's own keys never set these.
SHARED = [
    "image_size=75",
    "depth_multiplier=0.25",
    "batch_size=32",
    "num_workers=1",
    "log_every=1000000",
    "summary_every=1000000",
    "keep_checkpoints=1",
]
# The 2016 recipe sized for small data (what a user of the original would try first).
ORIGINAL_SMALL = ["learning_rate=0.01", "batch_norm_decay=0.9"]
DIGITS_PER_CLASS = 20
SHAPES_TRAIN, SHAPES_VALIDATION = 100, 60
DIGITS_SIZE = 75  # px the 8x8 scans are upscaled to (bicubic)


@dataclass(frozen=True)
class Run:
    """One row of the table: a preset (or None: the defaults) plus overrides, from scratch or not."""

    name: str
    preset: str | None
    overrides: tuple[str, ...] = ()
    init_from_pretrained: bool = False


SCRATCH = [
    Run("original", None),
    Run("original-small", None, tuple(ORIGINAL_SMALL)),
    Run("modern", "modern"),
]
FINE_TUNE = [
    Run("flowers (original fine-tuning)", "flowers", (), True),
    Run("finetune", "finetune", (), True),
]


def make_digits(root: Path, per_class: int, seed: int = 0) -> Path:
    """scikit-learn's digits as class folders of PNGs: `per_class` training images a class, the rest
    for validation (chosen by `seed`), each 8x8 scan upscaled to DIGITS_SIZE px, grey as RGB."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        for split, chosen in (("train", indices[:per_class]), ("validation", indices[per_class:])):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                pixels = (digits.images[i] * (255.0 / 16.0)).round().astype(np.uint8)
                image = PIL.Image.fromarray(pixels).resize((DIGITS_SIZE, DIGITS_SIZE), PIL.Image.BICUBIC)
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, "PNG")
                (folder / f"{i:04d}.png").write_bytes(buffer.getvalue())
    return root


def build(images: Path, shards: Path) -> Path:
    inception3.build_shards(
        train_dir=images / "train",
        validation_dir=images / "validation",
        output_dir=shards,
        train_shards=2,
        validation_shards=2,
        progress=False,
    )
    return shards


def train_and_score(
    run: Run, shards: Path, out: Path, steps: int, seed: int, init_from: Path | None
) -> float:
    """Train `run` for `steps` steps with `seed`; the moving averages' top-1 on the validation split."""
    overrides = [*SHARED, *run.overrides, f"max_steps={steps}", f"checkpoint_every={steps}", f"seed={seed}"]
    if run.init_from_pretrained:
        assert init_from is not None
        overrides.append(f"init_from={init_from}")
    cfg = inception3.TrainConfig.from_preset(run.preset, **parse_set(overrides))
    with open(os.devnull, "w") as quiet:
        inception3.train(cfg, shards, out, out=quiet)
    checkpoint = latest_checkpoint(out)
    assert checkpoint is not None
    return inception3.evaluate(checkpoint, shards, num_workers=1, progress=False).top1


def table(rows: dict[str, list[float]], steps: int, seeds: list[int]) -> str:
    lines = [
        f"| data, preset | top-1 mean (%) | spread (min-max) | per seed ({', '.join(map(str, seeds))}) |",
        "|---|---|---|---|",
    ]
    for name, values in rows.items():
        pct = [100 * v for v in values]
        lines.append(
            f"| {name} | {statistics.mean(pct):.1f} | {min(pct):.1f}-{max(pct):.1f} | "
            + ", ".join(f"{v:.1f}" for v in pct)
            + " |"
        )
    return "\n".join(lines) + f"\n\n{steps} steps of batch 32 each, 75 px, depth multiplier 0.25."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps of every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=["digits-20", "shapes"], help="one data set only")
    parser.add_argument("--out", type=Path, help="keep the data and runs here (default: a temporary folder)")
    args = parser.parse_args()
    missing = [run.preset for run in SCRATCH + FINE_TUNE if run.preset and run.preset not in PRESETS]
    if missing:
        sys.exit(f"presets not defined: {', '.join(missing)}")
    with tempfile.TemporaryDirectory() as scratch:
        root = args.out or Path(scratch)
        rows: dict[str, list[float]] = {}
        start = time.perf_counter()
        shapes = build(
            make_shapes(
                root / "shapes-images", train_per_class=SHAPES_TRAIN, validation_per_class=SHAPES_VALIDATION
            ).root,
            root / "shapes",
        )
        digits = build(make_digits(root / "digits-images", DIGITS_PER_CLASS), root / "digits")
        datasets = {"digits-20": digits, "shapes": shapes}
        pretrained = None
        if args.only in (None, "digits-20"):
            # The network fine-tuning starts from: `modern` on shapes, seed 0.
            train_and_score(SCRATCH[2], shapes, root / "runs" / "pretrain-shapes", args.steps, 0, None)
            pretrained = latest_checkpoint(root / "runs" / "pretrain-shapes")
        for data_name, shards in datasets.items():
            if args.only not in (None, data_name):
                continue
            runs = SCRATCH + (FINE_TUNE if data_name == "digits-20" else [])
            for run in runs:
                key = f"{data_name}, {run.name}" + (", from shapes" if run.init_from_pretrained else "")
                for seed in args.seeds:
                    out = root / "runs" / f"{data_name}-{run.name.split()[0]}-{seed}"
                    top1 = train_and_score(run, shards, out, args.steps, seed, pretrained)
                    rows.setdefault(key, []).append(top1)
                    print(json.dumps({"run": key, "seed": seed, "top1": round(top1, 4)}), flush=True)
        print()
        print(table(rows, args.steps, args.seeds))
        print(f"\n{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
