"""The `inception3` commands' arguments, each declared once: a command's help, description and
options (`COMMANDS`, in `inception3 --help`'s order), and the options several commands share.
cli.py builds the parser from them and runs the command.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inception3 import config


@dataclass(frozen=True)
class Command:
    """One `inception3 NAME`: its line in `inception3 --help`, its own --help text, its options."""

    name: str
    help: str
    description: str
    add_options: Callable[[argparse.ArgumentParser], None]
    epilog: str = ""


def _build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--train-dir", type=Path, required=True, help="folder with one sub-folder of images per class"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--validation-dir", type=Path, help="validation images, same class sub-folders")
    group.add_argument(
        "--validation-fraction",
        type=float,
        help="hold out this fraction of the (shuffled) training images for validation",
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="where the shards are written")
    parser.add_argument(
        "--labels-file",
        type=Path,
        help="class folder names, one per line, in label order (default: the sorted folder names)",
    )
    parser.add_argument(
        "--train-shards", type=int, help="number of training shards (default: 1 per 1024 images)"
    )
    parser.add_argument(
        "--validation-shards", type=int, help="number of validation shards (default: 1 per 1024 images)"
    )
    parser.add_argument("--workers", type=int, help="processes converting images (default: all cores)")
    parser.add_argument(
        "--bounding-boxes",
        type=Path,
        metavar="CSV|XML_DIR",
        help="CSV 'filename,xmin,ymin,xmax,ymax' (fractions of the image size) or "
        "ImageNet's folder of XML annotations",
    )
    parser.add_argument(
        "--label-offset",
        type=int,
        choices=(0, 1),
        default=0,
        help="0: store 0-based labels (default); 1: the original's 1-based labels "
        "(0 = background), recorded in dataset.json either way",
    )


def _inspect_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", type=Path, metavar="DIR", help="directory holding the shards")
    parser.add_argument("--verify", action="store_true", help="check every checksum and decode every image")
    parser.add_argument("--limit", type=int, help="read at most this many records per split")


def _train_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, required=True, help="shards from `inception3 build`")
    parser.add_argument(
        "--train-dir",
        type=Path,
        required=True,
        metavar="RUN",
        help="run directory for the config, summaries and checkpoints",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(config.PRESETS),
        help="a named override set: imagenet (the defaults), imagenet-distributed "
        "(lr 0.045 x 0.94 every 2 epochs), flowers (fine-tune at lr 0.001), modern (torchvision's "
        "current from-scratch recipe), finetune (ConvNeXt's fine-tuning settings), tiny "
        "(75x75, depth 0.25: a CPU-sized trial); each one's keys are listed below",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE.toml",
        help="config keys from a TOML file (e.g. a previous RUN/config.toml), applied after the preset",
    )
    _add_set(
        parser,
        "set one config key, last of all; repeatable (e.g. --set batch_size=64 "
        "--set precision=bf16); the keys are listed in the README",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        metavar="CKPT",
        help="start from this inception3 checkpoint, a plain state dict (.pt, .safetensors) "
        "or torchvision's/timm's Inception v3 weights; the logits are left out when "
        "the class count differs (or with the flowers preset)",
    )
    parser.add_argument(
        "--trainable",
        type=config.comma_list,
        metavar="SCOPES",
        help="train only these comma-separated scopes (e.g. Logits,AuxLogits); "
        "frozen layers keep their batch-norm statistics",
    )
    parser.add_argument("--max-steps", type=int, help="same as --set max_steps=N")
    parser.add_argument(
        "--force",
        action="store_true",
        help="resume even though the config or data changed in a way that breaks exactness",
    )


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN", help="the training directory (--train-dir)")
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PNG",
        help="where to write the PNG (default: RUN/report.png); an existing file only with --force",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --output file")
    parser.add_argument(
        "--split",
        help="the evaluation whose confusion matrix and reliability diagram are drawn: its split "
        "(default: validation, else the first evaluated)",
    )
    parser.add_argument(
        "--step", type=int, help="and its step (default: the newest evaluated; the moving-average weights')"
    )


def _eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-dir", type=Path, metavar="RUN", help="the training directory to follow")
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="shards (or an image folder) to evaluate on"
    )
    parser.add_argument("--split", default="validation", help="which split (default: validation)")
    _add_weights(
        parser,
        required=False,
        also="evaluate this file only (results go under RUN/eval/ when --train-dir is given)",
    )
    parser.add_argument("--once", action="store_true", help="evaluate the run's newest checkpoint and exit")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each evaluation's record (the JSON line of RUN/eval/<split>.jsonl) on stdout, "
        "the other lines on stderr",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=config.EVAL_INTERVAL_SECS,
        metavar="SECONDS",
        help="seconds between looks for a new checkpoint, above 0 and at most a day (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-waiting", action="store_true", help="keep following the run after its final checkpoint"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=config.BATCH_SIZE,
        help="images per batch, global: split across the ranks as in train (default: %(default)s)",
    )
    parser.add_argument("--num-workers", type=int, default=2, help="image decoding processes (default: 2)")
    _add_device(parser)
    parser.add_argument(
        "--label-offset",
        type=int,
        choices=(0, 1),
        help="stored label of class 0 (default: dataset.json's; 1 for TF-built shards)",
    )
    parser.add_argument(
        "--no-channels-last",
        dest="channels_last",
        action="store_false",
        help="run the network in the default NCHW layout instead of the faster NHWC",
    )
    _add_labels(parser)


def _predict_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    _add_weights(parser)
    parser.add_argument(
        "--top-k", type=int, default=config.TOP_K, help="classes shown per image (default: %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per image instead of text")
    _add_device(parser)
    _add_labels(parser)


EXPORT_FORMATS = ("onnx", "torchscript", "safetensors", "torchvision", "timm", "keras", "hf")


def _export_options(parser: argparse.ArgumentParser) -> None:
    _add_weights(parser)
    parser.add_argument(
        "--format",
        required=True,
        choices=EXPORT_FORMATS,
        metavar="FORMAT",
        help="onnx, torchscript, safetensors (inception3's network); torchvision, timm (a .pth state dict "
        "their inception_v3 loads), keras (a .weights.h5 for keras.applications.InceptionV3), hf (a "
        "folder of model.safetensors and config.json for timm): these four need depth_multiplier 1",
    )
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        metavar="FILE|DIR",
        help="the file to write, or for hf the folder (never the checkpoint itself; an existing file "
        "only with --force)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --output file")


def _demo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("demo"),
        metavar="DIR",
        help="an empty or new directory for everything the demo writes (default: demo)",
    )
    parser.add_argument(
        "--train-per-class", type=int, metavar="N", help="training images drawn per shape (default: 600)"
    )
    parser.add_argument(
        "--validation-per-class",
        type=int,
        metavar="N",
        help="validation images drawn per shape (default: 100)",
    )
    parser.add_argument("--steps", type=int, help="training steps (default: 2250)")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="steps between checkpoints, each one evaluated (default: 500)",
    )
    _add_set(
        parser,
        "one more inception3 train config key, after the demo's own (e.g. --set batch_size=16); repeatable",
    )


def _add_weights(parser: argparse.ArgumentParser, *, required: bool = True, also: str = "") -> None:
    """--checkpoint (any weights file `weights.read_weights` reads), --weights-format and --no-ema."""
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=required,
        metavar="PATH",
        help="an inception3 checkpoint, an exported .safetensors file, a plain state dict, or "
        "torchvision's, timm's (a file, or a model folder of config.json and model.safetensors), Keras' "
        "or TF-Slim's Inception v3 weights" + (f"; {also}" if also else ""),
    )
    parser.add_argument(
        "--weights-format",
        choices=config.WEIGHTS_FORMATS,
        metavar="FORMAT",
        help="what --checkpoint is, when its contents do not say: "
        + ", ".join(config.WEIGHTS_FORMATS)
        + " (default: detected)",
    )
    parser.add_argument(
        "--no-ema",
        dest="use_ema",
        action="store_false",
        help="use the raw weights instead of their moving averages",
    )


def _add_set(parser: argparse.ArgumentParser, text: str) -> None:
    """--set KEY=VALUE, repeatable: train config keys as text (train and demo), in `overrides`."""
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help=text
    )


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        choices=typing.get_args(config.Device),
        help="where the model runs (default: CUDA when available)",
    )


def _add_labels(parser: argparse.ArgumentParser) -> None:
    """--preprocessing and --labels-file: how images and class names meet weights from elsewhere."""
    parser.add_argument(
        "--preprocessing",
        choices=config.EVAL_PREPROCESSINGS,
        metavar="NAME",
        help="the evaluation preprocessing: " + ", ".join(config.EVAL_PREPROCESSINGS) + " (default: the "
        "one the weights name: inception for inception3's own, the source project's for others' weights)",
    )
    parser.add_argument(
        "--labels-file",
        type=Path,
        metavar="FILE",
        help="class names, one per line in output order, instead of the names the weights carry",
    )


COMMANDS: tuple[Command, ...] = (
    Command(
        "build",
        "convert class folders of images into sharded TFRecord files",
        "Convert a folder of class sub-folders into TFRecord shards of tf.train.Example "
        "(the original's keys, readable by TensorFlow) plus dataset.json. Images that are not "
        "RGB JPEG are converted; unreadable ones are skipped and listed. Each shard appears "
        "atomically; re-running an interrupted build keeps the complete shards.",
        _build_options,
    ),
    Command(
        "inspect",
        "summarise a shard directory (ours or TensorFlow-built); --verify checks it",
        "Records per split and shard, the label range and the label offset in use, bounding "
        "boxes and image sizes. --verify checks every CRC and decodes every image, listing bad "
        "records by shard and index. Exit code 1 when problems are found.",
        _inspect_options,
    ),
    Command(
        "train",
        "train Inception v3 on shards with the original recipe; resumes a run exactly",
        "Train on the shards in --data-dir, writing RUN/config.toml, TensorBoard events and "
        "checkpoints (RUN/checkpoints/) to --train-dir. The defaults are the original recipe "
        "(RMSProp as TensorFlow computes it, staircase decay, moving averages of 0.9999). A run "
        "that has checkpoints continues from the latest one, exactly; nothing is deleted but "
        "checkpoints beyond the newest keep_checkpoints (5; 0 keeps all). "
        "Under `torchrun --nproc-per-node N -m inception3 train ...` the global batch is split "
        "across the ranks and gradients are averaged every step.",
        _train_options,
        config.describe_presets(),
    ),
    Command(
        "report",
        "plot a run's loss, learning rate, precision, confusion matrix and calibration into a PNG",
        "Read the TensorBoard event files that inception3 train wrote in RUN and the JSON lines "
        "that inception3 eval appended to RUN/eval/<split>.jsonl, and draw the training losses, "
        "the learning rate and the top-1/top-5 precision over steps into one PNG; beside them, the "
        "confusion matrix (the most confused classes when there are many) and the reliability "
        "diagram of the newest evaluation (or --split/--step). Whatever is there is plotted, so it "
        "works during training too.",
        _report_options,
    ),
    Command(
        "eval",
        "evaluate a run's checkpoints (top-1/top-5, loss, per-class scores, confusion, calibration)",
        "Follow a training directory like the original evaluator: evaluate each complete "
        "checkpoint once, oldest first, with the moving-average weights, over every example "
        "of the split; print 'precision @ 1 = ... recall @ 5 = ... [N examples]' and the loss, "
        "macro F1 and expected calibration error, append a JSON line (with per-class precision, "
        "recall and F1, the confusion matrix and the reliability bins) to RUN/eval/<split>.jsonl "
        "and TensorBoard scalars under RUN/eval/. Steps already "
        "in the JSON lines are not evaluated again. Stops after the checkpoint training marked "
        "final. Under torchrun each rank evaluates its share and the totals are exact.",
        _eval_options,
    ),
    Command(
        "predict",
        "classify images with a checkpoint: top-k class names and probabilities",
        "Classify image files with the checkpoint's moving-average weights and the evaluation "
        "preprocessing its weights were scored with (inception3's own: central crop 0.875, TF1 bilinear "
        "resize, scale to [-1, 1]; torchvision's, timm's and Keras' for theirs).",
        _predict_options,
    ),
    Command(
        "export",
        "write a checkpoint's model as ONNX, TorchScript, safetensors, or torchvision's, timm's, Keras' own",
        "Export the inference model (logits of images scaled to [-1, 1], [B, 3, S, S]) of a "
        "checkpoint, with its moving-average weights unless --no-ema. ONNX and TorchScript take "
        "any batch size; safetensors holds the state dict plus the model config as metadata. The class "
        "names and the evaluation preprocessing the weights want go in each file's metadata. "
        "torchvision, timm, keras and hf write the weights for those projects' own Inception v3 "
        "(full width only), saying in a note what the format cannot hold (the aux head, class names). "
        "torchvision's and timm's average pools count the zero padding, TF-Slim's and inception3's do "
        "not: a model trained here exports to them only approximately, and the note gives the "
        "difference measured on fixed images.",
        _export_options,
    ),
    Command(
        "demo",
        "the whole system on drawn shapes: build, train + eval, predict, export, report",
        "Draw a small dataset of five shapes (circle, square, triangle, star, cross) as JPEGs "
        "with a bounding-box CSV, then run each step as a separate inception3 process, as you "
        "would: build the shards, train a CPU-sized network while the evaluator follows its "
        "checkpoints, predict a few images, export ONNX and plot the report. Prints the "
        "accuracy of every checkpoint and the commands, to repeat each step on your data. "
        "The defaults take a few minutes on two CPU cores (the README gives a measured time) and "
        "reach over 90% top-1.",
        _demo_options,
    ),
)
