"""`inception3 report RUN`: one PNG of a run's training loss, learning rate and evaluation precision,
and beside them the confusion matrix and reliability diagram of one evaluation.

For people who would rather look than read: the training curves come from the TensorBoard event
files the trainer writes in the run directory, the precision, confusion and calibration from the
evaluator's `RUN/eval/<split>.jsonl` (the newest step's record unless one is chosen). Whatever is
there is plotted; a panel with nothing to show is left out (records written before the confusion
matrix and calibration were recorded get the curves only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inception3.errors import Inception3Error
from inception3.files import atomic_write, check_output, require_directory
from inception3.metrics import Reliability, read_confusion, read_reliability
from inception3.run import layout

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import SubFigure

REPORT_PNG = "report.png"
DPI = 100  # pixels per inch of the PNG
CONFUSION_CLASSES_SHOWN = 20  # the most confused classes drawn, names on both axes still readable
CONFUSION_COUNTS_SHOWN = 12  # up to this many classes, each cell also shows its count
CLASS_NAME_CHARS = 24  # longer class names are cut on the axes (ImageNet's run to 80)
CURVES_WIDTH, CURVE_HEIGHT = 8.0, 3.0  # inches: each curve panel, stacked
SIDE_WIDTH, CONFUSION_HEIGHT, RELIABILITY_HEIGHT = 7.0, 7.0, 4.5  # inches: the panels beside them

Series = dict[str, tuple[list[int], list[float]]]  # name -> (steps, values)


@dataclass
class Evaluation:
    """What the side panels draw from one evaluation record: its confusion matrix (rows: true class,
    columns: predicted) and reliability bins, each None when the record has none."""

    split: str
    step: int
    ema: bool
    class_names: list[str]
    confusion: np.ndarray | None
    reliability: Reliability | None

    def empty(self) -> bool:
        return self.confusion is None and self.reliability is None


@dataclass
class RunCurves:
    """The scalars of one run, by panel: training losses, learning rates, evaluation precisions; and
    the evaluation the side panels explain."""

    losses: Series = field(default_factory=dict)
    learning_rates: Series = field(default_factory=dict)
    precisions: Series = field(default_factory=dict)
    evaluation: Evaluation | None = None

    def empty(self) -> bool:
        return not (self.losses or self.learning_rates or self.precisions or self.evaluation)


def read_training_scalars(run_dir: Path) -> tuple[Series, Series]:
    """(losses, learning rates) from the event files directly in `run_dir`, restarts included.

    A tag belongs to the losses when its name says "loss", to the learning rates when it says
    "learning_rate" or is "lr"; other scalars (throughput, sparsity) are not plotted.
    """
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    losses: Series = {}
    rates: Series = {}
    if not any(Path(run_dir).glob("*tfevents*")):
        return losses, rates
    events = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    events.Reload()
    for tag in sorted(events.Tags()[SCALARS]):
        name = tag.lower()
        target = losses if "loss" in name else rates if "learning_rate" in name or name == "lr" else None
        if target is not None:
            scalars = events.Scalars(tag)
            target[tag] = ([s.step for s in scalars], [s.value for s in scalars])
    return losses, rates


def read_eval_precision(run_dir: Path) -> Series:
    """Top-1 and top-5 precision per step from each `RUN/eval/<split>.jsonl`: each step once (its
    last record), the moving-average weights' and the raw weights' (`--no-ema`) as separate curves."""
    series: Series = {}
    for split in layout.result_splits(run_dir):
        records = layout.read_results(run_dir, split)
        for ema, suffix in ((True, ""), (False, " (raw weights)")):
            by_step = {r["step"]: r for r in records if bool(r.get("ema", True)) == ema}
            steps = sorted(by_step)
            for metric in ("top1", "top5"):
                if steps and all(_is_number(by_step[s].get(metric)) for s in steps):
                    values = [float(by_step[s][metric]) for s in steps]
                    series[f"{split} {metric}{suffix}"] = (steps, values)
    return series


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_evaluation(run_dir: Path, split: str | None = None, step: int | None = None) -> Evaluation | None:
    """The confusion matrix and reliability bins of one record of `RUN/eval/<split>.jsonl`: the
    newest step's (or `step`'s), the moving-average weights' where both were evaluated, the last one
    written. `split` defaults to "validation" when it has records, else the first split that has.
    None when that record has neither (written before they were recorded). A chosen split or step
    with no record, or a malformed field, is an Inception3Error naming the file.
    """
    splits = layout.result_splits(run_dir)
    if split is None and step is None and not splits:
        return None
    if split is None:
        split = "validation" if "validation" in splits or not splits else splits[0]
    path = layout.results_path(run_dir, split)
    records = layout.read_results(run_dir, split)
    if not records:
        found = ", ".join(splits) or "none"
        raise Inception3Error(f"{path}: no evaluation records (evaluated splits: {found}); run eval first")
    steps = sorted({r["step"] for r in records})
    chosen = steps[-1] if step is None else step
    if chosen not in steps:
        raise Inception3Error(f"{path}: no evaluation of step {chosen}; evaluated steps: {_listed(steps)}")
    of_step = [r for r in records if r["step"] == chosen]
    record = next((r for r in reversed(of_step) if bool(r.get("ema", True))), of_step[-1])
    try:
        return _evaluation(record, split)
    except ValueError as error:
        raise Inception3Error(f"{path}: step {chosen}: {error}; evaluate the step again") from None


def _evaluation(record: dict, split: str) -> Evaluation | None:
    cells, bins = record.get("confusion"), record.get("reliability")
    if cells is None and bins is None:
        return None
    names = record.get("class_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise ValueError("'class_names' is not a list of class names")
    confusion = read_confusion(cells, len(names)) if cells is not None else None
    reliability = read_reliability(bins) if bins is not None else None
    return Evaluation(split, record["step"], bool(record.get("ema", True)), names, confusion, reliability)


def _listed(steps: list[int]) -> str:
    return ", ".join(map(str, steps[:10])) + (f" ... {steps[-1]}" if len(steps) > 10 else "")


def read_run(run_dir: Path, split: str | None = None, step: int | None = None) -> RunCurves:
    """Every curve the report can draw from `run_dir`, and the evaluation (`read_evaluation`) of
    `split` and `step`; Inception3Error when it is not a directory."""
    require_directory(Path(run_dir), "run directory", "pass the --train-dir of inception3 train")
    losses, rates = read_training_scalars(run_dir)
    return RunCurves(losses, rates, read_eval_precision(run_dir), read_evaluation(run_dir, split, step))


def write_report(
    run_dir: Path,
    output: Path | None = None,
    *,
    force: bool = False,
    split: str | None = None,
    step: int | None = None,
) -> Path:
    """Plot `run_dir`'s curves into a PNG (default `RUN/report.png`) and return its path; beside
    them the confusion matrix and reliability diagram of `split`'s `step` (`read_evaluation`).

    An `output` named by the user passes `files.check_output` (an existing file is replaced only with
    `force`, a run's or dataset's own never); the default one is the report's own, replaced each time.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    named = output is not None
    output = Path(output) if output is not None else run_dir / REPORT_PNG
    check_output(output, force=force or not named, example=REPORT_PNG)
    curves = read_run(run_dir, split, step)
    if curves.empty():
        raise Inception3Error(
            f"{run_dir}: no training summaries (TensorBoard event files) and no "
            f"{layout.EVAL}/*.jsonl to plot; run inception3 train or eval on it first"
        )
    panels = [
        (title, series, ylabel)
        for title, series, ylabel in (
            ("training loss", curves.losses, "loss"),
            ("learning rate", curves.learning_rates, "learning rate"),
            ("evaluation precision", curves.precisions, "precision"),
        )
        if series
    ]
    evaluation = curves.evaluation
    side = _side_heights(evaluation)
    size = (CURVES_WIDTH + SIDE_WIDTH * bool(side), max(CURVE_HEIGHT * len(panels), sum(side)))
    figure = plt.figure(figsize=size, layout="constrained")
    left, right = figure.subfigures(1, 2, width_ratios=[CURVES_WIDTH, SIDE_WIDTH]) if side else (figure, None)
    if panels:
        axes = left.subplots(len(panels), 1, sharex=True, squeeze=False)
        for axis, (title, series, ylabel) in zip(axes[:, 0], panels, strict=True):
            for name, (steps, values) in series.items():
                axis.plot(steps, values, label=name, marker="o" if len(steps) < 30 else None)
            axis.set_title(title)
            axis.set_ylabel(ylabel)
            axis.grid(alpha=0.3)
            axis.legend(fontsize="small")
            if series is curves.precisions:
                axis.set_ylim(0.0, 1.0 if max(max(v) for _, v in series.values()) <= 1.0 else 100.0)
        axes[-1, 0].set_xlabel("step")
    if evaluation is not None and right is not None:
        _draw_evaluation(right, evaluation, side)
    figure.suptitle(f"inception3 report: {run_dir}")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(output) as f:
            figure.savefig(f, format="png", dpi=DPI)
    finally:
        plt.close(figure)
    return output


