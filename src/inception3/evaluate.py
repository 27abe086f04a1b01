"""One checkpoint → metrics; `watch` follows a training directory as the original evaluator did.

Metrics are sums and counts, never averages of batch averages: every example of the split is
scored exactly once (the original padded its last batch and scored 50,016 of 50,000 images), and
with several ranks (`torchrun`) each rank takes every world_size-th record and the sums are
all-reduced, so the totals are exact for any batch size and rank count.

`watch` evaluates each complete checkpoint of a run once, oldest first. Checkpoints appear under
their final name only when complete (see `run/checkpoint.py`), so a partial file is never read;
one deleted by retention before its turn is skipped. Steps already in `RUN/eval/<split>.jsonl`
are not evaluated again, so a restarted evaluator picks up where it stopped. It returns after the
checkpoint training marked final. (The original evaluated only the newest checkpoint each round.)

Any weights file scores, with the evaluation preprocessing it names (`data/preprocess.py`). Where
its outputs, the data's classes and the class names disagree in count, `label_space` applies a rule
and says so in one line (TF's 1001 ImageNet outputs lose the background on 1000 classes) or refuses.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from inception3.config import DEFAULT_EVAL_PREPROCESSING, EVAL_INTERVAL_SECS, TOP_K, EvalConfig
from inception3.data import Batch, EvalLoader, load_dataset_info, scale_to_unit
from inception3.data.meta import DATASET_JSON, LABELS_FILE, DatasetInfo, read_labels
from inception3.data.preprocess import choose_preprocessing, preprocessing_note
from inception3.errors import Inception3Error
from inception3.files import what_is_at
from inception3.imagenet import imagenet_classes
from inception3.run import distributed as dist
from inception3.run import layout
from inception3.run.checkpoint import (
    IgnoredFileWarning,
    check_step,
    ignored_files,
    latest_checkpoint,
    list_checkpoints,
)
from inception3.weights import TF_BACKGROUND_CLASSES, load_model

MAX_INTERVAL_SECS = 86_400.0  # `--interval` above a day is a typo, and sleep() overflows far above it


@dataclass
class Tally:
    """Sums over scored examples; adding two tallies (or all-reducing them) gives exact totals."""

    num_classes: int
    correct_1: int = 0
    correct_k: int = 0
    loss_sum: float = 0.0
    examples: int = 0
    class_correct: torch.Tensor = field(default=None)  # type: ignore[assignment]
    class_count: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.class_correct is None:
            self.class_correct = torch.zeros(self.num_classes, dtype=torch.float64)
        if self.class_count is None:
            self.class_count = torch.zeros(self.num_classes, dtype=torch.float64)

    def add(self, logits: torch.Tensor, labels: torch.Tensor, top_k: int = TOP_K) -> None:
        """Score one batch of logits [B, C] against 0-based labels [B]."""
        logits, labels = logits.float(), labels.to(logits.device)
        k = min(top_k, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hit_1 = (top[:, 0] == labels).cpu()
        self.correct_1 += int(hit_1.sum())
        self.correct_k += int((top == labels[:, None]).any(dim=1).sum())
        self.loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        self.examples += int(labels.numel())
        labels = labels.cpu()
        self.class_count += torch.bincount(labels, minlength=self.num_classes).double()
        self.class_correct += torch.bincount(labels[hit_1], minlength=self.num_classes).double()

    def all_reduce(self, ctx: dist.Distributed) -> None:
        """Sum this tally over every rank (no-op when alone)."""
        if not ctx.enabled:
            return
        flat = torch.cat(
            [
                torch.tensor(
                    [self.correct_1, self.correct_k, self.loss_sum, self.examples], dtype=torch.float64
                ),
                self.class_correct,
                self.class_count,
            ]
        )
        flat = dist.sum_over_ranks(flat, ctx)
        self.correct_1, self.correct_k = int(flat[0]), int(flat[1])
        self.loss_sum, self.examples = float(flat[2]), int(flat[3])
        self.class_correct, self.class_count = flat[4 : 4 + self.num_classes], flat[4 + self.num_classes :]


@dataclass
class EvalResult:
    """The metrics of one checkpoint on one split; `record()` is its JSON line."""

    step: int
    checkpoint: str
    split: str
    top1: float
    top5: float
    loss: float
    examples: int
    ema: bool
    final: bool
    time: float  # when it finished, seconds since the epoch
    seconds: float  # wall time of the pass, loading the checkpoint excluded
    per_class: dict[str, float | None]  # accuracy per class name; None for a class with no example
    preprocessing: str = DEFAULT_EVAL_PREPROCESSING  # the evaluation preprocessing (data/preprocess.py)

    @property
    def images_per_sec(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """The original evaluator's line, then the loss and speed."""
        return (
            f"{datetime.now()}: precision @ 1 = {self.top1:.4f} recall @ 5 = {self.top5:.4f} "
            f"[{self.examples} examples]\n"
            f"step {self.step}: loss = {self.loss:.4f} "
            f"({'moving-average' if self.ema else 'raw'} weights, "
            f"{self.images_per_sec:.1f} examples/sec)"
        )

    def record(self) -> dict:
        return asdict(self) | {"images_per_sec": round(self.images_per_sec, 3)}


