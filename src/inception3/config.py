"""Every constant of the original recipe, named once, with where it came from; the frozen configs,
each field with its valid values and why (`_knob`), which `check_fields` checks in one place.

Sources, abbreviated below:
  [model]  tensorflow/models inception/inception/slim/inception_model.py (the original trainer's net)
  [slim]   tensorflow/models research/slim/nets/inception_v3.py (TF-Slim, the end-point names)
  [train]  inception/inception/inception_train.py
  [imgp]   inception/inception/image_processing.py
  [inc]    inception/inception/inception_model.py (losses, moving averages)
  [dist]   inception/inception/inception_distributed_train.py
  [build]  inception/inception/data/build_image_data.py
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inception3.errors import Inception3Error

# --- model ---------------------------------------------------------------------------------
IMAGE_SIZE = 299  # [imgp] FLAGS.image_size
MIN_IMAGE_SIZE = 75  # [slim] smallest input the network's VALID convolutions accept
CONV_INIT_STD = 0.1  # [model] arg_scope(ops.conv2d, stddev=0.1); truncated at 2 std
AUX_CONV_INIT_STD = 0.01  # [model] aux_logits conv 768, stddev=0.01
AUX_LOGITS_INIT_STD = 0.001  # [model] aux_logits fc, stddev=0.001
LOGITS_INIT_STD = 0.01  # [model] logits fc, ops.fc's default stddev=0.01
TRUNCATION_STDS = 2.0  # tf.truncated_normal re-draws values beyond 2 std
BATCH_NORM_DECAY = 0.9997  # [inc] BATCHNORM_MOVING_AVERAGE_DECAY
BATCH_NORM_EPSILON = 0.001  # [model] batch_norm_params epsilon
# [inc] slim/ops.py batch_norm: assign_moving_average(moving_mean, mean, decay), whose default in
# TensorFlow >= 1.0 is zero_debias=True: the t-th update weighs the batch by (1-decay)/(1-decay^t).
BATCH_NORM_ZERO_DEBIAS = True
# The update count given to batch-norm statistics loaded without one (other projects' weights, older
# checkpoints): decay^t is 0 in float64 from t ~ 2.5 million on at 0.9997, so they are never debiased.
STATISTICS_OF_UNKNOWN_AGE = 2**40
DROPOUT_KEEP_PROB = 0.8  # [model] inception_v3(dropout_keep_prob=0.8)
MIN_DEPTH = 16  # [slim] inception_v3(min_depth=16)
DEPTH_MULTIPLIER = 1.0  # [slim] inception_v3(depth_multiplier=1.0)
NUM_CLASSES = 1000  # ImageNet; the original used 1001 with class 0 as background

# --- loss ----------------------------------------------------------------------------------
LABEL_SMOOTHING = 0.1  # [inc] loss(): label_smoothing=0.1
AUX_LOSS_WEIGHT = 0.4  # [inc] loss(): aux logits weight=0.4
WEIGHT_DECAY = 0.00004  # [model] arg_scope([ops.conv2d, ops.fc], weight_decay=0.00004)

# --- optimizer and schedule ---------------------------------------------------------------
RMSPROP_DECAY = 0.9  # [train] RMSPROP_DECAY
RMSPROP_MOMENTUM = 0.9  # [train] RMSPROP_MOMENTUM
RMSPROP_EPSILON = 1.0  # [train] RMSPROP_EPSILON
INITIAL_LEARNING_RATE = 0.1  # [train] FLAGS.initial_learning_rate
NUM_EPOCHS_PER_DECAY = 30.0  # [train] FLAGS.num_epochs_per_decay
LEARNING_RATE_DECAY_FACTOR = 0.16  # [train] FLAGS.learning_rate_decay_factor
DIST_INITIAL_LEARNING_RATE = 0.045  # [dist] FLAGS.initial_learning_rate
DIST_NUM_EPOCHS_PER_DECAY = 2.0  # [dist] FLAGS.num_epochs_per_decay
DIST_LEARNING_RATE_DECAY_FACTOR = 0.94  # [dist] FLAGS.learning_rate_decay_factor
FINE_TUNE_LEARNING_RATE = 0.001  # inception README, flowers fine-tuning example
BATCH_SIZE = 32  # [train] FLAGS.batch_size (global, split across towers)
DIST_BATCH_SIZE_PER_RANK = 32  # [dist] FLAGS.batch_size: each replica's own batch
# Fewer images than this per rank's micro-batch make per-rank batch-norm statistics noisy enough to
# cost accuracy (Goyal et al. 2017 and Wu & He 2018 see the loss from ~8 images down): refused across
# ranks unless the statistics are synchronised (sync_batch_norm) or --force is given.
MIN_BATCH_NORM_BATCH = 8
# channels_last=auto on a CPU (on CUDA it is on): the trainer's step ran 1.15-1.41x faster in NHWC on
# two cores, in six runs at 75 px/width 0.25 and 299 px/full width (benchmarks/memory_format.py,
# docs/performance.md).
CPU_CHANNELS_LAST = True
MAX_STEPS = 10_000_000  # [train] FLAGS.max_steps

# --- moving averages -----------------------------------------------------------------------
MOVING_AVERAGE_DECAY = 0.9999  # [inc] MOVING_AVERAGE_DECAY, with num_updates=global_step

# --- input pipeline ------------------------------------------------------------------------
MIN_OBJECT_COVERED = 0.1  # [imgp] distort_image: min_object_covered=0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)  # [imgp] aspect_ratio_range
AREA_RANGE = (0.05, 1.0)  # [imgp] area_range
MAX_CROP_ATTEMPTS = 100  # [imgp] max_attempts
BRIGHTNESS_MAX_DELTA = 32.0 / 255.0  # [imgp] distort_color
SATURATION_RANGE = (0.5, 1.5)  # [imgp] distort_color
HUE_MAX_DELTA = 0.2  # [imgp] distort_color
CONTRAST_RANGE = (0.5, 1.5)  # [imgp] distort_color
EVAL_CENTRAL_FRACTION = 0.875  # [imgp] eval_image: central_crop(0.875)
INPUT_QUEUE_MEMORY_FACTOR = 16  # [imgp] shuffle buffer ~ 16 x 1024 examples
SHUFFLE_BUFFER = 1024 * INPUT_QUEUE_MEMORY_FACTOR  # [imgp] min_queue_examples

# --- dataset build -------------------------------------------------------------------------
TRAIN_SHARDS = 1024  # [build] FLAGS.train_shards (ImageNet)
VALIDATION_SHARDS = 128  # [build] FLAGS.validation_shards (ImageNet)
LABEL_OFFSET_TF = 1  # [build] label index 0 is the unused background class
BUILD_SHUFFLE_SEED = 12345  # [build] random.seed(12345) before shuffling the file list
REENCODE_JPEG_QUALITY = 100  # [build] ImageCoder: tf.image.encode_jpeg(quality=100) for PNG/CMYK

# --- logging and evaluation ----------------------------------------------------------------
LOG_EVERY_STEPS = 10  # [train] `if step % 10 == 0`: the loss line
SUMMARY_EVERY_STEPS = 100  # [train] `if step % 100 == 0`: summaries
CHECKPOINT_EVERY_STEPS = 5000  # [train] `if step % 5000 == 0`: checkpoint
EVAL_INTERVAL_SECS = 300  # inception_eval.py FLAGS.eval_interval_secs
TOP_K = 5  # inception_eval.py: recall @ 5

# --- evaluation preprocessing of other projects' weights (data/preprocess.py, docs/formats.md) -----
# Each project scores its weights with its own crop and resize; the weights carry the name.
DEFAULT_EVAL_PREPROCESSING = "inception"  # [imgp] eval_image (and TF-Slim's preprocess_for_eval)
TORCHVISION_RESIZE_SIZE = 342  # torchvision Inception_V3_Weights.IMAGENET1K_V1.transforms: resize_size
TORCHVISION_CROP_SIZE = 299  # same: crop_size; at another image size S the resize is S * 342 / 299
# torchvision's Normalize; its Inception3(transform_input=True) maps it back to (x - 0.5) / 0.5, so
# the network sees [-1, 1] pixels and these values cancel (they are here to say so, not used).
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
TORCHVISION_INTERPOLATION = "bilinear"  # same transforms: InterpolationMode.BILINEAR, antialias=True
TIMM_CROP_PCT = 0.875  # timm models/inception_v3.py _cfg: crop_pct; resize to floor(S / crop_pct)
TIMM_INTERPOLATION = "bicubic"  # same _cfg: interpolation; mean = std = 0.5 (IMAGENET_INCEPTION_*)
KERAS_INTERPOLATION = "nearest"  # keras.utils.load_img(target_size=(S, S)): its default interpolation

# --- valid values ----------------------------------------------------------------------------
# Every field of the configs below declares its valid values and why, next to its default
# (`_knob`); `check_fields` reads that table, so a new key is one line with its bounds.
INT64_MAX = 2**63 - 1  # config.toml holds TOML integers, which are 64-bit
FLOAT32_MAX = 3.4028234663852886e38  # the optimizers scale tensors by their factors in float32
MAX_IMAGE_SIZE = 2048  # (2048 / 299)² = 47× the activations of a 299-px image
MAX_DEPTH_MULTIPLIER = 4.0  # 16× Inception v3's 24M weights
WIDEST_LAYER = 768  # the largest depth any layer asks for (AuxLogits' 5×5 conv)
MAX_CLASSES = 100_000  # 2816 logits weights per class (2048, aux 768), kept 4×: 4.5 GB
MAX_BATCH = 2**20  # images in one global batch
MAX_WORKERS = 256  # decoding processes
MAX_SHARDS = 99_999  # shard names have five digits: train-00000-of-99999
_CLASSES = (
    "the logits layers hold 2816 weights per class, kept 4 times (weights, averages, optimizer): "
    f"{MAX_CLASSES} classes take 4.5 GB"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a split: part of file names


@dataclass(frozen=True)
class Valid:
    """A config field's valid values and why: its row in the table `check_fields` reads.

    Types come from the field's annotation; floats must also be finite. Bounds are inclusive
    (`at_least`, `at_most`) or exclusive (`above`, `below`); `name`: text used in file names.
    """

    why: str
    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None
    name: bool = False


def _knob(
    default: object = dataclasses.MISSING,
    why: str = "",
    *,
    factory: Callable[[], object] | None = None,
    **bounds: Any,
) -> Any:
    """A dataclass field with its row of the table: `x: int = _knob(5, "why", at_least=1)`."""
    metadata = {"valid": Valid(why, **bounds)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape: what must match between a checkpoint and the model that loads it."""

    image_size: int = _knob(
        IMAGE_SIZE,
        f"the network's VALID convolutions need {MIN_IMAGE_SIZE} px; at {MAX_IMAGE_SIZE} px one "
        "image already needs 47× the activation memory of 299 px",
        at_least=MIN_IMAGE_SIZE,
        at_most=MAX_IMAGE_SIZE,
    )
    depth_multiplier: float = _knob(
        DEPTH_MULTIPLIER,
        f"it scales every layer's channels and the weights grow with its square: {MAX_DEPTH_MULTIPLIER:g} "
        "is already 16× Inception v3's 24M",
        above=0.0,
        at_most=MAX_DEPTH_MULTIPLIER,
    )
    min_depth: int = _knob(
        MIN_DEPTH,
        f"the fewest channels of a layer; above {WIDEST_LAYER}, the widest layer, it makes every "
        "layer that wide",
        at_least=1,
        at_most=WIDEST_LAYER,
    )
    num_classes: int = _knob(
        NUM_CLASSES,
        _CLASSES,
        at_least=1,
        at_most=MAX_CLASSES,
    )
    aux_logits: bool = _knob(True, "the auxiliary head on Mixed_6e, on or off")
    dropout_keep_prob: float = _knob(
        DROPOUT_KEEP_PROB, "the fraction of activations kept; 0 keeps none", above=0.0, at_most=1.0
    )
    batch_norm_decay: float = _knob(
        BATCH_NORM_DECAY,
        "the moving statistics' decay; 1 would never update them",
        at_least=0.0,
        below=1.0,
    )
    batch_norm_zero_debias: bool = _knob(
        BATCH_NORM_ZERO_DEBIAS, "debiased moving statistics, as the original's; off: they climb from 0/1"
    )
    batch_norm_epsilon: float = _knob(
        BATCH_NORM_EPSILON,
        "added to the variance under the square root: 0 divides by zero on a constant channel, "
        "above 1 it drowns the variance",
        above=0.0,
        at_most=1.0,
    )


