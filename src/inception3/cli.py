"""`inception3 <command>`: parses arguments, builds the configs, calls the API, prints user errors
as one line.

Each command's options are declared in cli_args.py; here each has a `_run_<command>` function of
the parsed namespace returning an exit code. build, train, predict and export call the Python API
(`inception3.build_shards`, `.train`, `.predict`, `.export_checkpoint`), whose names load their
modules on first use, so that `inception3 --help` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import inception3
from inception3 import config
from inception3.cli_args import COMMANDS
from inception3.errors import Inception3Error, interrupts_win
from inception3.files import os_error_behind, os_error_line


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inception3",
        description="Inception v3 on PyTorch: build shards, train, evaluate, predict, export.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name, help=command.help, description=command.description, epilog=command.epilog or None
        )
        command.add_options(sub)
        sub.set_defaults(run=_RUN[command.name])
    return parser


def _version() -> str:
    from inception3 import __version__

    return f"inception3 {__version__}"


def _run_build(args: argparse.Namespace) -> int:
    report = inception3.build_shards(_record(config.BuildConfig, args))
    print(report.summary())
    return 0


def _record(cls: type, args: argparse.Namespace) -> Any:
    """The config record `cls` (BuildConfig, EvalConfig) of the command's options: each field is the
    option of its name; a field with no option (progress) keeps its default."""
    options = vars(args)
    return cls(**{f.name: options[f.name] for f in dataclasses.fields(cls) if f.name in options})


def _run_inspect(args: argparse.Namespace) -> int:
    from inception3.data.inspect import format_inspection, inspect_dataset

    report = inspect_dataset(args.data_dir, verify=args.verify, limit=args.limit)
    print(format_inspection(report))
    return 1 if report.problems else 0


def _run_report(args: argparse.Namespace) -> int:
    from inception3.report import write_report

    written = write_report(args.run_dir, args.output, force=args.force, split=args.split, step=args.step)
    print(f"wrote {written}")
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from inception3.watch import watch

    if args.train_dir is None and args.checkpoint is None:
        raise Inception3Error("give --train-dir RUN to follow a run, or --checkpoint PATH")
    watch(
        args.train_dir,
        args.data_dir,
        _record(config.EvalConfig, args),
        checkpoint=args.checkpoint,
        once=args.once,
        interval=args.interval,
        keep_waiting=args.keep_waiting,
        printer=_to_stderr if args.json else print,
        records=_json_line if args.json else None,
    )
    return 0


def _to_stderr(line: str) -> None:
    """`eval --json`: the lines a person reads go to stderr, so that stdout is JSON lines only."""
    print(line, file=sys.stderr, flush=True)


def _json_line(record: dict) -> None:
    print(json.dumps(record), flush=True)


def _run_predict(args: argparse.Namespace) -> int:
    from inception3.predict import format_predictions, unreadable_error

    unreadable: list[str] = []
    predictions = inception3.predict(
        args.checkpoint,
        args.images,
        top_k=args.top_k,
        use_ema=args.use_ema,
        preprocessing=args.preprocessing,
        labels_file=args.labels_file,
        weights_format=args.weights_format,
        device=args.device,
        notes=lambda line: print(f"inception3 predict: {line}", file=sys.stderr, flush=True),
        unreadable=unreadable.append,
    )
    if predictions:
        print(format_predictions(predictions, as_json=args.json), flush=True)
    if unreadable:
        raise unreadable_error(unreadable, len(args.images))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    written = inception3.export_checkpoint(
        args.checkpoint,
        args.format,
        args.output,
        use_ema=args.use_ema,
        force=args.force,
        weights_format=args.weights_format,
        notes=lambda line: print(f"inception3 export: {line}", file=sys.stderr, flush=True),
    )
    print(f"wrote {written}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from inception3.train.options import resolve_config

    own = {  # the options that are config keys, typed by argparse; they come after --set
        "init_from": None if args.init_from is None else str(args.init_from),
        "trainable": args.trainable,
        "max_steps": args.max_steps,
    }
    typed = {key: value for key, value in own.items() if value is not None}
    cfg = resolve_config(args.preset, args.config, args.overrides, typed)
    result = inception3.train(cfg, args.data_dir, args.train_dir, force=args.force)
    if result.checkpoint is not None:
        print(f"step {result.step}: {result.checkpoint}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from inception3.demo import DemoConfig, run_demo

    sizes = {
        key: getattr(args, key)
        for key in ("train_per_class", "validation_per_class", "steps", "checkpoint_every")
        if getattr(args, key) is not None
    }
    run_demo(DemoConfig(out_dir=args.out, extra_overrides=tuple(args.overrides), **sizes))
    return 0


# Each command's function of the parsed arguments, returning the exit code (its options: cli_args.py).
_RUN: dict[str, Callable[[argparse.Namespace], int]] = {
    "build": _run_build,
    "inspect": _run_inspect,
    "train": _run_train,
    "report": _run_report,
    "eval": _run_eval,
    "predict": _run_predict,
    "export": _run_export,
    "demo": _run_demo,
}


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
        with warnings.catch_warnings(), interrupts_win():  # a Ctrl-C a library swallowed still ends it
            # NumPy before torch: torch's C extension, interrupted while it imports NumPy, warns and goes on.
            import numpy  # noqa: F401

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
