"""`inception3 train`: the original recipe's loop, on one process or many, resumable exactly.

Set-up (data, model, optimizer, averages, resume), then the loop: batch → device → step →
moving averages → log, summaries, checkpoints. Rank 0 writes everything; every rank runs the
same steps on its share of the global batch.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from inception3.config import TrainConfig
from inception3.data.augment import distort_batch
from inception3.data.dataset import DatasetInfo, load_dataset_info
from inception3.data.loader import TrainLoader
from inception3.errors import Inception3Error
from inception3.model import InceptionV3, parameter_groups
from inception3.train import distributed as dist
from inception3.train.checkpoint import (
    is_final,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_partial_files,
    save_checkpoint,
)
from inception3.train.ema import ExponentialMovingAverage
from inception3.train.finetune import freeze_batch_norm_statistics, init_from, restrict_training
from inception3.train.optim import build_optimizer, learning_rate, set_learning_rate
from inception3.train.resume import check_resumable, write_config
from inception3.train.step import AUGMENT_STREAM, step_seed, train_step
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


def _rng_state() -> dict:
    """Every random state of the process, as tensors and plain values (weights-only loadable)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": [version, list(mt), gauss],
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached), "kind": kind}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _label_problem(labels: torch.Tensor, num_classes: int, info: DatasetInfo, step: int) -> str | None:
    """Why a label has no logit in the model (explaining the background-class offset), or None."""
    if not labels.numel() or (int(labels.min()) >= 0 and int(labels.max()) < num_classes):
        return None
    bad = int(labels.max()) if int(labels.max()) >= num_classes else int(labels.min())
    return (f"{info.data_dir}: label {bad} at step {step} is outside the model's {num_classes} classes "
            f"(0..{num_classes - 1}), with label_offset {info.label_offset}. Shards built by TensorFlow "
            "store 1-based labels with 0 as the background class: read them with --set label_offset=1 "
            "(or set num_classes to cover every stored label)")


def _dataset_info(data_dir: Path, cfg: TrainConfig) -> DatasetInfo:
    """The dataset's metadata; num_classes is the model's, so it only helps shards without dataset.json."""
    try:
        return load_dataset_info(data_dir, cfg.label_offset)
    except Inception3Error:
        if cfg.num_classes is None:
            raise
        return load_dataset_info(data_dir, cfg.label_offset, cfg.num_classes)


def _check_divisible(cfg: TrainConfig, world_size: int) -> int:
    share, rest = divmod(cfg.batch_size, world_size * cfg.grad_accum)
    if rest or not share:
        raise Inception3Error(f"batch_size {cfg.batch_size} is global: it must divide evenly by the "
                              f"{world_size} ranks × {cfg.grad_accum} accumulation steps")
    return cfg.batch_size // world_size


def _checkpoint_state(model: InceptionV3, ema: ExponentialMovingAverage, optimizer: torch.optim.Optimizer,
                      loader: TrainLoader, cfg: TrainConfig, info: DatasetInfo) -> dict:
    return {"model_config": dataclasses.asdict(model.config), "model": model.state_dict(),
            "ema": ema.state_dict(), "optimizer": optimizer.state_dict(), "data": loader.state_dict(),
            "rng": _rng_state(), "config": dataclasses.asdict(cfg) | {"trainable": list(cfg.trainable)},
            "class_names": list(info.class_names), "image_size": cfg.image_size}


def _resume_state(path: Path, train_dir: Path) -> dict:
    """The checkpoint to resume from; when it cannot be read, say how to fall back to an earlier one."""
    try:
        return load_checkpoint(path)
    except Inception3Error as error:
        earlier = [p for _, p in list_checkpoints(train_dir) if p != path]
        hint = (f"to resume from {earlier[-1].name} instead, move {path.name} out of {path.parent}"
                if earlier else "no earlier checkpoint is left: train into a new --train-dir")
        raise Inception3Error(f"cannot resume {train_dir}: {error}; {hint}") from None


def _skipped_over_ranks(loader: TrainLoader, step_sum: torch.Tensor, ctx: dist.Distributed) -> int:
    """Records skipped by every rank so far: each rank's own, plus the split's lost ones counted once."""
    lost = loader.records.lost_records  # every rank counts the records of damaged shard headers
    return round(float(step_sum) * ctx.world_size) + lost


