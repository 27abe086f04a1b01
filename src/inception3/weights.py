"""The one reader of weight files: ours, safetensors, plain state dicts, torchvision, timm, Keras, TF-Slim.

`read_weights` turns any of them into this model's state dict and the `ModelConfig` it describes;
`load_model` builds the network from that. What a file is comes from its contents (`weights_format`
names it when they cannot tell, and a name the contents contradict is refused): a TF-Slim checkpoint
by its `.index`, Keras' by the HDF5 signature or a zip holding `model.weights.h5`, safetensors by
its header, the rest is a PyTorch file: an inception3 checkpoint, torchvision's layout, or this
model's own state dict. Each file's meta names the evaluation preprocessing its weights were trained
for ("eval_preprocessing": "inception" for inception3's and TF-Slim's unless the file stores another,
"torchvision", "timm" when the caller says the file is timm's, "keras").
The conversions of other projects' layouts follow; Keras' is in `inception3.keras_weights`.

torchvision's `Inception3` (and timm's `InceptionV3`, which keeps its names) already uses TF-Slim's
names for the top-level blocks (`Conv2d_1a_3x3`, `Mixed_5b`, `AuxLogits`, ...). Inside a block its
names are its own (`branch5x5_1`, `branch3x3dbl_2`), but its convolutions are registered in TF-Slim's
branch order, so they pair one-to-one, in order, with this model's convolutions of the same block;
every pair's shape is checked. The classifier `fc` becomes `Logits.Conv2d_1c_1x1` (a 1×1 conv), the
aux `fc` becomes `AuxLogits.Conv2d_2b_1x1`.

Batch norm: torchvision's has a gamma, ours (TF-Slim's `scale=False`) does not. In inference

    gamma · (conv(W, x) − mean) / sqrt(var + eps) + beta
      = (conv(gamma·W, x) − gamma·mean) / sqrt(var + eps) + beta,

so gamma is folded into the convolution's output channels and the moving mean, the variance and
beta are kept: the logits are the same for any gamma (negative and zero included). The folded moving
mean and variance describe the unscaled convolution's statistics; a fine-tuning run's moving averages
move them on from there.

Pooling: torchvision averages the Mixed blocks' 3×3 pool *including* the zero padding, TensorFlow
(and this model) over the real pixels only. The weights are the same either way; `exact_pooling`
switches the loaded model's pools to torchvision's so the logits are identical. That switch is a
property of the module, not a weight: a state dict saved from the model reloads with TF pooling.

TF-Slim's `inception_v3.ckpt` (1001 outputs, class 0 the background) is read through TensorFlow
when it is installed; its variable names map by `model.slim_to_torch_key`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from inception3.config import IMAGE_SIZE, MIN_IMAGE_SIZE, WEIGHTS_FORMATS, ModelConfig
from inception3.errors import Inception3Error
from inception3.imagenet import NUM_CLASSES as IMAGENET_CLASSES
from inception3.imagenet import imagenet_class_names
from inception3.keras_weights import is_keras_file, read_keras
from inception3.model import InceptionV3, aux_kernel, is_update_count, slim_to_torch_key
from inception3.run.checkpoint import FORMAT, load_checkpoint
from inception3.run.layout import CHECKPOINTS

TF_BACKGROUND_CLASSES = 1001  # TF-Slim's ImageNet logits: class 0 is the background
TORCHVISION_KEY = "Conv2d_1a_3x3.conv.weight"  # torchvision's (and timm's) name for the first conv
LOGITS_KEY = "Logits.Conv2d_1c_1x1.weight"
# What each `weights_format` is, for the message that refuses one the contents contradict.
FOUND = {
    "inception3": "an inception3 checkpoint or export",
    "safetensors": "a safetensors file of this model's state dict",
    "state-dict": "a PyTorch state dict of this model",
    "torchvision": "torchvision's (or timm's, same names) Inception v3",
    "timm": "timm's Inception v3",
    "keras": "Keras weights (HDF5 or .keras)",
    "tf-slim": "a TF-Slim (TensorFlow) checkpoint",
}


@dataclass
class Weights:
    """A weights file as this model's state dict, the network it describes, and what else it says.

    `meta` holds "source" (inception3, safetensors, state dict, torchvision, timm, keras, TF-Slim),
    "step", "class_names" (None when the file has none), "final", "ema" (whether averaged weights)
    and "eval_preprocessing" (module docstring). A Keras file without its classifier has no
    `Logits.` keys: it can start a fine-tune, not classify.
    """

    state: dict[str, Tensor]
    config: ModelConfig | None  # None when the file does not say (a plain state dict): see config_from_state
    meta: dict


def read_weights(
    path: Path, *, use_ema: bool = True, strict: bool = False, weights_format: str | None = None
) -> Weights:
    """Read any weights file the project accepts; the one place that does.

    An inception3 checkpoint (its moving averages unless `use_ema` is off), a `.safetensors` file
    (with the config and class names `inception3 export` writes in its metadata, or without), a
    plain state dict (wrapped in "state_dict"/"model" or not, DDP's `module.` and compile's
    `_orig_mod.` prefixes removed), torchvision's or timm's Inception v3, Keras' InceptionV3 (its
    HDF5 weights or a `.keras` file, through h5py), and TF-Slim's checkpoint (a prefix with an
    `.index` file, through TensorFlow). Pickles that carry code are refused.
    `strict`: source tensors left unused by a conversion are an error instead of a warning.
    `weights_format`: one of `WEIGHTS_FORMATS`, or None to tell from the contents.
    Weights of 1,000 classes that come without names get ImageNet-1k's (`inception3.imagenet`).
    """
    weights = _read_weights(Path(path), use_ema, strict, weights_format)
    classes = weights.config.num_classes if weights.config else _num_outputs(weights.state)
    if weights.meta.get("class_names") is None and classes == IMAGENET_CLASSES:
        weights.meta["class_names"] = imagenet_class_names()
    return weights


def _num_outputs(state: Mapping[str, Tensor]) -> int | None:
    logits = state.get(LOGITS_KEY)
    return int(logits.shape[0]) if logits is not None else None


def _read_weights(path: Path, use_ema: bool, strict: bool, weights_format: str | None) -> Weights:
    """`read_weights` without the class-name default."""
    if weights_format is not None and weights_format not in WEIGHTS_FORMATS:
        raise Inception3Error(
            f"unknown weights format {weights_format!r}; choose one of {', '.join(WEIGHTS_FORMATS)}"
        )
    path = Path(path)
    if path.suffix == ".index" or Path(f"{path}.index").is_file():
        _expect(path, weights_format, "tf-slim")
        return _read_tf_slim(path.with_suffix("") if path.suffix == ".index" else path, strict)
    if not path.is_file():
        raise Inception3Error(
            f"{path}: no such checkpoint or weights file; check the path (a run keeps its "
            f"checkpoints in RUN/{CHECKPOINTS}/)"
        )
    if is_keras_file(path):
        _expect(path, weights_format, "keras")
        return _read_keras(path)
    safetensors = path.suffix == ".safetensors" or _is_safetensors(path)
    if weights_format in ("keras", "tf-slim"):  # before a reader's error about another format
        found = (
            "a safetensors file" if safetensors else "neither HDF5 nor a .keras zip nor a checkpoint prefix"
        )
        raise Inception3Error(
            f"{path}: weights format {weights_format!r} was given, but the file is {found}; "
            "check the path, or leave the format out to detect it"
        )
    info: dict[str, str] = {}
    if safetensors:
        state, info = _read_safetensors(path)
    else:
        state = load_checkpoint(path)
        if state.get("format") == FORMAT:
            _expect(path, weights_format, "inception3")
            return _from_checkpoint(state, use_ema)
        for key in ("state_dict", "model", "state_dict_ema"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise Inception3Error(f"{path}: neither an inception3 checkpoint nor a plain state dict of tensors")
    state = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state.items()}
    if TORCHVISION_KEY in state:
        _expect(path, weights_format, "torchvision", also=("timm",))
        source = weights_format or "torchvision"  # timm keeps torchvision's names: only the caller knows
        model = _from_torchvision(state, strict=strict, what="torchvision/timm")
        return Weights(model.state_dict(), model.config, _plain_meta(source, eval_preprocessing=source))
    if "model_config" in info:
        _expect(path, weights_format, "inception3", also=("safetensors",))
        names = json.loads(info["class_names"]) if "class_names" in info else None
        meta = {
            "source": "inception3",
            "step": int(info.get("step", 0)),
            "class_names": names,
            "final": False,
            "ema": info.get("ema") == "true",
            "eval_preprocessing": info.get("eval_preprocessing", "inception"),
        }
        return Weights(state, ModelConfig(**json.loads(info["model_config"])), meta)
    _expect(path, weights_format, "safetensors" if safetensors else "state-dict", also=("inception3",))
    return Weights(state, None, _plain_meta("safetensors" if safetensors else "state dict"))


def _expect(path: Path, given: str | None, found: str, also: tuple[str, ...] = ()) -> None:
    """Refuse a `weights_format` that the contents contradict, naming what they are."""
    if given is not None and given != found and given not in also:
        raise Inception3Error(
            f"{path}: weights format {given!r} was given, but the file is {FOUND[found]} ({found!r}); "
            f"pass {found!r} or leave the format out to detect it"
        )


def _is_safetensors(path: Path) -> bool:
    """safetensors' header: an 8-byte little-endian length, then the JSON object it measures."""
    with open(path, "rb") as f:
        head = f.read(9)
    size = int.from_bytes(head[:8], "little")
    return len(head) == 9 and head[8:] == b"{" and 0 < size <= path.stat().st_size - 8


