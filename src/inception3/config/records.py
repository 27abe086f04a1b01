"""The config records, frozen, each field with its default, its valid values and why (`knob`):
ModelConfig (the network), AugmentConfig (the training input's augmentation), TrainConfig (which holds
both), BuildConfig and EvalConfig; and the string choices some fields take.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from inception3.config.check import check_fields, from_flat, knob, known_key, text_as_paths
from inception3.config.presets import with_preset
from inception3.config.recipe import (
    ADAMW_BETAS,
    ADAMW_EPSILON,
    AREA_RANGE,
    AUGMENT_OPS,
    AUX_LOSS_WEIGHT,
    BATCH_NORM_DECAY,
    BATCH_NORM_EPSILON,
    BATCH_NORM_ZERO_DEBIAS,
    BATCH_SIZE,
    CHECKPOINT_EVERY_STEPS,
    CUTMIX_ALPHA,
    DEPTH_MULTIPLIER,
    DROPOUT_KEEP_PROB,
    ERASING_AREA_RANGE,
    ERASING_ASPECT_RANGE,
    ERASING_PROB,
    FLOAT32_MAX,
    IMAGE_SIZE,
    INITIAL_LEARNING_RATE,
    INT64_MAX,
    LABEL_SMOOTHING,
    LAYER_DECAY_OFF,
    LEARNING_RATE_DECAY_FACTOR,
    LOG_EVERY_STEPS,
    MAX_BATCH,
    MAX_CLASSES,
    MAX_DEPTH_MULTIPLIER,
    MAX_ERASING_ASPECT,
    MAX_IMAGE_SIZE,
    MAX_RANDAUGMENT_MAGNITUDE_STD,
    MAX_RANDAUGMENT_NUM_OPS,
    MAX_SHARDS,
    MAX_STEPS,
    MAX_WORKERS,
    MIN_DEPTH,
    MIN_IMAGE_SIZE,
    MIN_LEARNING_RATE,
    MIN_OBJECT_COVERED,
    MIX_PROB,
    MIX_SWITCH_PROB,
    MIXUP_ALPHA,
    MOVING_AVERAGE_DECAY,
    NUM_CLASSES,
    NUM_EPOCHS_PER_DECAY,
    RANDAUGMENT_MAGNITUDE,
    RANDAUGMENT_MAGNITUDE_STD,
    RANDAUGMENT_MAX_MAGNITUDE,
    RANDAUGMENT_NUM_OPS,
    RMSPROP_DECAY,
    RMSPROP_EPSILON,
    RMSPROP_MOMENTUM,
    SUMMARY_EVERY_STEPS,
    WEIGHT_DECAY,
    WIDEST_LAYER,
)
from inception3.errors import Inception3Error
from inception3.weights import registry as weights_registry

_CLASSES = (
    "the logits layers hold 2816 weights per class, kept 4 times (weights, averages, optimizer): "
    f"{MAX_CLASSES} classes take 4.5 GB"
)


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape: what must match between a checkpoint and the model that loads it."""

    image_size: int = knob(
        IMAGE_SIZE,
        f"the network's VALID convolutions need {MIN_IMAGE_SIZE} px; at {MAX_IMAGE_SIZE} px one "
        "image already needs 47× the activation memory of 299 px",
        at_least=MIN_IMAGE_SIZE,
        at_most=MAX_IMAGE_SIZE,
    )
    depth_multiplier: float = knob(
        DEPTH_MULTIPLIER,
        f"it scales every layer's channels and the weights grow with its square: {MAX_DEPTH_MULTIPLIER:g} "
        "is already 16× Inception v3's 24M",
        above=0.0,
        at_most=MAX_DEPTH_MULTIPLIER,
    )
    min_depth: int = knob(
        MIN_DEPTH,
        f"the fewest channels of a layer; above {WIDEST_LAYER}, the widest layer, it makes every "
        "layer that wide",
        at_least=1,
        at_most=WIDEST_LAYER,
    )
    num_classes: int = knob(
        NUM_CLASSES,
        _CLASSES,
        at_least=1,
        at_most=MAX_CLASSES,
    )
    aux_logits: bool = knob(True, "the auxiliary head on Mixed_6e, on or off")
    dropout_keep_prob: float = knob(
        DROPOUT_KEEP_PROB, "the fraction of activations kept; 0 keeps none", above=0.0, at_most=1.0
    )
    batch_norm_decay: float = knob(
        BATCH_NORM_DECAY,
        "the moving statistics' decay; 1 would never update them",
        at_least=0.0,
        below=1.0,
    )
    batch_norm_zero_debias: bool = knob(
        BATCH_NORM_ZERO_DEBIAS, "debiased moving statistics, as the original's; off: they climb from 0/1"
    )
    batch_norm_epsilon: float = knob(
        BATCH_NORM_EPSILON,
        "added to the variance under the square root: 0 divides by zero on a constant channel, "
        "above 1 it drowns the variance",
        above=0.0,
        at_most=1.0,
    )


