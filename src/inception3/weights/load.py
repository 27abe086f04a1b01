"""The one reader of weight files (`read_weights`) and the network it gives (`load_model`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from inception3.errors import Inception3Error
from inception3.imagenet import NUM_CLASSES as IMAGENET_CLASSES
from inception3.imagenet import imagenet_class_names
from inception3.model import InceptionV3
from inception3.weights.convert import (
    config_from_state,
    in_model_dtype,
    model_from,
    num_outputs,
    use_torchvision_pooling,
)
from inception3.weights.file import ReadOptions, WeightsFile
from inception3.weights.meta import Weights, WeightsMeta
from inception3.weights.registry import identify


def read_weights(
    path: Path, *, use_ema: bool = True, strict: bool = False, weights_format: str | None = None
) -> Weights:
    """Read any weights file the project accepts; the one place that does.

    An inception3 checkpoint (its moving averages unless `use_ema` is off), a `.safetensors` file
    (with the config and class names `inception3 export` writes in its metadata, or without), a
    plain state dict (wrapped in "state_dict"/"model" or not, DDP's `module.` and compile's
    `_orig_mod.` prefixes removed), torchvision's or timm's Inception v3 (a file, or timm's model folder
    of `config.json` and `model.safetensors`), Keras' InceptionV3 (its
    HDF5 weights or a `.keras` file, through h5py), and TF-Slim's checkpoint (a prefix with an
    `.index` file, through TensorFlow). Pickles that carry code are refused.
    `strict`: source tensors left unused by a conversion are an error instead of a warning.
    `weights_format`: a name of `registry.FORMATS`, or None to tell from the contents (a name the
    contents contradict is refused). Weights of 1,000 classes that come without names get
    ImageNet-1k's (`inception3.imagenet`). Floating tensors come back as float32, whatever precision
    the file stores (`convert.in_model_dtype`).
    """
    file = WeightsFile(Path(path))
    reader = identify(file, weights_format)
    weights = reader.read(file, ReadOptions(use_ema=use_ema, strict=strict, given=weights_format))
    weights = dataclasses.replace(weights, state=in_model_dtype(weights.state))  # a float16 file too
    classes = weights.config.num_classes if weights.config else num_outputs(weights.state)
    if weights.meta.class_names is None and classes == IMAGENET_CLASSES:
        names = tuple(imagenet_class_names())
        weights = dataclasses.replace(weights, meta=dataclasses.replace(weights.meta, class_names=names))
    return weights


def load_model(
    path: Path, *, use_ema: bool = True, weights_format: str | None = None
) -> tuple[InceptionV3, WeightsMeta]:
    """The model of any weights file (`read_weights`), in eval mode, and what the file says of it.

    The model's `config` holds its size and classes. Weights without a classifier (Keras'
    `include_top=False`) are refused: they can only start a fine-tune. torchvision's and timm's
    weights get their own average pooling, so eval, predict and export give their logits exactly
    (`convert.use_torchvision_pooling`).
    """
    weights = read_weights(path, use_ema=use_ema, weights_format=weights_format)
    if not weights.meta.include_top:
        raise Inception3Error(
            f"{path}: Keras weights without the classifier (include_top=False, a _notop file) cannot "
            "classify; use the file with the top, or start a fine-tune from them with --init-from"
        )
    try:
        cfg = weights.config or config_from_state(weights.state)
    except Inception3Error as error:  # its messages are about the tensors: say which file holds them
        raise Inception3Error(f"{path}: {error}") from None
    try:
        model = model_from(dataclasses.replace(weights, config=cfg))
    except RuntimeError as error:
        raise Inception3Error(
            f"{path}: weights do not fit the model they describe: {str(error).splitlines()[0]}"
        ) from None
    if weights.meta.source in ("torchvision", "timm"):  # their logits exactly: padded average pools
        use_torchvision_pooling(model)
    return model, weights.meta