@torch.inference_mode()
def score(
    model: nn.Module,
    batches: Iterable[Batch],
    num_classes: int,
    device: torch.device,
    progress: Callable[[int], None] | None = None,
    *,
    channels_last: bool = False,
    first_column: int = 0,
) -> Tally:
    """Run `model` (eval mode) over batches of pixels and tally this rank's metrics (not reduced).

    `channels_last`: feed NHWC images (the model should be converted too); faster on CPU and GPU.
    `first_column`: the logits before it are not scored (1: TF's background class, `LabelSpace`).
    """
    tally = Tally(num_classes)
    nhwc = torch.channels_last if channels_last else torch.contiguous_format
    for batch in batches:
        images = scale_to_unit(batch.images.to(device, non_blocking=True)).contiguous(memory_format=nhwc)
        tally.add(model(images)[:, first_column:], batch.labels.to(device))
        if progress is not None:
            progress(len(batch.labels))
    return tally


def evaluate_checkpoint(
    checkpoint: Path, data_dir: Path, cfg: EvalConfig | None = None, ctx: dist.Distributed | None = None
) -> EvalResult:
    """Top-1/top-5 precision, mean loss and per-class accuracy of one checkpoint over a whole split.

    `checkpoint` is any weights file `weights.read_weights` reads. Under a process group (`ctx`)
    every rank calls this alike; each scores its share of the split, with its share of the global
    `cfg.batch_size`, and all get the same totals. Without `ctx`, one process on `cfg.device`.
    """
    cfg = cfg or EvalConfig()
    model, meta = load_model(Path(checkpoint), use_ema=cfg.use_ema, weights_format=cfg.weights_format)
    return evaluate_model(model, meta, Path(checkpoint), data_dir, cfg, ctx)


