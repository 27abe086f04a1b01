"""`inception3 demo`: the whole system on built-in data, through the real command line.

Draws the shapes dataset, then runs each step as a separate `inception3` process, exactly as a
user would type it: build the shards; train, while the evaluator follows the checkpoints in a
process of its own; predict a few validation images; export ONNX; plot the report. It ends with
the accuracy of every checkpoint, where everything was written, and the commands it ran (also
saved in `OUT/commands.sh`), so each step can be repeated on other data.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from inception3.demo.shapes import SHAPES, make_shapes
from inception3.errors import Inception3Error
from inception3.run import layout
from inception3.run.checkpoint import latest_checkpoint


@dataclass(frozen=True)
class DemoConfig:
    """The demo's size and training recipe; the defaults reach > 90% top-1 in a few minutes on 2 CPU cores."""

    out_dir: Path = Path("demo")
    train_per_class: int = 600  # drawn images per shape for training
    validation_per_class: int = 100  # and for validation
    steps: int = 2250  # training steps
    checkpoint_every: int = 500  # steps; each checkpoint is evaluated by the separate evaluator
    seed: int = 0  # of the drawn images
    predict_images: int = 5  # validation images shown to `inception3 predict`
    # What differs from the original recipe, as `inception3 train --set` keys: a network and input
    # sized for two CPU cores; RMSProp with a small epsilon, whose steps do not shrink with the tiny
    # gradients of a small network, at a rate that settles in 2,250 steps, not 1.5 million; crops
    # that keep at least half of the shape (the original's may keep a tenth of the object); batch-norm
    # statistics averaged over the last ~100 steps: the recipe's 0.9997 averages over ~3,300, the
    # whole run, and even debiased scores 20-39 % at steps 500-2000 (docs/performance.md).
    train_overrides: tuple[tuple[str, object], ...] = (
        ("image_size", 75),
        ("depth_multiplier", 0.25),
        ("batch_size", 32),
        ("learning_rate", 0.0001),
        ("rmsprop_epsilon", 1e-8),
        ("lr_schedule", "cosine"),
        ("batch_norm_decay", 0.99),
        ("crop_area_range", "0.25,1.0"),
        ("crop_min_object_covered", 0.5),
        ("num_workers", 1),
        ("log_every", 50),
        ("summary_every", 100),
        ("keep_checkpoints", 0),
    )
    extra_overrides: tuple[str, ...] = ()  # "key=value" strings applied after train_overrides


@dataclass
class DemoResult:
    """What the demo made: paths, the evaluator's results, and the commands it ran."""

    out_dir: Path
    shards: Path
    run_dir: Path
    onnx: Path
    report: Path
    evaluations: list[dict] = field(default_factory=list)  # RUN/eval/validation.jsonl, by step
    commands: list[list[str]] = field(default_factory=list)  # argv after `inception3`
    seconds: float = 0.0


# The evaluator shares the CPU with training: one thread keeps it from slowing training down.
_EVAL_ENV = {"OMP_NUM_THREADS": "1"}