@dataclass(frozen=True)
class AugmentConfig:
    """The training input's augmentation: the random crop the loader's workers cut, then the
    device-side ops in order."""

    crop_min_object_covered: float = knob(
        MIN_OBJECT_COVERED, "a fraction of the bounding box the random crop keeps", at_least=0.0, at_most=1.0
    )
    crop_area_range: tuple[float, float] = knob(
        AREA_RANGE, "the random crop's area, as fractions of the image", above=0.0, at_most=1.0
    )
    augment_ops: tuple[str, ...] = knob(  # names checked by the augmentation registry (data/augment)
        AUGMENT_OPS, "the device-side ops, in order, by name; written into config.toml"
    )
    # RandAugment, TrivialAugment and random erasing: read only when augment_ops names them
    randaugment_num_ops: int = knob(
        RANDAUGMENT_NUM_OPS,
        f"ops randaugment applies to each image in a row; beyond {MAX_RANDAUGMENT_NUM_OPS} most "
        "images are noise",
        at_least=1,
        at_most=MAX_RANDAUGMENT_NUM_OPS,
    )
    randaugment_magnitude: float = knob(
        RANDAUGMENT_MAGNITUDE,
        f"timm's level m: the fraction m/{RANDAUGMENT_MAX_MAGNITUDE:g} of each op's range",
        at_least=0.0,
        at_most=RANDAUGMENT_MAX_MAGNITUDE,
    )
    randaugment_magnitude_std: float = knob(
        RANDAUGMENT_MAGNITUDE_STD,
        "the spread of each op's level around randaugment_magnitude (timm's mstd), 0: none; "
        f"timm reads more than {MAX_RANDAUGMENT_MAGNITUDE_STD:g} as uniform sampling, which this does not do",
        at_least=0.0,
        at_most=MAX_RANDAUGMENT_MAGNITUDE_STD,
    )
    erasing_prob: float = knob(
        ERASING_PROB, "the fraction of images random_erasing erases a box of", at_least=0.0, at_most=1.0
    )
    erasing_area_range: tuple[float, float] = knob(
        ERASING_AREA_RANGE, "the erased box's area, as fractions of the image", above=0.0, at_most=1.0
    )
    erasing_aspect_range: tuple[float, float] = knob(
        ERASING_ASPECT_RANGE,
        f"the erased box's height / width, drawn log-uniform; {MAX_ERASING_ASPECT:g} is already a line",
        above=0.0,
        at_most=MAX_ERASING_ASPECT,
    )


