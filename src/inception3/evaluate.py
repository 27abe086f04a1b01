"""One checkpoint → metrics over a whole split: top-1/top-5 precision, loss, per-class accuracy,
precision, recall and F1, the confusion matrix and the expected calibration error (`metrics.py`).

Metrics are sums and counts, never averages of batch averages: every example of the split is
scored exactly once (the original padded its last batch and scored 50,016 of 50,000 images), and
with several ranks (`torchrun`) each rank takes every world_size-th record and the sums are
all-reduced, so the totals are exact for any batch size and rank count. `watch.py` follows a
training directory and calls this for each checkpoint.

Any weights file scores, with the evaluation preprocessing it names (`data/preprocess.py`). Where
its outputs, the data's classes and the class names disagree in count, `data.labels.label_space`
applies a rule and says so in one line (TF's 1001 ImageNet outputs lose the background on 1000
classes) or refuses.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from inception3 import metrics
from inception3.callable_module import make_callable
from inception3.config import (
    CALIBRATION_BINS,
    DEFAULT_EVAL_PREPROCESSING,
    MAX_CONFUSION_CLASSES,
    TOP_K,
    EvalConfig,
)
from inception3.data import Batch, EvalLoader, scale_to_unit
from inception3.data.labels import dataset_for, label_space, output_names, warn_if_names_differ
from inception3.data.preprocess import choose_preprocessing, preprocessing_note
from inception3.errors import Inception3Error
from inception3.run import distributed as dist
from inception3.weights import WeightsMeta, load_model


@dataclass(eq=False)  # tensors: no element-wise ==
class Tally:
    """Sums over scored examples, kept on the device that scores them (no sync per batch); summing
    two ranks' tallies (`all_reduce`) gives exact totals. Rows of `confusion` are the true class,
    columns the top-1 prediction; `reliability` holds per confidence bin (`metrics.calibration_bin`)
    the examples, their summed top-1 softmax probability and their top-1 hits."""

    num_classes: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    bins: int = CALIBRATION_BINS
    top_k_and_loss: torch.Tensor = field(init=False)  # [2]: top-k hits, summed cross entropy
    class_correct: torch.Tensor = field(init=False)  # [C]: top-1 hits by true class
    class_count: torch.Tensor = field(init=False)  # [C]: examples by true class
    class_predicted: torch.Tensor = field(init=False)  # [C]: top-1 predictions by class
    reliability: torch.Tensor = field(init=False)  # [3, bins]: examples, confidence sum, top-1 hits
    confusion: torch.Tensor | None = field(init=False)  # [C, C]; None above MAX_CONFUSION_CLASSES

    def __post_init__(self) -> None:
        def zeros(*shape: int) -> torch.Tensor:
            return torch.zeros(shape, dtype=torch.float64, device=self.device)  # exact counts to 2^53

        c = self.num_classes
        self.top_k_and_loss = zeros(2)
        self.class_correct, self.class_count, self.class_predicted = zeros(c), zeros(c), zeros(c)
        self.reliability = zeros(3, self.bins)
        self.confusion = zeros(c, c) if c <= MAX_CONFUSION_CLASSES else None

    @property
    def examples(self) -> int:
        return int(self.class_count.sum())

    @property
    def correct_1(self) -> int:
        return int(self.class_correct.sum())

    @property
    def correct_k(self) -> int:
        return int(self.top_k_and_loss[0])

    @property
    def loss_sum(self) -> float:
        return float(self.top_k_and_loss[1])

    def add(self, logits: torch.Tensor, labels: torch.Tensor, top_k: int = TOP_K) -> None:
        """Score one batch of logits [B, C] against 0-based labels [B]."""
        logits, labels = logits.float().to(self.device), labels.to(self.device)
        k = min(top_k, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        predicted = top[:, 0]
        hit = (predicted == labels).double()
        one = torch.ones_like(hit)
        hits_k = (top == labels[:, None]).any(dim=1).sum()
        loss = F.cross_entropy(logits, labels, reduction="sum")
        self.top_k_and_loss += torch.stack([hits_k.double(), loss.double()])
        self.class_count.index_add_(0, labels, one)
        self.class_predicted.index_add_(0, predicted, one)
        self.class_correct.index_add_(0, labels, hit)
        confidence = logits.softmax(dim=1).amax(dim=1).double()
        bin_of = metrics.calibration_bin(confidence, self.bins)
        self.reliability.index_add_(1, bin_of, torch.stack([one, confidence, hit]))
        if self.confusion is not None:
            self.confusion.view(-1).index_add_(0, labels * self.num_classes + predicted, one)

    def all_reduce(self, ctx: dist.Distributed) -> None:
        """Sum this tally over every rank (no-op when alone): every sum by name, in one all-reduce."""
        if not ctx.enabled:
            return
        names = [name for name in _SUMMED if getattr(self, name) is not None]
        parts = [getattr(self, name) for name in names]
        totals = dist.sum_over_ranks(torch.cat([part.flatten() for part in parts]), ctx)
        for name, part, total in zip(names, parts, totals.split([p.numel() for p in parts]), strict=True):
            setattr(self, name, total.view(part.shape))


_SUMMED = ("top_k_and_loss", "class_correct", "class_count", "class_predicted", "reliability", "confusion")


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
    # What explains top-1 (metrics.py; JSON form in docs/formats.md). Lists are in class order.
    class_names: list[str] = field(default_factory=list)
    precision: list[float | None] = field(default_factory=list)  # None: a class never predicted
    recall: list[float | None] = field(default_factory=list)  # None: a class with no example
    f1: list[float | None] = field(default_factory=list)  # None: neither
    macro_precision: float | None = None  # means over the classes where each is defined
    macro_recall: float | None = None
    macro_f1: float | None = None
    confusion: list[metrics.Cell] | None = None  # nonzero [true, predicted, count]; None: too many classes
    ece: float | None = None  # expected calibration error over CALIBRATION_BINS confidence bins
    reliability: dict[str, list] | None = None  # per bin: count, mean confidence, accuracy

    @property
    def images_per_sec(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """The original evaluator's line, then the loss, macro F1, calibration error and speed."""
        return (
            f"{datetime.now()}: precision @ 1 = {self.top1:.4f} recall @ 5 = {self.top5:.4f} "
            f"[{self.examples} examples]\n"
            f"step {self.step}: loss = {self.loss:.4f}{self._explained()} "
            f"({'moving-average' if self.ema else 'raw'} weights, "
            f"{self.images_per_sec:.1f} examples/sec)"
        )

    def _explained(self) -> str:
        parts = [f"macro F1 = {self.macro_f1:.4f}" if self.macro_f1 is not None else ""]
        parts.append(f"ECE = {self.ece:.4f}" if self.ece is not None else "")
        return "".join(f", {part}" for part in parts if part)

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
    tally = Tally(num_classes, device)
    nhwc = torch.channels_last if channels_last else torch.contiguous_format
    for batch in batches:
        images = scale_to_unit(batch.images.to(device, non_blocking=True)).contiguous(memory_format=nhwc)
        tally.add(model(images)[:, first_column:], batch.labels.to(device))
        if progress is not None:
            progress(len(batch.labels))
    return tally


