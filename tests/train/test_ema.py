"""The moving average of weights and batch-norm statistics, with TF's num_updates warm-up."""

from __future__ import annotations

import pytest
import torch

from inception3.model import InceptionV3
from inception3.train.ema import ExponentialMovingAverage


def test_decay_warms_up_as_tensorflows_num_updates() -> None:
    ema = ExponentialMovingAverage(torch.nn.Linear(1, 1), 0.9999)
    assert ema.decay_at(0) == pytest.approx(0.1)
    assert ema.decay_at(10) == pytest.approx(11 / 20)
    assert ema.decay_at(1000) == pytest.approx(1001 / 1010)
    assert ema.decay_at(10**6) == 0.9999


def test_average_covers_weights_and_batch_norm_statistics() -> None:
    torch.manual_seed(0)
    model = InceptionV3(num_classes=3, depth_multiplier=0.25, image_size=75).train()
    ema = ExponentialMovingAverage(model, 0.9999)
    assert set(ema.state_dict()) == set(model.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(torch.rand(4, 3, 75, 75) * 2 - 1)  # moves the batch-norm statistics
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    ema.update(model, step=3)
    decay = 4 / 13
    after = model.state_dict()
    for key in (
        "Conv2d_1a_3x3.weight",
        "Conv2d_1a_3x3.BatchNorm.beta",
        "Conv2d_1a_3x3.BatchNorm.moving_mean",
        "Mixed_7c.Branch_0.Conv2d_0a_1x1.BatchNorm.moving_variance",
    ):
        assert not torch.equal(after[key], before[key])
        expected = before[key] - (1 - decay) * (before[key] - after[key])
        torch.testing.assert_close(ema.state_dict()[key], expected)


def test_averaged_weights_load_into_the_model_and_round_trip() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = ExponentialMovingAverage(model, 0.5)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    ema.update(model, step=10**6)
    other = ExponentialMovingAverage(model, 0.5)
    other.load_state_dict(ema.state_dict())
    for key, value in ema.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)
    assert torch.equal(ema.state_dict()["1.num_batches_tracked"], model[1].num_batches_tracked)
    copy = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    copy.load_state_dict(ema.state_dict())
