"""Batches finished on the training device: the same crops as the workers', resized or decoded there.

On the CPU the "device" is the CPU: the resize placed there is the workers' uint8 kernel, so its batches
equal theirs bit for bit; the device decode runs `torchvision.io.decode_jpeg` on the CPU (nvJPEG is
tests/cuda's), equal to the workers' libjpeg-turbo within the decoders' rounding.
"""

from __future__ import annotations

import contextlib
import copy
import io
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import simplejpeg
import torch
from imagefolders import write_jpeg

from inception3.config import BuildConfig
from inception3.data.build import build_dataset
from inception3.data.device_crop import Packed, finish_crops
from inception3.data.loader import TrainLoader, decode_place
from inception3.data.meta import load_dataset_info
from inception3.data.worker import Job
from inception3.errors import Inception3Error
from inception3.train.options import make_config

# Mean absolute difference, in levels, between libjpeg-turbo's fast integer DCT, DCT-scaled where the
# crop spans 8/7 of the output or more, and torchvision's accurate DCT at full size, after the same
# resize: about 1 level from the DCTs, 1-2 more where DCT scaling filters (tests/data/test_crop.py).
DECODERS_MEAN_TOLERANCE = 2.5


def _photo_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour blobs plus noise: edges and texture that different decoders round differently."""
    cells = rng.integers(0, 256, (max(height // 40, 2), max(width // 40, 2), 3), dtype=np.uint8)
    smooth = np.asarray(PIL.Image.fromarray(cells).resize((width, height), PIL.Image.BICUBIC), np.int16)
    return (smooth + rng.normal(0, 3, smooth.shape)).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """10 photo-like training JPEGs in 2 shards, 90×120 to 320×400 (the large ones DCT-scale to 75)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(10):
        height, width = (90, 120) if i % 2 else (320, 400)
        write_jpeg(root / "images" / f"c{i % 2}" / f"{i}.jpg", _photo_like(rng, height, width), quality=90)
    build_dataset(BuildConfig(root / "images", root / "shards", train_shards=2, workers=1, progress=False))
    return root / "shards"


def _batches(loader: TrainLoader, count: int, device: str = "cpu") -> list:
    batches = loader.device_batches(torch.device(device))
    return [next(batches) for _ in range(count)]


