"""TF-Slim's `inception_v3.ckpt` (1001 outputs, class 0 the background), read through TensorFlow.

A checkpoint prefix with its `.index` beside it (or the `.index` file itself). TensorFlow is needed
only for this format and only when it is read; its variable names map by `model.slim_to_torch_key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inception3.config import ModelConfig
from inception3.data.labels import TF_BACKGROUND_CLASSES
from inception3.errors import Inception3Error
from inception3.model import InceptionV3, is_update_count, slim_to_torch_key
from inception3.weights.convert import config_from_state, model_from, refuse_or_warn
from inception3.weights.file import ReadOptions, WeightsFile
from inception3.weights.meta import Weights, WeightsMeta

DESCRIPTION = "a TF-Slim (TensorFlow) checkpoint"
ALSO: tuple[str, ...] = ()


def detect(file: WeightsFile) -> bool:
    """A TF checkpoint prefix is told by its `.index` file (`weights.file.is_tf_slim_prefix`)."""
    return file.kind == "tf-slim"


def read(file: WeightsFile, options: ReadOptions) -> Weights:
    """The checkpoint's InceptionV3 variables, converted (`convert_tf_slim`)."""
    path = file.path
    return read_checkpoint(path.with_suffix("") if path.suffix == ".index" else path, options.strict)


def convert_tf_slim(variables: Mapping[str, np.ndarray], *, strict: bool = True) -> InceptionV3:
    """TF-Slim `InceptionV3/...` variables (name -> array) as an InceptionV3 in eval mode.

    Kernels go from HWIO to OIHW; the logits' background class (of 1001) is dropped. The width and
    the image size come from the shapes (`config_from_state`). Optimizer slots, `global_step` and
    other scopes are leftovers.
    """
    found: dict[str, Tensor] = {}
    leftover = []
    for name, value in variables.items():
        if not name.startswith("InceptionV3/") or "/RMSProp" in name or "/Momentum" in name:
            leftover.append(name)
            continue
        array = np.asarray(value, dtype=np.float32)
        tensor = torch.from_numpy(array.transpose(3, 2, 0, 1).copy() if array.ndim == 4 else array)
        found[slim_to_torch_key(name)] = tensor
    logits = found.get("Logits.Conv2d_1c_1x1.weight")
    if logits is None:
        raise Inception3Error("no InceptionV3/Logits/Conv2d_1c_1x1/weights: not a TF-Slim Inception v3")
    drop = logits.shape[0] == TF_BACKGROUND_CLASSES
    if drop:
        for key in [k for k in found if k.startswith(("Logits.", "AuxLogits.Conv2d_2b_1x1."))]:
            found[key] = found[key][1:]
    aux = any(k.startswith("AuxLogits.") for k in found)
    try:  # the width (depth_multiplier) and the input size the aux kernel was shrunk for
        cfg = config_from_state(found)
    except Inception3Error:  # the checks below name the variable at fault
        cfg = ModelConfig(num_classes=logits.shape[0] - drop, aux_logits=aux)
    with torch.device("meta"):
        model = InceptionV3.from_config(cfg)
    target = model.state_dict()
    missing = sorted(k for k in set(target) - set(found) if not is_update_count(k))
    if missing:
        raise Inception3Error(
            f"TF-Slim checkpoint lacks {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")
        )
    leftover += sorted(set(found) - set(target))
    if leftover:
        refuse_or_warn(f"TF-Slim variables not used: {', '.join(leftover[:10])}", strict=strict, stacklevel=2)
    for key, value in target.items():
        if key in found and found[key].shape != value.shape:
            raise Inception3Error(
                f"TF-Slim variable for {key} has shape {list(found[key].shape)}, expected {list(value.shape)}"
            )
    model.load_state_dict({k: found[k] for k in target if k in found}, assign=True)
    return model.eval()


def load_tf_slim(checkpoint: Path, *, strict: bool = False) -> InceptionV3:
    """TF-Slim's `inception_v3.ckpt` (a checkpoint prefix) read through TensorFlow, if installed."""
    return model_from(read_checkpoint(Path(checkpoint), strict))


def read_checkpoint(checkpoint: Path, strict: bool) -> Weights:
    """The checkpoint at prefix `checkpoint` as this model's weights (TensorFlow reads it)."""
    try:
        import tensorflow as tf
    except ImportError:
        raise Inception3Error(
            "reading a TensorFlow checkpoint needs TensorFlow: pip install tensorflow "
            "(only for this import; inception3 itself does not use it)"
        ) from None
    try:
        reader = tf.train.load_checkpoint(str(checkpoint))
    except Exception as error:
        raise Inception3Error(f"{checkpoint}: not a readable TensorFlow checkpoint ({error})") from None
    names = reader.get_variable_to_shape_map()
    model = convert_tf_slim({name: reader.get_tensor(name) for name in names}, strict=strict)
    return Weights(model.state_dict(), model.config, WeightsMeta("TF-Slim"))
