"""`inception3 train`: the original recipe's loop, on one process or many, resumable exactly.

Set-up (data, model, optimizer, averages, resume), then the loop: batch → device → step →
moving averages → log, summaries, checkpoints. Rank 0 writes everything; every rank runs the
same steps on its share of the global batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch

from inception3.config import CPU_CHANNELS_LAST, MIN_BATCH_NORM_BATCH, ModelConfig, TrainConfig, shown
from inception3.data import Batch, DatasetInfo, TrainLoader, load_dataset_info, synthetic_batches
from inception3.errors import Inception3Error
from inception3.model import InceptionV3, parameter_groups
from inception3.run import distributed as dist
from inception3.run.checkpoint import is_final, latest_checkpoint, remove_partial_files, save_checkpoint
from inception3.run.lock import RunLock
from inception3.train import resume
from inception3.train.ema import ExponentialMovingAverage
from inception3.train.finetune import freeze_batch_norm_statistics, init_from, restrict_training
from inception3.train.optim import build_optimizer, learning_rate, set_learning_rate
from inception3.train.options import validate
from inception3.train.parallel import convert_sync_batch_norm, wrap_model
from inception3.train.step import StepResult, train_step
from inception3.train.stopping import StopRequest
from inception3.train.summaries import Summaries


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
    stop: bool  # some rank was asked to stop (SIGTERM, Ctrl-C)
    diverged: bool  # some rank's loss was not finite at some step since the run (re)started
    checkpoint_due: bool  # rank 0's checkpoint_secs have passed

    @property
    def losses(self) -> dict[str, float]:
        return {"total": self.loss, "cross_entropy": self.cross_entropy, "aux": self.aux}

    @classmethod
    def reduce(
        cls,
        result: StepResult,
        non_finite: torch.Tensor,
        loader: TrainLoader,
        stop: StopRequest,
        checkpoint_due: bool,
        ctx: dist.Distributed,
    ) -> StepTotals:
        own_skipped = loader.skipped_records - loader.records.lost_records
        flags = [own_skipped, stop.requested is not None, checkpoint_due and ctx.is_main]
        local = torch.cat(
            [
                torch.stack([result.total, result.cross_entropy, result.aux]),
                non_finite.float().view(1),
                result.total.new_tensor([float(flag) for flag in flags]),
            ]
        )
        mean = dist.mean_over_ranks(local, ctx).tolist()
        return cls(
            loss=mean[0],
            cross_entropy=mean[1],
            aux=mean[2],
            skipped_records=round(mean[4] * ctx.world_size) + loader.records.lost_records,
            stop=mean[5] > 0,
            diverged=mean[3] > 0,
            checkpoint_due=mean[6] > 0,
        )


def train(
    cfg: TrainConfig, data_dir: Path, train_dir: Path, *, force: bool = False, out: TextIO | None = None
) -> TrainResult:
    """Train (or resume training of) the run in `train_dir` on the shards in `data_dir` up to max_steps.

    Under torchrun every rank calls this; rank 0 writes the config, summaries and checkpoints.
    Returns the final step and checkpoint. Raises Inception3Error on bad input or a diverged loss.
    """
    out = out or sys.stdout
    validate(cfg)  # resolve_config did for the CLI; a config made in Python is checked here
    ctx = dist.init_distributed(cfg.device)
    try:
        with contextlib.ExitStack() as held:  # the run directory's lock, released however training ends
            return _train(cfg, Path(data_dir), Path(train_dir), ctx, force, out, held)
    finally:
        dist.shutdown(ctx)


def _train(
    cfg: TrainConfig,
    data_dir: Path,
    train_dir: Path,
    ctx: dist.Distributed,
    force: bool,
    out: TextIO,
    held: contextlib.ExitStack,
) -> TrainResult:
    say = (lambda text: print(text, file=out, flush=True)) if ctx.is_main else (lambda text: None)

    # Data, and the network it needs; a checkpoint of this run, if any, must continue it exactly.
    info = _dataset_info(data_dir, cfg)
    model_cfg = _model_config(cfg, info)
    if cfg.compile:
        _check_compile_backend(cfg.compile_backend)
    resumed = resume.latest_state(train_dir)
    cfg = _global_batch(cfg, ctx.world_size, resumed, say)
    cfg = _speed_settings(cfg, ctx.device, say)
    per_rank = _per_rank_batch(cfg, ctx.world_size, force)
    _check_batch_fits(cfg, info)
    say(_batch_line(cfg, per_rank, ctx.world_size))
    if resumed is not None:
        overridden = resume.check_resumable(resumed[1], cfg, model_cfg, info.class_names, force=force)
        if overridden:
            say(f"resuming despite: {'; '.join(overridden)} (--force)")
    elif cfg.fine_tune and not cfg.init_from:
        raise Inception3Error(
            "fine_tune is set (the flowers preset) but there is nothing to fine-tune: "
            "give --init-from CKPT, an inception3 checkpoint or InceptionV3 state dict"
        )
    step = int(resumed[1]["step"]) if resumed is not None else 0
    if ctx.is_main:
        _prepare_run_dir(train_dir, cfg, step, data_dir, say, held)

    # Model, moving averages, optimizer and data order: fresh, from --init-from, or as checkpointed.
    run = _build(cfg, model_cfg, info, per_rank, ctx, fresh=resumed is None, say=say)
    if resumed is not None:
        resume.restore(run, resumed[1], resumed[0], force=force)
        say(f"resuming from {resumed[0]} at step {step}")
    model, ema, optimizer, loader = run.model, run.ema, run.optimizer, run.loader
    model.train()
    freeze_batch_norm_statistics(model)
    net = wrap_model(model, ctx)
    # A compiled graph does not see forward hooks added later: summary steps, which hook the end
    # points, run the same module eagerly.
    compiled = torch.compile(net, backend=cfg.compile_backend) if cfg.compile else net

    bar = _progress(ctx.is_main, step, cfg.max_steps)
    summaries = Summaries(train_dir, ctx.is_main, cfg.batch_size, out, bar.write if bar is not None else None)
    stop = StopRequest(say)
    stop.install()
    totals, last_save = None, time.monotonic()

    def save(**kind: bool) -> Path:
        state = resume.training_state(run, cfg, info.class_names)
        return save_checkpoint(train_dir, step, state, keep=cfg.keep_checkpoints, **kind)

    try:
        batches = _batches(cfg, loader, per_rank, model_cfg, ctx)
        non_finite = torch.zeros((), dtype=torch.bool, device=ctx.device)  # any loss since the start
        while step < cfg.max_steps:  # test before drawing: the saved data position counts used batches only
            # Forward, backward and update on this rank's share; DDP averages the gradients.
            batch = next(batches)
            lr = learning_rate(step, cfg, info.split_sizes["train"])
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
                )
            ema.update(model, step)
            non_finite |= ~torch.isfinite(result.total)
            summaries.count_step()
            if summary_step:  # histograms and images every summary_every steps (they read the device)
                decayed = optimizer.param_groups[0]["params"]
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
            totals = StepTotals.reduce(result, non_finite, loader, stop, by_time, ctx)
            if totals.diverged:
                raise _diverged(step, train_dir, cfg.log_every)
            if log_step:  # the original's log line
                skipped = totals.skipped_records if cfg.skip_corrupt else None
                summaries.log(step - 1, totals.losses, lr, skipped_records=skipped)
            if totals.stop:
                break
            if (checkpoint_step or totals.checkpoint_due) and step < cfg.max_steps and ctx.is_main:
                save(mark=cfg.keep_checkpoint_every > 0 and step % cfg.keep_checkpoint_every == 0)
                last_save = time.monotonic()
        return _finish(run, cfg, train_dir, step, resumed, totals, summaries, ctx, save, say)
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
        summaries.close()


def _batches(
    cfg: TrainConfig, loader: TrainLoader, per_rank: int, model_cfg: ModelConfig, ctx: dist.Distributed
) -> Iterator[Batch]:
    """The rank's batches on its device: the loader's, copied one ahead, or one synthetic batch."""
    if cfg.synthetic_data:
        return synthetic_batches(per_rank, model_cfg.image_size, model_cfg.num_classes, ctx.device, cfg.seed)
    return loader.device_batches(ctx.device)


def _diverged(step: int, train_dir: Path, log_every: int) -> Inception3Error:
    good = latest_checkpoint(train_dir) or "none (none was written yet)"
    return Inception3Error(
        f"the loss stopped being finite by step {step} (it is checked every {log_every} steps and "
        f"before each checkpoint); training stopped. The last good checkpoint is {good}; try a lower "
        "learning_rate"
    )


def _global_batch(
    cfg: TrainConfig, world_size: int, resumed: tuple[Path, dict] | None, say: Callable[[str], None]
) -> TrainConfig:
    """`batch_size_per_rank` as a global batch: × the ranks at the run's start; kept when it resumes."""
    if cfg.batch_size_per_rank is None:
        return cfg
    batch = cfg.batch_size_per_rank * world_size
    saved = resumed[1].get("config", {}).get("batch_size") if resumed is not None else None
    if saved is not None and saved != batch:
        say(
            f"keeping the run's global batch of {saved} on {world_size} rank(s); batch_size_per_rank "
            f"{cfg.batch_size_per_rank} sets it only when a run starts"
        )
        batch = saved
    return dataclasses.replace(cfg, batch_size=batch, batch_size_per_rank=None)


