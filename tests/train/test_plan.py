"""The run's plan: the config made concrete, the batch split, and the checkpoint a run continues."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from tinycheckpoints import tiny_model

from inception3.errors import Inception3Error
from inception3.run.distributed import Distributed
from inception3.run.record import Checkpoint
from inception3.train.loop import train
from inception3.train.plan import prepare

ONE_CPU = Distributed(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def test_the_plan_holds_a_concrete_config_and_the_batch_of_each_rank(shards: Path, tmp_path: Path) -> None:
    cfg = dataclasses.replace(tiny_config(), batch_size_per_rank=4, precision="auto", channels_last=None)
    said: list[str] = []
    plan = prepare(cfg, shards, tmp_path / "run", ONE_CPU, False, said.append)
    assert plan.cfg.batch_size == 4 and plan.cfg.batch_size_per_rank is None and plan.per_rank == 4
    assert plan.cfg.precision == "fp32" and isinstance(plan.cfg.channels_last, bool)
    assert plan.model.image_size == 75 and plan.model.num_classes == plan.data.num_classes
    assert plan.resumed is None and plan.start_step == 0
    assert said == ["batch: 4 images a step, 1 rank(s) × 4"]
    assert not (tmp_path / "run").exists()  # a plan is worked out without touching the run directory


def test_the_plan_continues_the_runs_newest_checkpoint(shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = train(tiny_config(max_steps=2), shards, run, out=io.StringIO())
    plan = prepare(validated := tiny_config(max_steps=4), shards, run, ONE_CPU, False, lambda _: None)
    assert plan.resumed is not None and plan.resumed.path == done.checkpoint
    assert (
        plan.start_step == 2 and plan.resumed.checkpoint.final and plan.cfg.max_steps == validated.max_steps
    )


def test_weights_without_their_training_state_are_not_resumed(shards: Path, tmp_path: Path) -> None:
    model = tiny_model()
    weights_only = Checkpoint(
        step=3,
        model_config=model.config,
        model=model.state_dict(),
        ema=None,
        optimizer=None,
        data=None,
        rng=None,
        config={},
        class_names=None,
    )
    weights_only.save(tmp_path / "run")
    with pytest.raises(Inception3Error, match="cannot resume .*without the ema, optimizer, data, rng state"):
        prepare(tiny_config(), shards, tmp_path / "run", ONE_CPU, False, lambda _: None)
