"""The registry of augmentation ops by name, and the pipeline `AugmentConfig.augment_ops` composes.

Adding an op is one function (`ops.py`, `policies.py`, `erasing.py`), one line in `OPS` (its name,
its draws, the scale it takes and gives) and the `AugmentConfig` fields it reads. The pipeline draws
every op's random numbers in one call, float64 uniform [0, 1), a column per declared draw in op
order, so the generator is used the same way whatever the ops do with their numbers. An op that
fills pixels with noise (random erasing) also declares `noise`: after the columns, the pipeline
draws one standard normal float32 tensor of the batch's shape per such op, in op order, from the
same generator; a pipeline without one draws nothing more. The original recipe's ops take six
columns (flip; order, brightness, saturation, hue, contrast), the stream and order its runs have
always drawn, so they (and runs resumed from their checkpoints) repeat their distortions bit for bit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from inception3.config import AugmentConfig
from inception3.data.augment.erasing import erasing_draws, random_erasing
from inception3.data.augment.ops import Draws, distort_color, flip_left_right, scale_to_unit_op
from inception3.data.augment.policies import randaugment, randaugment_draws, trivialaugment
from inception3.errors import Inception3Error

Scale = Literal["pixels", "unit"]  # 0-255 pixels, or float32 in [-1, 1] (the network's input)


@dataclass(frozen=True)
class Op:
    """A registered op: its function, the named draws it takes per image, and the scale of its batch.

    `draws`: the names, or a function of the config giving them (RandAugment draws per op in a row);
    `takes`: the scale it needs (None: either); `gives`: the scale it leaves (None: the one it took);
    `noise`: it also takes "noise", standard normal float32 of the batch's shape.
    """

    apply: Callable[[torch.Tensor, Draws, AugmentConfig], torch.Tensor]
    draws: tuple[str, ...] | Callable[[AugmentConfig], tuple[str, ...]] = ()
    takes: Scale | None = None
    gives: Scale | None = None
    noise: bool = False

    def draw_names(self, cfg: AugmentConfig) -> tuple[str, ...]:
        """The names of this op's columns of draws under `cfg`."""
        return self.draws(cfg) if callable(self.draws) else self.draws


OPS: dict[str, Op] = {
    "flip_left_right": Op(flip_left_right, ("flip",)),
    "distort_color": Op(
        distort_color, ("order", "brightness", "saturation", "hue", "contrast"), takes="pixels", gives="unit"
    ),
    "scale_to_unit": Op(scale_to_unit_op, takes="pixels", gives="unit"),
    "randaugment": Op(randaugment, randaugment_draws, takes="pixels"),
    "trivialaugment": Op(trivialaugment, ("op", "bin", "sign"), takes="pixels"),
    "random_erasing": Op(random_erasing, erasing_draws, takes="unit", noise=True),
}


@dataclass(frozen=True)
class Pipeline:
    """Ops in order, ending at the network's scale; call it on a batch with a generator."""

    ops: tuple[Op, ...]
    cfg: AugmentConfig

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 [B, 3, S, S] on any device -> float32 in [-1, 1], each op given its own draws
        (random erasing's noise, as timm's, is not clipped to [-1, 1]).

        The draws come from `generator` (on its own device), so a run that saves and restores the
        generator repeats its augmentation exactly.
        """
        names = [op.draw_names(self.cfg) for op in self.ops]
        device = generator.device if generator is not None else torch.device("cpu")
        shape = (images.shape[0], sum(len(mine) for mine in names))
        draws = torch.rand(shape, generator=generator, device=device, dtype=torch.float64).to(images.device)
        noises = [
            torch.randn(images.shape, generator=generator, device=device).to(images.device)
            if op.noise
            else None
            for op in self.ops
        ]
        x, first = images, 0
        for op, mine, noise in zip(self.ops, names, noises, strict=True):
            columns: dict[str, torch.Tensor] = {name: draws[:, first + i] for i, name in enumerate(mine)}
            first += len(mine)
            if noise is not None:
                columns["noise"] = noise
            x = op.apply(x, columns, self.cfg)
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
