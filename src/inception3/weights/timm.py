"""timm's Inception v3 (`inception_v3` and its `tf_`/`adv_`/`gluon_` variants): torchvision's names.

Its files cannot be told from torchvision's, so it is never detected: `--weights-format timm` says
so, and the weights get timm's evaluation preprocessing. TF-ported weights keep 1001 classes; the
background row is dropped. `write` is torchvision's state dict, which timm's `InceptionV3` loads as
it is (the same keys, batch-norm epsilon 1e-3 and padded average pools).
"""

from __future__ import annotations

from typing import BinaryIO

import torch

from inception3.model import InceptionV3
from inception3.weights import torchvision
from inception3.weights.convert import require_full_width
from inception3.weights.file import ReadOptions, WeightsFile
from inception3.weights.meta import Weights, WeightsMeta

DESCRIPTION = "timm's Inception v3"
ALSO: tuple[str, ...] = ()
PROJECT = "timm"
COUNTS_PADDING = True  # timm's InceptionA/C/E: F.avg_pool2d(x, 3, 1, padding=1), as torchvision's
detect = torchvision.detect  # the same layout; detection meets torchvision first and reads it as such


def read(file: WeightsFile, options: ReadOptions) -> Weights:
    """The file read as torchvision's, its meta timm's."""
    return torchvision.read_as(file, options, "timm")


def write(model: InceptionV3, output: BinaryIO, meta: WeightsMeta) -> list[str]:
    """A `torch.save`d state dict that `timm.create_model("inception_v3", num_classes=N)` loads with
    strict=True (`aux_logits=True` when the aux head is kept); returns what the file cannot hold."""
    require_full_width(model.config, PROJECT)
    aux = torchvision.aux_fits(model)
    torch.save(torchvision.to_torchvision(model, aux=aux), output)
    kept = ["the aux head is kept: build timm's model with aux_logits=True to load it"] if aux else []
    return torchvision.lost_in_state_dict(model, aux, PROJECT) + kept
