"""Inception v3 as TF-Slim builds it, every intermediate tensor reachable by its TF-Slim name.

`spec` holds the architecture as data (blocks as tables of branches, TF-Slim's names and the
name-to-key rule), `layers` the modules built from it (batch norm, conv, branch, block, aux
head), `network` the model that composes them.
"""

from inception3.model.layers import (
    AuxHead,
    BatchNorm,
    Branch,
    ConvBN,
    DepthFn,
    Mixed,
    aux_kernel,
    is_update_count,
    truncated_normal_,
)
from inception3.model.network import InceptionOutputs, InceptionV3, count_parameters, parameter_groups
from inception3.model.spec import (
    BASE_END_POINTS,
    END_POINTS,
    MIXED,
    ORIGINAL_END_POINT_NAMES,
    STEM,
    BlockSpec,
    Conv,
    Fork,
    Layer,
    Pool,
    slim_to_torch_key,
)

__all__ = [
    "BASE_END_POINTS",
    "END_POINTS",
    "MIXED",
    "ORIGINAL_END_POINT_NAMES",
    "STEM",
    "AuxHead",
    "BatchNorm",
    "BlockSpec",
    "Branch",
    "Conv",
    "ConvBN",
    "DepthFn",
    "Fork",
    "InceptionOutputs",
    "InceptionV3",
    "Layer",
    "Mixed",
    "Pool",
    "aux_kernel",
    "count_parameters",
    "is_update_count",
    "parameter_groups",
    "slim_to_torch_key",
    "truncated_normal_",
]
