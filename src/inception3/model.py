"""Inception v3 as TF-Slim builds it, every intermediate tensor reachable by its TF-Slim name.

The network is written as data: each block is a table of branches, each branch a sequence of
convolutions and pools, built by three small modules (`ConvBN`, `Branch`, `Mixed`). Parameters
are named after TF-Slim's variables, so that a variable name maps to a PyTorch key by a rule
(`slim_to_torch_key`), not by a table:

    InceptionV3/Mixed_5b/Branch_1/Conv2d_0b_5x5/weights          -> Mixed_5b.Branch_1.Conv2d_0b_5x5.weight
    InceptionV3/Mixed_5b/Branch_1/Conv2d_0b_5x5/BatchNorm/beta   -> ....Conv2d_0b_5x5.BatchNorm.beta
    InceptionV3/Logits/Conv2d_1c_1x1/biases                      -> Logits.Conv2d_1c_1x1.bias

(TensorFlow stores convolution kernels as HWIO; PyTorch's are OIHW: permute(3, 2, 0, 1).)

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
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception3.config import (
    AUX_CONV_INIT_STD,
    AUX_LOGITS_INIT_STD,
    CONV_INIT_STD,
    LOGITS_INIT_STD,
    MIN_IMAGE_SIZE,
    STATISTICS_OF_UNKNOWN_AGE,
    TRUNCATION_STDS,
    ModelConfig,
)
from inception3.errors import Inception3Error

# ---------------------------------------------------------------------------------------------
# The architecture as data.


@dataclass(frozen=True)
class Conv:
    """A convolution → batch norm → ReLU layer; `depth` before the depth multiplier."""

    name: str
    depth: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: str = "SAME"


@dataclass(frozen=True)
class Pool:
    """A 3×3 pooling layer: 'avg' (stride 1, SAME, padding not counted) or 'max'."""

    name: str
    kind: str
    stride: int = 1
    padding: str = "SAME"


@dataclass(frozen=True)
class Fork:
    """Convolutions applied side by side to the same input, outputs concatenated (Mixed_7b/7c)."""

    convs: tuple[Conv, ...]


Layer = Conv | Pool | Fork
BlockSpec = dict[str, tuple[Layer, ...]]


def _c(name: str, depth: int, kernel: int | tuple[int, int], stride: int = 1, padding: str = "SAME") -> Conv:
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    return Conv(name, depth, k, stride, padding)


_AVG = Pool("AvgPool_0a_3x3", "avg")
_MAX_DOWN = Pool("MaxPool_1a_3x3", "max", stride=2, padding="VALID")


def _mixed_35(pool_depth: int, branch_1: tuple[str, str]) -> BlockSpec:
    return {
        "Branch_0": (_c("Conv2d_0a_1x1", 64, 1),),
        "Branch_1": (_c(branch_1[0], 48, 1), _c(branch_1[1], 64, 5)),
        "Branch_2": (_c("Conv2d_0a_1x1", 64, 1), _c("Conv2d_0b_3x3", 96, 3), _c("Conv2d_0c_3x3", 96, 3)),
        "Branch_3": (_AVG, _c("Conv2d_0b_1x1", pool_depth, 1)),
    }


def _mixed_17(depth: int) -> BlockSpec:
    return {
        "Branch_0": (_c("Conv2d_0a_1x1", 192, 1),),
        "Branch_1": (
            _c("Conv2d_0a_1x1", depth, 1),
            _c("Conv2d_0b_1x7", depth, (1, 7)),
            _c("Conv2d_0c_7x1", 192, (7, 1)),
        ),
        "Branch_2": (
            _c("Conv2d_0a_1x1", depth, 1),
            _c("Conv2d_0b_7x1", depth, (7, 1)),
            _c("Conv2d_0c_1x7", depth, (1, 7)),
            _c("Conv2d_0d_7x1", depth, (7, 1)),
            _c("Conv2d_0e_1x7", 192, (1, 7)),
        ),
        "Branch_3": (_AVG, _c("Conv2d_0b_1x1", 192, 1)),
    }


def _mixed_8(branch_1_3x1: str) -> BlockSpec:
    return {
        "Branch_0": (_c("Conv2d_0a_1x1", 320, 1),),
        "Branch_1": (
            _c("Conv2d_0a_1x1", 384, 1),
            Fork((_c("Conv2d_0b_1x3", 384, (1, 3)), _c(branch_1_3x1, 384, (3, 1)))),
        ),
        "Branch_2": (
            _c("Conv2d_0a_1x1", 448, 1),
            _c("Conv2d_0b_3x3", 384, 3),
            Fork((_c("Conv2d_0c_1x3", 384, (1, 3)), _c("Conv2d_0d_3x1", 384, (3, 1)))),
        ),
        "Branch_3": (_AVG, _c("Conv2d_0b_1x1", 192, 1)),
    }


STEM: tuple[Layer, ...] = (
    _c("Conv2d_1a_3x3", 32, 3, stride=2, padding="VALID"),
    _c("Conv2d_2a_3x3", 32, 3, padding="VALID"),
    _c("Conv2d_2b_3x3", 64, 3),
    Pool("MaxPool_3a_3x3", "max", stride=2, padding="VALID"),
    _c("Conv2d_3b_1x1", 80, 1, padding="VALID"),
    _c("Conv2d_4a_3x3", 192, 3, padding="VALID"),
    Pool("MaxPool_5a_3x3", "max", stride=2, padding="VALID"),
)

MIXED: dict[str, BlockSpec] = {
    "Mixed_5b": _mixed_35(32, ("Conv2d_0a_1x1", "Conv2d_0b_5x5")),
    "Mixed_5c": _mixed_35(64, ("Conv2d_0b_1x1", "Conv_1_0c_5x5")),  # TF-Slim's own odd names
    "Mixed_5d": _mixed_35(64, ("Conv2d_0a_1x1", "Conv2d_0b_5x5")),
    "Mixed_6a": {
        "Branch_0": (_c("Conv2d_1a_1x1", 384, 3, stride=2, padding="VALID"),),
        "Branch_1": (
            _c("Conv2d_0a_1x1", 64, 1),
            _c("Conv2d_0b_3x3", 96, 3),
            _c("Conv2d_1a_1x1", 96, 3, stride=2, padding="VALID"),
        ),
        "Branch_2": (_MAX_DOWN,),
    },
    "Mixed_6b": _mixed_17(128),
    "Mixed_6c": _mixed_17(160),
    "Mixed_6d": _mixed_17(160),
    "Mixed_6e": _mixed_17(192),
    "Mixed_7a": {
        "Branch_0": (_c("Conv2d_0a_1x1", 192, 1), _c("Conv2d_1a_3x3", 320, 3, stride=2, padding="VALID")),
        "Branch_1": (
            _c("Conv2d_0a_1x1", 192, 1),
            _c("Conv2d_0b_1x7", 192, (1, 7)),
            _c("Conv2d_0c_7x1", 192, (7, 1)),
            _c("Conv2d_1a_3x3", 192, 3, stride=2, padding="VALID"),
        ),
        "Branch_2": (_MAX_DOWN,),
    },
    "Mixed_7b": _mixed_8("Conv2d_0b_3x1"),
    "Mixed_7c": _mixed_8("Conv2d_0c_3x1"),
}

BASE_END_POINTS: tuple[str, ...] = tuple(layer.name for layer in STEM) + tuple(MIXED)  # type: ignore[union-attr]
END_POINTS: tuple[str, ...] = BASE_END_POINTS + ("AuxLogits", "PreLogits", "Logits", "Predictions")

# The end-point names of the original `inception_model.py`, for users of its summaries and code.
ORIGINAL_END_POINT_NAMES: dict[str, str] = {
    "conv0": "Conv2d_1a_3x3",
    "conv1": "Conv2d_2a_3x3",
    "conv2": "Conv2d_2b_3x3",
    "pool1": "MaxPool_3a_3x3",
    "conv3": "Conv2d_3b_1x1",
    "conv4": "Conv2d_4a_3x3",
    "pool2": "MaxPool_5a_3x3",
    "mixed_35x35x256a": "Mixed_5b",
    "mixed_35x35x288a": "Mixed_5c",
    "mixed_35x35x288b": "Mixed_5d",
    "mixed_17x17x768a": "Mixed_6a",
    "mixed_17x17x768b": "Mixed_6b",
    "mixed_17x17x768c": "Mixed_6c",
    "mixed_17x17x768d": "Mixed_6d",
    "mixed_17x17x768e": "Mixed_6e",
    "mixed_17x17x1280a": "Mixed_7a",
    "mixed_8x8x2048a": "Mixed_7b",
    "mixed_8x8x2048b": "Mixed_7c",
    "aux_logits": "AuxLogits",
    "logits": "Logits",
    "predictions": "Predictions",
}


def slim_to_torch_key(variable_name: str) -> str:
    """Map a TF-Slim variable name to this model's state-dict key (see the module docstring)."""
    parts = variable_name.removesuffix(":0").removeprefix("InceptionV3/").split("/")
    parts[-1] = {"weights": "weight", "biases": "bias"}.get(parts[-1], parts[-1])
    return ".".join(parts)


