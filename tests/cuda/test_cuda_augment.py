"""The colour distortion on CUDA (whole batch at once) against the CPU's (one image at a time, in place).

Both take their random draws from a CPU generator with the same seed, so the flips, orders and
factors are the same; only the arithmetic differs (batched kernels, other reduction orders, fused
multiply-adds). The output is a continuous function of the pixels and factors (the hue wrap is
periodic), so the two agree to float rounding: max |Δ| ≤ 1/255 + 1e-5 in [-1, 1] units (half an
output grey level, room for a pixel where a sign test falls the other way on a rounding), and a
mean |Δ| ≤ 1e-5, which any systematic difference would exceed.
"""

from __future__ import annotations

import pytest
import torch

from inception3.config import AugmentConfig
from inception3.data.augment import build_pipeline, distort_batch, scale_to_unit

pytestmark = pytest.mark.cuda

MAX_ABS = 1.0 / 255.0 + 1e-5
MEAN_ABS = 1e-5


def _images(n: int = 16, size: int = 75) -> torch.Tensor:
    """Random pixels plus the corner cases of the HSV step: grey, pure primaries, ties for the maximum."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    images[0] = 128  # grey: chroma 0
    images[1, 0], images[1, 1:] = 255, 0  # pure red: hue at the wrap
    images[2, :2], images[2, 2] = 200, 10  # red = green: a tie for the maximum
    images[3, 1:], images[3, 0] = 90, 30  # green = blue
    images[4] = 0
    images[5] = 255
    return images


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distortion_on_cuda_matches_the_cpu(seed: int) -> None:
    images = _images()
    on_cpu = distort_batch(images, torch.Generator().manual_seed(seed))
    on_cuda = distort_batch(images.cuda(), torch.Generator().manual_seed(seed))
    assert on_cuda.device.type == "cuda" and on_cuda.dtype == torch.float32
    diff = (on_cuda.cpu() - on_cpu).abs()
    assert diff.max().item() <= MAX_ABS, f"max |CUDA - CPU| = {diff.max().item():.3g}"
    assert diff.mean().item() <= MEAN_ABS, f"mean |CUDA - CPU| = {diff.mean().item():.3g}"
    assert on_cuda.min().item() >= -1.0 and on_cuda.max().item() <= 1.0


def test_distortion_with_a_cuda_generator_repeats_exactly() -> None:
    """The trainer draws on the device (a CUDA generator seeded per step): the same seed, the same batch."""
    images = _images().cuda()
    first = distort_batch(images, torch.Generator(device="cuda").manual_seed(5))
    again = distort_batch(images, torch.Generator(device="cuda").manual_seed(5))
    other = distort_batch(images, torch.Generator(device="cuda").manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_scaling_on_cuda_is_exact() -> None:
    images = _images()
    assert torch.equal(scale_to_unit(images.cuda()).cpu(), scale_to_unit(images))


@pytest.mark.parametrize(
    "ops", [("randaugment",), ("trivialaugment",), ("flip_left_right", "randaugment", "random_erasing")]
)
def test_the_policies_and_erasing_on_cuda_match_the_cpu(ops: tuple[str, ...]) -> None:
    """Draws and noise from a CPU generator with one seed: the same ops, magnitudes and boxes on both.

    The blends may round a pixel a level apart (fused multiply-adds before uint8 truncation), and a
    resampled pixel whose source lies on a rounding edge may take its neighbour: a few pixels differ,
    the rest are equal.
    """
    pipeline = build_pipeline(AugmentConfig(augment_ops=ops))
    images = _images(n=32)
    on_cpu = pipeline(images, torch.Generator().manual_seed(3))
    on_cuda = pipeline(images.cuda(), torch.Generator().manual_seed(3))
    assert on_cuda.device.type == "cuda" and on_cuda.dtype == torch.float32
    off = (on_cuda.cpu() - on_cpu).abs()
    assert (off > 2.0 / 255.0 + 1e-5).float().mean().item() < 1e-3
    assert off.mean().item() < 1e-3


def test_the_policies_and_erasing_with_a_cuda_generator_repeat_exactly() -> None:
    pipeline = build_pipeline(AugmentConfig(augment_ops=("randaugment", "trivialaugment", "random_erasing")))
    images = _images().cuda()
    first = pipeline(images, torch.Generator(device="cuda").manual_seed(5))
    assert torch.equal(first, pipeline(images, torch.Generator(device="cuda").manual_seed(5)))
    assert not torch.equal(first, pipeline(images, torch.Generator(device="cuda").manual_seed(6)))


def test_the_policies_and_erasing_never_wait_for_the_device() -> None:
    """RandAugment and TrivialAugment run every kernel on the whole batch on CUDA (no look at the
    draws on the host), and no kernel stores through a mask: after a warm-up, nothing syncs."""
    pipeline = build_pipeline(AugmentConfig(augment_ops=("randaugment", "trivialaugment", "random_erasing")))
    images = _images(n=32).cuda()
    generator = torch.Generator(device="cuda").manual_seed(8)
    pipeline(images, generator)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = pipeline(images, generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.shape == images.shape and out.dtype == torch.float32