# String choices: a value is checked against these by name (check.py).
Device = Literal["auto", "cuda", "cpu"]  # "auto": CUDA when available, else the CPU
Decode = Literal["auto", "cpu", "gpu"]  # where training JPEGs are decoded; "auto": gpu with CUDA, else cpu
# "bf16", "fp16": autocast (fp16 with dynamic loss scaling); "auto": bf16 where the GPU has it, fp16 on
# other GPUs, fp32 on a CPU (train/precision.py)
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Optimizer = Literal["rmsprop", "sgd", "adamw"]  # RMSProp with TensorFlow's semantics, momentum SGD, AdamW
Schedule = Literal["exponential", "cosine", "constant"]  # "exponential": the original's staircase
MixMode = Literal["batch", "elem"]  # one mixing draw per batch, or one per image (timm's mode)
# "sampler": every class drawn equally often per epoch; "loss": inverse-frequency class weights
ClassBalance = Literal["none", "sampler", "loss"]
# How eval and predict turn a decoded image into the network's input (data/preprocess.py)
EvalPreprocessing = Literal["inception", "inception-tf2", "torchvision", "timm", "keras"]
EVAL_PREPROCESSINGS: tuple[str, ...] = typing.get_args(EvalPreprocessing)
# What a weights file is, when its contents do not say it clearly enough: the weights registry's names
WEIGHTS_FORMATS: tuple[str, ...] = weights_registry.NAMES
WeightsFormat = Literal[WEIGHTS_FORMATS]  # type: ignore[valid-type]

_INT64 = "; config.toml holds 64-bit integers"


