"""The named evaluation preprocessings: each project's way from an image file to its network's input.

Weights are scored the way the project that trained them scores them, or their accuracy is not
theirs. The weights carry the name (their `WeightsMeta.eval_preprocessing`; "inception" for
inception3's own checkpoints) and `eval` and `predict` use it unless `--preprocessing` says otherwise:

    inception      TensorFlow's JPEG decoder (integer fast DCT), central crop 0.875, TF1's
                   resize_bilinear (no half-pixel centres) on the float image: the original's
                   eval_image and TF-Slim's preprocess_for_eval
    inception-tf2  the same with TF2's resize (half-pixel centres)
    torchvision    Pillow's decoder, shorter side to S·342/299 (bilinear, antialiased), centre crop S
    timm           Pillow's decoder, shorter side to floor(S / 0.875) (bicubic), centre crop S
    keras          Pillow's decoder, the whole image to S×S (nearest: keras.utils.load_img's default)

Each ends as (x / 255 − 0.5) × 2 (`augment.scale_to_unit`, on the device): torchvision's and timm's
mean/std normalisation lands there once torchvision's `transform_input` (timm: mean = std = 0.5)
is applied, and Keras' `preprocess_input` is x / 127.5 − 1. docs/formats.md ("Evaluation
preprocessing") says which source file each row was checked against.

Pixels stay uint8 where the source pipeline rounds to bytes (Pillow's resizes) and float32 where it
does not (TensorFlow resizes the float image), so the loader carries no more than the source had.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import PIL.Image
import torch

from inception3.config import (
    DEFAULT_EVAL_PREPROCESSING,
    EVAL_PREPROCESSINGS,
    KERAS_INTERPOLATION,
    TIMM_CROP_PCT,
    TIMM_INTERPOLATION,
    TORCHVISION_CROP_SIZE,
    TORCHVISION_INTERPOLATION,
    TORCHVISION_RESIZE_SIZE,
)
from inception3.data.crop import eval_image
from inception3.data.decode import decode_image, open_image
from inception3.errors import Inception3Error

Image = PIL.Image.Image | torch.Tensor  # decoded RGB: a Pillow image or uint8 [3, H, W]


@dataclass(frozen=True)
class Preprocessing:
    """One named evaluation preprocessing: how it decodes, what it makes, and what it does, in words."""

    name: str
    decoder: Literal["tensorflow", "pillow"]  # the JPEG decoder the source pipeline uses
    dtype: torch.dtype  # of its pixels: uint8 where the source rounds, float32 where it does not
    prepare: Callable[[Image, int], torch.Tensor]  # (decoded image, S) -> pixels [3, S, S], 0-255
    summary: Callable[[int], str]  # what it does at image size S, for the one line eval and predict say


def _as_tensor(image: Image) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        return image
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)


def _as_pil(image: Image) -> PIL.Image.Image:
    if isinstance(image, torch.Tensor):
        return PIL.Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    return image if image.mode == "RGB" else image.convert("RGB")


def _inception(image: Image, size: int) -> torch.Tensor:
    return eval_image(_as_tensor(image), size)


def _inception_tf2(image: Image, size: int) -> torch.Tensor:
    return eval_image(_as_tensor(image), size, half_pixel_centers=True)


def _shorter_side_then_centre_crop(image: Image, resize: int, size: int, interpolation: str) -> torch.Tensor:
    """torchvision's own `Resize(resize)` (shorter side) and `CenterCrop(size)` on a Pillow image: the
    functions its `ImageClassification` and timm's eval transform call, so the pixels are theirs."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    mode = InterpolationMode(interpolation)
    resized = TF.resize(_as_pil(image), [resize], interpolation=mode, antialias=True)
    return TF.pil_to_tensor(TF.center_crop(resized, [size]))


def torchvision_resize(size: int) -> int:
    """The shorter side torchvision resizes to before cropping `size`: 342 for 299, in proportion else."""
    return round(size * TORCHVISION_RESIZE_SIZE / TORCHVISION_CROP_SIZE)


