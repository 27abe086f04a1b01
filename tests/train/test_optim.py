"""RMSProp as TensorFlow computes it, and the learning-rate schedules, against hand-written references."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from inception3.config import TrainConfig
from inception3.errors import Inception3Error
from inception3.train.optim import RMSPropTF, build_optimizer, decay_steps, learning_rate


def tf_rmsprop_reference(w, grads, lrs, decay, momentum, epsilon, weight_decay):
    """TensorFlow's ApplyRMSProp kernel in float64 numpy, with the L2 loss gradient added to g."""
    w = np.array(w, dtype=np.float64)
    ms, mom = np.ones_like(w), np.zeros_like(w)
    for g, lr in zip(grads, lrs, strict=True):
        g = g + weight_decay * w
        ms = ms + (g * g - ms) * (1.0 - decay)
        mom = mom * momentum + lr * g / np.sqrt(ms + epsilon)
        w = w - mom
    return w


def test_rmsprop_tf_matches_tensorflows_update_rule_across_a_learning_rate_change() -> None:
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3))
    grads = [rng.normal(scale=3.0, size=(4, 3)) for _ in range(6)]
    lrs = [0.1, 0.1, 0.1, 0.016, 0.016, 0.016]  # a staircase drop: TF applies lr inside the momentum
    expected = tf_rmsprop_reference(w0, grads, lrs, 0.9, 0.9, 1.0, 4e-5)
    param = torch.nn.Parameter(torch.tensor(w0))
    opt = RMSPropTF([param], lr=0.1, decay=0.9, momentum=0.9, epsilon=1.0, weight_decay=4e-5)
    for g, lr in zip(grads, lrs, strict=True):
        opt.param_groups[0]["lr"] = lr
        param.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(opt.state[param]["square_avg"] > 0, torch.ones(4, 3, dtype=torch.bool))


def test_rmsprop_tf_differs_from_pytorchs_rmsprop() -> None:
    """PyTorch starts the square average at 0 and puts epsilon outside the root: another first step."""
    ours = torch.nn.Parameter(torch.zeros(3))
    theirs = torch.nn.Parameter(torch.zeros(3))
    g = torch.tensor([0.5, -2.0, 4.0])
    a = RMSPropTF([ours], lr=0.1)
    b = torch.optim.RMSprop([theirs], lr=0.1, alpha=0.9, eps=1.0, momentum=0.9)
    for p, opt in ((ours, a), (theirs, b)):
        p.grad = g.clone()
        opt.step()
    expected = -0.1 * g / torch.sqrt(0.9 + 0.1 * g * g + 1.0)
    torch.testing.assert_close(ours.detach(), expected)
    assert not torch.allclose(ours.detach(), theirs.detach())


def test_rmsprop_tf_state_survives_a_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    p1 = torch.nn.Parameter(torch.randn(5))
    opt = RMSPropTF([p1], lr=0.1)
    p1.grad = torch.randn(5)
    opt.step()
    p2 = torch.nn.Parameter(p1.detach().clone())
    restored = RMSPropTF([p2], lr=0.1)
    restored.load_state_dict(copy.deepcopy(opt.state_dict()))  # as if read from a file
    g = torch.randn(5)
    for p, o in ((p1, opt), (p2, restored)):
        p.grad = g.clone()
        o.step()
    assert torch.equal(p1, p2)


def test_build_optimizer_picks_rmsprop_or_sgd_and_refuses_others() -> None:
    def params() -> list[dict]:
        return [{"params": [torch.nn.Parameter(torch.zeros(2))], "weight_decay": 0.0}]

    assert isinstance(build_optimizer(params(), TrainConfig()), RMSPropTF)
    sgd = build_optimizer(params(), TrainConfig(optimizer="sgd", momentum=0.5, learning_rate=0.2))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.5
    assert sgd.param_groups[0]["lr"] == 0.2
    with pytest.raises(Inception3Error, match="optimizer must be"):
        build_optimizer(params(), TrainConfig(optimizer="adam"))


def test_staircase_decay_follows_the_original_single_machine_numbers() -> None:
    cfg = TrainConfig()  # lr 0.1 x 0.16 every 30 epochs, batch 32
    examples = 1_281_167  # ImageNet's training set
    steps = int(examples / 32 * 30)
    assert decay_steps(cfg, examples) == steps == 1_201_094
    assert learning_rate(0, cfg, examples) == 0.1
    assert learning_rate(steps - 1, cfg, examples) == 0.1
    assert learning_rate(steps, cfg, examples) == pytest.approx(0.016)
    assert learning_rate(2 * steps + 5, cfg, examples) == pytest.approx(0.1 * 0.16**2)


def test_distributed_recipe_decays_every_two_epochs_of_the_global_batch() -> None:
    cfg = TrainConfig(
        learning_rate=0.045, num_epochs_per_decay=2.0, learning_rate_decay_factor=0.94, batch_size=64
    )
    assert decay_steps(cfg, 6400) == 200
    assert [learning_rate(s, cfg, 6400) for s in (199, 200, 400)] == pytest.approx([0.045, 0.0423, 0.039762])


def test_cosine_and_warmup() -> None:
    cfg = TrainConfig(lr_schedule="cosine", learning_rate=1.0, max_steps=100, warmup_steps=10)
    assert learning_rate(0, cfg, 1000) == pytest.approx(0.1 * 0.5 * (1 + math.cos(0.0)))
    assert learning_rate(9, cfg, 1000) == pytest.approx(0.5 * (1 + math.cos(math.pi * 9 / 100)))
    assert learning_rate(50, cfg, 1000) == pytest.approx(0.5)
    assert learning_rate(100, cfg, 1000) == pytest.approx(0.0)
    assert learning_rate(7, TrainConfig(lr_schedule="constant", learning_rate=0.3), 10) == 0.3
    with pytest.raises(Inception3Error, match="lr_schedule"):
        learning_rate(0, TrainConfig(lr_schedule="linear"), 10)