def evaluate(
    weights: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    config: EvalConfig | None = None,
    *,
    notes: Callable[[str], None] | None = None,
    **options: object,
) -> EvalResult:
    """Top-1/top-5 precision, mean loss and per-class accuracy of one weights file over a whole split.

    `weights`: any file `inception3 eval --checkpoint` takes (its moving averages unless
    `use_ema=False`); `data_dir`: shards from `build_shards` (or TensorFlow's). `config` and
    `options`, EvalConfig's fields as keywords (`split="train"`, `batch_size=64`, `device="cpu"`),
    say how; the keywords replace the config's fields. `notes` gets a line for each choice that is
    not inception3's plain case (another project's preprocessing, a background class left out).
    Alone this runs in one process; every rank of a `torchrun` job calls it alike and gets the
    same totals. Nothing is written: `inception3 eval --train-dir` records results in the run.
    """
    cfg = dataclasses.replace(config or EvalConfig(), **options)  # type: ignore[arg-type]
    ctx = dist.init_distributed(cfg.device)
    try:
        model, meta = load_model(Path(weights), use_ema=cfg.use_ema, weights_format=cfg.weights_format)
        return evaluate_model(model, meta, Path(weights), Path(data_dir), cfg, ctx, notes)
    finally:
        dist.shutdown(ctx)


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
    meta: WeightsMeta,
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
    info = dataset_for(Path(data_dir), cfg.label_offset, outputs)
    space = label_space(
        outputs,
        output_names(meta.class_names, cfg.labels_file),
        data_classes=info.num_classes,
        checkpoint=checkpoint,
        data_dir=Path(data_dir),
        labels_file=cfg.labels_file,
    )
    for note in space.notes:
        say(note)
    if ctx.is_main:
        warn_if_names_differ(space.names, info, checkpoint, cfg.labels_file)
    split = cfg.split
    if split not in info.split_sizes:
        found = ", ".join(sorted(info.split_sizes))
        raise Inception3Error(f"{data_dir}: no '{split}' split (found: {found})")
    image_size = model.config.image_size
    preprocessing = choose_preprocessing(cfg.preprocessing, meta.eval_preprocessing)
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

        bar = tqdm(total=info.split_sizes[split], desc=f"eval step {meta.step}", unit="img")
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
    names = [str(name) for name in space.names or info.class_names]
    per_class = {
        name: (float(c / n) if n > 0 else None)
        for name, c, n in zip(names, tally.class_correct.tolist(), tally.class_count.tolist(), strict=True)
    }
    scores = metrics.class_scores(tally.class_correct, tally.class_count, tally.class_predicted)
    calibration = metrics.reliability(tally.reliability)
    return EvalResult(
        step=meta.step,
        checkpoint=str(checkpoint),
        split=split,
        top1=tally.correct_1 / tally.examples,
        top5=tally.correct_k / tally.examples,
        loss=tally.loss_sum / tally.examples,
        examples=tally.examples,
        ema=meta.ema,
        final=meta.final,
        time=time.time(),
        seconds=seconds,
        per_class=per_class,
        preprocessing=preprocessing,
        class_names=names,
        precision=scores.precision,
        recall=scores.recall,
        f1=scores.f1,
        macro_precision=scores.macro_precision,
        macro_recall=scores.macro_recall,
        macro_f1=scores.macro_f1,
        confusion=metrics.confusion_cells(tally.confusion) if tally.confusion is not None else None,
        ece=calibration.ece,
        reliability=asdict(calibration),
    )


make_callable(__name__)  # `inception3.evaluate(...)` is `evaluate` above
