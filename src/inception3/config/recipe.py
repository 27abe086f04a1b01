"""Every constant of the original recipe, named once, with where it came from; and the limits of the
configs' valid values, each with its reason.

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

# --- optimizers beyond the original's, and fine-tuning's layer-wise decay ----------------------
# AdamW: torch.optim.AdamW's defaults betas=(0.9, 0.999), eps=1e-8 (also timm optim/_optim_factory.py
# create_optimizer_v2, which passes no others; Keras AdamW's beta_1, beta_2); eps is added outside the
# square root.
ADAMW_BETAS = (0.9, 0.999)
ADAMW_EPSILON = 1e-8
# Layer-wise learning-rate decay: 1.0 is off. Fine-tuning recipes use 0.65-0.75 (BEiT, Bao et al.
# 2021, unilm beit/optim_factory.py LayerDecayValueAssigner; timm train.py --layer-decay with
# optim/_param_groups.py param_groups_layer_decay, whose default is 0.75).
LAYER_DECAY_OFF = 1.0
# timm scheduler/cosine_lr.py CosineLRScheduler(lr_min=0.0): the cosine schedule's floor, off.
MIN_LEARNING_RATE = 0.0

# --- moving averages -----------------------------------------------------------------------
MOVING_AVERAGE_DECAY = 0.9999  # [inc] MOVING_AVERAGE_DECAY, with num_updates=global_step

# --- input pipeline ------------------------------------------------------------------------
MIN_OBJECT_COVERED = 0.1  # [imgp] distort_image: min_object_covered=0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)  # [imgp] aspect_ratio_range
AREA_RANGE = (0.05, 1.0)  # [imgp] area_range
MAX_CROP_ATTEMPTS = 100  # [imgp] max_attempts
# [imgp] distort_image: after the crop, random_flip_left_right, then distort_color (brightness,
# saturation, hue, contrast in one of two orders); the device-side ops by name (data/augment).
AUGMENT_OPS = ("flip_left_right", "distort_color")
BRIGHTNESS_MAX_DELTA = 32.0 / 255.0  # [imgp] distort_color
SATURATION_RANGE = (0.5, 1.5)  # [imgp] distort_color
HUE_MAX_DELTA = 0.2  # [imgp] distort_color
CONTRAST_RANGE = (0.5, 1.5)  # [imgp] distort_color
EVAL_CENTRAL_FRACTION = 0.875  # [imgp] eval_image: central_crop(0.875)
INPUT_QUEUE_MEMORY_FACTOR = 16  # [imgp] shuffle buffer ~ 16 x 1024 examples
SHUFFLE_BUFFER = 1024 * INPUT_QUEUE_MEMORY_FACTOR  # [imgp] min_queue_examples

# --- RandAugment, TrivialAugment and random erasing: device ops by name (data/augment) -------------
# Sources: [tv-aa] torchvision transforms/v2/_auto_augment.py (RandAugment, TrivialAugmentWide);
# [timm-aa] timm data/auto_augment.py (rand_augment_transform, AugmentOp); [timm-re] timm
# data/random_erasing.py (RandomErasing).
# Magnitudes: timm's level m in [0, 10] is the fraction m / 10 (_LEVEL_DENOM) of each op's range,
# torchvision's bin b of 31 the fraction b / 30; so m = b / 3 (timm's m9 is torchvision's bin 27,
# torchvision's default RandAugment(magnitude=9) is timm's m3). Ops and ranges are torchvision's.
RANDAUGMENT_NUM_OPS = 2  # [timm-aa] rand_augment_transform: num_layers=2; [tv-aa] RandAugment(num_ops=2)
RANDAUGMENT_MAGNITUDE = 9.0  # [timm-aa] "rand-m9-mstd0.5": m9, out of _LEVEL_DENOM
RANDAUGMENT_MAGNITUDE_STD = 0.5  # same: mstd0.5; AugmentOp: each op's level ~ N(m, std), clipped
RANDAUGMENT_MAX_MAGNITUDE = 10.0  # [timm-aa] _LEVEL_DENOM: the top of the scale and of the clip
NUM_MAGNITUDE_BINS = 31  # [tv-aa] num_magnitude_bins=31: TrivialAugmentWide draws one of these per image
# (op, top of its range, signed: a random sign per image) in torchvision's order; the op's magnitude
# is top × fraction. Units: shear tan(angle); translate a fraction of the image's side (RandAugment:
# 150 / 331 × width) or pixels (TrivialAugmentWide: 32); rotate degrees; brightness, color, contrast,
# sharpness the blend factor 1 + magnitude; posterize keeps round(8 - magnitude) bits; solarize
# inverts pixels at or above 255 × (1 - magnitude). NEAREST interpolation, fill 0 ([tv-aa] defaults).
RANDAUGMENT_SPACE = (  # [tv-aa] RandAugment._AUGMENTATION_SPACE
    ("identity", 0.0, False),
    ("shear_x", 0.3, True),
    ("shear_y", 0.3, True),
    ("translate_x", 150.0 / 331.0, True),
    ("translate_y", 150.0 / 331.0, True),
    ("rotate", 30.0, True),
    ("brightness", 0.9, True),
    ("color", 0.9, True),
    ("contrast", 0.9, True),
    ("sharpness", 0.9, True),
    ("posterize", 4.0, False),
    ("solarize", 1.0, False),
    ("autocontrast", 0.0, False),
    ("equalize", 0.0, False),
)
RANDAUGMENT_TRANSLATE_OF_SIDE = True  # [tv-aa] RandAugment: 150.0 / 331.0 * width (height for Y)
TRIVIALAUGMENT_SPACE = (  # [tv-aa] TrivialAugmentWide._AUGMENTATION_SPACE
    ("identity", 0.0, False),
    ("shear_x", 0.99, True),
    ("shear_y", 0.99, True),
    ("translate_x", 32.0, True),
    ("translate_y", 32.0, True),
    ("rotate", 135.0, True),
    ("brightness", 0.99, True),
    ("color", 0.99, True),
    ("contrast", 0.99, True),
    ("sharpness", 0.99, True),
    ("posterize", 6.0, False),
    ("solarize", 1.0, False),
    ("autocontrast", 0.0, False),
    ("equalize", 0.0, False),
)
TRIVIALAUGMENT_TRANSLATE_OF_SIDE = False  # [tv-aa] TrivialAugmentWide: linspace(0.0, 32.0): pixels
MAX_RANDAUGMENT_NUM_OPS = 10  # beyond a few ops in a row most images are noise; torchvision allows any
# timm's AugmentOp reads an mstd above 100 as uniform sampling, which these ops do not do
MAX_RANDAUGMENT_MAGNITUDE_STD = 100.0
ERASING_PROB = 0.5  # [timm-re] RandomErasing(probability=0.5); timm's train script's --reprob is 0
ERASING_AREA_RANGE = (0.02, 1.0 / 3.0)  # [timm-re] min_area=0.02, max_area=1/3, of the image's area
ERASING_ASPECT_RANGE = (0.3, 1.0 / 0.3)  # [timm-re] min_aspect=0.3, max_aspect = 1 / min_aspect; log-uniform
ERASING_MAX_ATTEMPTS = 10  # [timm-re] _erase: `for attempt in range(10)`, the first box that fits
MAX_ERASING_ASPECT = 100.0  # a box 100 times wider than high is already a line at 299 px

# --- dataset build -------------------------------------------------------------------------
TRAIN_SHARDS = 1024  # [build] FLAGS.train_shards (ImageNet)
VALIDATION_SHARDS = 128  # [build] FLAGS.validation_shards (ImageNet)
LABEL_OFFSET_TF = 1  # [build] label index 0 is the unused background class
BUILD_SHUFFLE_SEED = 12345  # [build] random.seed(12345) before shuffling the file list
REENCODE_JPEG_QUALITY = 100  # [build] ImageCoder: tf.image.encode_jpeg(quality=100) for PNG/CMYK

# --- mixing and class balance (data/augment/mix.py, data/dataset.py, train/step.py) ----------------
# Off by default: the original recipe mixes nothing. The defaults of the other keys are timm's
# (pytorch-image-models train.py: --mixup 0, --cutmix 0, --mixup-prob 1.0, --mixup-switch-prob 0.5,
# --mixup-mode batch; timm/data/mixup.py Mixup(correct_lam=True)). torchvision's references
# (references/classification/README.md, the ResNet/ViT/ConvNeXt recipes) train with
# --mixup-alpha 0.2 --cutmix-alpha 1.0, one of the two per batch (RandomChoice: switch 0.5).
MIXUP_ALPHA = 0.0  # timm train.py --mixup; mixup is on when above 0
CUTMIX_ALPHA = 0.0  # timm train.py --cutmix; CutMix is on when above 0
MIX_PROB = 1.0  # timm train.py --mixup-prob: the chance a batch (or image) is mixed at all
MIX_SWITCH_PROB = 0.5  # timm train.py --mixup-switch-prob: CutMix instead of mixup, when both are on
TORCHVISION_MIXUP_ALPHA = 0.2  # torchvision references/classification: --mixup-alpha 0.2
TORCHVISION_CUTMIX_ALPHA = 1.0  # torchvision references/classification: --cutmix-alpha 1.0

# --- the presets of today's recipes (config/presets.py) ----------------------------------------
# [tv-recipe] torchvision's current from-scratch recipe, references/classification/README.md
# ("ResNet50", the "new recipe" of the blog post "How to Train State-Of-The-Art Models Using
# TorchVision's Latest Primitives", 2021: 80.9 % top-1): --lr 0.5 at a global batch of 8 x 128,
# cosine, --auto-augment ta_wide, --random-erase 0.1, --weight-decay 0.00002 --norm-weight-decay 0.0,
# --label-smoothing 0.1, --mixup-alpha 0.2 --cutmix-alpha 1.0, --model-ema. The rate scales linearly
# with the batch, as the reference scripts' own --lr does across GPU counts (Goyal et al. 2017).
TV_RECIPE_LEARNING_RATE = 0.5
TV_RECIPE_BATCH_SIZE = 1024
TV_RECIPE_WEIGHT_DECAY = 0.00002
TV_RECIPE_ERASING_PROB = 0.1
# Both recipes train PyTorch networks whose batch norm keeps torch.nn.BatchNorm2d's default
# momentum=0.1 (torchvision's ResNet-50; timm's and torchvision's inception_v3 alike): a moving
# statistics decay of 0.9, not the original's 0.9997, which in a short fine-tuning run barely moves
# the statistics away from those of the data the checkpoint was trained on.
TORCH_BATCH_NORM_DECAY = 0.9  # 1 - torch.nn.BatchNorm2d(momentum=0.1)
# [convnext-ft] ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s"), appendix A, ImageNet-1K
# fine-tuning settings: AdamW at lr 5e-5, weight decay 1e-8, cosine, no warm-up, layer-wise lr decay
# 0.8, RandAugment (9, 0.5), no mixup or CutMix, random erasing 0.25, label smoothing 0.1. The rate
# is taken as published (batch 512), not scaled down to small batches: fine-tuning guides use the same
# 5e-5 at batches of 16-64 (Hugging Face's image-classification fine-tuning example).
FINETUNE_LEARNING_RATE = 5e-5
FINETUNE_WEIGHT_DECAY = 1e-8
FINETUNE_LAYER_DECAY = 0.8
FINETUNE_ERASING_PROB = 0.25

# --- logging and evaluation ----------------------------------------------------------------
LOG_EVERY_STEPS = 10  # [train] `if step % 10 == 0`: the loss line
SUMMARY_EVERY_STEPS = 100  # [train] `if step % 100 == 0`: summaries
CHECKPOINT_EVERY_STEPS = 5000  # [train] `if step % 5000 == 0`: checkpoint
EVAL_INTERVAL_SECS = 300  # inception_eval.py FLAGS.eval_interval_secs
TOP_K = 5  # inception_eval.py: recall @ 5

# --- evaluation metrics beyond top-k (metrics.py, docs/formats.md) ---------------------------
# Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks" (ICML 2017): ECE over M
# equal-width confidence bins (m-1)/M < confidence <= m/M, Sec. 2 eq. (3); Table 1 uses M = 15, as
# their code does (gpleiss/temperature_scaling temperature_scaling.py `_ECELoss(n_bins=15)`).
CALIBRATION_BINS = 15
# The confusion matrix is summed densely ([C, C] float64 on the device, all-reduced in one go):
# 8 MB for ImageNet's 1000 classes, 128 MiB at 4096; above that only per-class scores are kept.
MAX_CONFUSION_CLASSES = 4096

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

# --- other projects' networks, as `inception3 export` writes them (weights/torchvision.py, keras.py) -----
# Each project fixes its batch-norm epsilon in code: a model whose epsilon differs is written with its
# moving variance shifted by the difference, the same normalisation.
PEER_BATCH_NORM_EPSILON = 0.001  # torchvision models/inception.py BasicConv2d: BatchNorm2d(eps=0.001);
# timm models/inception_v3.py InceptionV3(norm_eps=1e-3); keras applications/inception_v3.py conv2d_bn:
# BatchNormalization(scale=False), whose default epsilon is 1e-3
PEER_AUX_KERNEL = 5  # torchvision/timm InceptionAux: conv1 = conv_block(128, 768, kernel_size=5) at any size
PEER_FULL_WIDTH_MIN_DEPTH = 32  # the full-width network's narrowest layers (Conv2d_1a_3x3, Mixed_5b's pool)

# --- valid values ----------------------------------------------------------------------------
# Every field of the configs (records.py) declares its valid values and why, next to its default
# (`knob`); `check_fields` (check.py) reads that table, so a new key is one line with its bounds.
INT64_MAX = 2**63 - 1  # config.toml holds TOML integers, which are 64-bit
FLOAT32_MAX = 3.4028234663852886e38  # the optimizers scale tensors by their factors in float32
MAX_IMAGE_SIZE = 2048  # (2048 / 299)² = 47× the activations of a 299-px image
MAX_DEPTH_MULTIPLIER = 4.0  # 16× Inception v3's 24M weights
WIDEST_LAYER = 768  # the largest depth any layer asks for (AuxLogits' 5×5 conv)
MAX_CLASSES = 100_000  # 2816 logits weights per class (2048, aux 768), kept 4×: 4.5 GB
MAX_BATCH = 2**20  # images in one global batch
MAX_WORKERS = 256  # decoding processes
MAX_SHARDS = 99_999  # shard names have five digits: train-00000-of-99999
