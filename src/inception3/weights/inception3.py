"""inception3's own weights: a training checkpoint (`run/checkpoint.py`) or a safetensors export.

A checkpoint is a PyTorch file whose "format" field is `run.checkpoint.FORMAT`; its content is read
by its record, `run.record.Checkpoint`. An export (`inception3 export --format safetensors`) carries its
config and meta in the safetensors metadata (`weights/safetensors.py`).
"""

from __future__ import annotations

from inception3.run.checkpoint import FORMAT
from inception3.run.record import Checkpoint
from inception3.weights import safetensors
from inception3.weights.file import ReadOptions, WeightsFile
from inception3.weights.meta import Weights, WeightsMeta
from inception3.weights.torchvision import TORCHVISION_KEY

DESCRIPTION = "an inception3 checkpoint or export"
ALSO: tuple[str, ...] = ()


def detect(file: WeightsFile) -> bool:
    """A checkpoint's "format" field, or an export's config in its safetensors metadata."""
    if file.kind == "torch":
        return file.pickled.get("format") == FORMAT
    if file.kind != "safetensors" or "model_config" not in file.safetensors.metadata:
        return False
    return TORCHVISION_KEY not in file.tensors


def read(file: WeightsFile, options: ReadOptions) -> Weights:
    """The checkpoint's moving averages (the raw weights without `options.use_ema`), or the export's."""
    if file.kind == "safetensors":
        return safetensors.read(file, options)
    return from_checkpoint(file.pickled, options.use_ema)


def from_checkpoint(state: dict, use_ema: bool) -> Weights:
    """The weights, config and meta of a checkpoint's content, as `run.record.Checkpoint` reads it."""
    saved = Checkpoint.from_state(state)
    weights, averaged = saved.weights(use_ema)
    meta = WeightsMeta(
        source="inception3",
        step=saved.step,
        class_names=saved.class_names,
        final=saved.final,
        ema=averaged,
        eval_preprocessing=saved.eval_preprocessing,
    )
    return Weights(weights, saved.model_config, meta)
