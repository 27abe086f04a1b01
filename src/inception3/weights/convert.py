"""What the format readers share: the model of a state dict, batch-norm folding, torchvision's pooling.

torchvision's `Inception3` (and timm's `InceptionV3`, which keeps its names) has a batch-norm gamma,
ours (TF-Slim's `scale=False`) does not. In inference

    gamma · (conv(W, x) − mean) / sqrt(var + eps) + beta
      = (conv(gamma·W, x) − gamma·mean) / sqrt(var + eps) + beta,

so gamma is folded into the convolution's output channels and the moving mean, the variance and
beta are kept: the logits are the same for any gamma (negative and zero included). The folded moving
mean and variance describe the unscaled convolution's statistics; a fine-tuning run's moving averages
move them on from there.

Pooling: torchvision averages the Mixed blocks' 3×3 pool *including* the zero padding, TensorFlow
(and this model) over the real pixels only. The weights are the same either way;
`use_torchvision_pooling` switches a loaded model's pools to torchvision's so the logits are
identical. That switch is a property of the module, not a weight: a state dict saved from the model
reloads with TF pooling.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from inception3.config import IMAGE_SIZE, MIN_IMAGE_SIZE, PEER_FULL_WIDTH_MIN_DEPTH, ModelConfig
from inception3.errors import Inception3Error
from inception3.model import InceptionV3, aux_kernel, is_update_count
from inception3.weights.meta import Weights

LOGITS_KEY = "Logits.Conv2d_1c_1x1.weight"
AUX_LOGITS_KEY = "AuxLogits.Conv2d_2b_1x1.weight"
MODEL_DTYPE = torch.float32  # what the network computes in (mixed precision casts on the fly, from these)


def in_model_dtype(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Floating tensors as `MODEL_DTYPE` (a float16, bfloat16 or float64 file), the others as they are.

    Modules are built on the meta device and take the file's tensors as they are (`assign=True`), so a
    half-precision file would give a half-precision network that float32 images cannot go through.
    """
    return {
        k: v.to(MODEL_DTYPE) if v.is_floating_point() and v.dtype != MODEL_DTYPE else v
        for k, v in state.items()
    }


def model_from(weights: Weights) -> InceptionV3:
    """The eval-mode network of weights whose config is known."""
    with torch.device("meta"):  # no random initialisation of weights about to be replaced
        model = InceptionV3.from_config(weights.config)
    model.load_state_dict(weights.state, assign=True)
    return model.eval()


def num_outputs(state: Mapping[str, Tensor]) -> int | None:
    """The classifier's output count, None for a state without one."""
    logits = state.get(LOGITS_KEY)
    return int(logits.shape[0]) if logits is not None else None


def config_from_state(state: Mapping[str, Tensor]) -> ModelConfig:
    """The ModelConfig of a plain InceptionV3 state dict, from its tensor shapes."""
    logits = state.get(LOGITS_KEY)
    first = state.get("Conv2d_1a_3x3.weight")
    if logits is None or first is None:
        raise Inception3Error(
            "not an inception3 checkpoint nor an InceptionV3 state dict "
            "(no Logits.Conv2d_1c_1x1.weight / Conv2d_1a_3x3.weight)"
        )
    aux = any(key.startswith("AuxLogits.") for key in state)
    aux_logits = state.get(AUX_LOGITS_KEY)
    if aux_logits is not None:
        same_class_count(int(logits.shape[0]), int(aux_logits.shape[0]), LOGITS_KEY, AUX_LOGITS_KEY)
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


def same_class_count(classes: int, aux_classes: int, head: str, aux_head: str) -> None:
    """The classifier and the auxiliary classifier must count the same classes: one network has one set."""
    if classes != aux_classes:
        raise Inception3Error(
            f"the classifier {head} has {classes} outputs but the auxiliary classifier {aux_head} has "
            f"{aux_classes}; one network has one class count: not weights of one Inception v3 (drop the "
            "auxiliary head's tensors, or fix the file that wrote them)"
        )


def fold_batch_norm(state: Mapping[str, Tensor], source: str) -> dict[str, Tensor]:
    """One torchvision BasicConv2d as our ConvBN, gamma folded into the weight (module docstring)."""
    gamma = state[f"{source}.bn.weight"].float()
    return {
        "weight": state[f"{source}.conv.weight"].float() * gamma[:, None, None, None],
        "BatchNorm.beta": state[f"{source}.bn.bias"].clone(),
        "BatchNorm.moving_mean": state[f"{source}.bn.running_mean"].float() * gamma,
        "BatchNorm.moving_variance": state[f"{source}.bn.running_var"].clone(),
    }


def use_torchvision_pooling(model: InceptionV3) -> InceptionV3:
    """Make the Mixed blocks' 3×3 average pools count the zero padding, as torchvision's do."""
    for module in model.modules():
        if isinstance(module, nn.AvgPool2d):
            module.count_include_pad = True
    return model


def counts_padding(model: InceptionV3) -> bool:
    """Whether the model's average pools count the zero padding (torchvision's and timm's way)."""
    return any(m.count_include_pad for m in model.modules() if isinstance(m, nn.AvgPool2d))


def with_pooling(model: InceptionV3, *, count_padding: bool) -> InceptionV3:
    """A copy of `model` whose Mixed blocks' 3×3 average pools count the zero padding or not."""
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if isinstance(module, nn.AvgPool2d):
            module.count_include_pad = count_padding
    return twin


def whose(project: str) -> str:
    """The possessive of a project's name, for messages: "torchvision's", "Keras'"."""
    return f"{project}'" if project.endswith("s") else f"{project}'s"


def require_full_width(config: ModelConfig, project: str) -> None:
    """Refuse, before anything is written, a width that `project`'s Inception v3 (full width only) lacks."""
    if config.depth_multiplier != 1 or config.min_depth > PEER_FULL_WIDTH_MIN_DEPTH:
        raise Inception3Error(
            f"{whose(project)} Inception v3 is full width only, and this model has depth_multiplier "
            f"{config.depth_multiplier}, min_depth {config.min_depth} (it needs 1 and at most "
            f"{PEER_FULL_WIDTH_MIN_DEPTH}): export it as onnx, torchscript or safetensors instead"
        )


def refuse_or_warn(message: str, *, strict: bool, stacklevel: int) -> None:
    """Source tensors a conversion left unused: an error under `strict`, else a warning."""
    if strict:
        raise Inception3Error(message + " (pass strict=False to ignore them)")
    warnings.warn(message, stacklevel=stacklevel + 1)