# --- training --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Every knob of `inception3 train`, defaulting to the original single-machine recipe.

    The keys of `--set key=value` and of RUN/config.toml are the field names, flat: the fields of
    the nested records are keys too, read into them (`image_size`, `depth_multiplier`, ... into
    `model`; `crop_area_range`, `augment_ops`, ... into `augment`). The model's
    class count is the dataset's unless `num_classes` is set. `batch_size` is global: each of N
    ranks gets batch_size / N, in `grad_accum` micro-batches.
    """

    model: ModelConfig = knob(why="the network; its fields are keys of their own", factory=ModelConfig)
    num_classes: int | None = knob(  # None: the dataset's class count
        None,
        _CLASSES,
        at_least=1,
        at_most=MAX_CLASSES,
    )
    sync_batch_norm: bool = knob(False, "the original's towers each kept their own statistics")
    # data
    label_offset: int | None = knob(  # None: from dataset.json (TF-built shards: 1)
        None,
        "the stored label of class 0: 0 for inception3's shards, 1 for TensorFlow's",
        at_least=0,
        at_most=1,
    )
    num_workers: int = knob(
        2,
        f"image-decoding processes per rank, 0: in the training process; beyond {MAX_WORKERS} they "
        "only add memory",
        at_least=0,
        at_most=MAX_WORKERS,
    )
    skip_corrupt: bool = knob(False, "leave corrupt records out instead of stopping")
    augment: AugmentConfig = knob(
        why="the training input's augmentation; its fields are keys of their own", factory=AugmentConfig
    )
    # steps and batches
    batch_size: int = knob(
        BATCH_SIZE,
        f"it is the global batch, split across the ranks; {MAX_BATCH} images are more than a "
        "group of accelerators holds",
        at_least=1,
        at_most=MAX_BATCH,
    )
    batch_size_per_rank: int | None = knob(  # None: batch_size is the global batch
        None,
        "images per rank and step: at a run's start the global batch becomes this × the ranks, "
        "and stays so when it resumes on another number of ranks",
        at_least=1,
        at_most=MAX_BATCH,
    )
    grad_accum: int = knob(
        1,
        "micro-batches per step; each rank's share of the batch divides by it",
        at_least=1,
        at_most=MAX_BATCH,
    )
    max_steps: int = knob(MAX_STEPS, "the step training ends at" + _INT64, at_least=1, at_most=INT64_MAX)
    seed: int = knob(
        0,
        "it seeds numpy's SeedSequence, which takes no negatives, and torch's 64-bit generator",
        at_least=0,
        at_most=INT64_MAX,
    )
    # loss
    label_smoothing: float = knob(
        LABEL_SMOOTHING, "1 would leave no trace of the label", at_least=0.0, below=1.0
    )
    aux_loss_weight: float = knob(
        AUX_LOSS_WEIGHT,
        "the aux head's share of the loss; negative trains it away from the labels",
        at_least=0.0,
    )
    weight_decay: float = knob(
        WEIGHT_DECAY,
        "L2 on the weights (AdamW: decoupled decay), negative would grow them; the optimizer scales by it "
        "in float32",
        at_least=0.0,
        at_most=FLOAT32_MAX,
    )
    # mixing (mixup, CutMix) and class balance
    mixup_alpha: float = knob(
        MIXUP_ALPHA, "mixup's Beta(α, α) for the mixing weight; 0: no mixup", at_least=0.0
    )
    cutmix_alpha: float = knob(
        CUTMIX_ALPHA, "CutMix's Beta(α, α) for the pasted area; 0: no CutMix", at_least=0.0
    )
    mix_prob: float = knob(MIX_PROB, "a probability: a batch (or image) is mixed", at_least=0.0, at_most=1.0)
    mix_switch_prob: float = knob(
        MIX_SWITCH_PROB, "a probability: CutMix instead of mixup when both are on", at_least=0.0, at_most=1.0
    )
    mix_mode: MixMode = knob("batch", "one mixing draw per batch, or per image")
    class_balance: ClassBalance = knob("none", "how rare classes are made to count as much as common ones")
    # optimizer: "rmsprop" (TensorFlow semantics), "sgd" (momentum) or "adamw" (train/optim.py)
    optimizer: Optimizer = knob("rmsprop", "the optimizer")
    rmsprop_decay: float = knob(
        RMSPROP_DECAY, "the mean square's decay; 1 would never update it", at_least=0.0, below=1.0
    )
    rmsprop_epsilon: float = knob(RMSPROP_EPSILON, "inside the square root; 0 can divide by zero", above=0.0)
    momentum: float = knob(
        RMSPROP_MOMENTUM, "1 or more never forgets a gradient and diverges", at_least=0.0, below=1.0
    )
    # learning rate: "exponential" (staircase), "cosine" or "constant", after `warmup_steps`
    learning_rate: float = knob(
        INITIAL_LEARNING_RATE,
        "the step size, 0 learns nothing; the optimizer scales by it in float32",
        above=0.0,
        at_most=FLOAT32_MAX,
    )
    lr_schedule: Schedule = knob("exponential", "the learning rate's schedule")
    num_epochs_per_decay: float = knob(
        NUM_EPOCHS_PER_DECAY,
        "epochs between staircase decays: 0 would decay at every step; for no decay at all use "
        "lr_schedule=constant",
        above=0.0,
        at_most=1e6,
    )
    learning_rate_decay_factor: float = knob(
        LEARNING_RATE_DECAY_FACTOR,
        "it multiplies the rate at each decay: 0 stops learning, above 1 grows the rate",
        above=0.0,
        at_most=1.0,
    )
    warmup_steps: int = knob(0, "steps of linear warm-up, 0: none" + _INT64, at_least=0, at_most=INT64_MAX)
    # optimizers beyond the original's, and the schedule's floor (train/optim.py)
    nesterov: bool = knob(False, "Nesterov momentum, for optimizer=sgd with momentum > 0")
    adamw_beta1: float = knob(
        ADAMW_BETAS[0],
        "AdamW's decay of the gradient's mean; 1 would never update it",
        at_least=0.0,
        below=1.0,
    )
    adamw_beta2: float = knob(
        ADAMW_BETAS[1],
        "AdamW's decay of the gradient's square; 1 would never update it",
        at_least=0.0,
        below=1.0,
    )
    adamw_epsilon: float = knob(
        ADAMW_EPSILON, "AdamW's, outside the square root; 0 can divide by zero", above=0.0
    )
    layer_decay: float = knob(
        LAYER_DECAY_OFF,
        "each layer's learning rate is this^(layers above it), for fine-tuning; 1: off, 0 would "
        "freeze all but the heads",
        above=0.0,
        at_most=1.0,
    )
    min_learning_rate: float = knob(
        MIN_LEARNING_RATE, "the cosine schedule's floor (timm's lr_min), below learning_rate", at_least=0.0
    )
    # moving averages
    ema_decay: float = knob(
        MOVING_AVERAGE_DECAY, "the moving averages' decay; 1 would never update them", at_least=0.0, below=1.0
    )
    # fine-tuning
    init_from: str = knob(  # an inception3 checkpoint or a plain InceptionV3 state dict
        "", "a weights file's path, written into config.toml"
    )
    fine_tune: bool = knob(False, "leave the logits out of init_from even when the class counts match")
    trainable: tuple[str, ...] = knob(  # parameter scopes to train, e.g. ("Logits", "AuxLogits"); () = all
        (), "parameter scopes, written into config.toml"
    )
    # speed
    device: Device = knob("auto", "where the network runs")
    precision: Precision = knob("auto", "the arithmetic of the forward pass")
    channels_last: bool | None = knob(  # None ("auto"): on with CUDA; on a CPU, what measured faster
        None, "the NHWC layout"
    )
    synthetic_data: bool = knob(
        False, "one random batch made on the device, for ever: how fast training is without input"
    )
    compile: bool = knob(False, "torch.compile the network")
    compile_backend: str = knob("inductor", "a torch.compile backend, written into config.toml")
    # input placement
    decode: Decode = knob(
        "auto",
        "where training JPEGs are decoded: cpu (loader workers) or gpu (nvJPEG on the CUDA device, "
        "the workers only read records)",
    )
    # logging and checkpoints
    log_every: int = knob(LOG_EVERY_STEPS, "steps between log lines" + _INT64, at_least=1, at_most=INT64_MAX)
    summary_every: int = knob(
        SUMMARY_EVERY_STEPS, "steps between summaries" + _INT64, at_least=1, at_most=INT64_MAX
    )
    checkpoint_every: int = knob(
        CHECKPOINT_EVERY_STEPS, "steps between checkpoints" + _INT64, at_least=1, at_most=INT64_MAX
    )
    checkpoint_secs: float = knob(0.0, "seconds between checkpoints; 0: by steps only", at_least=0.0)
    keep_checkpoints: int = knob(5, "the newest kept; 0 keeps all", at_least=0, at_most=INT64_MAX)
    keep_checkpoint_every: int = knob(
        0, "also keep each checkpoint at a multiple of this step; 0: none", at_least=0, at_most=INT64_MAX
    )

    def __post_init__(self) -> None:
        """Refuse values that cannot work, with the key at fault: each key against its row of the
        table (config/check.py), then the keys that must agree with each other."""
        fix = "; fix it with --set or in the --config file"
        check_fields(self, lambda key: f"config: {key}", fix)
        for key, what in (
            ("crop_area_range", "two fractions 0 < low <= high <= 1"),
            ("erasing_area_range", "two fractions 0 < low <= high <= 1"),
            ("erasing_aspect_range", f"two ratios 0 < low <= high <= {MAX_ERASING_ASPECT:g}"),
        ):
            low, high = getattr(self.augment, key)
            if low > high:
                raise Inception3Error(f"config: {key} must be {what}, got {getattr(self.augment, key)}{fix}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0.0):
            raise Inception3Error(
                f"config: nesterov needs optimizer=sgd and momentum > 0, got optimizer={self.optimizer}, "
                f"momentum={self.momentum}{fix}"
            )
        if self.min_learning_rate >= self.learning_rate:
            raise Inception3Error(
                f"config: min_learning_rate must be below learning_rate, got {self.min_learning_rate} >= "
                f"{self.learning_rate}{fix}"
            )

    @classmethod
    def from_preset(cls, preset: str | None = None, /, **keys: object) -> TrainConfig:
        """The defaults, then `preset`'s overrides (config/presets.py; None: none), then `keys`.

        `keys` are flat config keys, as `--set` and config.toml spell them: `image_size` and
        `depth_multiplier` go into `model`, `crop_area_range` into `augment`. As with
        `inception3 train --preset NAME --set KEY=VALUE`, a global `batch_size` replaces a preset's
        `batch_size_per_rank`. An unknown preset or key, or a value outside its range, is an
        Inception3Error naming it: `TrainConfig.from_preset("flowers", learning_rate=0.002)`.
        """
        for name in keys:
            known_key(cls, name, "TrainConfig.from_preset")
        return from_flat(cls, with_preset(preset, {name: _typed(value) for name, value in keys.items()}))

    def model_config(self, num_classes: int) -> ModelConfig:
        """The network this config trains, for a dataset of `num_classes` classes."""
        return dataclasses.replace(self.model, num_classes=self.num_classes or num_classes)


def _typed(value: object) -> object:
    """A Python value as config keys hold it: a path as text (init_from), a list as a tuple."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return tuple(value) if isinstance(value, list) else value


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


