"""Fine-tuning: weights from another run with the head left out, and training only some scopes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from inception3.config import STATISTICS_OF_UNKNOWN_AGE
from inception3.errors import Inception3Error
from inception3.model import InceptionV3
from inception3.run.checkpoint import load_checkpoint
from inception3.train.finetune import init_from, restrict_training
from inception3.train.loop import train

HEAD = (
    "Logits.Conv2d_1c_1x1.weight",
    "Logits.Conv2d_1c_1x1.bias",
    "AuxLogits.Conv2d_2b_1x1.weight",
    "AuxLogits.Conv2d_2b_1x1.bias",
)


def _tiny(num_classes: int, seed: int) -> InceptionV3:
    torch.manual_seed(seed)
    return InceptionV3(num_classes=num_classes, depth_multiplier=0.25, image_size=75)


def test_a_different_class_count_leaves_out_and_reinitialises_the_head(tmp_path: Path) -> None:
    source = _tiny(7, seed=1)
    path = tmp_path / "imagenet.pt"
    torch.save(source.state_dict(), path)
    model, fresh = _tiny(5, seed=2), _tiny(5, seed=2)
    skipped = init_from(model, path)
    assert sorted(skipped) == sorted(HEAD)
    for key, value in model.state_dict().items():
        expected = fresh.state_dict()[key] if key in HEAD else source.state_dict()[key]
        assert torch.equal(value, expected), key


def test_fine_tune_leaves_out_the_head_even_when_the_shapes_match(tmp_path: Path) -> None:
    path = tmp_path / "same.pt"
    torch.save(_tiny(5, seed=1).state_dict(), path)
    assert sorted(init_from(_tiny(5, seed=2), path, fine_tune=True)) == sorted(HEAD)
    assert init_from(_tiny(5, seed=2), path) == []


def test_weights_without_an_aux_head_or_their_statistics_counts_start_a_run_with_one(tmp_path: Path) -> None:
    """Keras' Inception v3 has no aux head, other projects' weights no batch-norm update counts."""
    torch.manual_seed(1)
    source = InceptionV3(num_classes=5, depth_multiplier=0.25, image_size=75, aux_logits=False)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "no-aux.pt")
    model = _tiny(5, seed=2)
    skipped = init_from(model, tmp_path / "no-aux.pt")
    assert skipped and all(k.startswith("AuxLogits.") for k in skipped)
    assert torch.equal(
        model.Mixed_7c.Branch_0.Conv2d_0a_1x1.weight, source.Mixed_7c.Branch_0.Conv2d_0a_1x1.weight
    )
    assert int(model.Conv2d_1a_3x3.BatchNorm.num_batches_tracked) == STATISTICS_OF_UNKNOWN_AGE
    assert int(model.AuxLogits.Conv2d_1b_1x1.BatchNorm.num_batches_tracked) == 0  # fresh: debiased


def test_another_width_is_refused_with_the_key_at_fault(tmp_path: Path) -> None:
    path = tmp_path / "wide.pt"
    torch.save(InceptionV3(num_classes=5, depth_multiplier=0.5, image_size=75).state_dict(), path)
    with pytest.raises(Inception3Error, match=r"wide.pt: Conv2d_2b_3x3.weight has shape \[32, 16, 3, 3\]"):
        init_from(_tiny(5, seed=0), path)


def test_torchvision_weights_start_a_fine_tuning_run_with_gamma_folded(tmp_path: Path) -> None:
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    theirs = inception_v3(weights=None, aux_logits=True, init_weights=False)
    with torch.no_grad():
        theirs.Conv2d_1a_3x3.bn.weight.fill_(2.0)
    path = tmp_path / "inception_v3_google.pth"
    torch.save(theirs.state_dict(), path)
    model = InceptionV3(num_classes=5)
    assert sorted(init_from(model, path)) == sorted(HEAD), "1000 classes do not fit 5: new heads"
    mine = model.state_dict()
    assert torch.equal(mine["Conv2d_1a_3x3.weight"], 2.0 * theirs.Conv2d_1a_3x3.conv.weight)
    assert torch.equal(
        mine["Mixed_7c.Branch_3.Conv2d_0b_1x1.BatchNorm.moving_variance"],
        theirs.Mixed_7c.branch_pool.bn.running_var,
    )


def test_safetensors_weights_as_export_writes_them(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = _tiny(5, seed=1)
    path = tmp_path / "model.safetensors"
    save_file(source.state_dict(), path)
    model = _tiny(5, seed=2)
    assert init_from(model, path) == []
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.state_dict().items())


def test_trainable_scopes_freeze_the_rest_and_its_batch_norm_statistics(shards: Path, tmp_path: Path) -> None:
    first = train(tiny_config(max_steps=2), shards, tmp_path / "stage1", out=io.StringIO())
    cfg = tiny_config(
        max_steps=2, init_from=str(first.checkpoint), trainable=("Logits", "AuxLogits"), fine_tune=True
    )
    out = io.StringIO()
    second = train(cfg, shards, tmp_path / "stage2", out=out)
    assert "; new: " in out.getvalue() and "Logits.Conv2d_1c_1x1.weight" in out.getvalue()
    start = load_checkpoint(first.checkpoint)["ema"]
    after = load_checkpoint(second.checkpoint)["model"]
    for key, value in after.items():
        if key.startswith(("Logits.", "AuxLogits.")):
            continue
        assert torch.equal(value, start[key]), f"{key} changed although frozen"
    assert not torch.equal(
        after["AuxLogits.Conv2d_1b_1x1.BatchNorm.moving_mean"],
        start["AuxLogits.Conv2d_1b_1x1.BatchNorm.moving_mean"],
    )


def test_unknown_scopes_are_refused() -> None:
    with pytest.raises(Inception3Error, match="match no parameter"):
        restrict_training(_tiny(5, seed=0), ("Mixed_9z",))
    assert restrict_training(_tiny(5, seed=0), ("Mixed_7c",)) == sum(
        1 for n, _ in _tiny(5, seed=0).named_parameters() if n.startswith("Mixed_7c.")
    )


def test_fine_tuning_without_a_checkpoint_to_start_from_is_refused(shards: Path, tmp_path: Path) -> None:
    with pytest.raises(Inception3Error, match="give --init-from"):
        train(tiny_config(fine_tune=True), shards, tmp_path / "run", out=io.StringIO())
    assert not (tmp_path / "run").exists()
