"""`inception3 eval`: follow a training directory as the original evaluator did, one checkpoint at a time.

`watch` evaluates each complete checkpoint of a run once, oldest first (`evaluate.evaluate_model`
scores one). Checkpoints appear under their final name only when complete (see `run/checkpoint.py`),
so a partial file is never read; one deleted by retention before its turn is skipped. Steps already
in `RUN/eval/<split>.jsonl` are not evaluated again, so a restarted evaluator picks up where it
stopped. It returns after the checkpoint training marked final. (The original evaluated only the
newest checkpoint each round.)
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from torch import nn

from inception3.config import EVAL_INTERVAL_SECS, EvalConfig
from inception3.errors import Inception3Error
from inception3.evaluate import EvalResult, evaluate_model
from inception3.files import what_is_at
from inception3.run import distributed as dist
from inception3.run import layout
from inception3.run.checkpoint import (
    IgnoredFileWarning,
    check_step,
    ignored_files,
    latest_checkpoint,
    list_checkpoints,
)
from inception3.weights import WeightsMeta, load_model

MAX_INTERVAL_SECS = 86_400.0  # `--interval` above a day is a typo, and sleep() overflows far above it


def evaluated_steps(run_dir: Path, split: str, ema: bool) -> dict[int, dict]:
    """Records already in RUN/eval/<split>.jsonl for these weights (EMA or raw), by step."""
    return {r["step"]: r for r in layout.read_results(run_dir, split) if bool(r.get("ema", True)) == ema}


def write_result(run_dir: Path, result: EvalResult, *, same_file: bool = False) -> dict | None:
    """Append the JSON line and the TensorBoard scalars of `result` under RUN/eval/, unless another
    evaluator recorded the same evaluation (`_same_evaluation`) meanwhile: then its record, and
    nothing is written. The check and the append are one atomic step (`layout.append_result`)."""
    found = layout.append_result(
        run_dir,
        result.split,
        result.record(),
        duplicate=lambda record: _same_evaluation(
            record, result.step, result.ema, Path(result.checkpoint), same_file=same_file
        ),
    )
    if found is not None:
        return found
    from inception3.run.events import EventFile  # written in this thread: a full disk is one line

    with EventFile(layout.eval_dir(run_dir)) as writer:
        prefix = f"eval/{result.split}"
        writer.add_scalar(f"{prefix}/precision_at_1", result.top1, result.step)
        writer.add_scalar(f"{prefix}/recall_at_5", result.top5, result.step)
        writer.add_scalar(f"{prefix}/loss", result.loss, result.step)
        if result.macro_f1 is not None:
            writer.add_scalar(f"{prefix}/macro_f1", result.macro_f1, result.step)
        if result.ece is not None:
            writer.add_scalar(f"{prefix}/expected_calibration_error", result.ece, result.step)
    return None


def _report(
    result: EvalResult,
    run_dir: Path | None,
    printer: Callable[[str], None],
    ctx: dist.Distributed,
    records: Callable[[dict], None] | None,
    *,
    same_file: bool = False,
) -> None:
    if ctx.is_main:
        printer(result.summary())
        if records is not None:
            records(result.record())
        if run_dir is not None and write_result(run_dir, result, same_file=same_file) is not None:
            printer(
                f"step {result.step} ({result.checkpoint}) was recorded in "
                f"{layout.results_path(run_dir, result.split)} by another evaluator meanwhile; "
                "not recorded again"
            )


def watch(
    run_dir: Path | None,
    data_dir: Path,
    cfg: EvalConfig | None = None,
    *,
    checkpoint: Path | None = None,
    once: bool = False,
    interval: float = EVAL_INTERVAL_SECS,
    keep_waiting: bool = False,
    printer: Callable[[str], None] = print,
    records: Callable[[dict], None] | None = None,
) -> list[EvalResult]:
    """`inception3 eval`: evaluate a run's checkpoints as they appear (module docstring).

    `checkpoint`: evaluate that file only (written under RUN/eval/ when `run_dir` is given).
    `once`: evaluate the newest checkpoint of the run and return. Otherwise every checkpoint not
    yet in the JSON lines, oldest first, polling every `interval` seconds, until the final one
    (or forever with `keep_waiting`). A step already recorded for these weights is reported,
    not evaluated again. `printer` gets the lines a person reads; `records` (`eval --json`) each
    evaluation's record, the JSON line, as it is made (or, for --once and --checkpoint, as it was
    recorded before). Returns the results of this call.
    """
    cfg = cfg or EvalConfig()
    if not (math.isfinite(interval) and 0 < interval <= MAX_INTERVAL_SECS):
        raise Inception3Error(
            f"--interval {interval}: must be a number of seconds above 0 and at most "
            f"{MAX_INTERVAL_SECS} (a day)"
        )
    if run_dir is not None:
        run_dir = layout.require_utf8_run_dir(Path(run_dir))
        if (run_dir.exists() or run_dir.is_symlink()) and not run_dir.is_dir():
            raise Inception3Error(
                f"{run_dir}: is {what_is_at(run_dir)}, not a training directory; pass the --train-dir "
                "of inception3 train"
            )
        layout.results_path(run_dir, cfg.split)  # a split that is not a plain name is refused now
    ctx = dist.init_distributed(cfg.device)  # under torchrun; a single process otherwise
    try:
        if checkpoint is not None or once:
            return _evaluate_one(run_dir, data_dir, cfg, checkpoint, printer, records, ctx)
        evaluate = lambda path: _evaluate_run_checkpoint(Path(path), data_dir, cfg, ctx, printer)  # noqa: E731
        return _follow(run_dir, cfg, interval, keep_waiting, printer, records, evaluate, ctx)
    finally:
        dist.shutdown(ctx)  # a rank that exits with the group still up can abort in the backend's threads


def _evaluate_run_checkpoint(
    path: Path, data_dir: Path, cfg: EvalConfig, ctx: dist.Distributed, printer: Callable[[str], None]
) -> EvalResult:
    """Evaluate one of a run's own checkpoints, whose content must be of the step its name says."""
    model, meta = _load_run_checkpoint(path, cfg)
    return evaluate_model(model, meta, path, data_dir, cfg, ctx, printer)


