"""The optimizers (RMSProp as TensorFlow computes it, AdamW, SGD), their parameter groups and the
learning-rate schedules, against hand-written references."""

from __future__ import annotations

import copy
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config

from inception3.config import ModelConfig, TrainConfig
from inception3.errors import Inception3Error
from inception3.model import InceptionV3
from inception3.run.checkpoint import load_checkpoint
from inception3.train import loop
from inception3.train.optim import (
    RMSPropTF,
    build_optimizer,
    decay_steps,
    layer_depths,
    learning_rate,
    param_groups,
    set_learning_rate,
)


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


def test_build_optimizer_picks_rmsprop_sgd_or_adamw_and_refuses_others() -> None:
    def params() -> list[dict]:
        return [{"params": [torch.nn.Parameter(torch.zeros(2))], "weight_decay": 0.0}]

    assert isinstance(build_optimizer(params(), TrainConfig()), RMSPropTF)
    sgd = build_optimizer(params(), TrainConfig(optimizer="sgd", momentum=0.5, learning_rate=0.2))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.5
    assert sgd.param_groups[0]["lr"] == 0.2
    adamw = build_optimizer(
        params(), TrainConfig(optimizer="adamw", adamw_beta1=0.8, adamw_beta2=0.99, adamw_epsilon=1e-6)
    )
    assert isinstance(adamw, torch.optim.AdamW)
    assert (adamw.param_groups[0]["betas"], adamw.param_groups[0]["eps"]) == ((0.8, 0.99), 1e-6)
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


def test_cosine_keeps_its_floor_through_warmup() -> None:
    cfg = TrainConfig(
        lr_schedule="cosine", learning_rate=1.0, min_learning_rate=0.1, max_steps=100, warmup_steps=10
    )
    assert learning_rate(0, cfg, 1000) == pytest.approx(
        0.1 + 0.9 * 0.1
    )  # a tenth of the way up from the floor
    assert learning_rate(50, cfg, 1000) == pytest.approx(0.1 + 0.9 * 0.5)
    assert learning_rate(100, cfg, 1000) == pytest.approx(0.1)
    assert learning_rate(500, cfg, 1000) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"min_learning_rate": 0.2, "learning_rate": 0.1, "lr_schedule": "cosine"},
            "must be below learning_rate",
        ),
        ({"nesterov": True}, "nesterov needs optimizer=sgd and momentum > 0"),
        ({"nesterov": True, "optimizer": "sgd", "momentum": 0.0}, "nesterov needs optimizer=sgd"),
        ({"layer_decay": 0.0}, "layer_decay must be"),
        ({"adamw_beta2": 1.0}, "adamw_beta2 must be"),
    ],
)
def test_contradicting_optimizer_keys_are_refused(values: dict, message: str) -> None:
    with pytest.raises(Inception3Error, match=message):
        TrainConfig(**values)


# --- RMSProp-TF's foreach form against the per-parameter equations -------------------------------
def rmsprop_tf_per_parameter(groups, state, decay, momentum, epsilon):
    """The module docstring's equations, written out tensor by tensor on copies (not in place)."""
    out = []
    for group in groups:
        for p in group["params"]:
            if p.grad is None:
                out.append(p.detach().clone())
                continue
            ms, mom = state.setdefault(p, (torch.ones_like(p), torch.zeros_like(p)))
            g = p.grad + group["weight_decay"] * p.detach()
            ms = decay * ms + (1.0 - decay) * g * g
            mom = momentum * mom + group["lr"] * g / torch.sqrt(ms + epsilon)
            state[p] = (ms, mom)
            out.append(p.detach() - mom)
    return out