def _read_keras(path: Path) -> Weights:
    """Keras' InceptionV3 weights (`inception3.keras_weights`); without the top, no `Logits.` keys."""
    state, cfg, top = read_keras(path)
    meta = _plain_meta("keras", eval_preprocessing="keras") | {"include_top": top}
    return Weights(state, cfg if top else None, meta)


def load_model(
    path: Path, *, use_ema: bool = True, weights_format: str | None = None
) -> tuple[InceptionV3, dict]:
    """The model of any weights file (`read_weights`), in eval mode, and the file's metadata.

    The metadata also holds "model_config" (as a dict) and "image_size". Weights without a
    classifier (Keras' `include_top=False`) are refused: they can only start a fine-tune.
    torchvision's and timm's weights get their own average pooling, so eval, predict and export
    give their logits exactly (module docstring).
    """
    weights = read_weights(path, use_ema=use_ema, weights_format=weights_format)
    if LOGITS_KEY not in weights.state and weights.meta["source"] == "keras":
        raise Inception3Error(
            f"{path}: Keras weights without the classifier (include_top=False, a _notop file) cannot "
            "classify; use the file with the top, or start a fine-tune from them with --init-from"
        )
    cfg = weights.config or config_from_state(weights.state)
    try:
        model = _model(dataclasses.replace(weights, config=cfg))
    except RuntimeError as error:
        raise Inception3Error(
            f"{path}: weights do not fit the model they describe: {str(error).splitlines()[0]}"
        ) from None
    if weights.meta["source"] in ("torchvision", "timm"):  # their logits exactly: padded average pools
        use_torchvision_pooling(model)
    meta = weights.meta | {"model_config": dataclasses.asdict(cfg), "image_size": cfg.image_size}
    return model, meta


