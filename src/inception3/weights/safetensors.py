"""safetensors files of this model's state dict, and the metadata `inception3 export` adds to them.

An export's metadata holds the config and the `WeightsMeta` fields as strings ("format",
"model_config", "class_names" and "step" as JSON or decimal, "ema" as "true"/"false",
"eval_preprocessing"); `to_metadata` writes them and `meta_from_metadata` reads them back. A file
without them (safetensors' own `save_file` of a state dict) is read with the config its shapes say.
"""

from __future__ import annotations

import dataclasses
import json

from inception3.config import DEFAULT_EVAL_PREPROCESSING, ModelConfig
from inception3.run.checkpoint import FORMAT
from inception3.weights.file import ReadOptions, WeightsFile
from inception3.weights.meta import Weights, WeightsMeta
from inception3.weights.torchvision import TORCHVISION_KEY

DESCRIPTION = "a safetensors file of this model's state dict"
ALSO = ("inception3",)  # a plain state dict is what inception3's model saves


def detect(file: WeightsFile) -> bool:
    """safetensors' header, and this model's names (torchvision's are `weights/torchvision.py`'s)."""
    return file.kind == "safetensors" and TORCHVISION_KEY not in file.tensors


def read(file: WeightsFile, options: ReadOptions) -> Weights:
    """The tensors, with an export's config and meta when its metadata has them."""
    info = file.safetensors.metadata
    if "model_config" not in info:
        return Weights(file.tensors, None, WeightsMeta("safetensors"))
    return Weights(file.tensors, ModelConfig(**json.loads(info["model_config"])), meta_from_metadata(info))


def to_metadata(meta: WeightsMeta, config: ModelConfig) -> dict[str, str]:
    """The metadata `inception3 export` writes: the config and `meta` as strings."""
    return {
        "format": FORMAT,
        "model_config": json.dumps(dataclasses.asdict(config)),
        "class_names": json.dumps(list(meta.class_names or ())),
        "step": str(meta.step),
        "ema": str(meta.ema).lower(),
        "eval_preprocessing": meta.eval_preprocessing,
    }


def meta_from_metadata(info: dict[str, str]) -> WeightsMeta:
    """An export's `WeightsMeta` from its metadata (`to_metadata`)."""
    names = json.loads(info["class_names"]) if "class_names" in info else None
    return WeightsMeta(
        source="inception3",
        step=int(info.get("step", 0)),
        class_names=tuple(names) if names is not None else None,
        ema=info.get("ema") == "true",
        eval_preprocessing=info.get("eval_preprocessing") or DEFAULT_EVAL_PREPROCESSING,
    )
