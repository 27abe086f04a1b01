"""torchvision's Inception v3 (`inception_v3` weights, in a PyTorch or safetensors file).

torchvision's `Inception3` already uses TF-Slim's names for the top-level blocks (`Conv2d_1a_3x3`,
`Mixed_5b`, `AuxLogits`, ...). Inside a block its names are its own (`branch5x5_1`,
`branch3x3dbl_2`), but its convolutions are registered in TF-Slim's branch order, so they pair
one-to-one, in order, with this model's convolutions of the same block; every pair's shape is
checked. Each batch norm's gamma is folded into its convolution (`convert`). The classifier `fc`
becomes `Logits.Conv2d_1c_1x1` (a 1×1 conv), the aux `fc` becomes `AuxLogits.Conv2d_2b_1x1`; a
classifier of 1001 outputs (TF-ported weights) loses the background row.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import torch
from torch import Tensor, nn

from inception3.config import IMAGE_SIZE, PEER_AUX_KERNEL, PEER_BATCH_NORM_EPSILON, ModelConfig
from inception3.data.labels import TF_BACKGROUND_CLASSES
from inception3.errors import Inception3Error
from inception3.model import InceptionV3, is_update_count
from inception3.weights.convert import (
    fold_batch_norm,
    in_model_dtype,
    model_from,
    refuse_or_warn,
    require_full_width,
    same_class_count,
    use_torchvision_pooling,
    whose,
)
from inception3.weights.file import ReadOptions, WeightsFile
from inception3.weights.meta import Weights, WeightsMeta

DESCRIPTION = "torchvision's (or timm's, same names) Inception v3"
ALSO: tuple[str, ...] = ()
TORCHVISION_KEY = "Conv2d_1a_3x3.conv.weight"  # torchvision's (and timm's) name for the first conv


def detect(file: WeightsFile) -> bool:
    """A PyTorch or safetensors state dict with torchvision's name for the first convolution."""
    return file.kind in ("torch", "safetensors") and TORCHVISION_KEY in file.tensors


def read(file: WeightsFile, options: ReadOptions) -> Weights:
    """The file's tensors converted; `source` says whose weights they are (timm keeps these names)."""
    return read_as(file, options, "torchvision")


def read_as(file: WeightsFile, options: ReadOptions, source: str) -> Weights:
    """`read`, with the meta of `source` ("torchvision" or "timm"): its name and its preprocessing."""
    try:
        model = from_torchvision(file.tensors, strict=options.strict, what="torchvision/timm")
    except Inception3Error as error:  # its messages are about the tensors: say which file holds them
        raise Inception3Error(f"{file.path}: {error}") from None
    return Weights(model.state_dict(), model.config, WeightsMeta(source, eval_preprocessing=source))


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


def _conv_blocks(model: InceptionV3) -> list[str]:
    """The top-level modules that hold ConvBN layers (the stem convs, the Mixed blocks, the aux head)."""
    return [
        name
        for name, child in model.named_children()
        if child is not None and any(hasattr(m, "BatchNorm") for m in child.modules())
    ]


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
    for block in _conv_blocks(model):
        ours, theirs = _conv_modules(getattr(model, block), block), _source_convs(state, block)
        if len(ours) != len(theirs):
            raise Inception3Error(
                f"block {block}: the source has {len(theirs)} convolutions, this model "
                f"{len(ours)}; not an Inception v3 of torchvision's layout"
            )
        for mine, source in zip(ours, theirs, strict=True):
            for key, value in fold_batch_norm(state, source).items():
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


def from_torchvision(state: Mapping[str, Tensor], *, strict: bool, what: str) -> InceptionV3:
    """torchvision-layout tensors as an InceptionV3 in eval mode (TF pooling)."""
    if "fc.weight" not in state or TORCHVISION_KEY not in state:
        raise Inception3Error(f"not a {what} Inception v3 state dict (no fc.weight / {TORCHVISION_KEY})")
    state = _in_torchvision_order(in_model_dtype(state))  # a state dict given directly, not read
    classes = state["fc.weight"].shape[0]
    if "AuxLogits.fc.weight" in state:
        same_class_count(classes, state["AuxLogits.fc.weight"].shape[0], "fc", "AuxLogits.fc")
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
        refuse_or_warn(message, strict=strict, stacklevel=3)
    model.load_state_dict(weights, assign=True)
    return model.eval()


def load_torchvision(
    source: Path | Mapping[str, Tensor], *, strict: bool = True, exact_pooling: bool = True
) -> InceptionV3:
    """torchvision's `inception_v3` weights (a file or a state dict) as an InceptionV3 in eval mode.

    Same logits as torchvision's model with `transform_input=False` (inputs in [-1, 1]). A 1001-class
    classifier loses TF's background row. `strict`: unused source tensors are an error (else a
    warning). `exact_pooling`: torchvision's padded average pools (`convert.use_torchvision_pooling`).
    """
    return _load(source, strict=strict, exact_pooling=exact_pooling, what="torchvision")