def test_rmsprop_tf_foreach_form_equals_the_per_parameter_equations() -> None:
    """Two groups (L2 decay and none), tensors of several shapes, one never given a gradient, a
    learning-rate drop: every value after each of several steps within 1e-6."""
    torch.manual_seed(0)
    shapes = [(8, 3, 3, 3), (8,), (4, 8), (4,), (2, 2)]
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in shapes]
    groups = [
        {"params": [params[0], params[2], params[4]], "weight_decay": 0.1},
        {"params": [params[1], params[3]], "weight_decay": 0.0},
    ]
    opt = RMSPropTF(groups, lr=0.1, decay=0.9, momentum=0.9, epsilon=1.0)
    reference = [p.detach().clone().requires_grad_() for p in params]
    ref_groups = [
        {"params": [reference[i] for i in idx], "weight_decay": g["weight_decay"], "lr": 0.1}
        for idx, g in zip(([0, 2, 4], [1, 3]), groups, strict=True)
    ]
    ref_state: dict = {}
    for step, lr in enumerate([0.1, 0.1, 0.1, 0.016, 0.016]):
        grads = [torch.randn(shape) * 3.0 for shape in shapes]
        for p, r, g in zip(params, reference, grads, strict=True):
            p.grad, r.grad = (None, None) if p is params[4] else (g.clone(), g.clone())
        set_learning_rate(opt, lr)
        for group in ref_groups:
            group["lr"] = lr
        opt.step()
        expected = rmsprop_tf_per_parameter(ref_groups, ref_state, 0.9, 0.9, 1.0)
        with torch.no_grad():
            for r, value in zip([p for g in ref_groups for p in g["params"]], expected, strict=True):
                r.copy_(value)
        for p, r in zip(params, reference, strict=True):
            torch.testing.assert_close(p.detach(), r.detach(), rtol=0, atol=1e-6, msg=f"step {step}")
    assert params[4] not in opt.state  # never given a gradient: no state, unchanged
    assert set(opt.state[params[0]]) == {"square_avg", "momentum"}  # the layout checkpoints hold


# --- AdamW and SGD ---------------------------------------------------------------------------------
def test_adamw_decays_weights_decoupled_and_only_in_the_decayed_group() -> None:
    """With zero gradients Adam's step is 0, so the weights show the decay alone: w(1 - lr·wd)."""
    w, b = torch.nn.Parameter(torch.full((3,), 2.0)), torch.nn.Parameter(torch.full((3,), 2.0))
    groups = [{"params": [w], "weight_decay": 0.05}, {"params": [b], "weight_decay": 0.0}]
    opt = build_optimizer(groups, TrainConfig(optimizer="adamw", learning_rate=0.5))
    w.grad, b.grad = torch.zeros(3), torch.zeros(3)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3,), 2.0 * (1 - 0.5 * 0.05)))
    torch.testing.assert_close(b.detach(), torch.full((3,), 2.0))