def test_resizing_on_the_device_gives_the_workers_batches_bit_for_bit(photos):
    info = load_dataset_info(photos)
    in_workers = _batches(TrainLoader(info, 4, 75, seed=1, num_workers=0), 3)
    on_device = _batches(TrainLoader(info, 4, 75, seed=1, num_workers=1, resize_in_workers=False), 3)
    for a, b in zip(in_workers, on_device, strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_decoding_on_the_device_matches_the_workers_within_the_decoders_rounding(photos):
    info = load_dataset_info(photos)
    workers = _batches(TrainLoader(info, 4, 75, seed=2, num_workers=0), 3)
    device = _batches(TrainLoader(info, 4, 75, seed=2, num_workers=1, decode="gpu"), 3)
    for a, b in zip(workers, device, strict=True):
        assert b.images.shape == a.images.shape and b.images.dtype == torch.uint8
        assert torch.equal(a.labels, b.labels)
        difference = (a.images.float() - b.images.float()).abs()
        assert difference.mean() < DECODERS_MEAN_TOLERANCE, "the same crops, decoded by another decoder"
        assert (difference.mean(dim=(1, 2, 3)) < 1.6 * DECODERS_MEAN_TOLERANCE).all()


def test_a_device_decoding_run_resumes_exactly(photos):
    info = load_dataset_info(photos)
    straight = _batches(TrainLoader(info, 3, 75, seed=4, num_workers=0, decode="gpu"), 5)
    first = TrainLoader(info, 3, 75, seed=4, num_workers=0, decode="gpu")
    _batches(first, 2)
    resumed = TrainLoader(info, 3, 75, seed=4, num_workers=0, decode="gpu")
    resumed.load_state_dict(first.state_dict())
    for a, b in zip(straight[2:], _batches(resumed, 3), strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_what_the_device_decoder_cannot_read_goes_to_the_cpu_decoders_or_is_reported():
    pixels = _photo_like(np.random.default_rng(3), 60, 80)
    encoded = [_png(pixels), b"\xff\xd8" + bytes(200)]  # a PNG; a JPEG marker and nothing readable
    data = torch.tensor(np.frombuffer(b"".join(encoded), np.uint8))
    packed = Packed(
        "jpegs",
        data,
        np.array([[0, len(encoded[0])], [len(encoded[0]), len(encoded[1])]]),
        np.zeros((2, 2), dtype=np.int64),
        np.array([[10, 20, 40, 50], [0, 0, 10, 10]]),
        np.array([7, 8]),
    )
    images, failures = finish_crops(packed, 40, torch.device("cpu"))
    expected = torch.from_numpy(pixels[10:50, 20:70]).permute(2, 0, 1)[None]
    assert images.shape == (1, 3, 40, 40)
    assert torch.equal(
        images[0],
        torch.nn.functional.interpolate(expected, size=(40, 40), antialias=True, mode="bilinear")[0],
    )
    assert [record for record, _ in failures] == [8] and "does not decode" in failures[0][1]


def _truncate_one_image(shards: Path, tmp_path: Path) -> Path:
    """A copy whose first shard's first image is cut 1000 bytes in: its header reads, its pixels do not."""
    from inception3.data.example import ImageRecord
    from inception3.data.records import iter_records
    from inception3.data.shard_writer import write_records

    copy = tmp_path / "cut"
    shutil.copytree(shards, copy)
    shard = copy / "train-00000-of-00002"
    records = [bytearray(r) for r in iter_records(shard)]
    encoded = ImageRecord.parse(bytes(records[0])).encoded
    records[0] = records[0].replace(encoded, encoded[:1000] + bytes(len(encoded) - 1000))
    write_records(shard, [bytes(r) for r in records])
    return copy


def test_a_record_that_decodes_nowhere_stops_training_or_is_skipped(photos, tmp_path):
    info = load_dataset_info(_truncate_one_image(photos, tmp_path))
    with pytest.raises(Inception3Error, match=r"train-00000-of-00002: record 0 is corrupt.*does not decode"):
        _batches(TrainLoader(info, 10, 75, num_workers=0, decode="gpu"), 1)
    loader = TrainLoader(info, 10, 75, num_workers=0, decode="gpu", skip_corrupt=True)
    assert len(_batches(loader, 1)[0].labels) == 9 and loader.skipped_records == 1


def _salvageable(encoded: bytes) -> bytes:
    """`encoded` with one byte of its entropy data flipped where libjpeg-turbo (strict) refuses the
    result and Pillow still decodes it, at full size."""
    for position in range(len(encoded) - 200, len(encoded) - 2):
        damaged = bytearray(encoded)
        damaged[position] ^= 0x5A
        try:
            simplejpeg.decode_jpeg(bytes(damaged))
        except ValueError:
            with contextlib.suppress(OSError):
                PIL.Image.open(io.BytesIO(bytes(damaged))).convert("RGB")
                return bytes(damaged)
    raise AssertionError("no byte to flip")


def test_an_image_that_decodes_only_at_full_size_reaches_the_device_undecoded_and_the_same(tmp_path):
    # A large JPEG with damaged entropy data: its header promises a half-size decode, libjpeg-turbo
    # refuses the data, Pillow salvages it at full size. The worker hands it over encoded, and the
    # training process decodes it as the CPU path's workers do: the batches are equal bit for bit.
    rng = np.random.default_rng(5)
    for i in range(4):
        path = tmp_path / "images" / f"c{i % 2}" / f"{i}.jpg"
        encoded = write_jpeg(path, _photo_like(rng, 320, 400), quality=90)
        if i == 0:
            path.write_bytes(_salvageable(encoded))
    build_dataset(BuildConfig(tmp_path / "images", tmp_path / "shards", train_shards=1, progress=False))
    info = load_dataset_info(tmp_path / "shards")
    decoder = copy.copy(TrainLoader(info, 4, 32, seed=3).decoder)
    decoder.hand_over = "decoded"
    packed, *_ = decoder[Job(np.arange(4), np.zeros(4, dtype=np.int64))]
    shapes = packed.shapes.tolist()
    assert shapes.count([0, 0]) == 1 and all(0 < h < 320 for h, _ in shapes if h), (
        "one encoded, the rest scaled"
    )
    in_workers = _batches(TrainLoader(info, 4, 32, seed=3, num_workers=0), 2)
    on_device = _batches(TrainLoader(info, 4, 32, seed=3, num_workers=1, resize_in_workers=False), 2)
    for a, b in zip(in_workers, on_device, strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_decode_auto_is_the_gpu_on_cuda_and_the_cpu_elsewhere():
    assert decode_place("auto", torch.device("cpu")) == "cpu"
    assert decode_place("auto", torch.device("cuda")) == "gpu"
    assert decode_place("cpu", torch.device("cuda")) == "cpu"
    with pytest.raises(Inception3Error, match="decode=gpu needs a CUDA device"):
        decode_place("gpu", torch.device("cpu"))
    assert make_config({"decode": "gpu"}).decode == "gpu"
    with pytest.raises(Inception3Error, match="decode"):
        make_config({"decode": "tpu"})