def _model(weights: Weights) -> InceptionV3:
    """The eval-mode network of weights whose config is known."""
    with torch.device("meta"):  # no random initialisation of weights about to be replaced
        model = InceptionV3.from_config(weights.config)
    model.load_state_dict(weights.state, assign=True)
    return model.eval()


def _plain_meta(source: str, eval_preprocessing: str = "inception") -> dict:
    return {
        "source": source,
        "step": 0,
        "class_names": None,
        "final": False,
        "ema": False,
        "eval_preprocessing": eval_preprocessing,
    }


def _from_checkpoint(state: dict, use_ema: bool) -> Weights:
    weights = state["ema"] if use_ema and state.get("ema") else state["model"]
    meta = {
        key: value
        for key, value in state.items()
        if key not in ("model", "ema", "optimizer", "rng", "data", "model_config")
    }
    meta |= {"source": "inception3", "ema": weights is state.get("ema")}
    meta.setdefault("class_names", None)
    meta.setdefault("eval_preprocessing", "inception")
    return Weights(weights, ModelConfig(**state["model_config"]), meta)


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            info = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - not a dict
    except Exception as error:  # safetensors raises its own and OS errors alike
        raise Inception3Error(f"{path}: not a readable safetensors file ({error})") from None
    return state, info


def config_from_state(state: Mapping[str, Tensor]) -> ModelConfig:
    """The ModelConfig of a plain InceptionV3 state dict, from its tensor shapes."""
    logits = state.get("Logits.Conv2d_1c_1x1.weight")
    first = state.get("Conv2d_1a_3x3.weight")
    if logits is None or first is None:
        raise Inception3Error(
            "not an inception3 checkpoint nor an InceptionV3 state dict "
            "(no Logits.Conv2d_1c_1x1.weight / Conv2d_1a_3x3.weight)"
        )
    aux = any(key.startswith("AuxLogits.") for key in state)
    kernels = (re.match(r"AuxLogits\.Conv2d_2a_(\d+)x\d+\.", k) for k in state)
    kernel = next((int(m.group(1)) for m in kernels if m), 5)
    image_size = next(
        (size for size in range(IMAGE_SIZE, MIN_IMAGE_SIZE - 1, -1) if aux_kernel(size) == kernel), IMAGE_SIZE
    )
    candidates = [first.shape[0] / 32] if first.shape[0] > 16 else [0.5, 0.25, 0.125, 0.0625]
    for multiplier in candidates:
        cfg = ModelConfig(
            num_classes=logits.shape[0], aux_logits=aux, depth_multiplier=multiplier, image_size=image_size
        )
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in InceptionV3.from_config(cfg).state_dict().items()}
        if all(k in state and state[k].shape == s for k, s in shapes.items() if not is_update_count(k)):
            return cfg
    raise Inception3Error(
        "the state dict's tensor shapes match no InceptionV3 width "
        f"(first conv has {first.shape[0]} channels)"
    )


