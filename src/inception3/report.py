"""`inception3 report RUN`: one PNG of a run's training loss, learning rate and evaluation precision.

For people who would rather look than read: the training curves come from the TensorBoard event
files the trainer writes in the run directory, the precision from the evaluator's
`RUN/eval/<split>.jsonl`. Whatever is there is plotted; a panel with nothing to show is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from inception3.errors import Inception3Error
from inception3.files import atomic_write, check_output, require_directory
from inception3.run import layout

REPORT_PNG = "report.png"

Series = dict[str, tuple[list[int], list[float]]]  # name -> (steps, values)


@dataclass
class RunCurves:
    """The scalars of one run, by panel: training losses, learning rates, evaluation precisions."""

    losses: Series = field(default_factory=dict)
    learning_rates: Series = field(default_factory=dict)
    precisions: Series = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.losses or self.learning_rates or self.precisions)


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


def read_run(run_dir: Path) -> RunCurves:
    """Every curve the report can draw from `run_dir`; Inception3Error when it is not a directory."""
    require_directory(Path(run_dir), "run directory", "pass the --train-dir of inception3 train")
    losses, rates = read_training_scalars(run_dir)
    return RunCurves(losses, rates, read_eval_precision(run_dir))


def write_report(run_dir: Path, output: Path | None = None, *, force: bool = False) -> Path:
    """Plot `run_dir`'s curves into a PNG (default `RUN/report.png`) and return its path.

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
    curves = read_run(run_dir)
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
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 3 * len(panels)), sharex=True, squeeze=False)
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
    figure.suptitle(f"inception3 report: {run_dir}")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(output) as f:
            figure.savefig(f, format="png", dpi=100)
    finally:
        plt.close(figure)
    return output