# ---------------------------------------------------------------------------------------------
# Building blocks.


def truncated_normal_(tensor: Tensor, std: float) -> Tensor:
    """TensorFlow's `truncated_normal_initializer`: normal(0, std) re-drawn beyond ±2 std.

    `nn.init.trunc_normal_` takes absolute bounds, so they are scaled by `std` here.
    """
    bound = TRUNCATION_STDS * std
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-bound, b=bound)


class BatchNorm(nn.Module):
    """TF-Slim's batch norm with `scale=False`: a learned beta, no gamma.

    `decay` is TensorFlow's (moving = decay·moving + (1 − decay)·batch; PyTorch's momentum is
    1 − decay). With `zero_debias`, as the original's `assign_moving_average` in TensorFlow ≥ 1.0,
    the t-th update weighs the batch by (1 − decay) / (1 − decay^t): the moving statistics are the
    debiased average of the batches seen, right from the first step instead of climbing from 0/1
    over ~1/(1 − decay) steps. `num_batches_tracked` counts t (a tensor, so that torch.compile
    does not recompile per step); statistics loaded without a count (other projects' weights,
    older checkpoints) are taken as long averaged (`STATISTICS_OF_UNKNOWN_AGE`), so fine-tuning
    continues them rather than replacing them with its first batch.
    """

    def __init__(self, channels: int, decay: float, epsilon: float, zero_debias: bool = True) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("moving_mean", torch.zeros(channels))
        self.register_buffer("moving_variance", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))
        self.decay = decay
        self.epsilon = epsilon
        self.zero_debias = zero_debias

    def momentum(self) -> Tensor:
        """The weight of the current batch in the moving statistics, counting this update."""
        if not self.zero_debias:
            return torch.full((), 1.0 - self.decay, device=self.num_batches_tracked.device)
        seen = self.num_batches_tracked.double()
        return ((1.0 - self.decay) / (1.0 - torch.pow(self.decay, seen))).float()

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return F.batch_norm(
                x, self.moving_mean, self.moving_variance, None, self.beta, False, 0.0, self.epsilon
            )
        # momentum 1 makes F.batch_norm store the batch's mean and unbiased variance in `mean`/`var`.
        mean, var = torch.zeros_like(self.moving_mean), torch.ones_like(self.moving_variance)
        out = F.batch_norm(x, mean, var, None, self.beta, True, 1.0, self.epsilon)
        self.update_statistics(mean, var)
        return out

    @torch.no_grad()
    def update_statistics(self, mean: Tensor, var: Tensor) -> None:
        """Move the statistics toward a batch's mean and unbiased variance (one update, counted)."""
        self.num_batches_tracked.add_(1)
        weight = self.momentum()
        self.moving_mean.lerp_(mean, weight)
        self.moving_variance.lerp_(var, weight)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object) -> None:
        if prefix + "moving_mean" in state_dict:  # statistics given without their count
            state_dict.setdefault(prefix + "num_batches_tracked", torch.tensor(STATISTICS_OF_UNKNOWN_AGE))
        super()._load_from_state_dict(state_dict, prefix, *args)


