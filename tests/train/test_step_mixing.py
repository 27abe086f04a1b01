"""The loss on soft targets and class weights, and training steps that mix their batch."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import one_step, tiny_config

from inception3.model import InceptionOutputs
from inception3.train.loop import train
from inception3.train.step import inception_loss


def test_one_hot_targets_give_the_hard_label_loss() -> None:
    torch.manual_seed(0)
    logits, aux, labels = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 3, 4, 1])
    one_hot = torch.nn.functional.one_hot(labels, 5).float()
    cfg = tiny_config()
    for got, want in zip(
        inception_loss(InceptionOutputs(logits, aux), one_hot, cfg),
        inception_loss(InceptionOutputs(logits, aux), labels, cfg),
        strict=True,
    ):
        torch.testing.assert_close(got, want)


def test_soft_targets_are_smoothed_then_cross_entropy() -> None:
    torch.manual_seed(1)
    logits = torch.randn(3, 4)
    targets = torch.tensor([[0.7, 0.3, 0, 0], [0, 0, 1.0, 0], [0.2, 0, 0, 0.8]])
    smoothed = targets * 0.9 + 0.1 / 4  # label smoothing 0.1 over 4 classes, as timm mixes smoothed one-hots
    want = -(smoothed * logits.log_softmax(1)).sum(1).mean()
    total, main, _ = inception_loss(logits, targets, tiny_config())
    torch.testing.assert_close(main, want)
    torch.testing.assert_close(total, want)


def test_class_weights_weigh_each_image_by_its_target() -> None:
    torch.manual_seed(2)
    logits, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 2])
    weights = torch.tensor([0.5, 2.0, 3.0])
    cfg = tiny_config(label_smoothing=0.0)
    per_image = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    _, main, _ = inception_loss(logits, labels, cfg, weights)
    torch.testing.assert_close(main, (per_image * torch.tensor([0.5, 0.5, 2.0, 3.0])).mean())
    soft = torch.tensor([[0.5, 0.5, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0.25, 0.75]])
    per_image = -(soft * logits.log_softmax(1)).sum(1)
    _, main, _ = inception_loss(logits, soft, cfg, weights)
    torch.testing.assert_close(main, (per_image * torch.tensor([1.25, 0.5, 2.0, 2.75])).mean())


def _step(seed_step: int, **overrides) -> tuple[float, dict[str, torch.Tensor]]:
    result, weights = one_step(tiny_config(**overrides), seed_step)
    return float(result.total), weights


def test_a_mixing_step_with_accumulation_repeats_exactly() -> None:
    mixing = {"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "mix_mode": "elem", "grad_accum": 2}
    loss_a, a = _step(3, **mixing)
    loss_b, b = _step(3, **mixing)
    assert torch.isfinite(torch.tensor(loss_a)) and loss_a == loss_b
    assert all(torch.equal(a[k], b[k]) for k in a)
    loss_plain, _ = _step(3, grad_accum=2)
    assert loss_plain != loss_a  # the batch was mixed


@pytest.mark.parametrize("balance", ["loss", "sampler"])
def test_training_mixes_and_balances_classes_counted_by_the_build_or_read_from_old_shards(
    balance: str, shards: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"  # a dataset built before class counts were recorded: the labels are read
    shutil.copytree(shards, old)
    document = json.loads((old / "dataset.json").read_text())
    del document["splits"]["train"]["class_counts"]
    (old / "dataset.json").write_text(json.dumps(document))
    for data in (shards, old):
        out = io.StringIO()
        cfg = tiny_config(max_steps=2, class_balance=balance, mixup_alpha=0.2, cutmix_alpha=1.0)
        result = train(cfg, data, tmp_path / f"run-{data.name}", out=out)
        assert math.isfinite(result.loss)
        assert f"class_balance {balance}: 5 classes of 8 to 8 training records" in out.getvalue()