def _load_run_checkpoint(path: Path, cfg: EvalConfig) -> tuple[nn.Module, WeightsMeta]:
    model, meta = load_model(path, use_ema=cfg.use_ema, weights_format=cfg.weights_format)
    try:
        check_step(path, meta.step)
    except Inception3Error as error:
        raise Inception3Error(f"{error}; move it out of {path.parent} and run again") from None
    return model, meta


def _evaluate_one(
    run_dir: Path | None,
    data_dir: Path,
    cfg: EvalConfig,
    checkpoint: Path | None,
    printer: Callable[[str], None],
    records: Callable[[dict], None] | None,
    ctx: dist.Distributed,
) -> list[EvalResult]:
    """--once or --checkpoint: one checkpoint, unless RUN/eval already records it for these weights."""
    if checkpoint is not None:
        path = Path(checkpoint)
        model, meta = load_model(path, use_ema=cfg.use_ema, weights_format=cfg.weights_format)
    else:
        path = _newest(run_dir)
        model, meta = _load_run_checkpoint(path, cfg)
    if run_dir is not None:
        found = _recorded(run_dir, cfg.split, meta, path, same_file=checkpoint is not None)
        found = dist.from_main(found if ctx.is_main else None, ctx)
        if found is not None:
            if ctx.is_main:
                printer(
                    f"step {found['step']} ({path}) is already evaluated in "
                    f"{layout.results_path(run_dir, cfg.split)}: {_precisions(found)}; not evaluated again"
                )
                if records is not None:
                    records(found)
            return []
    result = evaluate_model(model, meta, path, data_dir, cfg, ctx, printer)
    _report(result, run_dir, printer, ctx, records, same_file=checkpoint is not None)
    return [result]