def evaluate_model(
    model: nn.Module,
    meta: dict,
    checkpoint: Path,
    data_dir: Path,
    cfg: EvalConfig | None = None,
    ctx: dist.Distributed | None = None,
    printer: Callable[[str], None] | None = None,
) -> EvalResult:
    """`evaluate_checkpoint` of a model already loaded (`weights.load_model`) from `checkpoint`.

    The preprocessing is `cfg.preprocessing`, else the weights' own. Class counts of weights and
    data that differ are resolved by `label_space`'s rules or refused. `printer` (the main rank's)
    gets one line for each of these that is not inception3's plain case.
    """
    cfg = cfg or EvalConfig()
    ctx = ctx or dist.single_process(cfg.device)
    say = printer if printer is not None and ctx.is_main else (lambda line: None)
    model.to(ctx.device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    outputs = model.config.num_classes
    info = _dataset_for(Path(data_dir), cfg.label_offset, outputs)
    space = label_space(
        outputs,
        weights_class_names(meta, cfg.labels_file),
        data_classes=info.num_classes,
        checkpoint=checkpoint,
        data_dir=Path(data_dir),
        labels_file=cfg.labels_file,
    )
    for note in space.notes:
        say(note)
    if ctx.is_main:
        _warn_if_names_differ(space.names, info, checkpoint, cfg.labels_file)
    split = cfg.split
    if split not in info.split_sizes:
        found = ", ".join(sorted(info.split_sizes))
        raise Inception3Error(f"{data_dir}: no '{split}' split (found: {found})")
    image_size = int(meta["image_size"])
    preprocessing = choose_preprocessing(cfg.preprocessing, meta)
    note = preprocessing_note(preprocessing, image_size, cfg.preprocessing is not None)
    if note is not None:
        say(note)
    per_rank = -(-cfg.batch_size // ctx.world_size)
    loader = EvalLoader(
        info,
        per_rank,
        image_size,
        split=split,
        rank=ctx.rank,
        world_size=ctx.world_size,
        num_workers=cfg.num_workers,
        preprocessing=preprocessing,
    )
    show = (sys.stderr.isatty() if cfg.progress is None else cfg.progress) and ctx.is_main
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=info.split_sizes[split], desc=f"eval step {meta['step']}", unit="img")
    start = time.perf_counter()
    tally = score(
        model,
        loader,
        info.num_classes,
        ctx.device,
        (lambda n: bar.update(n * ctx.world_size)) if bar is not None else None,
        channels_last=cfg.channels_last,
        first_column=space.first_column,
    )
    tally.all_reduce(ctx)
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    if tally.examples == 0:
        raise Inception3Error(f"{data_dir}: the '{split}' split has no examples to evaluate")
    names = space.names or info.class_names
    per_class = {
        str(name): (float(c / n) if n > 0 else None)
        for name, c, n in zip(names, tally.class_correct.tolist(), tally.class_count.tolist(), strict=True)
    }
    return EvalResult(
        step=int(meta["step"]),
        checkpoint=str(checkpoint),
        split=split,
        top1=tally.correct_1 / tally.examples,
        top5=tally.correct_k / tally.examples,
        loss=tally.loss_sum / tally.examples,
        examples=tally.examples,
        ema=bool(meta.get("ema", False)),
        final=bool(meta.get("final", False)),
        time=time.time(),
        seconds=seconds,
        per_class=per_class,
        preprocessing=preprocessing,
    )


# Label spaces: weights, data and class names must agree on what label i means.


@dataclass(frozen=True)
class LabelSpace:
    """Which of a model's outputs are scored, what they are called, and which rule said so."""

    first_column: int  # 1: output 0 of 1001, TensorFlow's background class, is left out; else 0
    names: tuple[str, ...] | None  # one per scored output; None: neither weights nor --labels-file name them
    notes: tuple[str, ...] = ()  # one line per rule applied


def _real_classes(outputs: int) -> int:
    """The classes a model's outputs stand for: TF's 1001 ImageNet outputs are 1000 classes and background."""
    return outputs - 1 if outputs == TF_BACKGROUND_CLASSES else outputs


def weights_class_names(meta: dict, labels_file: Path | None) -> tuple[str, ...] | None:
    """`--labels-file`'s names when given (data/meta.py reads it), else the weights' own, else None."""
    if labels_file is not None:
        return read_labels(Path(labels_file))
    names = meta.get("class_names")
    return tuple(str(n) for n in names) if names else None


def label_space(
    outputs: int,
    names: tuple[str, ...] | None,
    *,
    data_classes: int | None = None,
    checkpoint: Path | str = "the weights",
    data_dir: Path | str = "the data",
    labels_file: Path | None = None,
) -> LabelSpace:
    """Resolve how a model's `outputs` meet data of `data_classes` classes (None: no data, as in predict)
    and the class `names` (of the weights or `labels_file`), by rule or by refusal.

    Rules: equal counts need nothing. A model of 1001 outputs (TensorFlow's ImageNet: class 0 is the
    background) on 1000-class data, or named by 1000 names, has its background output dropped. Any
    other count that differs is an Inception3Error naming both counts and what to do.
    """
    first, notes = 0, []
    if data_classes is not None and data_classes != outputs:
        if outputs == TF_BACKGROUND_CLASSES and data_classes == outputs - 1:
            first = 1
            notes.append(
                f"{checkpoint} has {outputs} outputs, class 0 TensorFlow's background; {data_dir} has "
                f"{data_classes} classes: the background output is left out"
            )
        else:
            hint = (
                "; if its class 0 is TensorFlow's background, read it with --label-offset 1"
                if data_classes == outputs + 1
                else ""
            )
            raise Inception3Error(
                f"{data_dir} has {data_classes} classes but {checkpoint} outputs {outputs}; evaluate it on "
                f"data of its {outputs} classes (--data-dir), or fine-tune it on this data first: "
                f"inception3 train --init-from {checkpoint} --preset flowers --data-dir {data_dir}{hint}"
            )
    if names is not None and len(names) != outputs - first:
        if len(names) == outputs - 1 and outputs == TF_BACKGROUND_CLASSES and data_classes is None:
            first = 1
            notes.append(
                f"{len(names)} class names for {outputs} outputs: output 0, TensorFlow's background, "
                "is left out"
            )
        elif len(names) == outputs and first == 1:
            names = names[1:]
        else:
            source = labels_file if labels_file is not None else checkpoint
            what = "lists" if labels_file is not None else "names"
            raise Inception3Error(
                f"{source} {what} {len(names)} classes but the model outputs {outputs - first}; "
                f"give a labels file of {outputs - first} lines (one class name per line)"
            )
    return LabelSpace(first, names, tuple(notes))


def _dataset_for(data_dir: Path, label_offset: int | None, outputs: int) -> DatasetInfo:
    """The dataset, whose class count is its own; shards that list no classes (TF-built, without
    labels.txt) take the model's, background left out."""
    lists_classes = (data_dir / DATASET_JSON).exists() or (data_dir / LABELS_FILE).exists()
    return load_dataset_info(
        data_dir, label_offset=label_offset, num_classes=None if lists_classes else _real_classes(outputs)
    )


def _same_classes(ours: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """Equal names, or ImageNet's readable names against its synset ids (a dataset built from folders)."""
    if ours == theirs:
        return True
    classes = imagenet_classes()
    return len(ours) == len(classes) and {ours, theirs} == {
        tuple(n for _, n in classes),
        tuple(s for s, _ in classes),
    }


def _warn_if_names_differ(
    names: tuple[str, ...] | None, info: DatasetInfo, checkpoint: Path, labels_file: Path | None
) -> None:
    """One warning line when the weights' class names and the data's disagree (counts already agree)."""
    data = tuple(info.class_names)
    if names is None or data == tuple(str(i) for i in range(len(data))) or _same_classes(names, data):
        return
    source = labels_file if labels_file is not None else checkpoint
    if sorted(names) == sorted(data):
        detail = f"the same {len(data)} classes in another order"
    else:
        i = next(i for i, (a, b) in enumerate(zip(names, data, strict=True)) if a != b)
        detail = f"label {i} is {names[i]!r} there, {data[i]!r} here"
    warnings.warn(
        f"the class names of {source} and {info.data_dir} differ ({detail}); labels are scored by "
        "index, so check that the data's label order is the weights' (--labels-file renames outputs)",
        stacklevel=3,
    )


def evaluated_steps(run_dir: Path, split: str, ema: bool) -> dict[int, dict]:
    """Records already in RUN/eval/<split>.jsonl for these weights (EMA or raw), by step."""
    return {r["step"]: r for r in layout.read_results(run_dir, split) if bool(r.get("ema", True)) == ema}


def write_result(run_dir: Path, result: EvalResult) -> None:
    """Append the JSON line and the TensorBoard scalars of `result` under RUN/eval/."""
    layout.append_result(run_dir, result.split, result.record())
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(layout.eval_dir(run_dir))) as writer:
        prefix = f"eval/{result.split}"
        writer.add_scalar(f"{prefix}/precision_at_1", result.top1, result.step)
        writer.add_scalar(f"{prefix}/recall_at_5", result.top5, result.step)
        writer.add_scalar(f"{prefix}/loss", result.loss, result.step)


def _report(
    result: EvalResult, run_dir: Path | None, printer: Callable[[str], None], ctx: dist.Distributed
) -> None:
    if ctx.is_main:
        printer(result.summary())
        if run_dir is not None:
            write_result(run_dir, result)


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
) -> list[EvalResult]:
    """`inception3 eval`: evaluate a run's checkpoints as they appear (module docstring).

    `checkpoint`: evaluate that file only (written under RUN/eval/ when `run_dir` is given).
    `once`: evaluate the newest checkpoint of the run and return. Otherwise every checkpoint not
    yet in the JSON lines, oldest first, polling every `interval` seconds, until the final one
    (or forever with `keep_waiting`). A step already recorded for these weights is reported,
    not evaluated again. Returns the results of this call.
    """
    cfg = cfg or EvalConfig()
    if not (math.isfinite(interval) and 0 < interval <= MAX_INTERVAL_SECS):
        raise Inception3Error(
            f"--interval {interval}: must be a number of seconds above 0 and at most "
            f"{MAX_INTERVAL_SECS} (a day)"
        )
    if run_dir is not None:
        run_dir = Path(run_dir)
        if (run_dir.exists() or run_dir.is_symlink()) and not run_dir.is_dir():
            raise Inception3Error(
                f"{run_dir}: is {what_is_at(run_dir)}, not a training directory; pass the --train-dir "
                "of inception3 train"
            )
        layout.results_path(run_dir, cfg.split)  # a split that is not a plain name is refused now
    ctx = dist.init_distributed(cfg.device)  # under torchrun; a single process otherwise
    try:
        if checkpoint is not None or once:
            return _evaluate_one(run_dir, data_dir, cfg, checkpoint, printer, ctx)
        evaluate = lambda path: _evaluate_run_checkpoint(Path(path), data_dir, cfg, ctx, printer)  # noqa: E731
        return _follow(run_dir, cfg, interval, keep_waiting, printer, evaluate, ctx)
    finally:
        dist.shutdown(ctx)  # a rank that exits with the group still up can abort in the backend's threads