def is_update_count(key: str) -> bool:
    """A batch norm's update count (`BatchNorm`): other projects' files and older ones have none."""
    return key.endswith("num_batches_tracked")


class ConvBN(nn.Module):
    """Convolution without bias → batch norm → ReLU: TF-Slim's `conv2d` under the arg_scope."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        stride: int,
        padding: str,
        bn: tuple[float, float, bool],
        init_std: float = CONV_INIT_STD,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *kernel))
        self.BatchNorm = BatchNorm(out_channels, *bn)
        self.stride = stride
        # Every stride-2 layer of the network is VALID, so SAME is symmetric padding of k // 2.
        self.padding = (kernel[0] // 2, kernel[1] // 2) if padding == "SAME" else (0, 0)
        truncated_normal_(self.weight, init_std)

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        return F.relu(self.BatchNorm(x), inplace=True)


def _pool(spec: Pool) -> nn.Module:
    if spec.kind == "max":
        return nn.MaxPool2d(3, spec.stride)
    # TensorFlow's SAME average pooling divides by the number of real (unpadded) inputs.
    return nn.AvgPool2d(3, spec.stride, padding=1, count_include_pad=False)


class Branch(nn.ModuleDict):
    """One branch of a Mixed block: its layers in order, keyed by their TF-Slim names."""

    def __init__(
        self, layers: tuple[Layer, ...], in_channels: int, depth: DepthFn, bn: tuple[float, float, bool]
    ) -> None:
        super().__init__()
        self.plan: list[tuple[str, ...]] = []
        channels = in_channels
        for layer in layers:
            if isinstance(layer, Pool):
                self[layer.name] = _pool(layer)
                self.plan.append((layer.name,))
                continue
            convs = layer.convs if isinstance(layer, Fork) else (layer,)
            for conv in convs:
                self[conv.name] = ConvBN(
                    channels, depth(conv.depth), conv.kernel, conv.stride, conv.padding, bn
                )
            self.plan.append(tuple(conv.name for conv in convs))
            channels = sum(depth(conv.depth) for conv in convs)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tensor:
        for step in self.plan:
            outputs = [self[name](x) for name in step]
            x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)
        return x


class Mixed(nn.ModuleDict):
    """An Inception block: branches run side by side on one input, concatenated on channels."""

    def __init__(
        self, spec: BlockSpec, in_channels: int, depth: DepthFn, bn: tuple[float, float, bool]
    ) -> None:
        super().__init__({name: Branch(layers, in_channels, depth, bn) for name, layers in spec.items()})
        self.out_channels = sum(branch.out_channels for branch in self.values())

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.values()], dim=1)


class DepthFn:
    """TF-Slim's `depth(d) = max(int(d * depth_multiplier), min_depth)`."""

    def __init__(self, multiplier: float, min_depth: int) -> None:
        if multiplier <= 0:
            raise Inception3Error(f"depth_multiplier must be > 0, got {multiplier}")
        self.multiplier, self.min_depth = multiplier, min_depth

    def __call__(self, d: int) -> int:
        return max(int(d * self.multiplier), self.min_depth)


