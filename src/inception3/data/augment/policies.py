"""RandAugment and TrivialAugmentWide on a batch: each image draws its own op, magnitude and sign.

The op tables are torchvision's v2 (`config/recipe.py`: RANDAUGMENT_SPACE, TRIVIALAUGMENT_SPACE);
a magnitude is a fraction f in [0, 1] of an op's range: RandAugment's from timm's level m (f = m / 10,
each op's level ~ N(m, std) clipped to [0, 10], timm's "rand-m9-mstd0.5"), TrivialAugmentWide's a
uniform bin b of 31 (f = b / 30). Per slot, on the CPU, the images are grouped by the op they drew
and each group goes through its kernel (`kernels.py`) at once; on accelerators every kernel runs on
the whole batch instead, so that the host never reads the device's draws (`apply_ops`). The five
geometric ops share one resampling. They work on 0-255 pixels and keep the batch's dtype.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import torch

from inception3.config import (
    NUM_MAGNITUDE_BINS,
    RANDAUGMENT_MAX_MAGNITUDE,
    RANDAUGMENT_SPACE,
    RANDAUGMENT_TRANSLATE_OF_SIDE,
    TRIVIALAUGMENT_SPACE,
    TRIVIALAUGMENT_TRANSLATE_OF_SIDE,
    AugmentConfig,
)
from inception3.data.augment import kernels

Space = tuple[tuple[str, float, bool], ...]  # (op, top of its range, signed), recipe.py's tables
_GEOMETRIC = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate")
_BLENDS = {
    "brightness": kernels.adjust_brightness,
    "color": kernels.adjust_saturation,
    "contrast": kernels.adjust_contrast,
    "sharpness": kernels.adjust_sharpness,
}
_PLAIN = {"autocontrast": kernels.autocontrast, "equalize": kernels.equalize}  # no magnitude


def op_magnitudes(
    space: Space,
    translate_of_side: bool,
    size: tuple[int, int],
    fraction: torch.Tensor,
    negative: torch.Tensor,
) -> torch.Tensor:
    """Each op's magnitude [len(space), n] float64 at each image's fraction of its range, signed ops
    negated where `negative`: the value torchvision's `_apply_image_or_video_transform` takes."""
    height, width = size
    rows = []
    for name, top, signed in space:
        if translate_of_side:
            top *= width if name == "translate_x" else height if name == "translate_y" else 1.0
        magnitude = top * fraction
        if name == "posterize":  # the bits kept
            magnitude = torch.round(8.0 - magnitude)
        elif name == "solarize":  # the threshold, as a fraction of 255
            magnitude = 1.0 - magnitude
        rows.append(torch.where(negative, -magnitude, magnitude) if signed else magnitude)
    return torch.stack(rows)


def apply_ops(
    images: torch.Tensor,
    op: torch.Tensor,
    magnitude: torch.Tensor,
    space: Space,
    *,
    grouped: bool | None = None,
) -> torch.Tensor:
    """Image i through op `space[op[i]]` at `magnitude[op[i], i]` (`op_magnitudes`); a new batch.

    `grouped` (the default on the CPU): one look at the op indices on the host, then a kernel call per
    op on the images that drew it. Otherwise (the default on accelerators) every op of the table runs
    on the whole batch and each image keeps its own op's result: more arithmetic, but no read of the
    device's draws on the host, which would stall the host until the device caught up. Both give
    the same pixels: every kernel works image by image.
    """
    if grouped is None:
        grouped = images.device.type == "cpu"
    if grouped:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, k in enumerate(op.tolist()):
            groups[_group(space[k][0])].append(i)
        groups.pop("identity", None)
        out = images.clone()
        for name, members in groups.items():
            index = torch.tensor(members, device=images.device)
            part = _apply_group(
                name,
                images.index_select(0, index),
                op.index_select(0, index),
                magnitude.index_select(1, index),
                space,
            )
            out.index_copy_(0, index, part)
        return out
    out = images
    for name in dict.fromkeys(_group(row[0]) for row in space):
        if name == "identity":
            continue
        drew = torch.zeros_like(op, dtype=torch.bool)
        for k, row in enumerate(space):
            if _group(row[0]) == name:
                drew |= op == k
        result = _apply_group(name, images, op, magnitude, space)
        out = torch.where(drew[:, None, None, None], result, out)
    return out


def _group(name: str) -> str:
    """The kernel call an op goes through: the geometric ops share one resampling."""
    return "geometric" if name in _GEOMETRIC else name


def _apply_group(
    name: str, images: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor, space: Space
) -> torch.Tensor:
    """`images` through the kernel of group `name`, each at its own magnitude (`op`: each image's op,
    which the geometric group needs to pick its matrix)."""
    column = {row[0]: magnitude[k] for k, row in enumerate(space)}
    if name == "geometric":
        ids = {row[0]: k for k, row in enumerate(space)}
        return kernels.affine(images, _matrices(op, ids, column, images.shape[-2:]))
    if name in _BLENDS:
        return _BLENDS[name](images, 1.0 + column[name])
    if name == "posterize":
        return kernels.posterize(images, column[name].long())
    if name == "solarize":
        return kernels.solarize(images, 255.0 * column[name])
    return _PLAIN[name](images)


