"""A run across restarts: the live objects a checkpoint holds, filled in and put back, and config.toml.

A checkpoint (`run.record.Checkpoint`) holds the model and its moving averages, the
optimizer, the data position and every random state, so that a resumed run repeats the very
steps a straight one would. Nothing in the run directory is ever deleted: a config that changed
between restarts is written next to the old one, which is kept under the step it stopped being
used at.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inception3.config import DEFAULT_EVAL_PREPROCESSING, ModelConfig, TrainConfig
from inception3.data import TrainLoader
from inception3.errors import Inception3Error
from inception3.files import printable, what_is_at, write_text_atomic
from inception3.model import InceptionV3
from inception3.run.checkpoint import (
    check_step,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from inception3.run.layout import config_path, retired_config_path
from inception3.run.record import Checkpoint
from inception3.train.ema import ExponentialMovingAverage
from inception3.train.options import config_to_toml, flat_config
from inception3.train.precision import LossScaler

# Keys whose change would make a resumed run something other than the continuation of the saved one.
RESUME_KEYS = (
    "batch_size",
    "seed",
    "optimizer",
    "grad_accum",
    "label_offset",
    "class_balance",
    "layer_decay",
)
# The parts of a checkpoint beyond its weights that a resume puts back.
TRAINING_PARTS = ("ema", "optimizer", "data", "rng")


@dataclass
class Resumable:
    """Everything a checkpoint restores: the live objects of a training run."""

    model: InceptionV3
    ema: ExponentialMovingAverage
    optimizer: torch.optim.Optimizer
    loader: TrainLoader
    scaler: LossScaler | None = None  # fp16's loss scaling; None in bf16 and fp32


@dataclass(frozen=True)
class Resumed:
    """The checkpoint a run continues from: its file and what it holds."""

    path: Path
    checkpoint: Checkpoint

    @property
    def step(self) -> int:
        return self.checkpoint.step


def checkpoint(
    run: Resumable, cfg: TrainConfig, class_names: tuple[str, ...], step: int, *, final: bool = False
) -> Checkpoint:
    """The checkpoint of a training run at `step`, from its live objects (copies of nothing)."""
    return Checkpoint(
        step=step,
        model_config=run.model.config,
        model=run.model.state_dict(),
        ema=run.ema.state_dict(),
        optimizer=run.optimizer.state_dict(),
        data=run.loader.state_dict(),
        rng=_rng_state(),
        config=flat_config(cfg) | {"trainable": list(cfg.trainable)},
        class_names=tuple(class_names),
        eval_preprocessing=DEFAULT_EVAL_PREPROCESSING,  # how eval and predict prepare images for it
        final=final,
        scaler=run.scaler.state_dict() if run.scaler is not None else None,
    )


def restore(run: Resumable, resumed: Resumed, *, force: bool) -> None:
    """Put a checkpoint's weights, averages, optimizer, data position, loss scale and random states back."""
    saved = resumed.checkpoint
    run.model.load_state_dict(saved.model)
    run.ema.load_state_dict(saved.ema)
    # torch's load_state_dict also puts back each group's settings (weight_decay, momentum, betas,
    # ...): keep this run's, which its config may have changed, and take only the per-parameter state.
    settings = [{k: v for k, v in group.items() if k != "params"} for group in run.optimizer.param_groups]
    try:
        run.optimizer.load_state_dict(saved.optimizer)
    except ValueError as error:
        raise Inception3Error(
            f"{resumed.path}: the optimizer state does not fit this run ({error}); "
            "were the trainable scopes changed? use a new --train-dir"
        ) from None
    for group, kept in zip(run.optimizer.param_groups, settings, strict=True):
        group.update(kept)
    try:
        run.loader.load_state_dict(saved.data)
    except Inception3Error:
        if not force:
            raise
    if run.scaler is not None and saved.scaler is not None:  # else (bf16 or fp32 before): a fresh scale
        run.scaler.load_state_dict(saved.scaler)
    _set_rng_state(saved.rng)