def _side_heights(evaluation: Evaluation | None) -> list[float]:
    """The heights (inches) of the panels beside the curves: confusion matrix, reliability diagram."""
    if evaluation is None:
        return []
    return [CONFUSION_HEIGHT] * (evaluation.confusion is not None) + [RELIABILITY_HEIGHT] * (
        evaluation.reliability is not None
    )


def most_confused(confusion: np.ndarray, count: int) -> list[int]:
    """The `count` classes most involved in mistakes (examples of the class predicted as another,
    plus examples of others predicted as it), in class order; all of them when there are no more."""
    mistakes = confusion.sum(axis=0) + confusion.sum(axis=1) - 2 * np.diag(confusion)
    chosen = np.argsort(-mistakes, kind="stable")[:count]
    return sorted(chosen.tolist())


def _draw_evaluation(figure: SubFigure, evaluation: Evaluation, heights: list[float]) -> None:
    axes = figure.subplots(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
    weights = "" if evaluation.ema else ", raw weights"
    where = f"{evaluation.split} step {evaluation.step}{weights}"
    if evaluation.confusion is not None:
        _draw_confusion(axes[0], evaluation.confusion, evaluation.class_names, where)
    if evaluation.reliability is not None:
        _draw_reliability(axes[-1], evaluation.reliability, where)


def _draw_confusion(axis: Axes, confusion: np.ndarray, names: list[str], where: str) -> None:
    """Rows: true class, columns: predicted; colour: the share of the true class's examples."""
    shown = most_confused(confusion, CONFUSION_CLASSES_SHOWN)
    cells = confusion[np.ix_(shown, shown)]
    examples = confusion[shown].sum(axis=1, keepdims=True)
    image = axis.imshow(cells / np.maximum(examples, 1), cmap="Blues", vmin=0.0, vmax=1.0)
    labels = [_short(names[i]) for i in shown]
    axis.set_xticks(range(len(shown)), labels, rotation=90, fontsize="small")
    axis.set_yticks(range(len(shown)), labels, fontsize="small")
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    if len(shown) <= CONFUSION_COUNTS_SHOWN:
        for (row, column), n in np.ndenumerate(cells):
            share = n / max(int(examples[row, 0]), 1)
            axis.text(
                column, row, str(n), ha="center", va="center", color="white" if share > 0.5 else "black"
            )
    which = "" if len(shown) == len(names) else f"\nthe {len(shown)} most confused of {len(names)} classes"
    axis.set_title(f"confusion matrix, {where}{which}")
    axis.figure.colorbar(image, ax=axis, label="share of the true class", shrink=0.8)


def _draw_reliability(axis: Axes, reliability: Reliability, where: str) -> None:
    """Guo et al.'s diagram: accuracy per confidence bin against the diagonal, the gap to each bin's
    mean confidence shaded."""
    bins = len(reliability.count)
    lefts = np.arange(bins) / bins
    filled = [i for i, n in enumerate(reliability.count) if n > 0]
    accuracy = np.array([reliability.accuracy[i] for i in filled], dtype=float)
    confidence = np.array([reliability.confidence[i] for i in filled], dtype=float)
    axis.bar(lefts[filled], accuracy, width=1 / bins, align="edge", edgecolor="black", label="accuracy")
    axis.bar(
        lefts[filled],
        confidence - accuracy,
        bottom=accuracy,
        width=1 / bins,
        align="edge",
        color="tab:red",
        alpha=0.3,
        hatch="//",
        label="gap to the mean confidence",
    )
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence (top-1 softmax probability)")
    axis.set_ylabel("top-1 accuracy")
    axis.set_title(f"reliability, {where}: ECE = {reliability.ece:.4f} ({bins} bins)")
    axis.legend(fontsize="small", loc="upper left")


def _short(name: str) -> str:
    return name if len(name) <= CLASS_NAME_CHARS else name[: CLASS_NAME_CHARS - 1] + "…"
