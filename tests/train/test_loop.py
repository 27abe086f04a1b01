"""The training loop end to end on tiny shards: learning, exact resume, refusals, logs and summaries."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from tinyshards import make_shards

from inception3.cli import main
from inception3.data.augment import scale_to_unit
from inception3.data.loader import EvalLoader
from inception3.data.meta import load_dataset_info
from inception3.errors import Inception3Error
from inception3.model import InceptionV3
from inception3.run.checkpoint import (
    is_final,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from inception3.train import loop
from inception3.train.loop import train
from inception3.weights import load_model

LINE = re.compile(
    r"^step (\d+), loss = (\d+\.\d\d) \((\d+\.\d) examples/sec; (\d+\.\d\d\d) sec/batch\), "
    r"learning rate = ([0-9.e-]+)$"
)


def _accuracy(model: torch.nn.Module, shards: Path) -> float:
    loader = EvalLoader(load_dataset_info(shards), 20, 75, split="train", num_workers=0)
    right = total = 0
    with torch.no_grad():
        for batch in loader:
            right += int((model(scale_to_unit(batch.images)).argmax(1) == batch.labels).sum())
            total += len(batch.labels)
    return right / total


def test_loss_falls_and_training_accuracy_rises(shards: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    cfg = tiny_config(max_steps=60, batch_size=16, batch_norm_decay=0.9, log_every=1)
    result = train(cfg, shards, tmp_path / "run", out=out)
    losses = [float(m.group(2)) for line in out.getvalue().splitlines() if (m := LINE.match(line))]
    assert len(losses) == 60 and result.step == 60
    assert sum(losses[-10:]) / 10 < 0.85 * sum(losses[:10]) / 10
    averaged, meta = load_model(result.checkpoint)
    assert meta.ema and meta.step == 60
    torch.manual_seed(cfg.seed)
    start = InceptionV3.from_config(averaged.config).eval()
    assert _accuracy(averaged, shards) >= _accuracy(start, shards) + 0.15  # 5 classes: chance is 0.2


def _tensors(state: dict, key: str) -> dict[str, torch.Tensor]:
    if key == "optimizer":
        return {f"{i}.{name}": t for i, s in state["optimizer"]["state"].items() for name, t in s.items()}
    return state[key]


@pytest.mark.smoke
def test_resume_after_a_crash_mid_epoch_is_bitwise_exact(shards: Path, tmp_path: Path, monkeypatch) -> None:
    cfg = tiny_config(max_steps=7, checkpoint_every=3)  # 5 steps per epoch: 3 is mid-epoch, 7 in the next
    straight = train(cfg, shards, tmp_path / "straight", out=io.StringIO())

    real_step = loop.train_step

    def crash_at_step_4(*args, **kwargs):
        if args[4] == 4:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", crash_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, shards, tmp_path / "resumed", out=io.StringIO())
    assert [s for s, _ in list_checkpoints(tmp_path / "resumed")] == [3]
    monkeypatch.undo()
    out = io.StringIO()
    resumed = train(cfg, shards, tmp_path / "resumed", out=out)
    assert "resuming from" in out.getvalue() and "at step 3" in out.getvalue()
    assert out.getvalue().count("step ") >= 4 and "step 3, loss" in out.getvalue()

    _assert_same_state(load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint))


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["step"] == b["step"] and is_final(a) and is_final(b)
    assert a["data"] == b["data"]
    for key in ("model", "ema", "optimizer"):
        ta, tb = _tensors(a, key), _tensors(b, key)
        assert ta.keys() == tb.keys()
        for name in ta:
            assert torch.equal(ta[name], tb[name]), f"{key} {name} differs after resume"


def test_a_finished_run_continues_exactly_when_max_steps_is_raised(shards: Path, tmp_path: Path) -> None:
    straight = train(tiny_config(max_steps=6), shards, tmp_path / "straight", out=io.StringIO())
    train(tiny_config(max_steps=3), shards, tmp_path / "extended", out=io.StringIO())
    extended = train(tiny_config(max_steps=6), shards, tmp_path / "extended", out=io.StringIO())
    _assert_same_state(load_checkpoint(straight.checkpoint), load_checkpoint(extended.checkpoint))
    assert load_checkpoint(extended.checkpoint)["data"]["position"] == 6 * 8


def test_a_finished_run_is_not_trained_again_and_nothing_is_deleted(shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = train(
        tiny_config(max_steps=2, checkpoint_every=1, keep_checkpoints=0), shards, run, out=io.StringIO()
    )
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    again = train(
        tiny_config(max_steps=2, checkpoint_every=1, keep_checkpoints=0), shards, run, out=io.StringIO()
    )
    assert again.step == 2 and again.checkpoint == first.checkpoint
    assert all(p.exists() for p in before)
    assert [s for s, _ in list_checkpoints(run)] == [1, 2]


def test_a_changed_config_is_refused_unless_forced(shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(max_steps=1), shards, run, out=io.StringIO())
    with pytest.raises(Inception3Error, match=r"batch_size was 8, now 4.*--force"):
        train(tiny_config(max_steps=2, batch_size=4), shards, run, out=io.StringIO())
    with pytest.raises(Inception3Error, match="another network.*depth_multiplier"):
        train(tiny_config(max_steps=2, depth_multiplier=0.5), shards, run, out=io.StringIO(), force=True)
    out = io.StringIO()
    result = train(tiny_config(max_steps=2, batch_size=4), shards, run, out=out, force=True)
    assert result.step == 2 and "resuming despite: batch_size was 8" in out.getvalue()
    assert (run / "config.toml").exists() and (run / "config-to-1.toml").exists()
    assert "batch_size = 8" in (run / "config-to-1.toml").read_text()
    assert "batch_size = 4" in (run / "config.toml").read_text()


def test_optimizer_settings_changed_between_restarts_are_the_ones_used(shards: Path, tmp_path: Path) -> None:
    # Not resume keys: a changed weight decay or momentum applies from the restart on, where torch's
    # load_state_dict would have put the saved values back.
    run = tmp_path / "run"
    train(tiny_config(max_steps=1), shards, run, out=io.StringIO())
    result = train(
        tiny_config(max_steps=2, weight_decay=1e-3, momentum=0.5, rmsprop_decay=0.8),
        shards,
        run,
        out=io.StringIO(),
    )
    groups = load_checkpoint(result.checkpoint)["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [1e-3, 0.0]
    assert {g["momentum"] for g in groups} == {0.5} and {g["decay"] for g in groups} == {0.8}


@pytest.mark.parametrize(("log_every", "checkpoint_every"), [(1, 1), (5, 2)])
def test_a_diverging_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
    shards: Path, tmp_path: Path, log_every: int, checkpoint_every: int
) -> None:
    """The loss is read every log_every steps and before each checkpoint: no checkpoint is ever a NaN one."""
    cfg = tiny_config(
        max_steps=20,
        learning_rate=1e12,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        keep_checkpoints=0,
    )
    with pytest.raises(
        Inception3Error, match=r"the loss stopped being finite by step \d+.*last good checkpoint"
    ):
        train(cfg, shards, tmp_path / "run", out=io.StringIO())
    for _, path in list_checkpoints(tmp_path / "run"):
        state = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
        assert not is_final(state)


def test_labels_outside_the_model_are_refused_before_training(tmp_path: Path) -> None:
    one_based = make_shards(tmp_path / "tf", per_class=2, label_offset=1)
    with pytest.raises(Inception3Error, match="offset"):
        train(tiny_config(label_offset=0), one_based, tmp_path / "run", out=io.StringIO())
    with pytest.raises(Inception3Error, match="5 classes but num_classes is 3.*background"):
        train(tiny_config(num_classes=3), one_based, tmp_path / "run", out=io.StringIO())
    assert list_checkpoints(tmp_path / "run") == []


@pytest.mark.parametrize("compile", [False, True])
def test_summaries_hold_losses_learning_rate_and_activations(
    shards: Path, tmp_path: Path, compile: bool
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config(max_steps=3, summary_every=2, compile=compile, compile_backend="eager")
    train(cfg, shards, tmp_path / "run", out=io.StringIO())
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"histograms": 0, "scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "loss/total",
        "loss/cross_entropy",
        "loss/aux",
        "learning_rate",
        "examples_per_sec",
        "loss/regularization",
        "gradient_norm/total",
        "sparsity/Mixed_7c",
    } <= scalars
    assert [e.step for e in events.Scalars("loss/total")] == [0, 1, 2]
    assert [e.step for e in events.Scalars("sparsity/Conv2d_1a_3x3")] == [0, 2]
    # A compiled graph ignores hooks added after it was traced: each summary step must still see them.
    assert [e.step for e in events.Histograms("activations/Mixed_6e")] == [0, 2]
    assert events.Tags()["images"] == ["images"]


@pytest.mark.smoke
def test_gpu_options_run_on_the_cpu(shards: Path, tmp_path: Path) -> None:
    cfg = tiny_config(
        max_steps=2, precision="bf16", channels_last=True, compile=True, compile_backend="eager", grad_accum=2
    )
    result = train(cfg, shards, tmp_path / "run", out=io.StringIO())
    assert result.step == 2 and torch.isfinite(torch.tensor(result.loss))
    state = load_checkpoint(result.checkpoint)
    model, _ = load_model(result.checkpoint)  # no "_orig_mod." or "module." prefixes in the keys
    assert state["model"].keys() == model.state_dict().keys()
    # bf16 is the forward's arithmetic only: weights, RMSProp's slots and the averages stay float32.
    slots = [t for s in state["optimizer"]["state"].values() for t in s.values() if torch.is_tensor(t)]
    for tensors in (state["model"].values(), state["ema"].values(), slots):
        assert {t.dtype for t in tensors if t.is_floating_point()} == {torch.float32}


def test_cli_trains_and_reports_user_errors(shards: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    args = [
        "train",
        "--data-dir",
        str(shards),
        "--train-dir",
        str(run),
        "--preset",
        "tiny",
        "--set",
        "batch_size=8",
        "--set",
        "num_workers=0",
        "--max-steps",
        "1",
        "--set",
        "device=cpu",
    ]
    assert main(args) == 0
    assert "ckpt-00000001.pt" in capsys.readouterr().out
    assert (run / "config.toml").read_text().count("max_steps = 1") == 1
    assert main(args[:-2] + ["--set", "batch_size=3x"]) == 2
    assert "error: --set batch_size=3x: batch_size = '3x' is not a valid int" in capsys.readouterr().err
    assert main(["train", "--data-dir", str(tmp_path / "none"), "--train-dir", str(run)]) == 2


def test_checkpoints_are_pruned_to_the_newest_plus_marked_and_final(shards: Path, tmp_path: Path) -> None:
    cfg = tiny_config(max_steps=5, checkpoint_every=1, keep_checkpoints=1, keep_checkpoint_every=2)
    result = train(cfg, shards, tmp_path / "run", out=io.StringIO())
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [2, 4, 5]
    assert latest_checkpoint(tmp_path / "run") == result.checkpoint


def test_values_are_checked_before_the_run_directory_is_made(shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    for cfg, message in (
        (tiny_config(batch_size=48), "^config: batch_size 48 is larger than the 40 training records of"),
        (tiny_config(batch_size=8, grad_accum=8), "^config: batch_size 8 leaves 1 image per micro-batch"),
        (tiny_config(compile=True, compile_backend="nope"), "^config: compile_backend 'nope' is not a"),
    ):
        with pytest.raises(Inception3Error, match=message):
            train(cfg, shards, run, out=io.StringIO())
    assert not run.exists()
    # A config made in Python without resolve_config checks itself when it is made.
    with pytest.raises(Inception3Error, match="^config: learning_rate must be a finite number, got nan"):
        tiny_config(learning_rate=math.nan)


def test_synthetic_data_trains_without_reading_the_shards_and_logs_as_usual(
    shards: Path, tmp_path: Path
) -> None:
    out = io.StringIO()
    result = train(tiny_config(max_steps=3, synthetic_data=True), shards, tmp_path / "run", out=out)
    assert result.step == 3 and math.isfinite(result.loss)
    assert "step 2, loss = " in out.getvalue()
    assert load_checkpoint(result.checkpoint)["data"]["position"] == 0  # no record was read
