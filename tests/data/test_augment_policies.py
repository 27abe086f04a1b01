"""RandAugment and TrivialAugmentWide: torchvision's tables and ops, timm's level noise, per-image draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import RandAugment, TrivialAugmentWide

from inception3.config import (
    NUM_MAGNITUDE_BINS,
    RANDAUGMENT_SPACE,
    RANDAUGMENT_TRANSLATE_OF_SIDE,
    TRIVIALAUGMENT_SPACE,
    TRIVIALAUGMENT_TRANSLATE_OF_SIDE,
    AugmentConfig,
)
from inception3.data.augment import build_pipeline, scale_to_unit
from inception3.data.augment.policies import (
    apply_ops,
    op_magnitudes,
    randaugment,
    randaugment_fraction,
    trivialaugment,
)

TORCHVISION_NAMES = {
    "identity": "Identity",
    "shear_x": "ShearX",
    "shear_y": "ShearY",
    "translate_x": "TranslateX",
    "translate_y": "TranslateY",
    "rotate": "Rotate",
    "brightness": "Brightness",
    "color": "Color",
    "contrast": "Contrast",
    "sharpness": "Sharpness",
    "posterize": "Posterize",
    "solarize": "Solarize",
    "autocontrast": "AutoContrast",
    "equalize": "Equalize",
}
POLICIES = [
    (RANDAUGMENT_SPACE, RANDAUGMENT_TRANSLATE_OF_SIDE, RandAugment),
    (TRIVIALAUGMENT_SPACE, TRIVIALAUGMENT_TRANSLATE_OF_SIDE, TrivialAugmentWide),
]


def _images(n: int, size: int = 75, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 180, size)[None, None, None, :] + np.linspace(0, 40, size)[None, None, :, None]
    return torch.from_numpy((ramp + rng.integers(0, 36, (n, 3, size, size))).astype(np.uint8))


@pytest.mark.parametrize(("space", "of_side", "policy"), POLICIES)
def test_the_tables_are_torchvisions_ops_in_its_order_with_its_magnitudes_at_every_bin(
    space, of_side, policy
):
    """Our magnitude at fraction b/30 is torchvision's bin b (its float32 linspace, hence the rtol)."""
    assert [TORCHVISION_NAMES[row[0]] for row in space] == list(policy._AUGMENTATION_SPACE)
    bins = torch.arange(NUM_MAGNITUDE_BINS, dtype=torch.float64)
    fraction = bins / (NUM_MAGNITUDE_BINS - 1)
    ours = op_magnitudes(space, of_side, (60, 75), fraction, torch.zeros_like(fraction, dtype=torch.bool))
    for (name, _, signed), row in zip(space, ours, strict=True):
        magnitudes, tv_signed = policy._AUGMENTATION_SPACE[TORCHVISION_NAMES[name]]
        expected = magnitudes(NUM_MAGNITUDE_BINS, 60, 75)
        assert signed == tv_signed
        if expected is None:
            continue
        torch.testing.assert_close(row, expected.double(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("space", "of_side", "policy"), POLICIES)
@pytest.mark.parametrize("negative", [False, True])
def test_image_k_drawing_op_k_is_torchvisions_op_k_at_the_same_magnitude(space, of_side, policy, negative):
    """One batch, image k drawing op k at bin 20 (RandAugment: level 20/3, no noise), so the five
    geometric ops share one resampling: each image is torchvision's `_apply_image_or_video_transform`
    at the magnitude of our table (whose values are its bins: test above), exactly but for the
    blends, which may be a level off on a few pixels (test_augment_kernels says why)."""
    count, bin_index, reference = len(space), 20, policy()
    images = _images(count)
    fraction = torch.full((count,), bin_index / 30, dtype=torch.float64)
    magnitudes = op_magnitudes(space, of_side, (75, 75), fraction, torch.full((count,), negative))
    op_draw = (torch.arange(count, dtype=torch.float64) + 0.5) / count
    sign_draw = torch.full((count,), 0.25 if negative else 0.75, dtype=torch.float64)
    if policy is RandAugment:
        cfg = AugmentConfig(
            randaugment_num_ops=1, randaugment_magnitude=bin_index / 3, randaugment_magnitude_std=0
        )
        ours = randaugment(
            images,
            {"op0": op_draw, "level0": torch.rand(count, dtype=torch.float64), "sign0": sign_draw},
            cfg,
        )
    else:
        bin_draw = torch.full((count,), (bin_index + 0.5) / NUM_MAGNITUDE_BINS, dtype=torch.float64)
        ours = trivialaugment(images, {"op": op_draw, "bin": bin_draw, "sign": sign_draw}, AugmentConfig())
    assert ours.dtype == torch.uint8
    for k, (name, _, _) in enumerate(space):
        expected = reference._apply_image_or_video_transform(
            images[k],
            TORCHVISION_NAMES[name],
            float(magnitudes[k, k]),
            interpolation="nearest",
            fill=reference._fill,
        )
        off = (ours[k].int() - expected.int()).abs()
        assert int(off.max()) <= 1 and float((off > 0).float().mean()) < 1e-3, name
        if name not in ("brightness", "color", "contrast", "sharpness"):
            assert torch.equal(ours[k], expected), name


def test_randaugment_levels_are_timms_normal_around_m_clipped_to_0_10():
    draws = torch.rand(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    level = 10 * randaugment_fraction(draws, AugmentConfig())  # m 9, std 0.5
    assert level.min() >= 0 and level.max() == 10.0  # N(9, 0.5) passes 10 in 2.3% of draws
    assert abs(float((level == 10).double().mean()) - 0.0228) < 0.005
    assert abs(float(level.mean()) - 9.0) < 0.02 and abs(float(level.std()) - 0.49) < 0.02
    flat = 10 * randaugment_fraction(
        draws, AugmentConfig(randaugment_magnitude=4, randaugment_magnitude_std=0)
    )
    assert torch.all(flat == 4.0)
    assert torch.equal(
        randaugment_fraction(torch.zeros(1, dtype=torch.float64), AugmentConfig()), torch.zeros(1)
    )


@pytest.mark.parametrize("op", ["randaugment", "trivialaugment"])
def test_copies_of_one_image_each_get_their_own_op_and_magnitude(op):
    images = _images(1).expand(32, -1, -1, -1).contiguous()
    out = build_pipeline(AugmentConfig(augment_ops=(op,)))(images, torch.Generator().manual_seed(5))
    distinct = {bytes(x.numpy().tobytes()) for x in out}
    assert len(distinct) >= 16  # 14 ops, with magnitudes and signs per image: nearly all differ
    unchanged = sum(torch.equal(x, scale_to_unit(images[:1])[0]) for x in out)
    assert unchanged < 8  # identity is 1 op of 14 (RandAugment: twice in a row)


@pytest.mark.parametrize("op", ["randaugment", "trivialaugment"])
@pytest.mark.parametrize(("n", "size"), [(1, 75), (5, 75), (3, 90)])
def test_the_same_seed_gives_the_same_batch_bit_for_bit_at_75_px_and_for_one_image(op, n, size):
    cfg = AugmentConfig(augment_ops=("flip_left_right", op, "distort_color", "random_erasing"))
    images = _images(n, size)
    first = build_pipeline(cfg)(images, torch.Generator().manual_seed(11))
    assert first.shape == images.shape and first.dtype == torch.float32
    assert torch.equal(first, build_pipeline(cfg)(images, torch.Generator().manual_seed(11)))
    assert not torch.equal(first, build_pipeline(cfg)(images, torch.Generator().manual_seed(12)))


def test_randaugment_applies_its_number_of_ops_in_a_row():
    """Two ops from forced draws: posterize, then solarize the posterized image."""
    images = _images(3)
    cfg = AugmentConfig(randaugment_num_ops=2, randaugment_magnitude=10, randaugment_magnitude_std=0.0)
    ids = {row[0]: k for k, row in enumerate(RANDAUGMENT_SPACE)}
    count = len(RANDAUGMENT_SPACE)
    draws = {
        "op0": (ids["posterize"] + 0.5) / count,
        "op1": (ids["solarize"] + 0.5) / count,
        "level0": 0.5,
        "level1": 0.5,
        "sign0": 0.9,
        "sign1": 0.9,
    }
    out = randaugment(images, {k: torch.full((3,), v, dtype=torch.float64) for k, v in draws.items()}, cfg)
    # level 10: posterize keeps 8 - 4 bits, solarize's threshold is 0 and inverts every pixel
    assert torch.equal(out, ~(images & 0xF0))


@pytest.mark.parametrize(("space", "of_side", "policy"), POLICIES)
def test_every_op_on_the_whole_batch_gives_the_grouped_pixels_and_reads_nothing_on_the_host(
    space, of_side, policy, monkeypatch
):
    """The accelerators' way (no look at the device's op draws) against the CPU's (grouped by op),
    bit for bit, on uint8 and float pixels: 3 images per op of the table, random magnitudes."""
    count = 3 * len(space)
    generator = torch.Generator().manual_seed(7)
    op = torch.randperm(count, generator=generator) % len(space)
    fraction = torch.rand(count, generator=generator, dtype=torch.float64)
    magnitude = op_magnitudes(
        space, of_side, (75, 75), fraction, torch.rand(count, generator=generator) < 0.5
    )
    for images in (_images(count, seed=3), _images(count, seed=4).float() * 0.9):
        grouped = apply_ops(images, op, magnitude, space, grouped=True)
        with monkeypatch.context() as patch:
            for read in ("tolist", "item", "cpu", "numpy", "__bool__", "__int__", "__float__"):
                patch.setattr(torch.Tensor, read, _no_host_read)
            whole = apply_ops(images, op, magnitude, space, grouped=False)
        assert whole.dtype == images.dtype and torch.equal(whole, grouped)


def _no_host_read(*args, **kwargs):
    raise AssertionError("a host read of a device tensor")
