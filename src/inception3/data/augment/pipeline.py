"""The registry of augmentation ops by name, and the pipeline `AugmentConfig.augment_ops` composes.

Adding an op is one function (`ops.py`), one line in `OPS` (its name, its draws, the scale it takes
and gives) and the `AugmentConfig` fields it reads. The pipeline draws every op's random numbers in
one call, float64 uniform [0, 1), a column per declared draw in op order, so the generator is used
the same way whatever the ops do with their numbers. The original recipe's ops take six columns
(flip; order, brightness, saturation, hue, contrast), the stream and order its runs have always
drawn, so they (and runs resumed from their checkpoints) repeat their distortions bit for bit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from inception3.config import AugmentConfig
from inception3.data.augment.ops import Draws, distort_color, flip_left_right, scale_to_unit_op
from inception3.errors import Inception3Error

Scale = Literal["pixels", "unit"]  # 0-255 pixels, or float32 in [-1, 1] (the network's input)


@dataclass(frozen=True)
class Op:
    """A registered op: its function, the named draws it takes per image, and the scale of its batch.

    `takes`: the scale it needs (None: either); `gives`: the scale it leaves (None: the one it took).
    """

    apply: Callable[[torch.Tensor, Draws, AugmentConfig], torch.Tensor]
    draws: tuple[str, ...] = ()
    takes: Scale | None = None
    gives: Scale | None = None


OPS: dict[str, Op] = {
    "flip_left_right": Op(flip_left_right, ("flip",)),
    "distort_color": Op(
        distort_color, ("order", "brightness", "saturation", "hue", "contrast"), takes="pixels", gives="unit"
    ),
    "scale_to_unit": Op(scale_to_unit_op, takes="pixels", gives="unit"),
}


@dataclass(frozen=True)
class Pipeline:
    """Ops in order, ending at the network's scale; call it on a batch with a generator."""

    ops: tuple[Op, ...]
    cfg: AugmentConfig

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 [B, 3, S, S] on any device -> float32 in [-1, 1], each op given its own draws.

        The draws come from `generator` (on its own device), so a run that saves and restores the
        generator repeats its augmentation exactly.
        """
        columns = sum(len(op.draws) for op in self.ops)
        device = generator.device if generator is not None else torch.device("cpu")
        draws = torch.rand(images.shape[0], columns, generator=generator, device=device, dtype=torch.float64)
        draws = draws.to(images.device)
        x, first = images, 0
        for op in self.ops:
            mine = {name: draws[:, first + i] for i, name in enumerate(op.draws)}
            first += len(op.draws)
            x = op.apply(x, mine, self.cfg)
        return x


@functools.cache
def build_pipeline(cfg: AugmentConfig) -> Pipeline:
    """The ops `cfg.augment_ops` names, with `scale_to_unit` added where the scale must change.

    Unknown names, and an op on pixels after the batch is at the network's scale, are refused in
    one line, before training starts (`train/plan.prepare`).
    """
    fix = "; fix it with --set or in the --config file"
    ops: list[Op] = []
    scale: Scale = "pixels"
    scaled_by = ""  # the op that took the batch to [-1, 1]
    for name in cfg.augment_ops:
        if name not in OPS:
            raise Inception3Error(
                f"config: augment_ops names an unknown op {name!r}; choose from {', '.join(OPS)}{fix}"
            )
        op = OPS[name]
        if op.takes == "pixels" and scale == "unit":
            raise Inception3Error(
                f"config: augment_ops: {name} works on 0-255 pixels and must come before {scaled_by}, "
                f"which scales them to [-1, 1]{fix}"
            )
        if op.takes == "unit" and scale == "pixels":
            ops.append(OPS["scale_to_unit"])
        ops.append(op)
        if op.gives == "unit" and scale == "pixels":
            scaled_by = name
        scale = op.gives or op.takes or scale
    if scale == "pixels":
        ops.append(OPS["scale_to_unit"])
    return Pipeline(tuple(ops), cfg)


def distort_batch(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The original's training distortions (the default `augment_ops`): uint8 -> float32 in [-1, 1]."""
    return build_pipeline(AugmentConfig())(images, generator)