def _progress(enabled: bool, start: int, total: int):
    if not (enabled and sys.stdout.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(initial=start, total=total, unit="step", dynamic_ncols=True)


def train(cfg: TrainConfig, data_dir: Path, train_dir: Path, *, force: bool = False,
          out: TextIO | None = None) -> TrainResult:
    """Train (or resume training of) the run in `train_dir` on the shards in `data_dir` up to max_steps.

    Under torchrun every rank calls this; rank 0 writes the config, summaries and checkpoints.
    Returns the final step and checkpoint. Raises Inception3Error on bad input or a diverged loss.
    """
    out = out or sys.stdout
    ctx = dist.init_distributed(cfg.device)
    try:
        return _train(cfg, Path(data_dir), Path(train_dir), ctx, force, out)
    finally:
        dist.shutdown(ctx)


def _train(cfg: TrainConfig, data_dir: Path, train_dir: Path, ctx: dist.Distributed, force: bool,
           out: TextIO) -> TrainResult:
    per_rank = _check_divisible(cfg, ctx.world_size)
    info = _dataset_info(data_dir, cfg)
    model_cfg = cfg.model_config(info.num_classes)
    if info.num_classes > model_cfg.num_classes:
        raise Inception3Error(f"{data_dir}: the dataset has {info.num_classes} classes but num_classes is "
                              f"{model_cfg.num_classes}; TF-built shards count the background class too, "
                              "so check label_offset (1 for them) or raise num_classes")
    train_examples = info.split_sizes.get("train", 0)
    if not train_examples:
        raise Inception3Error(f"{data_dir}: no 'train' records; build the shards with `inception3 build`")

    resume_path = latest_checkpoint(train_dir)
    state = _resume_state(resume_path, train_dir) if resume_path is not None else None
    if state is not None:
        overridden = check_resumable(state, cfg, model_cfg, info.class_names, force=force)
        if ctx.is_main and overridden:
            print(f"resuming despite: {'; '.join(overridden)} (--force)", file=out, flush=True)
    if state is None and cfg.fine_tune and not cfg.init_from:
        raise Inception3Error("fine_tune is set (the flowers preset) but there is nothing to fine-tune: "
                              "give --init-from CKPT, an inception3 checkpoint or InceptionV3 state dict")
    step = int(state["step"]) if state is not None else 0
    if ctx.is_main:
        train_dir.mkdir(parents=True, exist_ok=True)
        write_config(train_dir, cfg, step, data_dir)
        partial = remove_partial_files(train_dir)
        if partial:
            print(f"removed {len(partial)} partial file(s) of an interrupted checkpoint write: "
                  f"{', '.join(p.name for p in partial)}", file=out, flush=True)

    torch.manual_seed(cfg.seed)
    model = InceptionV3.from_config(model_cfg)
    if state is None and cfg.init_from:
        left = init_from(model, Path(cfg.init_from), fine_tune=cfg.fine_tune)
        if ctx.is_main:
            print(f"initialised from {cfg.init_from}" + (f"; new: {', '.join(left)}" if left else ""),
                  file=out, flush=True)
    restrict_training(model, cfg.trainable)
    if cfg.sync_batch_norm and ctx.enabled:
        dist.convert_sync_batch_norm(model)
    model.to(ctx.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    ema = ExponentialMovingAverage(model, cfg.ema_decay)
    optimizer = build_optimizer(parameter_groups(model, cfg.weight_decay), cfg)
    loader = TrainLoader(info, per_rank, cfg.image_size, rank=ctx.rank, world_size=ctx.world_size,
                         seed=cfg.seed, num_workers=cfg.num_workers, skip_corrupt=cfg.skip_corrupt,
                         min_object_covered=cfg.crop_min_object_covered, area_range=cfg.crop_area_range)
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        try:
            optimizer.load_state_dict(state["optimizer"])
        except ValueError as error:
            raise Inception3Error(f"{resume_path}: the optimizer state does not fit this run ({error}); "
                                  "were the trainable scopes changed? use a new --train-dir") from None
        try:
            loader.load_state_dict(state["data"])
        except Inception3Error:
            if not force:
                raise
        _set_rng_state(state["rng"])
        if ctx.is_main:
            print(f"resuming from {resume_path} at step {step}", file=out, flush=True)

    model.train()
    freeze_batch_norm_statistics(model)
    net = dist.wrap_model(model, ctx)
    if cfg.compile:
        net = torch.compile(net, backend=cfg.compile_backend)
    summaries = Summaries(train_dir, ctx.is_main, out)
    bar = _progress(ctx.is_main, step, cfg.max_steps)
    write = bar.write if bar is not None else None
    last_save_time = time.monotonic()
    loss = math.nan
    skipped, ran = loader.skipped_records, False
    window_start, window_steps = time.perf_counter(), 0
    stopped = False
    say = (lambda text: print(text, file=out, flush=True)) if ctx.is_main else (lambda text: None)
    stop = StopRequest(say)
    stop.install()
    try:
        batches = iter(loader)
        while step < cfg.max_steps:  # test before drawing: the saved data position counts used batches only
            batch = next(batches)
            problem = _label_problem(batch.labels, model_cfg.num_classes, info, step)
            if dist.any_rank(problem is not None, ctx):  # every rank stops, none waits for the others
                raise Inception3Error(problem or f"{info.data_dir}: another rank read a label outside the "
                                      f"model's {model_cfg.num_classes} classes at step {step}")
            lr = learning_rate(step, cfg, train_examples)
            set_learning_rate(optimizer, lr)
            images = batch.images.to(ctx.device, non_blocking=True)
            labels = batch.labels.to(ctx.device, non_blocking=True)
            summary_step = step % cfg.summary_every == 0
            with summaries.record_end_points(model, summary_step):
                losses = train_step(net, optimizer, images, labels, step, ctx.rank, cfg)
            ema.update(model, step)
            extra = torch.tensor([float(loader.skipped_records - loader.records.lost_records),
                                  float(stop.requested is not None)], device=losses.total.device)
            # One all-reduce per step carries the losses, the skipped records and any stop request,
            # so every rank stops after the same step.
            mean = dist.mean_over_ranks(torch.cat([torch.stack([losses.total, losses.cross_entropy,
                                                                losses.aux]), extra]), ctx)
            loss = float(mean[0])
            skipped, ran = _skipped_over_ranks(loader, mean[3], ctx), True
            if not math.isfinite(loss):
                good = latest_checkpoint(train_dir)
                raise Inception3Error(f"the loss became {loss} at step {step}; training stopped. The last "
                                      f"good checkpoint is {good or 'none (none was written yet)'}; try a "
                                      "lower learning_rate")
            window_steps += 1
            if step % cfg.log_every == 0:
                elapsed = time.perf_counter() - window_start
                summaries.log(step, {"total": loss, "cross_entropy": float(mean[1]), "aux": float(mean[2])},
                              lr, cfg.batch_size * window_steps / elapsed, elapsed / window_steps, write,
                              skipped_records=skipped if cfg.skip_corrupt else None)
                window_start, window_steps = time.perf_counter(), 0
            if summary_step and ctx.is_main:
                generator = torch.Generator(device=ctx.device)
                generator.manual_seed(step_seed(cfg.seed, step, ctx.rank, AUGMENT_STREAM))
                regularization = sum(float(p.detach().float().pow(2).sum()) for p in
                                     optimizer.param_groups[0]["params"]) * cfg.weight_decay / 2
                summaries.histograms(step, model, distort_batch(images, generator), regularization)
            step += 1
            if bar is not None:
                bar.update(1)
            if mean[4] > 0:
                stopped = True
                break
            waited = time.monotonic() - last_save_time
            by_time = cfg.checkpoint_secs > 0 and waited >= cfg.checkpoint_secs
            due = step % cfg.checkpoint_every == 0 or by_time
            if due and step < cfg.max_steps and ctx.is_main:
                mark = cfg.keep_checkpoint_every > 0 and step % cfg.keep_checkpoint_every == 0
                save_checkpoint(train_dir, step, _checkpoint_state(model, ema, optimizer, loader, cfg, info),
                                keep=cfg.keep_checkpoints, mark=mark)
                last_save_time = time.monotonic()
        final = None
        stopped_early = stopped and step < cfg.max_steps
        already_final = state is not None and is_final(state) and int(state["step"]) == step
        if ctx.is_main and not already_final:
            final = save_checkpoint(train_dir, step,
                                    _checkpoint_state(model, ema, optimizer, loader, cfg, info),
                                    keep=cfg.keep_checkpoints, final=step >= cfg.max_steps)
        if cfg.skip_corrupt and ran:
            summaries.skipped_records(step, skipped, write)
        dist.barrier(ctx)
        if stopped_early and ctx.is_main:
            print(f"stopped at step {step} as asked; run the same command again to resume from "
                  f"{final or latest_checkpoint(train_dir)}", file=out, flush=True)
        return TrainResult(step, final or latest_checkpoint(train_dir), loss, skipped, stopped_early)
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
        summaries.close()
