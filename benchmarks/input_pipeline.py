"""Training input pipeline throughput on real photographs, against the decode-only limit and torchvision.

On ~256 ImageNet-like JPEGs cut from real photographs (benchmarks/photos.py: scikit-image's sample
photos, ~0.2 megapixels, quality 90), in one run:

1. **the decode limit**: as many processes as the loader has workers, doing nothing but libjpeg-turbo
   decodes (simplejpeg, full size, the fast integer DCT) of the same bytes the shards hold;
2. **the loader**: `TrainLoader` with that many workers (read, decode, crop, resize, batch), its
   batches as the training loop takes them; its rate over the limit's is the fraction of the
   workers' time spent decoding, the rest is overhead (1.0: nothing but decoding). Three placements
   of the crop and resize: in the workers (a CPU-only machine's default), in the main process (where a
   GPU host does it, on the device; on a CPU it shares the same cores), and the workers' hand-over
   alone, decoded images not yet cropped: what a GPU host's CPUs do, without and with the training
   process's copy of each batch out of shared memory (which a copy to the GPU from pageable memory
   costs the CPU as well);
3. **the full preprocessing**, inception3's (TrainLoader + distort_batch: flip, colour, scale, in the
   main process, as on a machine without an accelerator) against torchvision's ImageFolder +
   RandomResizedCrop(299) + RandomHorizontalFlip + ColorJitter + Normalize, timed pass by pass in turn.

Rates are steady-state: workers started and warmed up before the clock runs. Images/s per core
divides by the cores available. CPU ms/image counts every process of a pipeline (the loader's main
process and its workers, read from /proc): its ratio to the limit's is the share of the CPU time spent
decoding, which, unlike images/s, other work on a shared machine barely moves. A last table times
each stage alone in one process, and a full decode against each DCT scale libjpeg-turbo offers (only
1/2, 1/4 and 1/8 have SIMD inverse DCTs; `decode.SCALE_DIVISORS`).

    python benchmarks/input_pipeline.py [--images 256] [--workers CORES] [--batch 32] [--seconds 6]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import PIL.Image
import simplejpeg
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
from inception3.data.shared_slots import check_stamp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photos import make_photos  # noqa: E402

CLASSES = 4


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


def _shard_jpegs(shards: Path) -> list[bytes]:
    """The encoded images exactly as the shards hold them (what both the limit and the loader decode)."""
    return [ImageRecord.parse(data).encoded for data in iter_records(shards / "train-00000-of-00001")]


_JPEGS: list[bytes] = []


def _load_jpegs(shards: Path) -> None:
    _JPEGS[:] = _shard_jpegs(shards)


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its live children (the loader's workers)."""
    total = time.process_time()
    children = Path(f"/proc/self/task/{os.getpid()}/children")
    for pid in children.read_text().split() if children.exists() else []:
        with contextlib.suppress(OSError):  # a child that just ended
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _decode_for(seconds: float) -> tuple[int, float, float]:
    """Decode the JPEGs round and round for `seconds`: (images decoded, seconds taken, CPU seconds)."""
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for data in _JPEGS:
            simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True)
        done += len(_JPEGS)
    return done, time.perf_counter() - start, time.process_time() - cpu


def decode_limit(shards: Path, processes: int, seconds: float) -> tuple[float, float]:
    """(images/s, CPU ms/image) of `processes` processes doing nothing but full-size decodes of the
    shards' JPEGs."""
    with ProcessPoolExecutor(processes, initializer=_load_jpegs, initargs=(shards,)) as pool:
        list(pool.map(_decode_for, [0.2] * processes))  # warm-up: started, bytes loaded, code paged in
        results = list(pool.map(_decode_for, [seconds] * processes))
    done = sum(done for done, _, _ in results)
    return done / max(elapsed for _, elapsed, _ in results), sum(cpu for _, _, cpu in results) / done * 1e3


def _copied_labels(loader: TrainLoader):
    """The labels of the workers' batches, each batch's data copied out of its shared-memory slot into
    one buffer kept from batch to batch: the CPU's part of a copy to a GPU from pageable memory (CUDA
    copies it into a pinned staging buffer it reuses, then the GPU reads that)."""
    staging = torch.empty(0, dtype=torch.uint8)
    for packed, labels, _, stamp in loader._worker_batches(torch.device("cpu")):
        if staging.numel() < packed.data.numel():
            staging = torch.empty(packed.data.numel(), dtype=torch.uint8)
        staging[: packed.data.numel()].copy_(packed.data)
        check_stamp(packed.data, stamp)
        yield labels


def loader_rate(
    shards: Path, batch: int, workers: int, seconds: float, placement: str
) -> tuple[float, float]:
    """(images/s, CPU ms/image of all its processes) of `TrainLoader`'s batches as the training loop
    takes them on a CPU, after a warm-up.

    `placement`: "workers" crop and resize in the workers (the CPU's default); "main" in the main
    process (where a GPU host does it, on the device); "hand-over" times only what the workers hand
    over for the device to crop and resize (the CPU's share of a GPU host's work), and "copied" that
    with each batch copied out of the workers' shared memory, as a copy to a GPU does.
    """
    loader = TrainLoader(
        load_dataset_info(shards),
        batch,
        IMAGE_SIZE,
        num_workers=workers,
        resize_in_workers=placement == "workers",
    )
    cpu = torch.device("cpu")
    if placement == "hand-over":
        batches = (labels for _, labels, _, _ in loader._worker_batches(cpu))
    elif placement == "copied":
        batches = _copied_labels(loader)
    else:
        batches = (batch.labels for batch in loader.device_batches(cpu))
    for _ in range(4 * max(workers, 1)):  # workers started and their first batches out of the way
        next(batches)
    done, start, used = 0, time.perf_counter(), _cpu_seconds()
    while time.perf_counter() - start < seconds:
        done += len(next(batches))
    rate, used = done / (time.perf_counter() - start), _cpu_seconds() - used
    batches.close()
    return rate, used / done * 1e3