# --- building shards ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildConfig:
    """What `inception3 build` converts, and into how many shards (None: one per 1024 images).

    Checked on creation (its fields are `inception3 build`'s options), naming the option at fault.
    """

    train_dir: Path = knob(why="one sub-folder of images per class")
    output_dir: Path = knob(why="where the shards go")
    validation_dir: Path | None = knob(None, "the same class sub-folders")
    validation_fraction: float | None = knob(  # or: hold out this fraction of train_dir
        None, "the fraction of train_dir held out; 0 holds out nothing, 1 everything", above=0.0, below=1.0
    )
    labels_file: Path | None = knob(None, "class folder names in label order; None: sorted folder names")
    train_shards: int | None = knob(
        None, f"shard names have five digits (-of-{MAX_SHARDS})", at_least=1, at_most=MAX_SHARDS
    )
    validation_shards: int | None = knob(
        None, f"shard names have five digits (-of-{MAX_SHARDS})", at_least=1, at_most=MAX_SHARDS
    )
    workers: int | None = knob(  # processes; None: all cores
        None,
        f"processes converting images; beyond {MAX_WORKERS} they only add memory",
        at_least=1,
        at_most=MAX_WORKERS,
    )
    bounding_boxes: Path | None = knob(None, "a CSV or ImageNet's folder of XML annotations")
    label_offset: int = knob(
        0, "0: labels from 0; 1: the original's, with 0 for the background class", at_least=0, at_most=1
    )
    progress: bool | None = knob(None, "a progress bar; None: when stderr is a terminal")

    def __post_init__(self) -> None:
        text_as_paths(self)
        check_fields(self, _flag)


