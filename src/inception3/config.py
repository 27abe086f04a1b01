"""Every constant of the original recipe, named once, with where it came from.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape: what must match between a checkpoint and the model that loads it."""

    image_size: int = IMAGE_SIZE
    depth_multiplier: float = DEPTH_MULTIPLIER
    min_depth: int = MIN_DEPTH
    num_classes: int = NUM_CLASSES
    aux_logits: bool = True
    dropout_keep_prob: float = DROPOUT_KEEP_PROB
    batch_norm_decay: float = BATCH_NORM_DECAY
    batch_norm_epsilon: float = BATCH_NORM_EPSILON


# String choices: checked against these, by name, wherever a config value is read (train/options.py).
Device = Literal["auto", "cuda", "cpu"]  # "auto": CUDA when available, else the CPU
Precision = Literal["fp32", "bf16"]  # "bf16": autocast
Optimizer = Literal["rmsprop", "sgd"]  # RMSProp with TensorFlow's semantics, or momentum SGD
Schedule = Literal["exponential", "cosine", "constant"]  # "exponential": the original's staircase


# --- training --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Every knob of `inception3 train`, defaulting to the original single-machine recipe.

    The keys of `--set key=value` and of RUN/config.toml are the field names, flat: the model's
    fields (`image_size`, `depth_multiplier`, ...) are keys too, read into `model`. The model's
    class count is the dataset's unless `num_classes` is set. `batch_size` is global: each of N
    ranks gets batch_size / N, in `grad_accum` micro-batches.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    num_classes: int | None = None  # None: the dataset's class count
    sync_batch_norm: bool = False  # the original's towers each kept their own statistics
    # data
    label_offset: int | None = None  # None: from dataset.json (TF-built shards: 1)
    num_workers: int = 2
    skip_corrupt: bool = False
    crop_min_object_covered: float = MIN_OBJECT_COVERED  # of a bounding box, by the random crop
    crop_area_range: tuple[float, float] = AREA_RANGE  # the random crop's area, fractions of the image
    # steps and batches
    batch_size: int = BATCH_SIZE
    grad_accum: int = 1
    max_steps: int = MAX_STEPS
    seed: int = 0
    # loss
    label_smoothing: float = LABEL_SMOOTHING
    aux_loss_weight: float = AUX_LOSS_WEIGHT
    weight_decay: float = WEIGHT_DECAY
    # optimizer: "rmsprop" (TensorFlow semantics) or "sgd" (momentum)
    optimizer: Optimizer = "rmsprop"
    rmsprop_decay: float = RMSPROP_DECAY
    rmsprop_epsilon: float = RMSPROP_EPSILON
    momentum: float = RMSPROP_MOMENTUM
    # learning rate: "exponential" (staircase), "cosine" or "constant", after `warmup_steps`
    learning_rate: float = INITIAL_LEARNING_RATE
    lr_schedule: Schedule = "exponential"
    num_epochs_per_decay: float = NUM_EPOCHS_PER_DECAY
    learning_rate_decay_factor: float = LEARNING_RATE_DECAY_FACTOR
    warmup_steps: int = 0
    # moving averages
    ema_decay: float = MOVING_AVERAGE_DECAY
    # fine-tuning
    init_from: str = ""  # an inception3 checkpoint or a plain InceptionV3 state dict
    fine_tune: bool = False  # leave the logits out of init_from even when the class counts match
    trainable: tuple[str, ...] = ()  # parameter scopes to train, e.g. ("Logits", "AuxLogits"); () = all
    # speed
    device: Device = "auto"
    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = False
    compile_backend: str = "inductor"
    # logging and checkpoints
    log_every: int = LOG_EVERY_STEPS
    summary_every: int = SUMMARY_EVERY_STEPS
    checkpoint_every: int = CHECKPOINT_EVERY_STEPS
    checkpoint_secs: float = 0.0  # 0: by steps only
    keep_checkpoints: int = 5  # newest kept; 0 keeps all
    keep_checkpoint_every: int = 0  # also keep every checkpoint at a multiple of this step; 0: none

    def model_config(self, num_classes: int) -> ModelConfig:
        """The network this config trains, for a dataset of `num_classes` classes."""
        return dataclasses.replace(self.model, num_classes=self.num_classes or num_classes)


# --- building shards ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildConfig:
    """What `inception3 build` converts, and into how many shards (None: one per 1024 images)."""

    train_dir: Path  # one sub-folder of images per class
    output_dir: Path
    validation_dir: Path | None = None  # the same class sub-folders
    validation_fraction: float | None = None  # or: hold out this fraction of train_dir
    labels_file: Path | None = None  # class folder names in label order; None: sorted folder names
    train_shards: int | None = None
    validation_shards: int | None = None
    workers: int | None = None  # processes; None: all cores
    bounding_boxes: Path | None = None  # a CSV or ImageNet's folder of XML annotations
    label_offset: int = 0  # 1: the original's 1-based labels, 0 the background class
    progress: bool | None = None  # a progress bar; None: when stderr is a terminal


# --- evaluation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalConfig:
    """How `inception3 eval` scores checkpoints: which split, which weights, how fast."""

    split: str = "validation"
    use_ema: bool = True  # the moving averages, as the original evaluator restored them
    batch_size: int = BATCH_SIZE  # global, split across the ranks as in training
    device: Device = "auto"
    num_workers: int = 2
    label_offset: int | None = None  # None: from dataset.json (TF-built shards: 1)
    channels_last: bool = True  # NHWC: same results, faster on the CPU and GPU (docs/performance.md)
    progress: bool | None = None  # a progress bar; None: when stderr is a terminal


# Presets: small override sets on top of TrainConfig's defaults.
PRESETS: dict[str, dict[str, object]] = {
    "imagenet": {},  # [train] the single-machine recipe, as the defaults
    "imagenet-distributed": {  # [dist] the synchronous distributed recipe
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
