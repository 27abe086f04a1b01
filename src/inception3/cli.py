"""`inception3 <command>`: parses arguments, calls one function, prints user errors as one line.

Each command has an `_add_<command>` function that declares its arguments and sets `run`, a
function of the parsed namespace returning an exit code. Imports of the heavy modules happen
inside `run`, so that `inception3 --help` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from inception3 import config
from inception3.errors import Inception3Error
from inception3.files import os_error_behind, os_error_line


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inception3",
        description="Inception v3 on PyTorch: build shards, train, evaluate, predict, export.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(commands)
    return parser


def _version() -> str:
    from inception3 import __version__

    return f"inception3 {__version__}"


def _add_build(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "build",
        help="convert class folders of images into sharded TFRecord files",
        description="Convert a folder of class sub-folders into TFRecord shards of tf.train.Example "
        "(the original's keys, readable by TensorFlow) plus dataset.json. Images that are not "
        "RGB JPEG are converted; unreadable ones are skipped and listed. Each shard appears "
        "atomically; re-running an interrupted build keeps the complete shards.",
    )
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
    parser.set_defaults(run=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from inception3.data.build import build_dataset

    fields = [f.name for f in dataclasses.fields(config.BuildConfig) if f.name != "progress"]
    report = build_dataset(config.BuildConfig(**{name: getattr(args, name) for name in fields}))
    print(report.summary())
    return 0


def _add_inspect(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "inspect",
        help="summarise a shard directory (ours or TensorFlow-built); --verify checks it",
        description="Records per split and shard, the label range and the label offset in use, bounding "
        "boxes and image sizes. --verify checks every CRC and decodes every image, listing bad "
        "records by shard and index. Exit code 1 when problems are found.",
    )
    parser.add_argument("data_dir", type=Path, metavar="DIR", help="directory holding the shards")
    parser.add_argument("--verify", action="store_true", help="check every checksum and decode every image")
    parser.add_argument("--limit", type=int, help="read at most this many records per split")
    parser.set_defaults(run=_run_inspect)


def _run_inspect(args: argparse.Namespace) -> int:
    from inception3.data.inspect import format_inspection, inspect_dataset

    report = inspect_dataset(args.data_dir, verify=args.verify, limit=args.limit)
    print(format_inspection(report))
    return 1 if report.problems else 0


def _add_report(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report",
        help="plot a run's training loss, learning rate and evaluation precision into a PNG",
        description="Read the TensorBoard event files that inception3 train wrote in RUN and the JSON lines "
        "that inception3 eval appended to RUN/eval/<split>.jsonl, and draw the training losses, "
        "the learning rate and the top-1/top-5 precision over steps into one PNG. Whatever is "
        "there is plotted, so it works during training too.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN", help="the training directory (--train-dir)")
    parser.add_argument(
        "--output", type=Path, metavar="PNG", help="where to write the PNG (default: RUN/report.png)"
    )
    parser.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from inception3.report import write_report

    print(f"wrote {write_report(args.run_dir, args.output)}")
    return 0


def _add_weights(parser: argparse.ArgumentParser, *, required: bool = True, also: str = "") -> None:
    """--checkpoint (any weights file `weights.read_weights` reads), --weights-format and --no-ema."""
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=required,
        metavar="PATH",
        help="an inception3 checkpoint, an exported .safetensors file, a plain state dict, or "
        "torchvision's, timm's, Keras' or TF-Slim's Inception v3 weights" + (f"; {also}" if also else ""),
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


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cuda", "cpu"),
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


def _add_eval(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval",
        help="evaluate a run's checkpoints (top-1/top-5 precision, loss, per-class accuracy)",
        description="Follow a training directory like the original evaluator: evaluate each complete "
        "checkpoint once, oldest first, with the moving-average weights, over every example "
        "of the split; print 'precision @ 1 = ... recall @ 5 = ... [N examples]', append a JSON "
        "line to RUN/eval/<split>.jsonl and TensorBoard scalars under RUN/eval/. Steps already "
        "in the JSON lines are not evaluated again. Stops after the checkpoint training marked "
        "final. Under torchrun each rank evaluates its share and the totals are exact.",
    )
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
    parser.set_defaults(run=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from inception3.watch import watch

    if args.train_dir is None and args.checkpoint is None:
        raise Inception3Error("give --train-dir RUN to follow a run, or --checkpoint PATH")
    cfg = config.EvalConfig(
        split=args.split,
        use_ema=args.use_ema,
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.num_workers,
        label_offset=args.label_offset,
        channels_last=args.channels_last,
        preprocessing=args.preprocessing,
        labels_file=args.labels_file,
        weights_format=args.weights_format,
    )
    watch(
        args.train_dir,
        args.data_dir,
        cfg,
        checkpoint=args.checkpoint,
        once=args.once,
        interval=args.interval,
        keep_waiting=args.keep_waiting,
    )
    return 0


def _add_predict(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "predict",
        help="classify images with a checkpoint: top-k class names and probabilities",
        description="Classify image files with the checkpoint's moving-average weights and the evaluation "
        "preprocessing its weights were scored with (inception3's own: central crop 0.875, TF1 bilinear "
        "resize, scale to [-1, 1]; torchvision's, timm's and Keras' for theirs).",
    )
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    _add_weights(parser)
    parser.add_argument(
        "--top-k", type=int, default=config.TOP_K, help="classes shown per image (default: %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per image instead of text")
    _add_device(parser)
    _add_labels(parser)
    parser.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from inception3.predict import format_predictions, predict_each, unreadable_error

    predictions, unreadable = predict_each(
        args.checkpoint,
        args.images,
        top_k=args.top_k,
        use_ema=args.use_ema,
        preprocessing=args.preprocessing,
        labels_file=args.labels_file,
        weights_format=args.weights_format,
        device=args.device,
        notes=lambda line: print(f"inception3 predict: {line}", file=sys.stderr, flush=True),
    )
    if predictions:
        print(format_predictions(predictions, as_json=args.json), flush=True)
    if unreadable:
        raise unreadable_error(unreadable, len(args.images))
    return 0


def _add_export(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="write a checkpoint's model as ONNX, TorchScript or safetensors",
        description="Export the inference model (logits of images scaled to [-1, 1], [B, 3, S, S]) of a "
        "checkpoint, with its moving-average weights unless --no-ema. ONNX and TorchScript take "
        "any batch size; safetensors holds the state dict plus the model config as metadata. The class "
        "names and the evaluation preprocessing the weights want go in each file's metadata.",
    )
    _add_weights(parser)
    parser.add_argument(
        "--format", required=True, choices=("onnx", "torchscript", "safetensors"), help="the output format"
    )
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        metavar="FILE",
        help="the file to write (never the checkpoint itself; an existing file only with --force)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --output file")
    parser.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from inception3.export import export_checkpoint

    written = export_checkpoint(
        args.checkpoint,
        args.format,
        args.output,
        use_ema=args.use_ema,
        force=args.force,
        weights_format=args.weights_format,
    )
    print(f"wrote {written}")
    return 0


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train Inception v3 on shards with the original recipe; resumes a run exactly",
        description="Train on the shards in --data-dir, writing RUN/config.toml, TensorBoard events and "
        "checkpoints (RUN/checkpoints/) to --train-dir. The defaults are the original recipe "
        "(RMSProp as TensorFlow computes it, staircase decay, moving averages of 0.9999). A run "
        "that has checkpoints continues from the latest one, exactly; nothing is deleted but "
        "checkpoints beyond the newest keep_checkpoints (5; 0 keeps all). "
        "Under `torchrun --nproc-per-node N -m inception3 train ...` the global batch is split "
        "across the ranks and gradients are averaged every step.",
    )
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
        choices=sorted(_train_presets()),
        help="a named override set: imagenet (the defaults), imagenet-distributed "
        "(lr 0.045 x 0.94 every 2 epochs), flowers (fine-tune at lr 0.001), tiny "
        "(75x75, depth 0.25: a CPU-sized trial)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE.toml",
        help="config keys from a TOML file (e.g. a previous RUN/config.toml), applied after the preset",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="set one config key, last of all; repeatable (e.g. --set batch_size=64 "
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
    parser.set_defaults(run=_run_train)


def _train_presets() -> list[str]:
    from inception3.config import PRESETS

    return list(PRESETS)


def _run_train(args: argparse.Namespace) -> int:
    from inception3.train.loop import train
    from inception3.train.options import resolve_config

    overrides = list(args.overrides)
    if args.init_from is not None:
        overrides.append(f"init_from={args.init_from}")
    if args.trainable is not None:
        overrides.append(f"trainable={args.trainable}")
    if args.max_steps is not None:
        overrides.append(f"max_steps={args.max_steps}")
    cfg = resolve_config(args.preset, args.config, overrides)
    result = train(cfg, args.data_dir, args.train_dir, force=args.force)
    if result.checkpoint is not None:
        print(f"step {result.step}: {result.checkpoint}")
    return 0


def _add_demo(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="the whole system on drawn shapes: build, train + eval, predict, export, report",
        description="Draw a small dataset of five shapes (circle, square, triangle, star, cross) as JPEGs "
        "with a bounding-box CSV, then run each step as a separate inception3 process, as you "
        "would: build the shards, train a CPU-sized network while the evaluator follows its "
        "checkpoints, predict a few images, export ONNX and plot the report. Prints the "
        "accuracy of every checkpoint and the commands, to repeat each step on your data. "
        "The defaults take about seven minutes on two CPU cores and reach over 90% top-1.",
    )
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
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="one more inception3 train config key, after the demo's own (e.g. "
        "--set batch_size=16); repeatable",
    )
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from inception3.demo import DemoConfig, run_demo

    sizes = {
        key: getattr(args, key)
        for key in ("train_per_class", "validation_per_class", "steps", "checkpoint_every")
        if getattr(args, key) is not None
    }
    run_demo(DemoConfig(out_dir=args.out, extra_overrides=tuple(args.overrides), **sizes))
    return 0


_COMMANDS: list = [
    _add_build,
    _add_inspect,
    _add_train,
    _add_report,
    _add_eval,
    _add_predict,
    _add_export,
    _add_demo,
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `inception3` console script; returns the process exit code.

    Whatever a command meets, the user sees one line on stderr: a user error or a refusal of the
    file system (exit code 2, naming the path and what to do), or Ctrl-C at any moment, start-up
    included (exit code 130). What is on disk is as the command's own guarantees leave it.
    """
    prog = "inception3"
    try:
        args = _build_parser().parse_args(argv)
        prog = f"inception3 {args.command}"
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(prog, warnings.showwarning)
            return int(args.run(args) or 0)
    except Inception3Error as error:
        return _fail(prog, str(error))
    except OSError as error:
        return _fail(prog, os_error_line(error))
    except RuntimeError as error:  # torch.save and other writers hide a failed write behind one
        cause = os_error_behind(error)
        if cause is None:
            raise
        return _fail(prog, os_error_line(cause))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _fail(prog: str, message: str) -> int:
    """Print an error as the one line the README promises; exit code 2."""
    print(f"{prog}: error: {' '.join(message.splitlines())}", file=sys.stderr)
    return 2


_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def _one_line_warnings(prog: str, default):
    """`warnings.showwarning` that prints inception3's own warnings as one line each (others as usual)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if not str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
            default(message, category, filename, lineno, file, line)
            return
        text = " ".join(str(message).splitlines())
        print(f"{prog}: warning: {text}", file=file or sys.stderr)

    return show
