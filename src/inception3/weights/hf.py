"""A timm / Hugging Face model folder: `model.safetensors` in timm's names and timm's `config.json`.

The folder `timm.models.save_for_hf` writes (and the Hugging Face Hub serves): `config.json` holds
`architecture` ("inception_v3"), `num_classes`, `label_names` and the `pretrained_cfg` (input size,
mean and std, interpolation, crop_pct, crop_mode) that timm's `resolve_data_config` turns into its
evaluation transform; the weights are timm's `InceptionV3` state dict, which has torchvision's names
(`weights/torchvision.py` converts). timm loads it with no network as
`timm.create_model("local-dir:FOLDER", pretrained=True)`.

inception3 adds one key timm ignores, `inception3`: the weights' own preprocessing name, step, whether
they are the moving averages, and whose pooling they were trained with, so reading the folder back
gives the network that was exported, not timm's approximation of it. A folder without it (timm's
own) is read as timm's weights, with timm's preprocessing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from inception3.config import EVAL_CENTRAL_FRACTION, KERAS_INTERPOLATION, TIMM_CROP_PCT, TIMM_INTERPOLATION
from inception3.data.preprocess import torchvision_resize
from inception3.errors import Inception3Error
from inception3.files import atomic_write, write_text_atomic
from inception3.model import InceptionV3
from inception3.weights import torchvision
from inception3.weights.convert import counts_padding, require_full_width
from inception3.weights.file import HF_CONFIG, HF_WEIGHTS, ReadOptions, WeightsFile
from inception3.weights.meta import Weights, WeightsMeta

DESCRIPTION = "a timm / Hugging Face model folder (config.json and model.safetensors)"
ALSO = ("timm",)  # the folder holds timm's weights
PROJECT = "timm"
COUNTS_PADDING = True  # timm's network (weights/timm.py)
ARCHITECTURE = "inception_v3"
FILES = (HF_WEIGHTS, HF_CONFIG)  # in the order written: a folder is read only once its config is there
EXPORT_KEY = "inception3"
INPUT_RANGE = (0.5, 0.5, 0.5)  # mean = std = 0.5: the network takes (x - 0.5) / 0.5, pixels in [-1, 1]


def detect(file: WeightsFile) -> bool:
    """A directory with `config.json` and `model.safetensors` (`weights.file.is_model_folder`)."""
    return file.kind == "hf"


def read(file: WeightsFile, options: ReadOptions) -> Weights:
    """The folder's weights (torchvision's names), its class names, input size and preprocessing."""
    config = _config(file.path)
    weights = torchvision.read_as(WeightsFile(file.path / HF_WEIGHTS), options, "timm")
    ours = config.get(EXPORT_KEY) or {}
    classes = weights.config.num_classes
    names = _label_names(file.path, config.get("label_names"), classes)
    meta = WeightsMeta(
        source=str(ours.get("source", "timm")),
        step=int(ours.get("step", 0)),
        class_names=names,
        ema=bool(ours.get("ema", False)),
        eval_preprocessing=str(ours.get("eval_preprocessing", "timm")),
    )
    cfg = weights.config
    size = (config.get("pretrained_cfg") or {}).get("input_size")
    if not cfg.aux_logits and isinstance(size, list) and len(size) == 3:  # the aux kernel fixes it otherwise
        cfg = dataclasses.replace(cfg, image_size=int(size[1]))
    return Weights(weights.state, cfg, meta)


def _config(folder: Path) -> dict[str, Any]:
    path = folder / HF_CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise Inception3Error(f"{path}: not a readable JSON config ({error})") from None
    architecture = config.get("architecture") if isinstance(config, dict) else None
    if architecture != ARCHITECTURE:
        raise Inception3Error(
            f"{path}: architecture {architecture!r}, not timm's {ARCHITECTURE!r}; not Inception v3 weights"
        )
    return config


def _label_names(folder: Path, names: Any, classes: int) -> tuple[str, ...] | None:
    """timm's `label_names`: a list, or a dict of classifier index -> name; None when absent."""
    if not names:
        return None
    if isinstance(names, dict):
        names = [names.get(str(i), names.get(i, str(i))) for i in range(classes)]
    if len(names) != classes:
        raise Inception3Error(
            f"{folder / HF_CONFIG}: {len(names)} label_names for a classifier of {classes} outputs; "
            "fix label_names or the weights"
        )
    return tuple(str(name) for name in names)


def data_config(preprocessing: str, image_size: int) -> tuple[dict[str, Any], str | None]:
    """timm's `pretrained_cfg` preprocessing fields for inception3's evaluation preprocessing, and a
    line saying where timm's transform is only an approximation of it (None where it is the same)."""
    common = {"input_size": [3, image_size, image_size], "mean": INPUT_RANGE, "std": INPUT_RANGE}
    if preprocessing == "timm":
        timm = {"interpolation": TIMM_INTERPOLATION, "crop_pct": TIMM_CROP_PCT, "crop_mode": "center"}
        return common | timm, None
    if preprocessing == "torchvision":  # floor(S / crop_pct) must be the 342 torchvision resizes to
        crop_pct = image_size / (torchvision_resize(image_size) + 0.5)
        return common | {"interpolation": "bilinear", "crop_pct": crop_pct, "crop_mode": "center"}, None
    if preprocessing == "keras":
        squash = {"interpolation": KERAS_INTERPOLATION, "crop_pct": 1.0, "crop_mode": "squash"}
        return common | squash, None
    approximated = (
        f"timm's config cannot state the {preprocessing!r} preprocessing (TensorFlow's central crop, "
        "then its bilinear resize of the crop): it says crop_pct 0.875 and bilinear, which timm does "
        "with Pillow on the shorter side; inception3 reads the exact name back"
    )
    return common | {
        "interpolation": "bilinear",
        "crop_pct": EVAL_CENTRAL_FRACTION,
        "crop_mode": "center",
    }, approximated


def write(model: InceptionV3, folder: Path, meta: WeightsMeta) -> list[str]:
    """`folder/model.safetensors` (timm's names, no aux head) and `folder/config.json`, each written
    atomically, the config last; returns what the folder cannot hold, one line each."""
    from safetensors.torch import save

    require_full_width(model.config, PROJECT)
    classes = model.config.num_classes
    data, approximated = data_config(meta.eval_preprocessing, model.config.image_size)
    config = {
        "architecture": ARCHITECTURE,
        "num_classes": classes,
        "num_features": model.num_features,
        "global_pool": "avg",
        "label_names": list(meta.class_names or (str(i) for i in range(classes))),
        "model_args": {"num_classes": classes, "in_chans": 3, "global_pool": "avg"},
        "pretrained_cfg": {
            "custom_load": False,
            **data,
            "fixed_input_size": False,
            "num_classes": classes,
            "first_conv": "Conv2d_1a_3x3.conv",
            "classifier": "fc",
        },
        EXPORT_KEY: {
            "source": meta.source if counts_padding(model) else "inception3",
            "eval_preprocessing": meta.eval_preprocessing,
            "step": meta.step,
            "ema": meta.ema,
        },
    }
    state = torchvision.to_torchvision(model, aux=False)
    with atomic_write(folder / HF_WEIGHTS) as f:
        f.write(save(state, metadata={"format": "pt"}))
    write_text_atomic(folder / HF_CONFIG, json.dumps(config, indent=2) + "\n")
    lost = [approximated] if approximated else []
    if model.AuxLogits is not None:
        lost.append("the aux head is left out: timm's inception_v3 loads pretrained weights without it")
    return lost
