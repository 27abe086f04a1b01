"""Inception v3's architecture as data, with TF-Slim's names.

Each block is a table of branches, each branch a sequence of convolutions and pools; `layers.py`
builds modules from these tables. Parameters are named after TF-Slim's variables, so that a
variable name maps to a PyTorch key by a rule (`slim_to_torch_key`), not by a table:

    InceptionV3/Mixed_5b/Branch_1/Conv2d_0b_5x5/weights          -> Mixed_5b.Branch_1.Conv2d_0b_5x5.weight
    InceptionV3/Mixed_5b/Branch_1/Conv2d_0b_5x5/BatchNorm/beta   -> ....Conv2d_0b_5x5.BatchNorm.beta
    InceptionV3/Logits/Conv2d_1c_1x1/biases                      -> Logits.Conv2d_1c_1x1.bias

(TensorFlow stores convolution kernels as HWIO; PyTorch's are OIHW: permute(3, 2, 0, 1).)
"""

from __future__ import annotations

from dataclasses import dataclass


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


# Output of each layer and block, channels x height x width, for a 299-px input at depth_multiplier 1.
STEM: tuple[Layer, ...] = (
    _c("Conv2d_1a_3x3", 32, 3, stride=2, padding="VALID"),  # 32 x 149 x 149
    _c("Conv2d_2a_3x3", 32, 3, padding="VALID"),  # 32 x 147 x 147
    _c("Conv2d_2b_3x3", 64, 3),  # 64 x 147 x 147
    Pool("MaxPool_3a_3x3", "max", stride=2, padding="VALID"),  # 64 x 73 x 73
    _c("Conv2d_3b_1x1", 80, 1, padding="VALID"),  # 80 x 73 x 73
    _c("Conv2d_4a_3x3", 192, 3, padding="VALID"),  # 192 x 71 x 71
    Pool("MaxPool_5a_3x3", "max", stride=2, padding="VALID"),  # 192 x 35 x 35
)

MIXED: dict[str, BlockSpec] = {
    "Mixed_5b": _mixed_35(32, ("Conv2d_0a_1x1", "Conv2d_0b_5x5")),  # 256 x 35 x 35
    "Mixed_5c": _mixed_35(64, ("Conv2d_0b_1x1", "Conv_1_0c_5x5")),  # 288 x 35 x 35; TF-Slim's own odd names
    "Mixed_5d": _mixed_35(64, ("Conv2d_0a_1x1", "Conv2d_0b_5x5")),  # 288 x 35 x 35
    "Mixed_6a": {  # 768 x 17 x 17
        "Branch_0": (_c("Conv2d_1a_1x1", 384, 3, stride=2, padding="VALID"),),
        "Branch_1": (
            _c("Conv2d_0a_1x1", 64, 1),
            _c("Conv2d_0b_3x3", 96, 3),
            _c("Conv2d_1a_1x1", 96, 3, stride=2, padding="VALID"),
        ),
        "Branch_2": (_MAX_DOWN,),
    },
    "Mixed_6b": _mixed_17(128),  # 768 x 17 x 17
    "Mixed_6c": _mixed_17(160),  # 768 x 17 x 17
    "Mixed_6d": _mixed_17(160),  # 768 x 17 x 17
    "Mixed_6e": _mixed_17(192),  # 768 x 17 x 17; the aux head branches off here
    "Mixed_7a": {  # 1280 x 8 x 8
        "Branch_0": (_c("Conv2d_0a_1x1", 192, 1), _c("Conv2d_1a_3x3", 320, 3, stride=2, padding="VALID")),
        "Branch_1": (
            _c("Conv2d_0a_1x1", 192, 1),
            _c("Conv2d_0b_1x7", 192, (1, 7)),
            _c("Conv2d_0c_7x1", 192, (7, 1)),
            _c("Conv2d_1a_3x3", 192, 3, stride=2, padding="VALID"),
        ),
        "Branch_2": (_MAX_DOWN,),
    },
    "Mixed_7b": _mixed_8("Conv2d_0b_3x1"),  # 2048 x 8 x 8
    "Mixed_7c": _mixed_8("Conv2d_0c_3x1"),  # 2048 x 8 x 8
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