def _conv_modules(module: nn.Module, prefix: str) -> list[str]:
    """Keys (without '.weight') of this model's ConvBN layers inside a block, in network order."""
    return [
        f"{prefix}.{name}" if name else prefix
        for name, child in module.named_modules()
        if hasattr(child, "BatchNorm")
    ]


def _source_convs(state: Mapping[str, Tensor], block: str) -> list[str]:
    """torchvision's BasicConv2d prefixes inside a block, in registration (state dict) order."""
    seen: dict[str, None] = {}
    for key in state:
        if key.startswith(f"{block}.") and key.endswith(".conv.weight"):
            seen[key.removesuffix(".conv.weight")] = None
    if f"{block}.conv.weight" in state:
        seen[block] = None
    return list(seen)


def _fold(state: Mapping[str, Tensor], source: str) -> dict[str, Tensor]:
    """One torchvision BasicConv2d as our ConvBN, gamma folded into the weight (module docstring)."""
    gamma = state[f"{source}.bn.weight"].float()
    return {
        "weight": state[f"{source}.conv.weight"].float() * gamma[:, None, None, None],
        "BatchNorm.beta": state[f"{source}.bn.bias"].clone(),
        "BatchNorm.moving_mean": state[f"{source}.bn.running_mean"].float() * gamma,
        "BatchNorm.moving_variance": state[f"{source}.bn.running_var"].clone(),
    }


def _classifier(weight: Tensor, bias: Tensor, drop_background: bool) -> tuple[Tensor, Tensor]:
    if drop_background:
        weight, bias = weight[1:], bias[1:]
    return weight.reshape(*weight.shape, 1, 1).clone(), bias.clone()


def convert_torchvision(
    state: Mapping[str, Tensor], model: InceptionV3, *, drop_background: bool = False
) -> tuple[dict[str, Tensor], list[str]]:
    """torchvision/timm `Inception3` tensors as `model`'s state dict, and the source keys left over."""
    target = model.state_dict()
    out: dict[str, Tensor] = {}
    used: set[str] = set()
    blocks = [
        name
        for name, child in model.named_children()
        if child is not None and any(hasattr(m, "BatchNorm") for m in child.modules())
    ]
    for block in blocks:
        ours, theirs = _conv_modules(getattr(model, block), block), _source_convs(state, block)
        if len(ours) != len(theirs):
            raise Inception3Error(
                f"block {block}: the source has {len(theirs)} convolutions, this model "
                f"{len(ours)}; not an Inception v3 of torchvision's layout"
            )
        for mine, source in zip(ours, theirs, strict=True):
            for key, value in _fold(state, source).items():
                if value.shape != target[f"{mine}.{key}"].shape:
                    raise Inception3Error(
                        f"{source}: shape {list(value.shape)} does not fit {mine}.{key} "
                        f"{list(target[f'{mine}.{key}'].shape)}"
                    )
                out[f"{mine}.{key}"] = value
            used.update(k for k in state if k.startswith(f"{source}.conv.") or k.startswith(f"{source}.bn."))
    heads = [("fc", "Logits.Conv2d_1c_1x1")]
    if model.AuxLogits is not None:
        heads.append(("AuxLogits.fc", "AuxLogits.Conv2d_2b_1x1"))
    for source, mine in heads:
        weight, bias = _classifier(state[f"{source}.weight"], state[f"{source}.bias"], drop_background)
        out[f"{mine}.weight"], out[f"{mine}.bias"] = weight, bias
        used.update((f"{source}.weight", f"{source}.bias"))
    leftover = sorted(k for k in state if k not in used and not is_update_count(k))
    return out, leftover