def timm_resize(size: int) -> int:
    """timm's `transforms_imagenet_eval`: math.floor(size / crop_pct), 341 for 299."""
    return math.floor(size / TIMM_CROP_PCT)


def _torchvision(image: Image, size: int) -> torch.Tensor:
    return _shorter_side_then_centre_crop(image, torchvision_resize(size), size, TORCHVISION_INTERPOLATION)


def _timm(image: Image, size: int) -> torch.Tensor:
    return _shorter_side_then_centre_crop(image, timm_resize(size), size, TIMM_INTERPOLATION)


def _keras(image: Image, size: int) -> torch.Tensor:
    """`keras.utils.load_img(path, target_size=(S, S))`: Pillow's resize of the whole image, no crop."""
    resample = PIL.Image.Resampling[KERAS_INTERPOLATION.upper()]
    return _as_tensor(_as_pil(image).resize((size, size), resample))


PREPROCESSINGS: dict[str, Preprocessing] = {
    p.name: p
    for p in (
        Preprocessing(
            "inception",
            "tensorflow",
            torch.float32,
            _inception,
            lambda s: f"central crop 0.875, TF1 bilinear resize to {s}",
        ),
        Preprocessing(
            "inception-tf2",
            "tensorflow",
            torch.float32,
            _inception_tf2,
            lambda s: f"central crop 0.875, TF2 bilinear resize (half-pixel centres) to {s}",
        ),
        Preprocessing(
            "torchvision",
            "pillow",
            torch.uint8,
            _torchvision,
            lambda s: f"shorter side to {torchvision_resize(s)} (bilinear), centre crop {s}",
        ),
        Preprocessing(
            "timm",
            "pillow",
            torch.uint8,
            _timm,
            lambda s: f"shorter side to {timm_resize(s)} ({TIMM_INTERPOLATION}), centre crop {s}",
        ),
        Preprocessing(
            "keras",
            "pillow",
            torch.uint8,
            _keras,
            lambda s: f"whole image to {s}x{s} ({KERAS_INTERPOLATION}), no crop",
        ),
    )
}
assert tuple(PREPROCESSINGS) == EVAL_PREPROCESSINGS  # config.py names them for the CLI and EvalConfig


def get_preprocessing(name: str) -> Preprocessing:
    """The preprocessing called `name`; an unknown name is an Inception3Error listing the known ones."""
    if name not in PREPROCESSINGS:
        raise Inception3Error(
            f"unknown evaluation preprocessing {name!r}; pass --preprocessing with one of "
            f"{', '.join(PREPROCESSINGS)}"
        )
    return PREPROCESSINGS[name]


def choose_preprocessing(override: str | None, weights_own: str | None) -> str:
    """`override` when given, else the one the weights name ("inception" when they name none)."""
    if override is not None:
        return get_preprocessing(override).name
    name = weights_own or DEFAULT_EVAL_PREPROCESSING
    if name not in PREPROCESSINGS:
        raise Inception3Error(
            f"the weights ask for evaluation preprocessing {name!r}, which inception3 does not know; "
            f"pass --preprocessing with one of {', '.join(PREPROCESSINGS)}"
        )
    return name


def preprocessing_note(name: str, size: int, overridden: bool) -> str | None:
    """The one line eval and predict say when the preprocessing is not inception3's own; else None."""
    if name == DEFAULT_EVAL_PREPROCESSING:
        return None
    why = "as --preprocessing asks" if overridden else "the weights' own"
    return f"evaluation preprocessing: {name} ({PREPROCESSINGS[name].summary(size)}; {why})"


def decode(encoded: bytes, name: str) -> Image:
    """An encoded image decoded as preprocessing `name`'s source pipeline decodes it.

    Raises one of `decode.DECODE_ERRORS` on bytes that are not an image.
    """
    if PREPROCESSINGS[name].decoder == "tensorflow":
        return decode_image(encoded)
    with open_image(encoded) as image:
        return image.convert("RGB")


def prepare(image: Image, size: int, name: str) -> torch.Tensor:
    """A decoded image as preprocessing `name` makes it: pixels [3, size, size] on the 0-255 scale."""
    return PREPROCESSINGS[name].prepare(image, size)
