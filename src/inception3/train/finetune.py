"""Starting from other weights, and training only part of the network (TF-Slim's two-stage recipe).

`--init-from` takes any weights file `inception3.weights.read_weights` reads: an inception3
checkpoint (its averaged weights; the original's `--pretrained_model_checkpoint_path` restored the
raw variables, but the averages are the ones that were evaluated), a plain InceptionV3 state dict
(`.pt` or `.safetensors`, as `inception3 export` writes), or torchvision's / timm's / Keras' /
TF-Slim's Inception v3 weights (e.g. torchvision's `inception_v3_google-0cc3c7bd.pth`). The logits
and aux logits are left out, and keep their fresh initialisation, when the class count differs or
`fine_tune` asks for it, as the original's `--fine_tune` did; so is an aux head the source lacks
(Keras has none), and the logits of a source without a classifier (Keras' `_notop` files).
`trainable` names the scopes that learn; every other parameter is frozen and its batch norm stays in
inference mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from inception3.config import ModelConfig
from inception3.errors import Inception3Error
from inception3.model import BatchNorm, InceptionV3, is_update_count
from inception3.weights import read_weights

HEAD_SCOPES = ("Logits.", "AuxLogits.Conv2d_2b_1x1.")


def init_from(model: InceptionV3, path: Path, *, fine_tune: bool = False) -> list[str]:
    """Copy the weights of `path` into `model`; returns the keys left at their initialisation.

    The heads are left out when `fine_tune` is set or their shapes differ from the model's; any
    other mismatch (another width, a missing layer) is an error naming the first key at fault.
    """
    source = read_weights(Path(path)).state
    target = model.state_dict()
    head = [k for k in target if k.startswith(HEAD_SCOPES)]
    drop_head = fine_tune or any(k in source and source[k].shape != target[k].shape for k in head)
    skipped = [k for k in head if drop_head or k not in source]
    if not any(k.startswith("AuxLogits.") for k in source):  # Keras' and others' have no aux head
        skipped += [k for k in target if k.startswith("AuxLogits.") and k not in skipped]
    copied = {}
    for key, value in target.items():
        if key in skipped or (key not in source and is_update_count(key)):
            continue  # a count the source lacks: BatchNorm takes its statistics as long averaged
        if key not in source:
            raise Inception3Error(f"{path}: has no {key}; it was saved from another network")
        if source[key].shape != value.shape:
            raise Inception3Error(
                f"{path}: {key} has shape {list(source[key].shape)}, the model needs "
                f"{list(value.shape)}; check depth_multiplier and image_size"
            )
        copied[key] = source[key]
    model.load_state_dict(copied, strict=False)
    return skipped


def restrict_training(model: nn.Module, scopes: tuple[str, ...]) -> int:
    """Freeze every parameter outside `scopes` (name prefixes); returns how many tensors still learn."""
    if not scopes:
        return sum(1 for _ in model.parameters())
    params = dict(model.named_parameters())
    _refuse_unmatched(params, scopes)
    for name, param in params.items():
        param.requires_grad_(in_scopes(name, scopes))
    return sum(in_scopes(name, scopes) for name in params)


def in_scopes(name: str, scopes: tuple[str, ...]) -> bool:
    """Whether parameter `name` is in one of `scopes` (the scope itself, or below it)."""
    return any(name == s or name.startswith(s.rstrip(".") + ".") for s in scopes)


def check_trainable(model_config: ModelConfig, scopes: tuple[str, ...]) -> None:
    """Refuse `trainable` scopes that match no parameter of the network `model_config` describes.

    The plan calls it before the run directory is touched, so a refused run leaves nothing behind;
    the network is built on the meta device (names and shapes only, no memory, no initialisation).
    """
    if not scopes:
        return
    with torch.device("meta"):
        names = [name for name, _ in InceptionV3.from_config(model_config).named_parameters()]
    _refuse_unmatched(names, scopes)


def _refuse_unmatched(names: Iterable[str], scopes: tuple[str, ...]) -> None:
    if not any(in_scopes(name, scopes) for name in names):
        raise Inception3Error(
            f"trainable scopes {', '.join(scopes)} match no parameter; use names such as "
            "Logits, AuxLogits, Mixed_7c"
        )


def freeze_batch_norm_statistics(model: nn.Module) -> None:
    """Put the batch norms of frozen layers in inference mode; call after every `model.train()`."""
    for module in model.modules():
        if isinstance(module, BatchNorm) and not module.beta.requires_grad:
            module.eval()