class _Step:
    """One `inception3` process: its output goes to a log file and, prefixed, to the terminal."""

    def __init__(
        self, name: str, args: list[str], log_dir: Path, out: IO[str], env: dict[str, str] | None = None
    ) -> None:
        self.name, self.args, self.out = name, args, out
        self.log = log_dir / f"{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "inception3", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self._copier = threading.Thread(target=self._copy, daemon=True)
        self._copier.start()

    def _copy(self) -> None:
        assert self.process.stdout is not None
        with open(self.log, "w") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                self.out.write(f"{self.name:>8} | {line.rstrip()}\n")
                self.out.flush()

    def wait(self) -> None:
        """Wait for the process; Inception3Error naming the command and its log when it failed."""
        code = self.process.wait()
        self._copier.join()
        if code != 0:
            raise Inception3Error(
                f"`{_shown(self.args)}` failed with exit code {code}; its output is in {self.log}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        self._copier.join()


def _shown(args: list[str]) -> str:
    prefix = [f"{k}={v}" for k, v in _EVAL_ENV.items()] if args[0] == "eval" else []
    return shlex.join([*prefix, "inception3", *args])


def _check_out_dir(out_dir: Path) -> None:
    """The demo never deletes anything: an earlier demo's directory must be removed by the user."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise Inception3Error(
            f"{out_dir}: already holds files (an earlier demo?); remove it "
            f"(rm -rf {shlex.quote(str(out_dir))}) or pass another --out"
        )


def _read_evaluations(run_dir: Path, split: str = "validation") -> list[dict]:
    by_step = {record["step"]: record for record in layout.read_results(run_dir, split)}
    return [by_step[step] for step in sorted(by_step)]


def run_demo(config: DemoConfig, out: IO[str] = sys.stdout) -> DemoResult:
    """Run every step of the demo into `config.out_dir` and return what it made; see the module doc."""
    start = time.monotonic()
    root = Path(config.out_dir)
    _check_out_dir(root)
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result = DemoResult(root, root / "shards", root / "run", root / "model.onnx", root / "run" / "report.png")

    def say(text: str) -> None:
        out.write(f"\n== {text}\n")
        out.flush()

    def run(name: str, args: list[str]) -> None:
        result.commands.append(args)
        _Step(name, args, logs, out).wait()

    say(
        f"drawing {len(SHAPES)} shapes x ({config.train_per_class} train + {config.validation_per_class} "
        f"validation) images into {root / 'images'}"
    )
    images = make_shapes(
        root / "images",
        train_per_class=config.train_per_class,
        validation_per_class=config.validation_per_class,
        seed=config.seed,
    )

    say("building the TFRecord shards")
    run(
        "build",
        [
            "build",
            "--train-dir",
            str(images.split_dirs["train"]),
            "--validation-dir",
            str(images.split_dirs["validation"]),
            "--bounding-boxes",
            str(images.boxes_csv),
            "--output-dir",
            str(result.shards),
        ],
    )

    say("training, while the evaluator follows the checkpoints in a process of its own")
    evaluate_args = _eval_args(result)
    train_args = _train_args(config, result)
    result.commands += [train_args, evaluate_args]
    trainer = _Step("train", train_args, logs, out)
    evaluator, tail = None, []
    try:
        while not layout.config_path(result.run_dir).exists() and trainer.process.poll() is None:
            time.sleep(0.2)  # the evaluator follows a run directory that training has created
        evaluator = _Step("eval", evaluate_args, logs, out, env=_EVAL_ENV)
        trainer.wait()
        # While the evaluator scores the last checkpoint, predict and export it beside it.
        final = latest_checkpoint(result.run_dir)
        if final is None:
            raise Inception3Error(f"{result.run_dir}: training left no checkpoint; see {logs / 'train.log'}")
        say("predicting a few validation images and exporting the model to ONNX, beside the last evaluation")
        samples = [sorted((images.split_dirs["validation"] / shape).glob("*.jpg"))[0] for shape in SHAPES]
        predict_args = ["predict", "--checkpoint", str(final), "--top-k", "2"]
        predict_args += [str(p) for p in samples[: config.predict_images]]
        export_args = ["export", "--checkpoint", str(final), "--format", "onnx", "--output", str(result.onnx)]
        result.commands += [predict_args, export_args]
        tail = [_Step("predict", predict_args, logs, out), _Step("export", export_args, logs, out)]
        for step in tail:
            step.wait()
        evaluator.wait()
    finally:
        trainer.stop()
        if evaluator is not None:
            evaluator.stop()
        for step in tail:
            step.stop()

    say("plotting the report")
    run("report", ["report", str(result.run_dir)])

    result.evaluations = _read_evaluations(result.run_dir)
    result.seconds = time.monotonic() - start
    (root / "commands.sh").write_text("\n".join(_shown(args) for args in result.commands) + "\n")
    out.write(summary(result))
    out.flush()
    return result


def _train_args(config: DemoConfig, result: DemoResult) -> list[str]:
    overrides = [*config.train_overrides, ("checkpoint_every", config.checkpoint_every)]
    args = [
        "train",
        "--data-dir",
        str(result.shards),
        "--train-dir",
        str(result.run_dir),
        "--max-steps",
        str(config.steps),
    ]
    for setting in [f"{key}={value}" for key, value in overrides] + list(config.extra_overrides):
        args += ["--set", setting]
    return args


def _eval_args(result: DemoResult) -> list[str]:
    """The evaluator follows the run, looking every 5 s, and stops after the final checkpoint."""
    return [
        "eval",
        "--train-dir",
        str(result.run_dir),
        "--data-dir",
        str(result.shards),
        "--split",
        "validation",
        "--interval",
        "5",
        "--num-workers",
        "1",
    ]


def summary(result: DemoResult) -> str:
    """What the demo prints last: accuracy per checkpoint, where things are, and how to repeat it."""
    lines = [
        "",
        f"== demo finished in {result.seconds / 60:.1f} min",
        "",
        "validation accuracy of each checkpoint (moving-average weights, separate evaluator):",
        "     step   top-1   top-5",
    ]
    lines += [
        f"  {e['step']:>7}  {100 * e['top1']:5.1f}%  {100 * e['top5']:5.1f}%" for e in result.evaluations
    ]
    lines += [
        "",
        f"images and boxes:    {result.out_dir / 'images'}",
        f"shards:              {result.shards}",
        f"checkpoints:         {result.run_dir / 'checkpoints'}",
        f"evaluations:         {layout.results_path(result.run_dir, 'validation')}",
        f"logs of each step:   {result.out_dir / 'logs'}",
        f"ONNX model:          {result.onnx}",
        f"report:              {result.report}",
        f"TensorBoard:         tensorboard --logdir {result.run_dir}",
        "",
        f"the commands it ran (also in {result.out_dir / 'commands.sh'}; train and eval side by side):",
    ]
    lines += [f"  {_shown(args)}" for args in result.commands]
    return "\n".join(lines) + "\n"