def _recorded(run_dir: Path, split: str, meta: WeightsMeta, path: Path, *, same_file: bool) -> dict | None:
    """The last record in RUN/eval/<split>.jsonl of the step and weights (averaged or raw) `meta` describes
    (for a file given by --checkpoint, of that very file), or None."""
    records = layout.read_results(run_dir, split)
    same = (
        r for r in reversed(records) if _same_evaluation(r, meta.step, meta.ema, path, same_file=same_file)
    )
    return next(same, None)


def _same_evaluation(record: dict, step: int, ema: bool, path: Path, *, same_file: bool) -> bool:
    """Whether `record` scores the step and weights (averaged or raw) given; with `same_file` (a file
    given by --checkpoint), that very file too."""
    if record["step"] != step or bool(record.get("ema", True)) != ema:
        return False
    return not same_file or Path(str(record.get("checkpoint", ""))).resolve() == path.resolve()


def _precisions(record: dict) -> str:
    """The original's words for a recorded result."""
    try:
        return f"precision @ 1 = {float(record['top1']):.4f} recall @ 5 = {float(record['top5']):.4f}"
    except (KeyError, TypeError, ValueError):
        return "(no precision recorded)"


def _newest(run_dir: Path | None) -> Path:
    if run_dir is None:
        raise Inception3Error("--once evaluates the newest checkpoint of a run: give --train-dir RUN")
    newest = latest_checkpoint(run_dir, warn=True)
    if newest is None:
        raise Inception3Error(
            f"{run_dir}: no checkpoint in {layout.checkpoint_dir(run_dir)} yet; "
            "train first, or drop --once to wait for one"
        )
    return newest


def _follow(
    run_dir: Path | None,
    cfg: EvalConfig,
    interval: float,
    keep_waiting: bool,
    printer: Callable[[str], None],
    records: Callable[[dict], None] | None,
    evaluate: Callable[[Path], EvalResult],
    ctx: dist.Distributed,
) -> list[EvalResult]:
    """Evaluate every checkpoint of the run not yet recorded, oldest first, until the final one."""
    if run_dir is None:
        raise Inception3Error("following a run needs --train-dir (or pass --checkpoint PATH)")
    if not Path(run_dir).is_dir():
        raise Inception3Error(
            f"{run_dir}: no such training directory; pass the --train-dir of inception3 train"
        )
    done = evaluated_steps(run_dir, cfg.split, cfg.use_ema) if ctx.is_main else {}
    finished = dist.from_main(any(record.get("final") for record in done.values()), ctx)
    results: list[EvalResult] = []
    warned: set[str] = set()
    waiting_said = False
    while keep_waiting or not finished:
        if ctx.is_main:
            for note in set(ignored_files(run_dir)) - warned:
                warnings.warn(note, IgnoredFileWarning, stacklevel=2)
                warned.add(note)
        found = dist.from_main([(step, str(path)) for step, path in list_checkpoints(run_dir)], ctx)
        pending = [(step, path) for step, path in found if step not in done]
        for step, path in pending:
            try:
                result = evaluate(Path(path))
            except Inception3Error:
                if Path(path).exists():
                    raise
                printer(f"step {step}: {path} was removed before it could be evaluated; skipped")
                done[step] = {}
                continue
            _report(result, run_dir, printer, ctx, records)
            results.append(result)
            done[step] = result.record()
            finished = finished or result.final
        if pending:
            continue
        if finished and not keep_waiting:
            break
        if not found and not done and not waiting_said and ctx.is_main:
            printer(f"waiting for the first checkpoint in {layout.checkpoint_dir(run_dir)}; Ctrl-C to stop")
            waiting_said = True
        time.sleep(interval)
    return results
