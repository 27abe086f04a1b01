"""Training batches finished on CUDA against the CPU workers' batches: the same crops, the same labels.

`decode=cpu` on CUDA: the workers crop, the GPU resizes in float and rounds, within one grey level of
the workers' uint8 kernel. `decode=gpu`: nvJPEG decodes at full size with its own IDCT where the
workers use libjpeg-turbo's fast integer DCT, DCT-scaled where the crop spans 8/7 of the output or
more: a mean |Δ| below 2.5 levels per batch (as tests/data/test_device_crop.py, CPU against CPU) and
below 4 per image. A short training run with `decode=gpu` checks the trainer's wiring.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import cuda_config

from inception3.config import BuildConfig
from inception3.data.build import build_dataset
from inception3.data.loader import TrainLoader
from inception3.data.meta import load_dataset_info

pytestmark = pytest.mark.cuda

DECODERS_MEAN_TOLERANCE = 2.5  # levels, per batch; 1.6 × that per image


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 photo-like JPEGs, 90×120 and 320×400 (the large ones DCT-scale in the workers), in 2 shards."""
    root = tmp_path_factory.mktemp("cuda-photos")
    rng = np.random.default_rng(0)
    for i in range(12):
        height, width = (90, 120) if i % 2 else (320, 400)
        cells = rng.integers(0, 256, (max(height // 40, 2), max(width // 40, 2), 3), dtype=np.uint8)
        smooth = np.asarray(PIL.Image.fromarray(cells).resize((width, height), PIL.Image.BICUBIC), np.int16)
        pixels = (smooth + rng.normal(0, 3, smooth.shape)).clip(0, 255).astype(np.uint8)
        folder = root / "images" / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        PIL.Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        (folder / f"{i}.jpg").write_bytes(buffer.getvalue())
    build_dataset(BuildConfig(root / "images", root / "shards", train_shards=2, workers=1, progress=False))
    return root / "shards"


def _batches(loader: TrainLoader, device: str, count: int = 3) -> list:
    batches = loader.device_batches(torch.device(device))
    return [next(batches) for _ in range(count)]


def test_crops_resized_on_cuda_are_within_a_level_of_the_workers(photos: Path) -> None:
    info = load_dataset_info(photos)
    workers = _batches(TrainLoader(info, 4, 75, seed=1, num_workers=0), "cpu")
    cuda = _batches(TrainLoader(info, 4, 75, seed=1, num_workers=1), "cuda")
    for a, b in zip(workers, cuda, strict=True):
        assert b.images.device.type == "cuda" and b.images.dtype == torch.uint8
        assert torch.equal(a.labels, b.labels.cpu())
        assert (a.images.int() - b.images.cpu().int()).abs().max() <= 1


def test_nvjpeg_batches_match_the_workers_within_the_decoders_rounding(photos: Path) -> None:
    info = load_dataset_info(photos)
    workers = _batches(TrainLoader(info, 4, 75, seed=2, num_workers=0), "cpu")
    nvjpeg = _batches(TrainLoader(info, 4, 75, seed=2, num_workers=1, decode="gpu"), "cuda")
    for a, b in zip(workers, nvjpeg, strict=True):
        assert b.images.device.type == "cuda" and b.images.shape == a.images.shape
        assert torch.equal(a.labels, b.labels.cpu())
        difference = (a.images.float() - b.images.cpu().float()).abs()
        assert difference.mean() < DECODERS_MEAN_TOLERANCE
        assert (difference.mean(dim=(1, 2, 3)) < 1.6 * DECODERS_MEAN_TOLERANCE).all()


def test_training_with_gpu_decoding_runs(photos: Path, tmp_path: Path) -> None:
    from inception3.train.loop import train

    result = train(
        cuda_config(decode="gpu", max_steps=4, batch_size=4), photos, tmp_path / "run", out=io.StringIO()
    )
    assert result.step == 4