def find_resumed(train_dir: Path) -> Resumed | None:
    """The newest checkpoint of the run and its contents; when unreadable, how to fall back.

    Only the run's own checkpoints count (`latest_checkpoint`: nothing outside RUN/checkpoints),
    and one whose content is of another step than its name says is refused like a damaged one,
    as is one that holds weights without the state a resume needs.
    """
    train_dir = Path(train_dir)
    if (train_dir.exists() or train_dir.is_symlink()) and not train_dir.is_dir():
        raise Inception3Error(
            f"{train_dir}: is {what_is_at(train_dir)}, not a run directory; give --train-dir a new "
            "directory or the one of the run to continue"
        )
    path = latest_checkpoint(train_dir, warn=True)
    if path is None:
        return None
    try:
        state = load_checkpoint(path)
        saved = Checkpoint.from_state(state)
        check_step(path, saved.step)
        missing = [part for part in TRAINING_PARTS if getattr(saved, part) is None]
        if missing:
            raise Inception3Error(
                f"{path}: holds weights without the {', '.join(missing)} state a resume needs"
            )
    except Inception3Error as error:
        earlier = [p for _, p in list_checkpoints(train_dir) if p != path]
        hint = (
            f"to resume from {earlier[-1].name} instead, move {path.name} out of {path.parent}"
            if earlier
            else "no earlier checkpoint is left: train into a new --train-dir"
        )
        raise Inception3Error(f"cannot resume {train_dir}: {error}; {hint}") from None
    return Resumed(path, saved)


def _rng_state() -> dict:
    """Every random state of the process, as tensors and plain values."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": [version, list(mt), gauss],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
            "kind": kind,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_config(run_dir: Path, cfg: TrainConfig, step: int, data_dir: Path) -> Path:
    """Write RUN/config.toml (the effective config); an older, different one is kept as config-to-N.toml."""
    path = config_path(run_dir)
    text = config_to_toml(
        cfg, header=f"inception3 train --data-dir {printable(data_dir)}\nstarted at step {step}"
    )
    if path.exists():
        old = path.read_text()
        if old.split("\n", 2)[-1] == text.split("\n", 2)[-1]:
            return path
        keep = retired_config_path(run_dir, step)
        if not keep.exists():
            path.rename(keep)
    write_text_atomic(path, text)
    return path


def check_resumable(
    saved: Checkpoint, cfg: TrainConfig, model_cfg: ModelConfig, class_names: tuple[str, ...], *, force: bool
) -> list[str]:
    """The differences between a checkpoint and this run that would make resuming wrong.

    Raises unless `force`; with `force`, returns them so the caller can say what it overrides.
    A different model shape cannot be forced: its weights would not load.
    """
    saved_model = dataclasses.asdict(saved.model_config)  # keys added since it was written: defaults
    if saved_model != dataclasses.asdict(model_cfg):
        changed = [
            f"{k} was {saved_model.get(k)!r}, now {v!r}"
            for k, v in dataclasses.asdict(model_cfg).items()
            if saved_model.get(k) != v
        ]
        raise Inception3Error(
            f"the checkpoint holds another network ({'; '.join(changed)}); "
            "train into a new --train-dir, or use --init-from to start from its weights"
        )
    problems = []
    for key in RESUME_KEYS:
        if key in saved.config and saved.config[key] != getattr(cfg, key):
            problems.append(f"{key} was {saved.config[key]!r}, now {getattr(cfg, key)!r}")
    if list(saved.class_names or []) != list(class_names):
        problems.append("the dataset's class names differ")
    if problems and not force:
        raise Inception3Error(
            f"cannot resume the run exactly: {'; '.join(problems)}; restore the old "
            "settings, use a new --train-dir, or pass --force to continue anyway"
        )
    return problems
