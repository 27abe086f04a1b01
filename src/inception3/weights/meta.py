"""What reading a weights file gives: its tensors, the network they describe, and one `WeightsMeta`."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from inception3.config import DEFAULT_EVAL_PREPROCESSING, ModelConfig


@dataclass(frozen=True)
class WeightsMeta:
    """What a weights file says besides its tensors; every format's reader fills one.

    `eval_preprocessing` names how images become these weights' inputs (`data/preprocess.py`):
    "inception" for inception3's and TF-Slim's unless the file stores another, "torchvision",
    "timm" when the caller says the file is timm's, "keras". Each format keeps its own on-disk
    form of these fields (checkpoint keys, safetensors metadata); its module converts.
    """

    source: str  # who made the file: inception3, safetensors, state dict, torchvision, timm, keras, TF-Slim
    step: int = 0  # the training step of the weights; 0 when the file does not say
    class_names: tuple[str, ...] | None = None  # one per output; None when the file names none
    final: bool = False  # the checkpoint training marked as its last
    ema: bool = False  # the weights are the moving averages, not the raw weights
    eval_preprocessing: str = DEFAULT_EVAL_PREPROCESSING
    include_top: bool = True  # False: Keras weights without the classifier, for fine-tuning only


@dataclass
class Weights:
    """A weights file as this model's state dict, the network it describes, and what else it says.

    A Keras file without its classifier has no `Logits.` keys: it can start a fine-tune, not classify.
    """

    state: dict[str, Tensor]
    config: ModelConfig | None  # None when the file does not say (a plain state dict): see config_from_state
    meta: WeightsMeta