def test_adamw_fused_kernel_equals_the_foreach_form() -> None:
    """build_optimizer runs AdamW fused where torch has the kernel: it must agree with foreach."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in [(8, 3, 3, 3), (8,), (16, 8)]]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    cfg = TrainConfig(optimizer="adamw", learning_rate=1e-2)
    ours = build_optimizer([{"params": params, "weight_decay": 0.05}], cfg)
    assert ours.defaults["fused"]
    foreach = torch.optim.AdamW([{"params": copies, "weight_decay": 0.05}], lr=1e-2, foreach=True)
    for _ in range(5):
        for p, c in zip(params, copies, strict=True):
            p.grad = torch.randn_like(p)
            c.grad = p.grad.clone()
        ours.step()
        foreach.step()
    for p, c in zip(params, copies, strict=True):
        torch.testing.assert_close(p.detach(), c.detach(), rtol=0, atol=1e-6)


def test_sgd_with_nesterov_follows_its_equations() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    cfg = TrainConfig(optimizer="sgd", nesterov=True, momentum=0.9, learning_rate=0.1)
    opt = build_optimizer([{"params": [p], "weight_decay": 0.01}], cfg)
    assert opt.param_groups[0]["nesterov"] and opt.defaults["foreach"]
    w, buf = p.detach().clone(), torch.zeros(2)
    for g in (torch.tensor([0.5, 1.0]), torch.tensor([-1.0, 2.0])):
        p.grad = g.clone()
        opt.step()
        d = g + 0.01 * w  # L2, added to the gradient
        buf = 0.9 * buf + d
        w = w - 0.1 * (d + 0.9 * buf)
    torch.testing.assert_close(p.detach(), w)


# --- layer-wise learning-rate decay ----------------------------------------------------------------
def tiny_model() -> InceptionV3:
    torch.manual_seed(0)
    return InceptionV3.from_config(ModelConfig(image_size=75, depth_multiplier=0.25, num_classes=5))


def test_layer_decay_scales_each_depth_and_keeps_the_weight_decay_split() -> None:
    model = tiny_model()
    cfg = TrainConfig(layer_decay=0.5, weight_decay=4e-5)
    groups = param_groups(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    scale = {names[id(p)]: g["lr_scale"] for g in groups for p in g["params"]}
    decay = {names[id(p)]: g["weight_decay"] for g in groups for p in g["params"]}
    assert sorted(scale) == sorted(names.values())  # every parameter once
    top = 13  # two stem layers, eleven Mixed blocks, the heads
    assert scale["Conv2d_1a_3x3.weight"] == scale["Conv2d_2b_3x3.weight"] == 0.5**top
    assert scale["Conv2d_3b_1x1.weight"] == scale["Conv2d_4a_3x3.BatchNorm.beta"] == 0.5 ** (top - 1)
    assert scale["Mixed_5b.Branch_0.Conv2d_0a_1x1.weight"] == 0.5 ** (top - 2)
    assert scale["Mixed_7c.Branch_0.Conv2d_0a_1x1.weight"] == 0.5
    assert scale["Logits.Conv2d_1c_1x1.bias"] == scale["AuxLogits.Conv2d_2b_1x1.weight"] == 1.0
    assert decay["Mixed_6e.Branch_1.Conv2d_0a_1x1.weight"] == 4e-5
    assert (
        decay["Mixed_6e.Branch_1.Conv2d_0a_1x1.BatchNorm.beta"] == decay["Logits.Conv2d_1c_1x1.bias"] == 0.0
    )
    assert max(layer_depths(model).values()) == top
    optimizer = build_optimizer(groups, cfg)
    set_learning_rate(optimizer, 0.2)
    assert sorted({g["lr"] for g in optimizer.param_groups}) == pytest.approx(
        [0.2 * 0.5**k for k in range(top, -1, -1)]
    )


def test_layer_decay_off_keeps_the_original_two_groups() -> None:
    model = tiny_model()
    groups = param_groups(model, TrainConfig())
    assert [g["weight_decay"] for g in groups] == [4e-5, 0.0] and all("lr_scale" not in g for g in groups)


def test_layer_decay_groups_survive_a_save_and_restore(tmp_path) -> None:
    cfg = TrainConfig(layer_decay=0.75, learning_rate=0.1)
    x = torch.randn(2, 3, 75, 75)

    def step(model: InceptionV3, optimizer: torch.optim.Optimizer) -> None:
        set_learning_rate(optimizer, 0.1)
        optimizer.zero_grad()
        logits, aux = model(x)
        (logits.sum() + aux.sum()).backward()
        optimizer.step()

    model = tiny_model()
    optimizer = build_optimizer(param_groups(model, cfg), cfg)
    step(model, optimizer)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "ckpt.pt")
    saved = torch.load(tmp_path / "ckpt.pt")
    restored = tiny_model()
    restored.load_state_dict(saved["model"])
    again = build_optimizer(param_groups(restored, cfg), cfg)
    again.load_state_dict(saved["optimizer"])
    assert [g["lr_scale"] for g in again.param_groups] == [g["lr_scale"] for g in optimizer.param_groups]
    torch.manual_seed(1)
    step(model, optimizer)
    torch.manual_seed(1)
    step(restored, again)
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_fine_tuning_recipe_resumes_bitwise_exactly(shards: Path, tmp_path: Path, monkeypatch) -> None:
    """AdamW with layer-wise decay (28 groups) and a cosine floor, stopped after step 2's checkpoint
    and resumed, ends where a straight run does: weights, averages, optimizer state and groups."""
    cfg = tiny_config(
        optimizer="adamw",
        layer_decay=0.7,
        lr_schedule="cosine",
        min_learning_rate=0.001,
        warmup_steps=1,
        max_steps=4,
        checkpoint_every=2,
    )
    straight = loop.train(cfg, shards, tmp_path / "straight", out=io.StringIO())
    real_step = loop.train_step

    def stop_at_step_3(*args, **kwargs):
        if args[4] == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", stop_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        loop.train(cfg, shards, tmp_path / "resumed", out=io.StringIO())
    monkeypatch.undo()
    out = io.StringIO()
    resumed = loop.train(cfg, shards, tmp_path / "resumed", out=out)
    assert "at step 2" in out.getvalue()
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert (
        len(a["optimizer"]["param_groups"]) == 28
        and a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    )
    for key in ("model", "ema"):
        assert all(torch.equal(a[key][name], b[key][name]) for name in a[key]), key
    for i, state in a["optimizer"]["state"].items():
        assert all(torch.equal(t, b["optimizer"]["state"][i][name]) for name, t in state.items())