def _in_torchvision_order(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Source keys in torchvision's registration order (safetensors files store them sorted)."""
    from torchvision.models.inception import Inception3

    with torch.device("meta"):
        order = Inception3(aux_logits=True, init_weights=False).state_dict()
    return {k: state[k] for k in order if k in state} | {k: v for k, v in state.items() if k not in order}


def use_torchvision_pooling(model: InceptionV3) -> InceptionV3:
    """Make the Mixed blocks' 3×3 average pools count the zero padding, as torchvision's do."""
    for module in model.modules():
        if isinstance(module, nn.AvgPool2d):
            module.count_include_pad = True
    return model


def _from_torchvision(state: Mapping[str, Tensor], *, strict: bool, what: str) -> InceptionV3:
    """torchvision-layout tensors as an InceptionV3 in eval mode (TF pooling)."""
    if "fc.weight" not in state or TORCHVISION_KEY not in state:
        raise Inception3Error(f"not a {what} Inception v3 state dict (no fc.weight / {TORCHVISION_KEY})")
    state = _in_torchvision_order(dict(state))
    classes = state["fc.weight"].shape[0]
    drop_background = classes == TF_BACKGROUND_CLASSES
    aux = "AuxLogits.fc.weight" in state
    cfg = ModelConfig(num_classes=classes - drop_background, aux_logits=aux, image_size=IMAGE_SIZE)
    with torch.device("meta"):  # no random initialisation of weights about to be replaced
        model = InceptionV3.from_config(cfg)
    weights, leftover = convert_torchvision(state, model, drop_background=drop_background)
    if leftover:
        message = f"{what} weights not used: {', '.join(leftover[:10])}" + (
            " ..." if len(leftover) > 10 else ""
        )
        if strict:
            raise Inception3Error(message + " (pass strict=False to ignore them)")
        warnings.warn(message, stacklevel=3)
    model.load_state_dict(weights, assign=True)
    return model.eval()


def _load_inception3(
    source: Path | Mapping[str, Tensor], *, strict: bool, exact_pooling: bool, what: str
) -> InceptionV3:
    if isinstance(source, str | Path):
        weights = read_weights(Path(source), strict=strict)
        if weights.meta["source"] != "torchvision":
            raise Inception3Error(
                f"{source}: not a {what} Inception v3 state dict (no fc.weight / {TORCHVISION_KEY})"
            )
        model = _model(weights)
    else:
        model = _from_torchvision(source, strict=strict, what=what)
    return use_torchvision_pooling(model) if exact_pooling else model


def load_torchvision(
    source: Path | Mapping[str, Tensor], *, strict: bool = True, exact_pooling: bool = True
) -> InceptionV3:
    """torchvision's `inception_v3` weights (a file or a state dict) as an InceptionV3 in eval mode.

    Same logits as torchvision's model with `transform_input=False` (inputs in [-1, 1]). A 1001-class
    classifier loses TF's background row. `strict`: unused source tensors are an error (else a
    warning). `exact_pooling`: torchvision's padded average pools (module docstring).
    """
    return _load_inception3(source, strict=strict, exact_pooling=exact_pooling, what="torchvision")


def load_timm(
    source: Path | Mapping[str, Tensor], *, strict: bool = True, exact_pooling: bool = True
) -> InceptionV3:
    """timm's `inception_v3` weights (its `tf_`/`adv_`/`gluon_` variants too): torchvision's names.

    timm's TF-ported weights keep 1001 classes; the background row is dropped.
    """
    return _load_inception3(source, strict=strict, exact_pooling=exact_pooling, what="timm")


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
        message = f"TF-Slim variables not used: {', '.join(leftover[:10])}"
        if strict:
            raise Inception3Error(message + " (pass strict=False to ignore them)")
        warnings.warn(message, stacklevel=2)
    for key, value in target.items():
        if key in found and found[key].shape != value.shape:
            raise Inception3Error(
                f"TF-Slim variable for {key} has shape {list(found[key].shape)}, expected {list(value.shape)}"
            )
    model.load_state_dict({k: found[k] for k in target if k in found}, assign=True)
    return model.eval()


def load_tf_slim(checkpoint: Path, *, strict: bool = False) -> InceptionV3:
    """TF-Slim's `inception_v3.ckpt` (a checkpoint prefix) read through TensorFlow, if installed."""
    return _model(_read_tf_slim(Path(checkpoint), strict))


def _read_tf_slim(checkpoint: Path, strict: bool) -> Weights:
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
    return Weights(model.state_dict(), model.config, _plain_meta("TF-Slim"))
