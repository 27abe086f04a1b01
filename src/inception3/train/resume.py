"""A run directory across restarts: its config.toml, and whether a checkpoint can be resumed.

Nothing in the run directory is ever deleted: a config that changed between restarts is written
next to the old one, which is kept under the step it stopped being used at.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from inception3.config import ModelConfig, TrainConfig
from inception3.errors import Inception3Error
from inception3.train.options import config_to_toml

CONFIG_FILE = "config.toml"
# Keys whose change would make a resumed run something other than the continuation of the saved one.
RESUME_KEYS = ("batch_size", "seed", "optimizer", "grad_accum", "label_offset")


def write_config(run_dir: Path, cfg: TrainConfig, step: int, data_dir: Path) -> Path:
    """Write RUN/config.toml (the effective config); an older, different one is kept as config-to-N.toml."""
    path = Path(run_dir) / CONFIG_FILE
    text = config_to_toml(cfg, header=f"inception3 train --data-dir {data_dir}\nstarted at step {step}")
    if path.exists():
        old = path.read_text()
        if old.split("\n", 2)[-1] == text.split("\n", 2)[-1]:
            return path
        keep = path.with_name(f"config-to-{step}.toml")
        if not keep.exists():
            path.rename(keep)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def check_resumable(state: dict, cfg: TrainConfig, model_cfg: ModelConfig, class_names: tuple[str, ...],
                    *, force: bool) -> list[str]:
    """The differences between a checkpoint and this run that would make resuming wrong.

    Raises unless `force`; with `force`, returns them so the caller can say what it overrides.
    A different model shape cannot be forced: its weights would not load.
    """
    saved_model = state.get("model_config", {})
    if saved_model != dataclasses.asdict(model_cfg):
        changed = [f"{k} was {saved_model.get(k)!r}, now {v!r}"
                   for k, v in dataclasses.asdict(model_cfg).items() if saved_model.get(k) != v]
        raise Inception3Error(f"the checkpoint holds another network ({'; '.join(changed)}); "
                              "train into a new --train-dir, or use --init-from to start from its weights")
    problems = []
    saved = state.get("config", {})
    for key in RESUME_KEYS:
        if key in saved and saved[key] != getattr(cfg, key):
            problems.append(f"{key} was {saved[key]!r}, now {getattr(cfg, key)!r}")
    if list(state.get("class_names") or []) != list(class_names):
        problems.append("the dataset's class names differ")
    if problems and not force:
        raise Inception3Error(f"cannot resume the run exactly: {'; '.join(problems)}; restore the old "
                              "settings, use a new --train-dir, or pass --force to continue anyway")
    return problems