def _speed_settings(cfg: TrainConfig, device: torch.device, say: Callable[[str], None]) -> TrainConfig:
    """`precision` and `channels_last` "auto" made concrete for this device (docs/performance.md)."""
    cuda = device.type == "cuda"
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    channels_last = cfg.channels_last
    if channels_last is None:
        channels_last = cuda or CPU_CHANNELS_LAST
    if cuda and (precision, channels_last) != (cfg.precision, cfg.channels_last):
        say(f"on {device.type}: precision {precision}, channels_last {str(channels_last).lower()} (auto)")
    return dataclasses.replace(cfg, precision=precision, channels_last=channels_last)


def _batch_line(cfg: TrainConfig, per_rank: int, world_size: int) -> str:
    line = f"batch: {cfg.batch_size} images a step, {world_size} rank(s) × {per_rank}"
    if cfg.grad_accum > 1:
        line += f" in {cfg.grad_accum} micro-batches of {per_rank // cfg.grad_accum}"
    if world_size > 1:
        line += "; batch norm over " + ("all ranks" if cfg.sync_batch_norm else "each rank's own images")
    return line


def _per_rank_batch(cfg: TrainConfig, world_size: int, force: bool) -> int:
    share, rest = divmod(cfg.batch_size, world_size * cfg.grad_accum)
    if rest or not share:
        raise Inception3Error(
            f"batch_size {cfg.batch_size} is global: it must divide evenly by the "
            f"{world_size} ranks × {cfg.grad_accum} accumulation steps"
        )
    if share < 2:  # PyTorch raises mid-step: "Expected more than 1 value per channel when training"
        raise Inception3Error(
            f"config: batch_size {cfg.batch_size} leaves 1 image per micro-batch ({world_size} ranks × "
            f"{cfg.grad_accum} accumulation steps); batch norm needs at least 2, as the aux head's last "
            "map (and below 107 px Mixed_7c's) is 1×1; raise batch_size or lower grad_accum with --set"
        )
    if world_size > 1 and share < MIN_BATCH_NORM_BATCH and not cfg.sync_batch_norm and not force:
        raise Inception3Error(
            f"config: batch_size {cfg.batch_size} leaves {share} images to each rank's batch norm "
            f"({world_size} ranks × {cfg.grad_accum} accumulation steps), fewer than "
            f"{MIN_BATCH_NORM_BATCH}: statistics that noisy cost accuracy; raise batch_size (or "
            "batch_size_per_rank), set sync_batch_norm=true with --set, or pass --force to train so anyway"
        )
    return cfg.batch_size // world_size