def _matrices(
    kinds: torch.Tensor, ids: Mapping[str, int], column: Mapping[str, torch.Tensor], size: torch.Size
) -> torch.Tensor:
    """Each image's inverse matrix for the geometric op it drew, as torchvision's auto-augment calls
    `affine` (shears about the top-left corner, translations truncated to whole pixels) and `rotate`
    (about the centre, the angle taken modulo 360)."""
    height, width = size
    zero = torch.zeros_like(column["rotate"])

    def where(name: str, value: torch.Tensor) -> torch.Tensor:
        return torch.where(kinds == ids[name], value, zero)

    shear_x = where("shear_x", kernels.shear_degrees(column["shear_x"]))
    shear_y = where("shear_y", kernels.shear_degrees(column["shear_y"]))
    sheared = (kinds == ids["shear_x"]) | (kinds == ids["shear_y"])
    center = (torch.where(sheared, zero - 0.5 * width, zero), torch.where(sheared, zero - 0.5 * height, zero))
    translate = (
        where("translate_x", column["translate_x"].trunc()),
        where("translate_y", column["translate_y"].trunc()),
    )
    angle = where("rotate", -torch.remainder(column["rotate"], 360.0))
    return kernels.inverse_affine_matrices(angle, translate, (shear_x, shear_y), center)


def _choose(draw: torch.Tensor, count: int) -> torch.Tensor:
    """A uniform [0, 1) draw as one of `count` choices, each equally likely."""
    return torch.floor(draw * count).long().clamp_(max=count - 1)


# --- the two policies, as ops of the pipeline (pipeline.py) ------------------------------------
def randaugment_draws(cfg: AugmentConfig) -> tuple[str, ...]:
    """Three columns per op in a row: which op, its level's noise, its sign."""
    return tuple(f"{name}{i}" for i in range(cfg.randaugment_num_ops) for name in ("op", "level", "sign"))


def randaugment_fraction(draw: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Uniform draws [n] as fractions of the ops' ranges: timm's level ~ N(m, std) clipped to [0, 10], / 10.

    The normal is the draw through the inverse normal CDF (a draw of 0 is -inf, clipped to level 0).
    """
    level = torch.full_like(draw, cfg.randaugment_magnitude)
    if cfg.randaugment_magnitude_std > 0:  # 0 × ndtri(0) would be nan
        level = level + cfg.randaugment_magnitude_std * torch.special.ndtri(draw)
    return level.clamp(0.0, RANDAUGMENT_MAX_MAGNITUDE) / RANDAUGMENT_MAX_MAGNITUDE


def randaugment(images: torch.Tensor, draws: Mapping[str, torch.Tensor], cfg: AugmentConfig) -> torch.Tensor:
    """`randaugment_num_ops` ops in a row per image, each drawn from torchvision's RandAugment table.

    Each op's level is timm's: N(randaugment_magnitude, randaugment_magnitude_std) (the normal from
    the uniform draw through the inverse normal CDF), clipped to [0, 10]; its fraction of the op's
    range is level / 10. A signed op is negated when its sign draw is below 1/2.
    """
    size = images.shape[-2:]
    for i in range(cfg.randaugment_num_ops):
        fraction = randaugment_fraction(draws[f"level{i}"], cfg)
        magnitude = op_magnitudes(
            RANDAUGMENT_SPACE, RANDAUGMENT_TRANSLATE_OF_SIDE, size, fraction, draws[f"sign{i}"] < 0.5
        )
        images = apply_ops(
            images, _choose(draws[f"op{i}"], len(RANDAUGMENT_SPACE)), magnitude, RANDAUGMENT_SPACE
        )
    return images


def trivialaugment(
    images: torch.Tensor, draws: Mapping[str, torch.Tensor], cfg: AugmentConfig
) -> torch.Tensor:
    """One op per image from torchvision's TrivialAugmentWide table, at a uniform bin of 31, signed
    ops negated when the sign draw is below 1/2."""
    fraction = _choose(draws["bin"], NUM_MAGNITUDE_BINS).double() / (NUM_MAGNITUDE_BINS - 1)
    magnitude = op_magnitudes(
        TRIVIALAUGMENT_SPACE,
        TRIVIALAUGMENT_TRANSLATE_OF_SIDE,
        images.shape[-2:],
        fraction,
        draws["sign"] < 0.5,
    )
    return apply_ops(images, _choose(draws["op"], len(TRIVIALAUGMENT_SPACE)), magnitude, TRIVIALAUGMENT_SPACE)