# String choices: a value is checked against these by name (train/options.py, check_fields).
Device = Literal["auto", "cuda", "cpu"]  # "auto": CUDA when available, else the CPU
Precision = Literal["auto", "fp32", "bf16"]  # "bf16": autocast; "auto": bf16 where CUDA has it, else fp32
Optimizer = Literal["rmsprop", "sgd"]  # RMSProp with TensorFlow's semantics, or momentum SGD
Schedule = Literal["exponential", "cosine", "constant"]  # "exponential": the original's staircase
# How eval and predict turn a decoded image into the network's input (data/preprocess.py)
EvalPreprocessing = Literal["inception", "inception-tf2", "torchvision", "timm", "keras"]
EVAL_PREPROCESSINGS: tuple[str, ...] = typing.get_args(EvalPreprocessing)
# What a weights file is, when its contents do not say it clearly enough (weights.read_weights)
WeightsFormat = Literal["inception3", "safetensors", "state-dict", "torchvision", "timm", "keras", "tf-slim"]
WEIGHTS_FORMATS: tuple[str, ...] = typing.get_args(WeightsFormat)

_INT64 = "; config.toml holds 64-bit integers"


# --- training --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Every knob of `inception3 train`, defaulting to the original single-machine recipe.

    The keys of `--set key=value` and of RUN/config.toml are the field names, flat: the model's
    fields (`image_size`, `depth_multiplier`, ...) are keys too, read into `model`. The model's
    class count is the dataset's unless `num_classes` is set. `batch_size` is global: each of N
    ranks gets batch_size / N, in `grad_accum` micro-batches.
    """

    model: ModelConfig = _knob(why="the network; its fields are keys of their own", factory=ModelConfig)
    num_classes: int | None = _knob(  # None: the dataset's class count
        None,
        _CLASSES,
        at_least=1,
        at_most=MAX_CLASSES,
    )
    sync_batch_norm: bool = _knob(False, "the original's towers each kept their own statistics")
    # data
    label_offset: int | None = _knob(  # None: from dataset.json (TF-built shards: 1)
        None,
        "the stored label of class 0: 0 for inception3's shards, 1 for TensorFlow's",
        at_least=0,
        at_most=1,
    )
    num_workers: int = _knob(
        2,
        f"image-decoding processes per rank, 0: in the training process; beyond {MAX_WORKERS} they "
        "only add memory",
        at_least=0,
        at_most=MAX_WORKERS,
    )
    skip_corrupt: bool = _knob(False, "leave corrupt records out instead of stopping")
    crop_min_object_covered: float = _knob(
        MIN_OBJECT_COVERED, "a fraction of the bounding box the random crop keeps", at_least=0.0, at_most=1.0
    )
    crop_area_range: tuple[float, float] = _knob(
        AREA_RANGE, "the random crop's area, as fractions of the image", above=0.0, at_most=1.0
    )
    # steps and batches
    batch_size: int = _knob(
        BATCH_SIZE,
        f"it is the global batch, split across the ranks; {MAX_BATCH} images are more than a "
        "group of accelerators holds",
        at_least=1,
        at_most=MAX_BATCH,
    )
    batch_size_per_rank: int | None = _knob(  # None: batch_size is the global batch
        None,
        "images per rank and step: at a run's start the global batch becomes this × the ranks, "
        "and stays so when it resumes on another number of ranks",
        at_least=1,
        at_most=MAX_BATCH,
    )
    grad_accum: int = _knob(
        1,
        "micro-batches per step; each rank's share of the batch divides by it",
        at_least=1,
        at_most=MAX_BATCH,
    )
    max_steps: int = _knob(MAX_STEPS, "the step training ends at" + _INT64, at_least=1, at_most=INT64_MAX)
    seed: int = _knob(
        0,
        "it seeds numpy's SeedSequence, which takes no negatives, and torch's 64-bit generator",
        at_least=0,
        at_most=INT64_MAX,
    )
    # loss
    label_smoothing: float = _knob(
        LABEL_SMOOTHING, "1 would leave no trace of the label", at_least=0.0, below=1.0
    )
    aux_loss_weight: float = _knob(
        AUX_LOSS_WEIGHT,
        "the aux head's share of the loss; negative trains it away from the labels",
        at_least=0.0,
    )
    weight_decay: float = _knob(
        WEIGHT_DECAY,
        "L2 on the weights, negative would grow them; the optimizer scales by it in float32",
        at_least=0.0,
        at_most=FLOAT32_MAX,
    )
    # optimizer: "rmsprop" (TensorFlow semantics) or "sgd" (momentum)
    optimizer: Optimizer = _knob("rmsprop", "the optimizer")
    rmsprop_decay: float = _knob(
        RMSPROP_DECAY, "the mean square's decay; 1 would never update it", at_least=0.0, below=1.0
    )
    rmsprop_epsilon: float = _knob(RMSPROP_EPSILON, "inside the square root; 0 can divide by zero", above=0.0)
    momentum: float = _knob(
        RMSPROP_MOMENTUM, "1 or more never forgets a gradient and diverges", at_least=0.0, below=1.0
    )
    # learning rate: "exponential" (staircase), "cosine" or "constant", after `warmup_steps`
    learning_rate: float = _knob(
        INITIAL_LEARNING_RATE,
        "the step size, 0 learns nothing; the optimizer scales by it in float32",
        above=0.0,
        at_most=FLOAT32_MAX,
    )
    lr_schedule: Schedule = _knob("exponential", "the learning rate's schedule")
    num_epochs_per_decay: float = _knob(
        NUM_EPOCHS_PER_DECAY,
        "epochs between staircase decays: 0 would decay at every step; for no decay at all use "
        "lr_schedule=constant",
        above=0.0,
        at_most=1e6,
    )
    learning_rate_decay_factor: float = _knob(
        LEARNING_RATE_DECAY_FACTOR,
        "it multiplies the rate at each decay: 0 stops learning, above 1 grows the rate",
        above=0.0,
        at_most=1.0,
    )
    warmup_steps: int = _knob(0, "steps of linear warm-up, 0: none" + _INT64, at_least=0, at_most=INT64_MAX)
    # moving averages
    ema_decay: float = _knob(
        MOVING_AVERAGE_DECAY, "the moving averages' decay; 1 would never update them", at_least=0.0, below=1.0
    )
    # fine-tuning
    init_from: str = _knob(  # an inception3 checkpoint or a plain InceptionV3 state dict
        "", "a weights file's path, written into config.toml"
    )
    fine_tune: bool = _knob(False, "leave the logits out of init_from even when the class counts match")
    trainable: tuple[str, ...] = _knob(  # parameter scopes to train, e.g. ("Logits", "AuxLogits"); () = all
        (), "parameter scopes, written into config.toml"
    )
    # speed
    device: Device = _knob("auto", "where the network runs")
    precision: Precision = _knob("auto", "the arithmetic of the forward pass")
    channels_last: bool | None = _knob(  # None ("auto"): on with CUDA; on a CPU, what measured faster
        None, "the NHWC layout"
    )
    synthetic_data: bool = _knob(
        False, "one random batch made on the device, for ever: how fast training is without input"
    )
    compile: bool = _knob(False, "torch.compile the network")
    compile_backend: str = _knob("inductor", "a torch.compile backend, written into config.toml")
    # logging and checkpoints
    log_every: int = _knob(LOG_EVERY_STEPS, "steps between log lines" + _INT64, at_least=1, at_most=INT64_MAX)
    summary_every: int = _knob(
        SUMMARY_EVERY_STEPS, "steps between summaries" + _INT64, at_least=1, at_most=INT64_MAX
    )
    checkpoint_every: int = _knob(
        CHECKPOINT_EVERY_STEPS, "steps between checkpoints" + _INT64, at_least=1, at_most=INT64_MAX
    )
    checkpoint_secs: float = _knob(0.0, "seconds between checkpoints; 0: by steps only", at_least=0.0)
    keep_checkpoints: int = _knob(5, "the newest kept; 0 keeps all", at_least=0, at_most=INT64_MAX)
    keep_checkpoint_every: int = _knob(
        0, "also keep each checkpoint at a multiple of this step; 0: none", at_least=0, at_most=INT64_MAX
    )

    def model_config(self, num_classes: int) -> ModelConfig:
        """The network this config trains, for a dataset of `num_classes` classes."""
        return dataclasses.replace(self.model, num_classes=self.num_classes or num_classes)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


# --- building shards ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildConfig:
    """What `inception3 build` converts, and into how many shards (None: one per 1024 images).

    Checked on creation (its fields are `inception3 build`'s options), naming the option at fault.
    """

    train_dir: Path = _knob(why="one sub-folder of images per class")
    output_dir: Path = _knob(why="where the shards go")
    validation_dir: Path | None = _knob(None, "the same class sub-folders")
    validation_fraction: float | None = _knob(  # or: hold out this fraction of train_dir
        None, "the fraction of train_dir held out; 0 holds out nothing, 1 everything", above=0.0, below=1.0
    )
    labels_file: Path | None = _knob(None, "class folder names in label order; None: sorted folder names")
    train_shards: int | None = _knob(
        None, f"shard names have five digits (-of-{MAX_SHARDS})", at_least=1, at_most=MAX_SHARDS
    )
    validation_shards: int | None = _knob(
        None, f"shard names have five digits (-of-{MAX_SHARDS})", at_least=1, at_most=MAX_SHARDS
    )
    workers: int | None = _knob(  # processes; None: all cores
        None,
        f"processes converting images; beyond {MAX_WORKERS} they only add memory",
        at_least=1,
        at_most=MAX_WORKERS,
    )
    bounding_boxes: Path | None = _knob(None, "a CSV or ImageNet's folder of XML annotations")
    label_offset: int = _knob(
        0, "0: labels from 0; 1: the original's, with 0 for the background class", at_least=0, at_most=1
    )
    progress: bool | None = _knob(None, "a progress bar; None: when stderr is a terminal")

    def __post_init__(self) -> None:
        check_fields(self, _flag)


# --- evaluation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalConfig:
    """How `inception3 eval` scores checkpoints: which split, which weights, how fast.

    Checked on creation (its fields are `inception3 eval`'s options), naming the option at fault.
    """

    split: str = _knob("validation", "split names are part of file names", name=True)
    use_ema: bool = _knob(True, "the moving averages, as the original evaluator restored them")
    batch_size: int = _knob(  # global, split across the ranks as in training
        BATCH_SIZE, "images per batch, global: split across the ranks", at_least=1, at_most=MAX_BATCH
    )
    device: Device = _knob("auto", "where the network runs")
    num_workers: int = _knob(
        2,
        f"image-decoding processes per rank; beyond {MAX_WORKERS} they only add memory",
        at_least=0,
        at_most=MAX_WORKERS,
    )
    label_offset: int | None = _knob(  # None: from dataset.json (TF-built shards: 1)
        None,
        "the stored label of class 0: 0 for inception3's shards, 1 for TensorFlow's",
        at_least=0,
        at_most=1,
    )
    channels_last: bool = _knob(  # NHWC: same results, faster on the CPU and GPU (docs/performance.md)
        True, "the NHWC layout"
    )
    progress: bool | None = _knob(None, "a progress bar; None: when stderr is a terminal")
    preprocessing: EvalPreprocessing | None = _knob(  # None: the weights' own ("inception" for ours)
        None, "the evaluation preprocessing the weights were scored with"
    )
    labels_file: Path | None = _knob(None, "class names, one per line, instead of the weights' own")
    weights_format: WeightsFormat | None = _knob(None, "how to read the checkpoint; None: detected")

    def __post_init__(self) -> None:
        check_fields(self, _flag)


# --- the checker -------------------------------------------------------------------------------
def check_fields(cfg: object, label: Callable[[str], str] = str, fix: str = "") -> None:
    """Refuse the first field of `cfg` (and of configs inside it) outside its row of the table.

    The message: `{label(key)} must be <what>, got <value> (<why>){fix}`.
    """
    hints = _hints(type(cfg))
    for f in dataclasses.fields(cfg):  # type: ignore[arg-type]
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_fields(value, label, fix)
            continue
        valid: Valid = f.metadata["valid"]
        wanted = _problem(value, hints[f.name], valid)
        if wanted is not None:
            raise Inception3Error(f"{label(f.name)} must be {wanted}, got {shown(value)} ({valid.why}){fix}")


def table_rows(cls: type) -> dict[str, Valid]:
    """Every key of config class `cls` (nested configs' keys flattened in) with its row of the table."""
    rows: dict[str, Valid] = {}
    for f in dataclasses.fields(cls):
        kind = _hints(cls)[f.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            rows |= table_rows(kind)
        else:
            rows[f.name] = f.metadata["valid"]
    return rows


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _problem(value: object, kind: Any, valid: Valid) -> str | None:
    """What `value` must be instead, when it is not a valid value of type `kind`; else None."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, type(int | None)):
        if value is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        args = typing.get_args(kind)
    if typing.get_origin(kind) is Literal:
        return None if value in args and isinstance(value, str) else " or ".join(args)
    if kind is bool:
        return None if isinstance(value, bool) else "true or false"
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            return "a whole number"
        return _outside(value, valid)
    if kind is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "a number"
        return "a finite number" if not math.isfinite(value) else _outside(value, valid)
    if kind is str:
        return _bad_text(value, valid)
    if kind is Path:
        ok = isinstance(value, str | os.PathLike) and "\0" not in str(value)
        return None if ok else "a path (without NUL characters)"
    if typing.get_origin(kind) is tuple and args[-1] is Ellipsis:
        bad = _bad_text(value, valid) if not isinstance(value, tuple) else None
        bad = bad or next(filter(None, (_bad_text(v, valid) for v in value)), None)
        return f"a list of {bad}" if bad else None
    if typing.get_origin(kind) is tuple:
        ok = isinstance(value, tuple) and len(value) == len(args)
        ok = ok and not any(_problem(v, a, valid) for v, a in zip(value, args, strict=True))
        return None if ok else f"{len(args)} numbers, each {_range(valid)}"
    raise TypeError(f"the table has no rule for fields of type {kind}")


def _outside(value: float, valid: Valid) -> str | None:
    """Which bound `value` breaks, as words; None when inside them all."""
    if valid.at_least is not None and value < valid.at_least:
        return f"at least {_num(valid.at_least)}"
    if valid.above is not None and value <= valid.above:
        return "positive" if valid.above == 0 else f"above {_num(valid.above)}"
    if valid.at_most is not None and value > valid.at_most:
        return f"at most {_num(valid.at_most)}"
    if valid.below is not None and value >= valid.below:
        return f"below {_num(valid.below)}"
    return None


def _range(valid: Valid) -> str:
    low = f"[{_num(valid.at_least)}" if valid.at_least is not None else f"({_num(valid.above)}"
    high = f"{_num(valid.at_most)}]" if valid.at_most is not None else f"{_num(valid.below)})"
    return f"in {low}, {high}"


def _bad_text(value: object, valid: Valid) -> str | None:
    """Text goes into config.toml and file names: printable, UTF-8, and a plain name where asked."""
    if not isinstance(value, str):
        return "text"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value) or not _utf8(value):
        return "text without control characters"
    if valid.name and not _NAME.fullmatch(value):
        return "a plain name: up to 64 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'"
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def shown(value: object) -> str:
    """`value` for a one-line message: repr (a Path as its text), long values cut in the middle."""
    text = repr(str(value)) if isinstance(value, Path) else repr(value)
    unit = "digits" if isinstance(value, int) else "characters"
    return text if len(text) <= 60 else f"{text[:24]}…{text[-8:]}, {len(text)} {unit} long"


# Presets: small override sets on top of TrainConfig's defaults.
PRESETS: dict[str, dict[str, object]] = {
    "imagenet": {},  # [train] the single-machine recipe, as the defaults
    "imagenet-distributed": {  # [dist] the synchronous distributed recipe
        "batch_size_per_rank": DIST_BATCH_SIZE_PER_RANK,
        "learning_rate": DIST_INITIAL_LEARNING_RATE,
        "num_epochs_per_decay": DIST_NUM_EPOCHS_PER_DECAY,
        "learning_rate_decay_factor": DIST_LEARNING_RATE_DECAY_FACTOR,
    },
    "flowers": {  # inception README: fine-tune from an ImageNet checkpoint, lr 0.001, new logits
        "learning_rate": FINE_TUNE_LEARNING_RATE,
        "fine_tune": True,
    },
    "tiny": {  # a CPU-sized network for trying the pipeline end to end in minutes
        "image_size": MIN_IMAGE_SIZE,
        "depth_multiplier": 0.25,
        "batch_size": 16,
        "learning_rate": 0.01,
        "lr_schedule": "constant",
        "log_every": 10,
        "summary_every": 50,
        "checkpoint_every": 100,
    },
}
