"""fp16 with loss scaling, and `precision=auto`: skipped steps counted, not divergence, resumed exactly."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from inception3.errors import Inception3Error
from inception3.run.checkpoint import list_checkpoints, load_checkpoint
from inception3.run.record import Checkpoint
from inception3.train import loop, precision
from inception3.train.loop import train
from inception3.train.precision import LossScaler, resolve_precision

SKIPPED = re.compile(r"^step (\d+), loss = .*, skipped steps = (\d+)$", re.MULTILINE)


@pytest.mark.parametrize(
    ("device", "native_bf16", "expected"),
    [("cpu", False, "fp32"), ("cuda", True, "bf16"), ("cuda", False, "fp16")],
)
def test_auto_is_bf16_on_gpus_that_have_it_fp16_on_other_gpus_fp32_on_a_cpu(
    monkeypatch, device: str, native_bf16: bool, expected: str
) -> None:
    # A V100 answers yes when emulation counts: auto must ask for native bf16 only.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native_bf16)
    assert resolve_precision("auto", torch.device(device)) == expected
    for chosen in ("fp32", "bf16", "fp16"):
        assert resolve_precision(chosen, torch.device(device)) == chosen


def _linear_step(scaler: LossScaler, model: torch.nn.Linear, factor: float) -> torch.Tensor:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    loss = model(torch.ones(2, 3)).sum() * factor
    scaler.backward(loss)
    scaler.step(optimizer)
    return loss.detach()


def test_an_overflowing_step_is_skipped_counted_and_not_divergence() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    scaler = LossScaler(torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    loss = _linear_step(scaler, model, float("inf"))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # no update
    assert int(scaler.skipped) == 1 and scaler.scaler.get_scale() == 2.0**15  # halved from 2^16
    assert not torch.isfinite(loss) and not scaler.diverged(loss)
    loss = _linear_step(scaler, model, 1.0)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert int(scaler.skipped) == 1 and not scaler.diverged(loss)
    assert scaler.diverged(torch.tensor(float("nan")))  # a non-finite loss of a step that was taken


def test_accumulated_micro_batches_are_unscaled_into_the_plain_update() -> None:
    torch.manual_seed(0)
    model, plain = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(4, 3)
    scaler = LossScaler(torch.device("cpu"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for part in x.chunk(2):  # as train_step accumulates: each micro-batch's share of the mean
        scaler.backward(model(part).sum() / 4)
    scaler.step(optimizer)
    (plain(x).sum() / 4).backward()
    torch.optim.SGD(plain.parameters(), lr=0.5).step()
    for a, b in zip(model.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert int(scaler.skipped) == 0 and scaler.scaler.get_scale() == 2.0**16


def test_a_loss_scale_falling_below_its_floor_is_divergence() -> None:
    model = torch.nn.Linear(3, 1)
    scaler = LossScaler(torch.device("cpu"))
    scaler.scaler = torch.amp.GradScaler("cpu", init_scale=4 * precision.MIN_LOSS_SCALE)
    for expected in (False, False, True):  # 4 -> 2 -> 1 -> 0.5 of the floor
        assert bool(scaler.diverged(_linear_step(scaler, model, float("nan")))) == expected
    assert int(scaler.skipped) == 3


@pytest.mark.smoke
def test_fp16_counts_its_skipped_steps_and_resumes_bitwise_exact(
    shards: Path, tmp_path: Path, monkeypatch
) -> None:
    # GradScaler starts at 2^16, where these gradients overflow: the first steps are skipped, later taken.
    cfg = tiny_config(max_steps=8, checkpoint_every=7, precision="fp16")
    out = io.StringIO()
    straight = train(cfg, shards, tmp_path / "straight", out=out)
    counts = [int(m.group(2)) for m in SKIPPED.finditer(out.getvalue())]
    assert counts and counts == sorted(counts) and 0 < counts[-1] < 8  # some steps skipped, some taken

    real_step = loop.train_step

    def crash_at_step_7(*args, **kwargs):
        if args[4] == 7:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", crash_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, shards, tmp_path / "resumed", out=io.StringIO())
    assert [s for s, _ in list_checkpoints(tmp_path / "resumed")] == [7]
    monkeypatch.undo()
    out = io.StringIO()
    resumed = train(cfg, shards, tmp_path / "resumed", out=out)
    assert "at step 7" in out.getvalue() and f"skipped steps = {counts[-1]}" in out.getvalue()

    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a["scaler"] == b["scaler"] and a["scaler"]["skipped_steps"] == counts[-1]
    for key in ("model", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key} {name} differs after resume"
            if tensor.is_floating_point():  # fp16 is the forward's arithmetic only
                assert tensor.dtype == torch.float32


def test_a_run_without_loss_scaling_state_continues_in_fp16_from_a_fresh_scale(shards, tmp_path) -> None:
    """A checkpoint of an fp32 run (as every checkpoint before fp16 existed) has no scaler state."""
    first = train(tiny_config(max_steps=2, precision="fp32"), shards, tmp_path / "run", out=io.StringIO())
    state = load_checkpoint(first.checkpoint)
    assert "scaler" not in state and Checkpoint.from_state(state).scaler is None
    result = train(tiny_config(max_steps=3, precision="fp16"), shards, tmp_path / "run", out=io.StringIO())
    assert load_checkpoint(result.checkpoint)["scaler"]["skipped_steps"] == 1  # 2^16: the step overflowed


def test_an_fp16_run_whose_loss_scale_collapses_stops_as_diverged(shards, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(precision, "MIN_LOSS_SCALE", 2.0**14)  # the third skip in a row crosses it
    cfg = tiny_config(max_steps=6, precision="fp16", log_every=2, grad_accum=2)  # accumulating, too
    with pytest.raises(Inception3Error, match=r"the loss stopped being finite by step 3"):
        train(cfg, shards, tmp_path / "run", out=io.StringIO())