def _check_batch_fits(cfg: TrainConfig, info: DatasetInfo) -> None:
    """A global batch larger than the split would hold some images twice (and grow without bound)."""
    records = info.split_sizes["train"]
    if cfg.batch_size > records:
        raise Inception3Error(
            f"config: batch_size {cfg.batch_size} is larger than the {records} training records of "
            f"{info.data_dir}, so a batch would hold some images twice; lower batch_size with --set "
            "(or build more data)"
        )


def _check_compile_backend(backend: str) -> None:
    """torch.compile only names an unknown backend at the first step, as a traceback."""
    import torch._dynamo

    if backend not in torch._dynamo.list_backends(exclude_tags=()):  # any registered, debug ones too
        raise Inception3Error(
            f"config: compile_backend {shown(backend)} is not a torch.compile backend; choose one of "
            f"{', '.join(torch._dynamo.list_backends())} (or set compile=false)"
        )


def _dataset_info(data_dir: Path, cfg: TrainConfig) -> DatasetInfo:
    """The dataset's metadata; num_classes is the model's, so it only helps shards without dataset.json."""
    try:
        info = load_dataset_info(data_dir, cfg.label_offset)
    except Inception3Error:
        if cfg.num_classes is None:
            raise
        info = load_dataset_info(data_dir, cfg.label_offset, cfg.num_classes)
    if not info.split_sizes.get("train", 0):
        raise Inception3Error(f"{data_dir}: no 'train' records; build the shards with `inception3 build`")
    return info