def load_timm(
    source: Path | Mapping[str, Tensor], *, strict: bool = True, exact_pooling: bool = True
) -> InceptionV3:
    """timm's `inception_v3` weights (its `tf_`/`adv_`/`gluon_` variants too): torchvision's names.

    timm's TF-ported weights keep 1001 classes; the background row is dropped.
    """
    return _load(source, strict=strict, exact_pooling=exact_pooling, what="timm")


def _load(
    source: Path | Mapping[str, Tensor], *, strict: bool, exact_pooling: bool, what: str
) -> InceptionV3:
    if isinstance(source, str | Path):
        file = WeightsFile(Path(source))
        if not detect(file):
            raise Inception3Error(
                f"{source}: not a {what} Inception v3 state dict (no fc.weight / {TORCHVISION_KEY})"
            )
        model = model_from(read(file, ReadOptions(strict=strict)))
    else:
        model = from_torchvision(source, strict=strict, what=what)
    return use_torchvision_pooling(model) if exact_pooling else model


# ---------------------------------------------------------------------------------------------
# Writing: `inception3 export --format torchvision` (and timm's, which keeps these names).

PROJECT = "torchvision"
COUNTS_PADDING = True  # the Mixed blocks' 3×3 average pools count the zero padding (`convert`)


def aux_fits(model: InceptionV3) -> bool:
    """Whether the aux head is torchvision's: its k×k conv is 5×5 only from a 299-px input on."""
    return model.AuxLogits is not None and model.AuxLogits.kernel == PEER_AUX_KERNEL


def to_torchvision(model: InceptionV3, *, aux: bool) -> dict[str, Tensor]:
    """`model`'s weights in torchvision's `Inception3` names (timm's too): `convert_torchvision` mirrored.

    Each batch norm gets gamma 1 (ours has none) and its moving variance shifted by the difference of
    the epsilons (ours − torchvision's 0.001), which normalises alike; the 1×1 logits conv becomes
    `fc`. `aux`: with the aux head (`aux_fits`), else without. The width must be torchvision's
    (`convert.require_full_width`).
    """
    from torchvision.models.inception import Inception3

    with torch.device("meta"):
        target = Inception3(
            num_classes=model.config.num_classes, aux_logits=aux, init_weights=False
        ).state_dict()
    ours = model.state_dict()
    shift = model.config.batch_norm_epsilon - PEER_BATCH_NORM_EPSILON
    out: dict[str, Tensor] = {}
    for block in _conv_blocks(model):
        if block == "AuxLogits" and not aux:
            continue
        pairs = zip(_conv_modules(getattr(model, block), block), _source_convs(target, block), strict=True)
        for mine, theirs in pairs:
            beta = ours[f"{mine}.BatchNorm.beta"]
            out[f"{theirs}.conv.weight"] = ours[f"{mine}.weight"]
            out[f"{theirs}.bn.weight"] = torch.ones_like(beta)
            out[f"{theirs}.bn.bias"] = beta
            out[f"{theirs}.bn.running_mean"] = ours[f"{mine}.BatchNorm.moving_mean"]
            out[f"{theirs}.bn.running_var"] = ours[f"{mine}.BatchNorm.moving_variance"] + shift
            out[f"{theirs}.bn.num_batches_tracked"] = ours[f"{mine}.BatchNorm.num_batches_tracked"]
    heads = [("fc", "Logits.Conv2d_1c_1x1")] + [("AuxLogits.fc", "AuxLogits.Conv2d_2b_1x1")] * aux
    for theirs, mine in heads:
        out[f"{theirs}.weight"] = ours[f"{mine}.weight"].flatten(1)
        out[f"{theirs}.bias"] = ours[f"{mine}.bias"]
    for key, value in target.items():
        if out[key].shape != value.shape:
            raise Inception3Error(
                f"{key}: shape {list(out[key].shape)} where torchvision's is {list(value.shape)}; "
                "not torchvision's network"
            )
    return {key: out[key].detach().clone().contiguous() for key in target}


def write(model: InceptionV3, output: BinaryIO, meta: WeightsMeta) -> list[str]:
    """A `torch.save`d state dict that `inception_v3(num_classes=N, aux_logits=..., init_weights=False)`
    loads with strict=True; returns what the file cannot hold, one line each."""
    require_full_width(model.config, PROJECT)
    aux = aux_fits(model)
    torch.save(to_torchvision(model, aux=aux), output)
    return lost_in_state_dict(model, aux, PROJECT)


def lost_in_state_dict(model: InceptionV3, aux: bool, project: str) -> list[str]:
    """What a bare state dict of `project`'s network leaves behind, and how to load it."""
    lost = ["the class names and the evaluation preprocessing are not kept: a state dict holds tensors only"]
    if model.AuxLogits is not None and not aux:
        lost.append(
            f"the aux head is left out: its {model.AuxLogits.kernel}x{model.AuxLogits.kernel} conv (for "
            f"{model.config.image_size}-px inputs) is not {whose(project)} 5x5 (299-px inputs); "
            "inference does not use it"
        )
    return lost