def _mixed_6e_side(image_size: int) -> int:
    """Side of Mixed_6e (pixels) for a square input: every VALID layer up to it, by hand."""
    s = (image_size - 3) // 2 + 1  # Conv2d_1a_3x3
    s = s - 2  # Conv2d_2a_3x3
    s = (s - 3) // 2 + 1  # MaxPool_3a_3x3
    s = s - 2  # Conv2d_4a_3x3
    s = (s - 3) // 2 + 1  # MaxPool_5a_3x3
    return (s - 3) // 2 + 1  # Mixed_6a


def aux_kernel(image_size: int) -> int:
    """The aux head's second convolution is k×k for this input size (its weights' shape tells k)."""
    side = _mixed_6e_side(image_size)
    pooled = (side - min(5, side)) // 3 + 1
    return min(5, pooled)


class AuxHead(nn.Module):
    """The auxiliary classifier on Mixed_6e.

    TF-Slim pools 5×5 with stride 3 and shrinks only the 5×5 convolution to the pooled map
    (`_reduced_kernel_size_for_small_input`); its 5×5 VALID pool cannot be built below a 107-px
    input. Below that the head is inception3's own: the pool shrinks to the map too, so a 75×75
    model has a 1×1 kernel. The kernel is fixed from `image_size` at construction; a model fed a
    smaller image zero-pads the pooled map up to it, a larger image is averaged to 1×1 before the
    logits.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        depth: DepthFn,
        bn: tuple[float, float, bool],
    ) -> None:
        super().__init__()
        k = aux_kernel(image_size)
        self.kernel = k
        self.conv_name = f"Conv2d_2a_{k}x{k}"
        self.Conv2d_1b_1x1 = ConvBN(in_channels, depth(128), (1, 1), 1, "SAME", bn)
        self.add_module(
            self.conv_name, ConvBN(depth(128), depth(768), (k, k), 1, "VALID", bn, init_std=AUX_CONV_INIT_STD)
        )
        self.Conv2d_2b_1x1 = _logits_conv(depth(768), num_classes, AUX_LOGITS_INIT_STD)

    def forward(self, x: Tensor) -> Tensor:
        kh, kw = min(5, x.shape[-2]), min(5, x.shape[-1])
        x = F.avg_pool2d(x, (kh, kw), stride=3)
        x = self.Conv2d_1b_1x1(x)
        short_h, short_w = max(0, self.kernel - x.shape[-2]), max(0, self.kernel - x.shape[-1])
        if short_h or short_w:
            x = F.pad(x, (short_w // 2, short_w - short_w // 2, short_h // 2, short_h - short_h // 2))
        x = getattr(self, self.conv_name)(x)
        if x.shape[-2] > 1 or x.shape[-1] > 1:
            x = x.mean(dim=(2, 3), keepdim=True)
        return self.Conv2d_2b_1x1(x).flatten(1)


def _logits_conv(in_channels: int, num_classes: int, std: float) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, num_classes, 1, bias=True)
    truncated_normal_(conv.weight, std)
    nn.init.zeros_(conv.bias)
    return conv


# ---------------------------------------------------------------------------------------------
# The network.


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
        bn = (cfg.batch_norm_decay, cfg.batch_norm_epsilon, cfg.batch_norm_zero_debias)
        channels = 3
        for layer in STEM:
            if isinstance(layer, Conv):
                self.add_module(
                    layer.name,
                    ConvBN(channels, depth(layer.depth), layer.kernel, layer.stride, layer.padding, bn),
                )
                channels = depth(layer.depth)
            else:
                self.add_module(layer.name, _pool(layer))  # type: ignore[arg-type]
        for name, spec in MIXED.items():
            block = Mixed(spec, channels, depth, bn)
            self.add_module(name, block)
            channels = block.out_channels
            if name == "Mixed_6e":
                aux_in = channels
        self.num_features = channels
        self.AuxLogits = (
            AuxHead(aux_in, cfg.num_classes, cfg.image_size, depth, bn) if cfg.aux_logits else None
        )
        self.dropout = nn.Dropout(1.0 - cfg.dropout_keep_prob)
        self.Logits = nn.ModuleDict(
            {"Conv2d_1c_1x1": _logits_conv(channels, cfg.num_classes, LOGITS_INIT_STD)}
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
        return self.dropout(net.mean(dim=(2, 3), keepdim=True))

    def _logits(self, pre_logits: Tensor) -> Tensor:
        return self.Logits["Conv2d_1c_1x1"](pre_logits).flatten(1)

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
