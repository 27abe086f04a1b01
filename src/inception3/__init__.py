"""inception3: Google's Inception v3 training system, rebuilt on PyTorch.

The Python API, the same functions `inception3 COMMAND` calls (README, "From Python"):

    build_shards(BuildConfig | keywords)          class folders of images -> TFRecord shards
    train(TrainConfig, data_dir, train_dir)       train or resume a run -> TrainResult
    evaluate(weights, data_dir, EvalConfig)       one weights file on a split -> EvalResult
    predict(weights, images)                      image files, Pillow images or uint8 tensors -> Prediction
    load_model(path)                              any weights file -> (InceptionV3, WeightsMeta)
    TrainConfig.from_preset(name, **keys), EvalConfig, BuildConfig, ModelConfig, AugmentConfig

User mistakes raise `Inception3Error` with the one-line message the CLI prints.

Each function lives in the module of its stage (train/loop.py, evaluate.py, predict.py,
data/build.py, weights/load.py) and is imported from there on first use: `import inception3` does
not import torch. `inception3.train`, `inception3.evaluate` and `inception3.predict` are those
modules, made callable (`callable_module.py`): calling one calls its function of the same name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from inception3.config import AugmentConfig, BuildConfig, EvalConfig, ModelConfig, TrainConfig
from inception3.errors import Inception3Error

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time, `__getattr__` below
    from inception3.data.build import BuildReport, build_shards
    from inception3.evaluate import EvalResult, evaluate
    from inception3.export import export_checkpoint
    from inception3.model import InceptionV3
    from inception3.predict import Prediction, predict
    from inception3.train.loop import TrainResult, train
    from inception3.weights import WeightsMeta, load_model

__version__ = "0.1.0"

# The names imported on first use, and the module of each. train, evaluate and predict are the
# callable modules themselves.
_LAZY = {
    "build_shards": "inception3.data.build",
    "BuildReport": "inception3.data.build",
    "train": None,
    "TrainResult": "inception3.train.loop",
    "evaluate": None,
    "EvalResult": "inception3.evaluate",
    "predict": None,
    "Prediction": "inception3.predict",
    "load_model": "inception3.weights",
    "WeightsMeta": "inception3.weights",
    "InceptionV3": "inception3.model",
    "export_checkpoint": "inception3.export",
}

__all__ = [
    "AugmentConfig",
    "BuildConfig",
    "BuildReport",
    "EvalConfig",
    "EvalResult",
    "Inception3Error",
    "InceptionV3",
    "ModelConfig",
    "Prediction",
    "TrainConfig",
    "TrainResult",
    "WeightsMeta",
    "build_shards",
    "evaluate",
    "export_checkpoint",
    "load_model",
    "predict",
    "train",
]


def __getattr__(name: str) -> object:
    """The API's functions and records on first use: the CLI starts (and answers Ctrl-C) before torch
    loads."""
    if name not in _LAZY:
        raise AttributeError(f"module 'inception3' has no attribute {name!r}")
    module = _LAZY[name]
    if module is None:  # importing a submodule binds it here: later lookups do not come back
        return importlib.import_module(f"inception3.{name}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