def _stage_costs(shards: Path, root: Path) -> list[tuple[str, float]]:
    """Milliseconds per image of each stage over all the photos, one process, one thread."""
    jpegs = _shard_jpegs(shards)
    rng = np.random.default_rng(0)
    boxes = [sample_distorted_box(*image_size(data), (), rng) for data in jpegs]
    files = sorted(root.rglob("*.jpg"))
    transform = _baseline_transform()

    def per_image(fn) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) / len(jpegs) * 1e3

    pairs = list(zip(jpegs, boxes, strict=True))
    crops = torch.stack([crop_and_resize(data, box, IMAGE_SIZE) for data, box in pairs])
    return [
        (
            "decode only (libjpeg-turbo, full size)",
            per_image(lambda: [simplejpeg.decode_jpeg(d, colorspace="RGB", fastdct=True) for d in jpegs]),
        ),
        (
            "inception3 worker: decode + crop + resize",
            per_image(lambda: [crop_and_resize(d, box, IMAGE_SIZE) for d, box in pairs]),
        ),
        (
            "  the same with Pillow",
            per_image(lambda: [_pillow_crop(d, box) for d, box in pairs]),
        ),
        (
            "inception3: distort_batch (flip, colour, scale)",
            per_image(lambda: distort_batch(crops, torch.Generator().manual_seed(1))),
        ),
        (
            "torchvision: open, decode, full transform",
            per_image(lambda: [transform(PIL.Image.open(f).convert("RGB")) for f in files]),
        ),
        *(
            (
                f"decode DCT-scaled to {eighths}/8 (libjpeg-turbo)",
                per_image(lambda e=eighths: _decode_at(jpegs, e)),
            )
            for eighths in (7, 6, 5, 4, 2, 1)
        ),
    ]


def _decode_at(jpegs: list[bytes], eighths: int) -> None:
    """Decode every JPEG DCT-scaled to eighths/8 of each side (libjpeg-turbo's scales)."""
    for data in jpegs:
        height, width = image_size(data)
        simplejpeg.decode_jpeg(
            data,
            colorspace="RGB",
            fastdct=True,
            min_height=-(-height * eighths // 8),
            min_width=-(-width * eighths // 8),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="timed seconds of the limit and the loader"
    )
    parser.add_argument("--epochs", type=int, default=2, help="timed passes of each full pipeline")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root, shards = Path(tmp) / "images", Path(tmp) / "shards"
        size = make_photos(root, args.images, CLASSES)
        build_dataset(BuildConfig(root, shards, train_shards=1, workers=args.workers, progress=False))
        pixels = np.mean([np.prod(image_size(data)) for data in _shard_jpegs(shards)])
        print(
            f"{args.images} photo JPEGs (mean {pixels / 1e6:.2f} megapixels, {size / args.images / 1024:.0f} "
            f"KiB), batch {args.batch}, {args.workers} workers, {cores} cores, torch {torch.__version__}, "
            f"torchvision {torchvision.__version__}, load average {os.getloadavg()[0]:.1f} at the start"
        )
        limit, limit_cpu = decode_limit(shards, args.workers, args.seconds)
        loaders = {
            "TrainLoader, resize in the workers (CPU)": "workers",
            "TrainLoader, crop and resize in the main process": "main",
            "workers' hand-over, crop on the device (GPU)": "hand-over",
            "  the same, each batch copied out": "copied",
        }
        heading = f"input ({args.workers} processes)"
        print(f"\n{heading:<48} {'images/s':>9} {'per core':>9} {'÷ limit':>8} {'CPU ms':>7} {'÷ limit':>8}")
        row = f"{'decode only (the limit)':<48} {limit:>9.1f} {limit / cores:>9.1f} {1:>8.2f}"
        print(f"{row} {limit_cpu:>7.2f} {1:>8.2f}")
        for name, placement in loaders.items():
            rate, cpu = loader_rate(shards, args.batch, args.workers, args.seconds, placement)
            row = f"{name:<48} {rate:>9.1f} {rate / cores:>9.1f} {rate / limit:>8.2f}"
            print(f"{row} {cpu:>7.2f} {limit_cpu / cpu:>8.2f}")

        rates = _time_interleaved(
            {
                "torchvision ImageFolder + transforms": _torchvision_passes(root, args.batch, args.workers),
                "inception3 TrainLoader + distort_batch": _inception3_passes(
                    shards, args.images, args.batch, args.workers
                ),
            },
            args.epochs,
        )
        heading = "full preprocessing (main process 1 thread)"
        print(f"\n{heading:<44} {'images/s':>9} {'per core':>9} {'ratio':>6}")
        baseline = rates["torchvision ImageFolder + transforms"]
        for name, rate in rates.items():
            print(f"{name:<44} {rate:>9.1f} {rate / cores:>9.1f} {rate / baseline:>5.2f}x")
        print(f"\n{'stage (one process, one thread)':<52} {'ms/image':>9}")
        for name, ms in _stage_costs(shards, root):
            print(f"{name:<52} {ms:>9.2f}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
