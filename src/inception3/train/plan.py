"""What a training run will do, worked out and checked before anything is built: the `RunPlan`.

`prepare` reads the dataset's metadata and the run's newest checkpoint, makes the config concrete
for this device and group (the global batch, precision, channels_last) and refuses, with the key
at fault, whatever would fail or silently go wrong later: a batch larger than the data, a batch
that does not split over the ranks, an unknown compile backend, a resume that would not continue
the saved run. After it, the loop only builds and runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from inception3.config import CPU_CHANNELS_LAST, MIN_BATCH_NORM_BATCH, ModelConfig, TrainConfig, shown
from inception3.data import DatasetInfo, load_dataset_info
from inception3.data.augment import build_pipeline
from inception3.errors import Inception3Error
from inception3.run import distributed as dist
from inception3.run.layout import require_utf8_run_dir
from inception3.train.finetune import check_trainable
from inception3.train.precision import resolve_precision
from inception3.train.resume import Resumed, check_resumable, find_resumed


@dataclass(frozen=True)
class RunPlan:
    """A checked training run: every value the loop needs that does not change while it runs."""

    cfg: TrainConfig  # concrete: batch_size global, batch_size_per_rank None, precision and channels_last set
    model: ModelConfig  # the network, with the dataset's class count unless num_classes is set
    data: DatasetInfo  # the shards it trains on
    per_rank: int  # images each rank takes per step (all its micro-batches together)
    resumed: Resumed | None  # the checkpoint it continues from; None: a fresh run
    data_dir: Path
    train_dir: Path
    force: bool  # resume despite the differences check_resumable listed, or a data position that differs

    @property
    def start_step(self) -> int:
        """The global step the run starts at: the resumed checkpoint's, else 0."""
        return self.resumed.step if self.resumed is not None else 0


def prepare(
    cfg: TrainConfig,
    data_dir: Path,
    train_dir: Path,
    ctx: dist.Distributed,
    force: bool,
    say: Callable[[str], None],
) -> RunPlan:
    """The plan of training `cfg` on `data_dir` into `train_dir` with this process group.

    `cfg` checked its own values when it was made. Says what it decides for the user (the batch,
    the automatic speed settings, what --force overrides). Raises Inception3Error for a run that
    cannot start or would not continue its checkpoint exactly.
    """
    # Data, and the network it needs; a checkpoint of this run, if any, must continue it exactly.
    require_utf8_run_dir(train_dir)
    build_pipeline(cfg.augment)  # unknown augmentation ops are refused before anything starts
    info = _dataset_info(data_dir, cfg)
    model_cfg = _model_config(cfg, info)
    check_trainable(model_cfg, cfg.trainable)  # before the run directory is touched
    if cfg.compile:
        _check_compile_backend(cfg.compile_backend)
    resumed = find_resumed(train_dir)

    # The config made concrete for this group and device, and the batch each rank takes.
    cfg = _speed_settings(_global_batch(cfg, ctx.world_size, resumed, say), ctx.device, say)
    per_rank = _per_rank_batch(cfg, ctx.world_size, force)
    _check_batch_fits(cfg, info)
    say(_batch_line(cfg, per_rank, ctx.world_size))

    # What it continues: the checkpoint's run unchanged, or weights to fine-tune.
    if resumed is not None:
        overridden = check_resumable(resumed.checkpoint, cfg, model_cfg, info.class_names, force=force)
        if overridden:
            say(f"resuming despite: {'; '.join(overridden)} (--force)")
    elif cfg.fine_tune and not cfg.init_from:
        raise Inception3Error(
            "fine_tune is set (the flowers preset) but there is nothing to fine-tune: "
            "give --init-from CKPT, an inception3 checkpoint or InceptionV3 state dict"
        )
    return RunPlan(cfg, model_cfg, info, per_rank, resumed, data_dir, train_dir, force)


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


def _check_compile_backend(backend: str) -> None:
    """torch.compile only names an unknown backend at the first step, as a traceback."""
    import torch._dynamo

    if backend not in torch._dynamo.list_backends(exclude_tags=()):  # any registered, debug ones too
        raise Inception3Error(
            f"config: compile_backend {shown(backend)} is not a torch.compile backend; choose one of "
            f"{', '.join(torch._dynamo.list_backends())} (or set compile=false)"
        )


def _global_batch(
    cfg: TrainConfig, world_size: int, resumed: Resumed | None, say: Callable[[str], None]
) -> TrainConfig:
    """`batch_size_per_rank` as a global batch: × the ranks at the run's start; kept when it resumes."""
    if cfg.batch_size_per_rank is None:
        return cfg
    batch = cfg.batch_size_per_rank * world_size
    saved = resumed.checkpoint.config.get("batch_size") if resumed is not None else None
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
    precision = resolve_precision(cfg.precision, device)
    channels_last = cfg.channels_last
    if channels_last is None:
        channels_last = cuda or CPU_CHANNELS_LAST
    if cuda and (precision, channels_last) != (cfg.precision, cfg.channels_last):
        say(f"on {device.type}: precision {precision}, channels_last {str(channels_last).lower()} (auto)")
    return dataclasses.replace(cfg, precision=precision, channels_last=channels_last)


def _per_rank_batch(cfg: TrainConfig, world_size: int, force: bool) -> int:
    """The images of each rank's step; refuses a global batch that splits unevenly or too thinly."""
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


def _batch_line(cfg: TrainConfig, per_rank: int, world_size: int) -> str:
    line = f"batch: {cfg.batch_size} images a step, {world_size} rank(s) × {per_rank}"
    if cfg.grad_accum > 1:
        line += f" in {cfg.grad_accum} micro-batches of {per_rank // cfg.grad_accum}"
    if world_size > 1:
        line += "; batch norm over " + ("all ranks" if cfg.sync_batch_norm else "each rank's own images")
    return line
