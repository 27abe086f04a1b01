"""`inception3 train`: the original recipe's loop, on one process or many, resumable exactly.

The plan (`plan.prepare`: config, data and resume checked), then build (model, averages,
optimizer, data order, restored from the checkpoint), then the loop: batch → device → step →
moving averages → log, summaries, checkpoints; then finish (the last checkpoint). Rank 0 writes
everything; every rank runs the same steps on its share of the global batch.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import torch

from inception3.config import TrainConfig
from inception3.data import Batch, TrainLoader, synthetic_batches
from inception3.data.balance import class_weights
from inception3.data.dataset import record_labels
from inception3.data.loader import decode_place
from inception3.errors import Inception3Error
from inception3.model import InceptionV3
from inception3.run import distributed as dist
from inception3.run.checkpoint import latest_checkpoint, remove_partial_files
from inception3.run.lock import RunLock, check_held
from inception3.train import resume
from inception3.train.ema import ExponentialMovingAverage
from inception3.train.finetune import freeze_batch_norm_statistics, init_from, restrict_training
from inception3.train.optim import build_optimizer, learning_rate, param_groups, set_learning_rate
from inception3.train.parallel import convert_sync_batch_norm, wrap_model
from inception3.train.plan import RunPlan, prepare
from inception3.train.precision import loss_scaler
from inception3.train.step import StepResult, train_step
from inception3.train.stopping import StopRequest
from inception3.train.summaries import Summaries

if TYPE_CHECKING:
    from tqdm import tqdm


@dataclass
class TrainResult:
    """Where a run ended: its last step and final checkpoint, and the loss of the last step."""

    step: int
    checkpoint: Path | None
    loss: float
    skipped_records: int = 0  # corrupt records left out over the whole run, all ranks (skip_corrupt)
    stopped_early: bool = False  # a SIGTERM or Ctrl-C ended it before max_steps (resumable)


@dataclass
class StepTotals:
    """The run over all ranks at a check step, from one all-reduce, so that every rank acts alike.

    The only host reads of the loop: at log steps, before a checkpoint and at the end. Between
    them the step runs ahead of the device, and a non-finite loss is remembered on the device.
    """

    loss: float
    cross_entropy: float
    aux: float
    skipped_records: int  # so far, whole run: each rank's own plus the split's lost ones counted once
    skipped_steps: int  # so far, whole run: steps fp16's loss scaling skipped (the same on every rank)
    stop: bool  # some rank was asked to stop (SIGTERM, Ctrl-C)
    diverged: bool  # some rank's loss was not finite at some step since the run (re)started
    weights_diverged: bool  # some rank's weights are not finite now (the last update made them so)
    checkpoint_due: bool  # rank 0's checkpoint_secs have passed

    @property
    def losses(self) -> dict[str, float]:
        return {"total": self.loss, "cross_entropy": self.cross_entropy, "aux": self.aux}

    @classmethod
    def reduce(
        cls,
        result: StepResult,
        non_finite: torch.Tensor,
        weights_non_finite: torch.Tensor,
        loader: TrainLoader,
        stop: StopRequest,
        checkpoint_due: bool,
        ctx: dist.Distributed,
        skipped_steps: torch.Tensor | None = None,
    ) -> StepTotals:
        # One vector, one all-reduce, one read: the device's values, then the host's as floats.
        on_device = {
            "loss": result.total,
            "cross_entropy": result.cross_entropy,
            "aux": result.aux,
            "diverged": non_finite.float(),
            "weights_diverged": weights_non_finite.float(),
        }
        if skipped_steps is not None:
            on_device["skipped_steps"] = skipped_steps.float()
        on_host = {
            "own_skipped": loader.skipped_records - loader.records.lost_records,
            "stop": stop.requested is not None,
            "checkpoint_due": checkpoint_due and ctx.is_main,
        }
        local = torch.cat(
            [
                torch.stack(list(on_device.values())),
                result.total.new_tensor([float(value) for value in on_host.values()]),
            ]
        )
        mean = dict(zip([*on_device, *on_host], dist.mean_over_ranks(local, ctx).tolist(), strict=True))
        return cls(
            loss=mean["loss"],
            cross_entropy=mean["cross_entropy"],
            aux=mean["aux"],
            skipped_records=round(mean["own_skipped"] * ctx.world_size) + loader.records.lost_records,
            skipped_steps=round(mean.get("skipped_steps", 0.0)),
            stop=mean["stop"] > 0,
            diverged=mean["diverged"] > 0,
            weights_diverged=mean["weights_diverged"] > 0,
            checkpoint_due=mean["checkpoint_due"] > 0,
        )


def train(
    cfg: TrainConfig,
    data_dir: str | os.PathLike[str],
    train_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    out: TextIO | None = None,
) -> TrainResult:
    """Train (or resume training of) the run in `train_dir` on the shards in `data_dir` up to max_steps.

    `inception3.train(...)` and `inception3 train` call this. Under torchrun every rank calls it (the
    process group is joined and left here); alone, it is one process on `cfg.device`. Rank 0 writes
    the config, summaries and checkpoints, and its log lines to `out` (default: stdout). `force`:
    resume even though the config or data changed in a way that breaks exactness. Returns the final
    step and checkpoint. Raises Inception3Error on bad input or a diverged loss.
    """
    out = out or sys.stdout
    ctx = dist.init_distributed(cfg.device)
    say = (lambda text: print(text, file=out, flush=True)) if ctx.is_main else (lambda text: None)
    try:
        # Released however training ends, last first: signal handlers, progress bar, summaries, lock.
        with contextlib.ExitStack() as held:
            # The plan: config, data and resume checked; then the run directory, held by rank 0.
            plan = prepare(cfg, Path(data_dir), Path(train_dir), ctx, force, say)
            if ctx.is_main:
                _open_run_dir(plan, say, held)

            # Model, moving averages, optimizer and data order: fresh, from --init-from, or as checkpointed.
            state = _build(plan, ctx, say)
            weights = _class_balance(plan, state.loader, ctx.device, say)
            if plan.resumed is not None:
                resume.restore(state, plan.resumed, force=plan.force)
                say(f"resuming from {plan.resumed.path} at step {plan.start_step}")

            # Where the run reports: the log, TensorBoard, the progress bar; and stop requests.
            bar = _progress(ctx.is_main, plan.start_step, plan.cfg.max_steps)
            summaries = Summaries(
                plan.train_dir, ctx.is_main, plan.cfg.batch_size, out, bar.write if bar is not None else None
            )
            held.callback(summaries.close)
            if bar is not None:
                held.callback(bar.close)
            stop = StopRequest(say, every=min(plan.cfg.log_every, plan.cfg.checkpoint_every))
            stop.install()
            held.callback(stop.restore)

            run = _Run(plan, ctx, state, summaries, say, weights)
            step, totals = _loop(run, stop, bar)
            return _finish(run, step, totals)
    finally:
        dist.shutdown(ctx)


def _open_run_dir(plan: RunPlan, say: Callable[[str], None], held: contextlib.ExitStack) -> None:
    """Rank 0: the run directory and its lock (held until `held` closes), its config.toml, and no
    leftovers of a killed checkpoint write."""
    train_dir = plan.train_dir
    train_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(train_dir)
    taken_over = lock.acquire()
    held.callback(lock.release)
    if taken_over:
        say(taken_over)
    resume.write_config(train_dir, plan.cfg, plan.start_step, plan.data_dir)
    partial = remove_partial_files(train_dir)
    if partial:
        say(
            f"removed {len(partial)} partial file(s) of an interrupted checkpoint write: "
            f"{', '.join(p.name for p in partial)}"
        )


def _build(plan: RunPlan, ctx: dist.Distributed, say: Callable[[str], None]) -> resume.Resumable:
    """The run's live objects, on the device: initialised by the recipe (or --init-from when fresh)."""
    cfg, model_cfg, info, per_rank = plan.cfg, plan.model, plan.data, plan.per_rank
    torch.manual_seed(cfg.seed)
    model = InceptionV3.from_config(model_cfg)
    if plan.resumed is None and cfg.init_from:
        left = init_from(model, Path(cfg.init_from), fine_tune=cfg.fine_tune)
        say(f"initialised from {cfg.init_from}" + (f"; new: {', '.join(left)}" if left else ""))
    restrict_training(model, cfg.trainable)
    if cfg.sync_batch_norm and ctx.enabled:
        convert_sync_batch_norm(model)
    model.to(ctx.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    ema = ExponentialMovingAverage(model, cfg.ema_decay)
    optimizer = build_optimizer(param_groups(model, cfg), cfg)
    loader = TrainLoader(
        info,
        per_rank,
        model_cfg.image_size,
        rank=ctx.rank,
        world_size=ctx.world_size,
        seed=cfg.seed,
        num_workers=cfg.num_workers,
        skip_corrupt=cfg.skip_corrupt,
        augment=cfg.augment,
        balance_classes=cfg.class_balance == "sampler",
        decode=decode_place(cfg.decode, ctx.device),
    )
    return resume.Resumable(model, ema, optimizer, loader, loss_scaler(cfg.precision, ctx.device))


def _class_balance(
    plan: RunPlan, loader: TrainLoader, device: torch.device, say: Callable[[str], None]
) -> torch.Tensor | None:
    """The classes' training records, said once when `class_balance` is on; the loss's class weights
    (data/balance.py) on the device for class_balance=loss, else None."""
    balance = plan.cfg.class_balance
    if balance == "none":
        return None
    recorded = plan.data.class_counts.get("train")
    if recorded is not None:
        counts = np.array(recorded, dtype=np.int64)
    else:  # an older build, TensorFlow's shards: the labels are in the records (the sampler read them)
        labels = loader.labels
        if labels is None:
            labels = record_labels(loader.records, skip_corrupt=True)
        counts = np.bincount(labels[labels >= 0], minlength=plan.data.num_classes)
    counts = np.pad(counts, (0, plan.model.num_classes - len(counts)))  # logits beyond the dataset's
    empty = int((counts == 0).sum())
    say(
        f"class_balance {balance}: {len(counts) - empty} classes of {counts[counts > 0].min()} to "
        f"{counts.max()} training records"
        + (f"; {empty} class(es) without training records left out" if empty else "")
    )
    return torch.from_numpy(class_weights(counts)).to(device) if balance == "loss" else None


@dataclass(frozen=True)
class _Run:
    """One rank's side of a run while it trains: the plan, the live objects and where it reports."""

    plan: RunPlan
    ctx: dist.Distributed
    state: resume.Resumable  # what a checkpoint holds: model, moving averages, optimizer, data position
    summaries: Summaries
    say: Callable[[str], None]
    class_weights: torch.Tensor | None = None  # the loss's, for class_balance=loss

    def save(self, step: int, *, final: bool = False, mark: bool = False) -> Path:
        """Rank 0: the checkpoint of `step`, written from the live objects as they are now."""
        cfg = self.plan.cfg
        saved = resume.checkpoint(self.state, cfg, self.plan.data.class_names, step, final=final)
        check_held(self.plan.train_dir)  # a trainer that lost its lock writes nothing more
        return saved.save(self.plan.train_dir, keep=cfg.keep_checkpoints, mark=mark)


def _loop(run: _Run, stop: StopRequest, bar: tqdm | None) -> tuple[int, StepTotals | None]:
    """Train from the plan's first step to max_steps (or a stop request); the step reached and the
    totals of the last check step (None when no step ran)."""
    plan, ctx, summaries = run.plan, run.ctx, run.summaries
    cfg, state = plan.cfg, run.state
    model, ema, optimizer, loader = state.model, state.ema, state.optimizer, state.loader
    scaler = state.scaler  # fp16's loss scaling, else None
    model.train()
    freeze_batch_norm_statistics(model)
    net = wrap_model(model, ctx)
    # A compiled graph does not see forward hooks added later: summary steps, which hook the end
    # points, run the same module eagerly.
    compiled = torch.compile(net, backend=cfg.compile_backend) if cfg.compile else net
    batches = _batches(plan, loader, ctx)
    step, totals, last_save = plan.start_step, None, time.monotonic()
    non_finite = torch.zeros((), dtype=torch.bool, device=ctx.device)  # any loss since the start
    while step < cfg.max_steps:  # test before drawing: the saved data position counts used batches only
        # Forward, backward and update on this rank's share; DDP averages the gradients.
        batch = next(batches)
        lr = learning_rate(step, cfg, plan.data.split_sizes["train"])
        set_learning_rate(optimizer, lr)
        summary_step = step % cfg.summary_every == 0
        with summaries.record_end_points(model, summary_step):
            result = train_step(
                net if summary_step else compiled,
                optimizer,
                batch.images,
                batch.labels,
                step,
                ctx.rank,
                cfg,
                keep_inputs=summary_step,
                num_classes=plan.model.num_classes,
                class_weights=run.class_weights,
                scaler=scaler,
            )
        ema.update(model, step)
        # fp16: a step the loss scaling skipped is no divergence; a scale that fell below its floor is.
        non_finite |= ~torch.isfinite(result.total) if scaler is None else scaler.diverged(result.total)
        summaries.count_step()
        if summary_step:  # histograms and images every summary_every steps (they read the device)
            decayed = [
                p for group in optimizer.param_groups if group["weight_decay"] for p in group["params"]
            ]
            summaries.histograms(step, model, result.inputs, decayed, cfg.weight_decay)
        log_step = step % cfg.log_every == 0
        step += 1
        if bar is not None:
            bar.update(1)

        # Every log_every steps, before a checkpoint and at the end, one all-reduce brings the
        # losses, a non-finite loss, skipped records and stop requests of every rank to the host.
        checkpoint_step = step % cfg.checkpoint_every == 0 and step < cfg.max_steps
        if not (log_step or checkpoint_step or step == cfg.max_steps):
            continue
        by_time = cfg.checkpoint_secs > 0 and time.monotonic() - last_save >= cfg.checkpoint_secs
        steps_skipped = scaler.skipped if scaler is not None else None
        weights = _non_finite_weights(model)
        totals = StepTotals.reduce(result, non_finite, weights, loader, stop, by_time, ctx, steps_skipped)
        if totals.diverged:
            raise _diverged(step, plan.train_dir, cfg.log_every, "loss")
        if log_step:  # the original's log line
            skipped = totals.skipped_records if cfg.skip_corrupt else None
            steps = totals.skipped_steps if scaler is not None else None
            summaries.log(step - 1, totals.losses, lr, skipped_records=skipped, skipped_steps=steps)
        if totals.weights_diverged:  # the loss logged was finite; the update after it was not
            raise _diverged(step, plan.train_dir, cfg.log_every, "weights")
        if totals.stop:
            break
        if (checkpoint_step or totals.checkpoint_due) and step < cfg.max_steps and ctx.is_main:
            run.save(step, mark=cfg.keep_checkpoint_every > 0 and step % cfg.keep_checkpoint_every == 0)
            last_save = time.monotonic()
    return step, totals


def _batches(plan: RunPlan, loader: TrainLoader, ctx: dist.Distributed) -> Iterator[Batch]:
    """The rank's batches on its device: the loader's, copied one ahead, or one synthetic batch."""
    if plan.cfg.synthetic_data:
        model = plan.model
        return synthetic_batches(
            plan.per_rank, model.image_size, model.num_classes, ctx.device, plan.cfg.seed
        )
    return loader.device_batches(ctx.device)


def _non_finite_weights(model: torch.nn.Module) -> torch.Tensor:
    """Whether any weight or statistic is not finite, on the device, in one fused reduction.

    A finite loss does not make the update after it finite: this is read with the losses at every
    check step (the same all-reduce, no read of its own), so no checkpoint is written from weights
    the last update made infinite or NaN. The largest magnitude of each tensor is NaN or inf exactly
    when one of its values is.
    """
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    return ~torch.isfinite(torch.stack(torch._foreach_norm(tensors, math.inf))).all()


def _diverged(step: int, train_dir: Path, log_every: int, what: str = "loss") -> Inception3Error:
    good = latest_checkpoint(train_dir) or "none (none was written yet)"
    checked = "it is" if what == "loss" else "they are"
    return Inception3Error(
        f"the {what} stopped being finite by step {step} ({checked} checked every {log_every} steps and "
        f"before each checkpoint); training stopped. The last good checkpoint is {good}; try a lower "
        "learning_rate"
    )


def _finish(run: _Run, step: int, totals: StepTotals | None) -> TrainResult:
    """The last checkpoint (final when max_steps was reached), the skipped-record count, the result."""
    plan, ctx = run.plan, run.ctx
    cfg, resumed = plan.cfg, plan.resumed
    stopped_early = totals is not None and totals.stop and step < cfg.max_steps
    already_final = resumed is not None and resumed.checkpoint.final and resumed.step == step
    final = run.save(step, final=step >= cfg.max_steps) if ctx.is_main and not already_final else None
    skipped = totals.skipped_records if totals is not None else run.state.loader.skipped_records
    if cfg.skip_corrupt and totals is not None:
        run.summaries.skipped_records(step, skipped)
    dist.barrier(ctx)
    checkpoint = final or latest_checkpoint(plan.train_dir)
    if stopped_early:
        run.say(f"stopped at step {step} as asked; run the same command again to resume from {checkpoint}")
    loss = totals.loss if totals is not None else math.nan
    return TrainResult(step, checkpoint, loss, skipped, stopped_early)


def _progress(enabled: bool, start: int, total: int) -> tqdm | None:
    """Rank 0's progress bar, on a terminal only (a log file would fill with its redraws)."""
    if not (enabled and sys.stdout.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(initial=start, total=total, unit="step", dynamic_ncols=True)