# --- evaluation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalConfig:
    """How `inception3 eval` scores checkpoints: which split, which weights, how fast.

    Checked on creation (its fields are `inception3 eval`'s options), naming the option at fault.
    """

    split: str = knob("validation", "split names are part of file names", name=True)
    use_ema: bool = knob(True, "the moving averages, as the original evaluator restored them")
    batch_size: int = knob(  # global, split across the ranks as in training
        BATCH_SIZE, "images per batch, global: split across the ranks", at_least=1, at_most=MAX_BATCH
    )
    device: Device = knob("auto", "where the network runs")
    num_workers: int = knob(
        2,
        f"image-decoding processes per rank; beyond {MAX_WORKERS} they only add memory",
        at_least=0,
        at_most=MAX_WORKERS,
    )
    label_offset: int | None = knob(  # None: from dataset.json (TF-built shards: 1)
        None,
        "the stored label of class 0: 0 for inception3's shards, 1 for TensorFlow's",
        at_least=0,
        at_most=1,
    )
    channels_last: bool = knob(  # NHWC: same results, faster on the CPU and GPU (docs/performance.md)
        True, "the NHWC layout"
    )
    progress: bool | None = knob(None, "a progress bar; None: when stderr is a terminal")
    preprocessing: EvalPreprocessing | None = knob(  # None: the weights' own ("inception" for ours)
        None, "the evaluation preprocessing the weights were scored with"
    )
    labels_file: Path | None = knob(None, "class names, one per line, instead of the weights' own")
    weights_format: WeightsFormat | None = knob(None, "how to read the checkpoint; None: detected")

    def __post_init__(self) -> None:
        text_as_paths(self)
        check_fields(self, _flag)