def _evaluate_run_checkpoint(
    path: Path, data_dir: Path, cfg: EvalConfig, ctx: dist.Distributed, printer: Callable[[str], None]
) -> EvalResult:
    """Evaluate one of a run's own checkpoints, whose content must be of the step its name says."""
    model, meta = _load_run_checkpoint(path, cfg)
    return evaluate_model(model, meta, path, data_dir, cfg, ctx, printer)


def _load_run_checkpoint(path: Path, cfg: EvalConfig) -> tuple[nn.Module, dict]:
    model, meta = load_model(path, use_ema=cfg.use_ema, weights_format=cfg.weights_format)
    try:
        check_step(path, meta)
    except Inception3Error as error:
        raise Inception3Error(f"{error}; move it out of {path.parent} and run again") from None
    return model, meta


def _evaluate_one(
    run_dir: Path | None,
    data_dir: Path,
    cfg: EvalConfig,
    checkpoint: Path | None,
    printer: Callable[[str], None],
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
            return []
    result = evaluate_model(model, meta, path, data_dir, cfg, ctx, printer)
    _report(result, run_dir, printer, ctx)
    return [result]


def _recorded(run_dir: Path, split: str, meta: dict, path: Path, *, same_file: bool) -> dict | None:
    """The record in RUN/eval/<split>.jsonl of the step and weights (averaged or raw) `meta` describes
    (for a file given by --checkpoint, of that very file), or None."""
    record = evaluated_steps(run_dir, split, bool(meta.get("ema", False))).get(int(meta["step"]))
    if record is None or not same_file:
        return record
    return record if Path(str(record.get("checkpoint", ""))).resolve() == path.resolve() else None


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
            _report(result, run_dir, printer, ctx)
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
