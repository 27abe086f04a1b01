"""The Inception v3 network: its blocks in TF-Slim's order, every intermediate tensor by name.

Parameter count, 1000 classes. Without the auxiliary head the network has the layers of Keras's
`InceptionV3` (which also uses `BatchNormalization(scale=False)`), whose published trainable count
is 23,817,352: 21,768,352 in the convolutions and their betas, plus the logits 2048·1000 + 1000.
The auxiliary head adds 128·768 + 128 (1×1 conv and beta) + 5·5·128·768 + 768 (5×5 conv and beta)
+ 768·1000 + 1000 (logits) = 3,325,800, for 27,143,152 in all. torchvision's `inception_v3`
has the same layers plus a gamma per batch norm (17,216 + 896 channels): 27,161,264.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import NamedTuple

from torch import Tensor, nn

from inception3.config import LOGITS_INIT_STD, MIN_IMAGE_SIZE, ModelConfig
from inception3.errors import Inception3Error
from inception3.model.layers import AuxHead, ConvBN, DepthFn, Mixed, logits_conv, pool
from inception3.model.spec import BASE_END_POINTS, END_POINTS, MIXED, STEM, Conv


class InceptionOutputs(NamedTuple):
    """What a training-mode forward returns when the auxiliary head is on."""

    logits: Tensor
    aux_logits: Tensor


class InceptionV3(nn.Module):
    """Inception v3 with TF-Slim's layers, names, initialisation and batch-norm defaults.

    `model(x)` takes images scaled to [-1, 1], shape [B, 3, H, W] with H, W ≥ 75, and returns
    the logits [B, num_classes]; in training mode with `aux_logits=True` it returns
    `InceptionOutputs(logits, aux_logits)` instead, as torchvision does. `end_points(x)` returns
    every intermediate tensor by name.
    """

    def __init__(self, config: ModelConfig | None = None, **overrides: object) -> None:
        """Build the network of `config` (the recipe's by default), with keyword overrides of its fields."""
        super().__init__()
        cfg = dataclasses.replace(config or ModelConfig(), **overrides)
        if cfg.num_classes < 1:
            raise Inception3Error(f"num_classes must be at least 1, got {cfg.num_classes}")
        if cfg.image_size < MIN_IMAGE_SIZE:
            raise Inception3Error(
                f"image_size must be at least {MIN_IMAGE_SIZE} pixels, got {cfg.image_size}"
            )
        if not 0.0 < cfg.dropout_keep_prob <= 1.0:
            raise Inception3Error(f"dropout_keep_prob must be in (0, 1], got {cfg.dropout_keep_prob}")
        self.config = cfg
        depth = DepthFn(cfg.depth_multiplier, cfg.min_depth)
        channels = 3
        for layer in STEM:
            if isinstance(layer, Conv):
                self.add_module(layer.name, ConvBN.from_spec(layer, channels, depth, cfg))
                channels = depth(layer.depth)
            else:
                self.add_module(layer.name, pool(layer))  # type: ignore[arg-type]
        for name, spec in MIXED.items():
            block = Mixed(spec, channels, depth, cfg)
            self.add_module(name, block)
            channels = block.out_channels
            if name == "Mixed_6e":
                aux_in = channels
        self.num_features = channels
        self.AuxLogits = AuxHead(aux_in, depth, cfg) if cfg.aux_logits else None
        self.dropout = nn.Dropout(1.0 - cfg.dropout_keep_prob)
        self.Logits = nn.ModuleDict(
            {"Conv2d_1c_1x1": logits_conv(channels, cfg.num_classes, LOGITS_INIT_STD)}
        )

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> InceptionV3:
        return cls(cfg)

    @staticmethod
    def _check_input(x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise Inception3Error(f"expected images of shape [B, 3, H, W], got {list(x.shape)}")
        if x.shape[-2] < MIN_IMAGE_SIZE or x.shape[-1] < MIN_IMAGE_SIZE:
            raise Inception3Error(
                f"images must be at least {MIN_IMAGE_SIZE}×"
                f"{MIN_IMAGE_SIZE} pixels, got {x.shape[-2]}×{x.shape[-1]}"
            )

    def _pre_logits(self, net: Tensor) -> Tensor:
        return self.dropout(net.mean(dim=(2, 3), keepdim=True))  # N x 2048 x 8 x 8 -> N x 2048 x 1 x 1

    def _logits(self, pre_logits: Tensor) -> Tensor:
        return self.Logits["Conv2d_1c_1x1"](pre_logits).flatten(1)  # N x num_classes

    def forward(self, x: Tensor) -> Tensor | InceptionOutputs:
        self._check_input(x)
        aux = None
        for name in BASE_END_POINTS:
            x = getattr(self, name)(x)
            if name == "Mixed_6e" and self.training and self.AuxLogits is not None:
                aux = self.AuxLogits(x)
        logits = self._logits(self._pre_logits(x))
        if aux is not None:
            return InceptionOutputs(logits, aux)
        return logits

    def end_points(self, x: Tensor, final_endpoint: str = "Predictions") -> OrderedDict[str, Tensor]:
        """Every intermediate tensor by TF-Slim name, in network order, up to `final_endpoint`.

        Order: Conv2d_1a_3x3 … Mixed_7c, AuxLogits (when the model has the head), PreLogits
        ([B, C] after pooling and dropout), Logits, Predictions (softmax).
        """
        if final_endpoint not in END_POINTS:
            raise Inception3Error(
                f"unknown end point {final_endpoint!r}; choose one of {', '.join(END_POINTS)}"
            )
        if final_endpoint == "AuxLogits" and self.AuxLogits is None:
            raise Inception3Error("this model was built with aux_logits=False")
        self._check_input(x)
        points: OrderedDict[str, Tensor] = OrderedDict()
        for name in BASE_END_POINTS:
            x = getattr(self, name)(x)
            points[name] = x
            if name == final_endpoint:
                return points
        if self.AuxLogits is not None:
            points["AuxLogits"] = self.AuxLogits(points["Mixed_6e"])
            if final_endpoint == "AuxLogits":
                return points
        pre_logits = self._pre_logits(x)
        points["PreLogits"] = pre_logits.flatten(1)
        if final_endpoint == "PreLogits":
            return points
        points["Logits"] = self._logits(pre_logits)
        if final_endpoint == "Logits":
            return points
        points["Predictions"] = points["Logits"].softmax(dim=1)
        return points


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer groups: L2 decay on convolution and logits weights only, as the original.

    Batch-norm betas and logits biases are left undecayed (TF-Slim regularises `weights` only).
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if name.endswith("weight") else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def count_parameters(model: nn.Module) -> int:
    """Number of learned values (batch-norm moving statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())