def _model_config(cfg: TrainConfig, info: DatasetInfo) -> ModelConfig:
    model_cfg = cfg.model_config(info.num_classes)
    if info.num_classes > model_cfg.num_classes:
        raise Inception3Error(
            f"{info.data_dir}: the dataset has {info.num_classes} classes but num_classes "
            f"is {model_cfg.num_classes}; TF-built shards count the background class too, "
            "so check label_offset (1 for them) or raise num_classes"
        )
    return model_cfg


def _prepare_run_dir(
    train_dir: Path, cfg: TrainConfig, step: int, data_dir: Path, say, held: contextlib.ExitStack
) -> None:
    """Rank 0: the run directory and its lock (held until `held` closes), its config.toml, and no
    leftovers of a killed checkpoint write."""
    train_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(train_dir)
    taken_over = lock.acquire()
    held.callback(lock.release)
    if taken_over:
        say(taken_over)
    resume.write_config(train_dir, cfg, step, data_dir)
    partial = remove_partial_files(train_dir)
    if partial:
        say(
            f"removed {len(partial)} partial file(s) of an interrupted checkpoint write: "
            f"{', '.join(p.name for p in partial)}"
        )


def _build(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    info: DatasetInfo,
    per_rank: int,
    ctx: dist.Distributed,
    *,
    fresh: bool,
    say,
) -> resume.Resumable:
    """The run's live objects, on the device: initialised by the recipe (or --init-from when fresh)."""
    torch.manual_seed(cfg.seed)
    model = InceptionV3.from_config(model_cfg)
    if fresh and cfg.init_from:
        left = init_from(model, Path(cfg.init_from), fine_tune=cfg.fine_tune)
        say(f"initialised from {cfg.init_from}" + (f"; new: {', '.join(left)}" if left else ""))
    restrict_training(model, cfg.trainable)
    if cfg.sync_batch_norm and ctx.enabled:
        convert_sync_batch_norm(model)
    model.to(ctx.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    ema = ExponentialMovingAverage(model, cfg.ema_decay)
    optimizer = build_optimizer(parameter_groups(model, cfg.weight_decay), cfg)
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
    )
    return resume.Resumable(model, ema, optimizer, loader)


def _finish(
    run: resume.Resumable,
    cfg: TrainConfig,
    train_dir: Path,
    step: int,
    resumed: tuple[Path, dict] | None,
    totals: StepTotals | None,
    summaries: Summaries,
    ctx: dist.Distributed,
    save: Callable[..., Path],
    say: Callable[[str], None],
) -> TrainResult:
    """The last checkpoint (final when max_steps was reached), the skipped-record count, the result."""
    stopped_early = totals is not None and totals.stop and step < cfg.max_steps
    already_final = resumed is not None and is_final(resumed[1]) and int(resumed[1]["step"]) == step
    final = save(final=step >= cfg.max_steps) if ctx.is_main and not already_final else None
    skipped = totals.skipped_records if totals is not None else run.loader.skipped_records
    if cfg.skip_corrupt and totals is not None:
        summaries.skipped_records(step, skipped)
    dist.barrier(ctx)
    checkpoint = final or latest_checkpoint(train_dir)
    if stopped_early:
        say(f"stopped at step {step} as asked; run the same command again to resume from {checkpoint}")
    loss = totals.loss if totals is not None else math.nan
    return TrainResult(step, checkpoint, loss, skipped, stopped_early)


def _progress(enabled: bool, start: int, total: int):
    if not (enabled and sys.stdout.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(initial=start, total=total, unit="step", dynamic_ncols=True)
