"""A plain PyTorch state dict of this model (`torch.save(model.state_dict())`), wrapped or not.

`weights/file.py` unwraps "state_dict"/"model"/"state_dict_ema" and removes DDP's and compile's
prefixes; the config comes from the tensor shapes (`convert.config_from_state`).
"""

from __future__ import annotations

from inception3.run.checkpoint import FORMAT
from inception3.weights.file import ReadOptions, WeightsFile
from inception3.weights.meta import Weights, WeightsMeta
from inception3.weights.torchvision import TORCHVISION_KEY

DESCRIPTION = "a PyTorch state dict of this model"
ALSO = ("inception3",)  # a plain state dict is what inception3's model saves


def detect(file: WeightsFile) -> bool:
    """A PyTorch file of tensors with this model's names (not a checkpoint: that is inception3's)."""
    if file.kind != "torch" or file.pickled.get("format") == FORMAT:
        return False
    return TORCHVISION_KEY not in file.tensors


def read(file: WeightsFile, options: ReadOptions) -> Weights:
    """The tensors as they are; the config is left to their shapes."""
    return Weights(file.tensors, None, WeightsMeta("state dict"))
