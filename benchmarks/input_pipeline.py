"""Training input pipeline throughput: inception3's shards + TrainLoader + distort_batch against
torchvision's ImageFolder + RandomResizedCrop(299) + RandomHorizontalFlip + ColorJitter + Normalize.

Both read the same photo-sized JPEGs (made here: smooth random scenes with sensor-like noise,
quality 90, about ImageNet's bytes per pixel), with the same number of loader worker processes and
the same batch size, in one run. Both do the full training preprocessing: decode, random crop,
resize to 299, flip, colour distortion, scale. inception3's flip, colour and scale run on the batch
in the main process (on the accelerator when there is one; here the CPU). After one warm-up pass
each, the two are timed pass by pass in turn for `--epochs` passes each; images/s per core divides
by the cores available. A second table times each stage alone in one process.

    python benchmarks/input_pipeline.py [--images 1024] [--width 500] [--height 375] [--workers 2]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from inception3.config import BRIGHTNESS_MAX_DELTA, CONTRAST_RANGE, HUE_MAX_DELTA, IMAGE_SIZE, BuildConfig
from inception3.data import TrainLoader, distort_batch, load_dataset_info
from inception3.data.build import build_dataset
from inception3.data.crop import crop_and_resize, sample_distorted_box
from inception3.data.decode import image_size
from inception3.data.example import ImageRecord
from inception3.data.records import iter_records

CLASSES = 4


def _photo(rng: np.random.Generator, height: int, width: int) -> bytes:
    """A JPEG with the statistics that matter for decoding speed: smooth regions, edges, noise."""
    cells = rng.integers(0, 256, (max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    scene = np.asarray(PIL.Image.fromarray(cells).resize((width, height), PIL.Image.BICUBIC), dtype=np.int16)
    noisy = scene + rng.normal(0, 20, scene.shape).astype(np.int16)
    buffer = io.BytesIO()
    PIL.Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _make_images(root: Path, count: int, height: int, width: int) -> int:
    rng = np.random.default_rng(0)
    total = 0
    for i in range(count):
        path = root / f"class{i % CLASSES}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _photo(rng, height, width)
        path.write_bytes(data)
        total += len(data)
    return total


def _baseline_transform() -> transforms.Compose:
    low, high = CONTRAST_RANGE
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(IMAGE_SIZE),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(
                brightness=BRIGHTNESS_MAX_DELTA,
                contrast=(low, high),
                saturation=(low, high),
                hue=HUE_MAX_DELTA,
            ),
            transforms.ToTensor(),
            transforms.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )


def _torchvision_passes(root: Path, batch: int, workers: int):
    """One pass of the baseline per `next()`, its workers started and stopped with each pass."""
    dataset = torchvision.datasets.ImageFolder(str(root), transform=_baseline_transform())
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers)
    while True:
        count = 0
        for images, _labels in loader:
            assert images.shape[1:] == (3, IMAGE_SIZE, IMAGE_SIZE)
            count += len(images)
        yield count


def _inception3_passes(shards: Path, count: int, batch: int, workers: int):
    """One pass (rounded up to whole batches) of inception3's pipeline per `next()`, workers started
    and stopped with each pass (so none prefetch while the other pipeline is timed); each pass
    resumes where the last stopped."""
    loader = TrainLoader(load_dataset_info(shards), batch, IMAGE_SIZE, num_workers=workers)
    generator = torch.Generator().manual_seed(0)
    while True:
        done = 0
        batches = iter(loader)
        for _ in range(-(-count // batch)):
            images = distort_batch(next(batches).images, generator)
            assert images.shape[1:] == (3, IMAGE_SIZE, IMAGE_SIZE)
            done += len(images)
        batches.close()
        yield done


def _time_interleaved(passes: dict, rounds: int) -> dict[str, float]:
    """Images/s of each pipeline, timed pass by pass in turn so that outside load hits all alike."""
    for run in passes.values():  # warm-up: workers started, files in the page cache
        next(run)
    seconds, images = dict.fromkeys(passes, 0.0), dict.fromkeys(passes, 0)
    for _ in range(rounds):
        for name, run in passes.items():
            start = time.perf_counter()
            images[name] += next(run)
            seconds[name] += time.perf_counter() - start
    return {name: images[name] / seconds[name] for name in passes}


def _pillow_crop(encoded: bytes, box: tuple[int, int, int, int]) -> PIL.Image.Image:
    """The same crop with Pillow and a full decode: the alternative to DCT-scaled libjpeg-turbo."""
    top, left, height, width = box
    image = PIL.Image.open(io.BytesIO(encoded)).convert("RGB")
    region = (left, top, left + width, top + height)
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), PIL.Image.BILINEAR, box=region)


def _stage_costs(shards: Path, root: Path, repeats: int = 64) -> list[tuple[str, float]]:
    """Milliseconds per image of each stage, one process, one thread."""
    encoded = ImageRecord.parse(next(iter_records(shards / "train-00000-of-00001"))).encoded
    large = _photo(np.random.default_rng(1), 1500, 2000)
    rng = np.random.default_rng(0)
    boxes = [sample_distorted_box(*image_size(encoded), (), rng) for _ in range(repeats)]
    large_boxes = [sample_distorted_box(1500, 2000, (), rng) for _ in range(repeats)]
    files = sorted(root.rglob("*.jpg"))[:repeats]
    transform = _baseline_transform()

    def per_image(fn) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) / repeats * 1e3

    crops = torch.stack([crop_and_resize(encoded, box, IMAGE_SIZE) for box in boxes])
    return [
        (
            "torchvision: open, decode, full transform",
            per_image(lambda: [transform(PIL.Image.open(f).convert("RGB")) for f in files]),
        ),
        (
            "inception3: decode + crop + resize (worker)",
            per_image(lambda: [crop_and_resize(encoded, box, IMAGE_SIZE) for box in boxes]),
        ),
        (
            "  the same with Pillow, full decode",
            per_image(lambda: [_pillow_crop(encoded, box) for box in boxes]),
        ),
        (
            "inception3: distort_batch (flip, colour, scale)",
            per_image(lambda: distort_batch(crops, torch.Generator().manual_seed(1))),
        ),
        (
            "2000x1500 photo: decode + crop + resize",
            per_image(lambda: [crop_and_resize(large, box, IMAGE_SIZE) for box in large_boxes]),
        ),
        (
            "  the same with Pillow, full decode",
            per_image(lambda: [_pillow_crop(large, box) for box in large_boxes]),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--epochs", type=int, default=2, help="timed passes over the images, each")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root, shards = Path(tmp) / "images", Path(tmp) / "shards"
        size = _make_images(root, args.images, args.height, args.width)
        build_dataset(BuildConfig(root, shards, train_shards=1, workers=args.workers, progress=False))
        rates = _time_interleaved(
            {
                "torchvision ImageFolder + transforms": _torchvision_passes(root, args.batch, args.workers),
                "inception3 TrainLoader + distort_batch": _inception3_passes(
                    shards, args.images, args.batch, args.workers
                ),
            },
            args.epochs,
        )
        print(
            f"{args.images} JPEGs {args.width}x{args.height} (mean {size / args.images / 1024:.0f} KiB), "
            f"batch {args.batch}, {args.workers} workers, {cores} cores, main process 1 thread, "
            f"torch {torch.__version__}, {args.epochs} timed passes each, interleaved"
        )
        print(f"{'pipeline':<44} {'images/s':>9} {'per core':>9} {'ratio':>6}")
        baseline = rates["torchvision ImageFolder + transforms"]
        for name, rate in rates.items():
            print(f"{name:<44} {rate:>9.1f} {rate / cores:>9.1f} {rate / baseline:>5.2f}x")
        print(f"\n{'stage (one process, one thread)':<52} {'ms/image':>9}")
        for name, ms in _stage_costs(shards, root):
            print(f"{name:<52} {ms:>9.2f}")


if __name__ == "__main__":
    main()
