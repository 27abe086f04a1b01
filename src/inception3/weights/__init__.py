"""Weights of Inception v3: ours, safetensors, plain state dicts, torchvision, timm (files and folders),
Keras, TF-Slim.

`read_weights` turns any of them into this model's state dict, the `ModelConfig` it describes and a
`WeightsMeta` (class names, evaluation preprocessing, step, averaged or raw, source); `load_model`
builds the network from that. What a file is comes from its contents: `registry.FORMATS` lists one
module per format, in detection order, each with `detect` and `read` (`--weights-format` names one
when the contents cannot tell, and a name the contents contradict is refused). `convert` holds what
the conversions share (batch-norm folding, torchvision's pooling, the config of a state dict). The
torchvision, timm, hf and keras modules also `write` their format, for `inception3 export`.

The names below are imported on first use, so `inception3.weights.registry` (the format names the
CLI lists) loads without torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Weights": "meta",
    "WeightsMeta": "meta",
    "read_weights": "load",
    "load_model": "load",
    "config_from_state": "convert",
    "use_torchvision_pooling": "convert",
    "convert_torchvision": "torchvision",
    "load_torchvision": "torchvision",
    "load_timm": "torchvision",
    "convert_tf_slim": "tf_slim",
    "load_tf_slim": "tf_slim",
    "FORMATS": "registry",
}
__all__ = [*_EXPORTS, "WEIGHTS_FORMATS"]


def __getattr__(name: str) -> object:
    """The public names of the package's modules, imported when first asked for."""
    if name == "WEIGHTS_FORMATS":
        return importlib.import_module("inception3.weights.registry").NAMES
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"inception3.weights.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'inception3.weights' has no attribute {name!r}")
