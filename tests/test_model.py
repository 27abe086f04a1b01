"""The network: shapes and names of the original, initialisation, and the modern execution paths."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from inception3 import Inception3Error
from inception3.model import (
    END_POINTS,
    ORIGINAL_END_POINT_NAMES,
    BatchNorm,
    InceptionOutputs,
    InceptionV3,
    count_parameters,
    parameter_groups,
    slim_to_torch_key,
)


def tiny(**kwargs) -> InceptionV3:
    return InceptionV3(
        num_classes=kwargs.pop("num_classes", 5), depth_multiplier=0.25, image_size=75, **kwargs
    )


@pytest.fixture(scope="module")
def full_end_points() -> dict[str, tuple[int, ...]]:
    torch.manual_seed(0)
    model = InceptionV3().eval()
    with torch.no_grad():
        points = model.end_points(torch.randn(1, 3, 299, 299))
    return {name: tuple(t.shape) for name, t in points.items()}


def test_end_points_at_299_have_the_original_shapes(full_end_points):
    expected = {
        "Conv2d_1a_3x3": (32, 149, 149),
        "Conv2d_2a_3x3": (32, 147, 147),
        "Conv2d_2b_3x3": (64, 147, 147),
        "MaxPool_3a_3x3": (64, 73, 73),
        "Conv2d_3b_1x1": (80, 73, 73),
        "Conv2d_4a_3x3": (192, 71, 71),
        "MaxPool_5a_3x3": (192, 35, 35),
        "Mixed_5b": (256, 35, 35),
        "Mixed_5c": (288, 35, 35),
        "Mixed_5d": (288, 35, 35),
        "Mixed_6a": (768, 17, 17),
        "Mixed_6b": (768, 17, 17),
        "Mixed_6c": (768, 17, 17),
        "Mixed_6d": (768, 17, 17),
        "Mixed_6e": (768, 17, 17),
        "Mixed_7a": (1280, 8, 8),
        "Mixed_7b": (2048, 8, 8),
        "Mixed_7c": (2048, 8, 8),
        "AuxLogits": (1000,),
        "PreLogits": (2048,),
        "Logits": (1000,),
        "Predictions": (1000,),
    }
    assert list(full_end_points) == list(END_POINTS)
    assert {name: shape[1:] for name, shape in full_end_points.items()} == expected


def test_final_endpoint_stops_early():
    model = tiny().eval()
    points = model.end_points(torch.randn(2, 3, 75, 75), final_endpoint="Mixed_6a")
    assert list(points) == list(END_POINTS[: END_POINTS.index("Mixed_6a") + 1])
    with pytest.raises(Inception3Error, match="unknown end point"):
        model.end_points(torch.randn(2, 3, 75, 75), final_endpoint="Mixed_9z")


def test_original_end_point_names_map_onto_slim_names():
    assert set(ORIGINAL_END_POINT_NAMES.values()) <= set(END_POINTS)
    assert ORIGINAL_END_POINT_NAMES["mixed_8x8x2048b"] == "Mixed_7c"
    assert ORIGINAL_END_POINT_NAMES["conv0"] == "Conv2d_1a_3x3"


@pytest.mark.smoke
def test_75x75_input_works_in_training_mode_with_aux_head():
    for model in (tiny(), InceptionV3(num_classes=5, depth_multiplier=0.25)):
        out = model.train()(torch.randn(2, 3, 75, 75))
        assert isinstance(out, InceptionOutputs)
        assert out.logits.shape == out.aux_logits.shape == (2, 5)
    assert tiny().AuxLogits.conv_name == "Conv2d_2a_1x1"  # TF-Slim's reduced kernel at 75×75


def test_larger_than_built_input_still_works():
    out = tiny().train()(torch.randn(1, 3, 160, 140))
    assert out.logits.shape == (1, 5) and out.aux_logits.shape == (1, 5)


def test_too_small_input_is_a_clear_error():
    with pytest.raises(Inception3Error, match="at least 75"):
        tiny().eval()(torch.randn(1, 3, 74, 80))


def test_eval_returns_logits_and_is_deterministic():
    model = tiny().eval()
    x = torch.randn(2, 3, 75, 75)
    with torch.no_grad():
        a, b = model(x), model(x)
    assert isinstance(a, torch.Tensor) and a.shape == (2, 5)
    assert torch.equal(a, b)


def test_depth_multiplier_scales_channels_and_respects_min_depth():
    half = InceptionV3(num_classes=5, depth_multiplier=0.5, image_size=75).eval()
    points = half.end_points(torch.randn(1, 3, 75, 75), final_endpoint="Mixed_7c")
    assert points["Conv2d_1a_3x3"].shape[1] == 16  # max(int(32 * 0.5), 16)
    assert points["Conv2d_4a_3x3"].shape[1] == 96
    assert points["Mixed_5b"].shape[1] == 128
    assert points["Mixed_7c"].shape[1] == 1024
    small = InceptionV3(num_classes=5, depth_multiplier=0.1, image_size=75)
    assert small.Conv2d_1a_3x3.weight.shape[0] == 16  # int(3.2) raised to min_depth
    assert small.Mixed_5b.Branch_3.Conv2d_0b_1x1.weight.shape[0] == 16


def test_parameter_count_matches_the_derivation_in_the_docstring():
    assert count_parameters(InceptionV3(aux_logits=False)) == 23_817_352
    assert count_parameters(InceptionV3()) == 27_143_152


def test_parameter_count_equals_torchvision_without_its_gammas():
    reference = torchvision.models.inception_v3(weights=None, init_weights=False, aux_logits=True)
    gammas = sum(m.weight.numel() for m in reference.modules() if isinstance(m, nn.BatchNorm2d))
    assert count_parameters(InceptionV3()) == count_parameters(reference) - gammas


def test_initialisation_is_truncated_normal_with_std_point_one():
    torch.manual_seed(0)
    model = InceptionV3()
    weight = model.Mixed_6b.Branch_0.Conv2d_0a_1x1.weight  # 192·768 values
    assert weight.std().item() == pytest.approx(0.1 * 0.8796, rel=0.02)
    assert weight.abs().max().item() <= 0.2
    aux = model.AuxLogits.Conv2d_2a_5x5.weight
    assert aux.abs().max().item() <= 0.02
    assert aux.std().item() == pytest.approx(0.01 * 0.8796, rel=0.02)
    assert model.AuxLogits.Conv2d_2b_1x1.weight.abs().max().item() <= 0.002
    assert torch.count_nonzero(model.Logits.Conv2d_1c_1x1.bias) == 0


def test_batch_norm_has_beta_only_with_the_original_decay_and_epsilon():
    bn = tiny().Conv2d_1a_3x3.BatchNorm
    assert [name for name, _ in bn.named_parameters()] == ["beta"]
    assert bn.decay == 0.9997
    assert bn.epsilon == 0.001


def test_every_batch_norm_takes_the_configs_batch_norm_fields():
    model = tiny(batch_norm_decay=0.99, batch_norm_epsilon=1e-5, batch_norm_zero_debias=False)
    norms = [m for m in model.modules() if isinstance(m, BatchNorm)]
    assert len(norms) == 96  # 94 convolutions in the trunk, two in the aux head
    assert {(bn.decay, bn.epsilon, bn.zero_debias) for bn in norms} == {(0.99, 1e-5, False)}


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (8, 3, 1, 1)], ids=["4x5x5", "8x1x1"])
def test_moving_statistics_are_tensorflows_zero_debiased_average_of_the_batch_moments(shape):
    """TF-Slim's batch norm takes `mean, variance = tf.nn.moments(x, [0, 1, 2])`: the mean, and the mean
    squared deviation from it over the N·H·W values of a channel (divided by N·H·W, not N·H·W − 1), and
    feeds each to `assign_moving_average(zero_debias=True)`: biased_t = d·biased_(t-1) + (1-d)·value_t
    from 0, moving = biased_t / (1 - d^t). On 1×1 maps of 8 images (the aux head, Mixed_7 at 75 px) the
    unbiased variance would be 8/7 of it."""
    decay = 0.9
    bn = BatchNorm(3, decay, 0.001).train()
    biased_mean, biased_var = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    for t in range(1, 6):
        x = torch.randn(*shape, generator=generator) * t + t
        bn(x)
        values = x.double().permute(1, 0, 2, 3).reshape(3, -1)  # a channel's N·H·W values
        count = values.shape[1]
        mean = values.sum(1) / count
        variance = ((values - mean[:, None]) ** 2).sum(1) / count
        biased_mean = decay * biased_mean + (1 - decay) * mean
        biased_var = decay * biased_var + (1 - decay) * variance
        torch.testing.assert_close(
            bn.moving_mean.double(), biased_mean / (1 - decay**t), rtol=1e-5, atol=1e-6
        )
        torch.testing.assert_close(
            bn.moving_variance.double(), biased_var / (1 - decay**t), rtol=1e-5, atol=1e-6
        )
    assert int(bn.num_batches_tracked) == 5


def test_moving_statistics_without_debiasing_climb_from_zero_and_one():
    bn = BatchNorm(3, 0.9, 0.001, zero_debias=False).train()
    x = torch.randn(4, 3, 5, 5) + 10.0
    bn(x)
    torch.testing.assert_close(bn.moving_mean, 0.1 * x.mean(dim=(0, 2, 3)))


def test_statistics_loaded_without_a_count_are_continued_not_replaced():
    """Other projects' weights and older checkpoints carry no count: the first batch must not replace them."""
    bn = BatchNorm(3, 0.9, 0.001)
    state = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    state["moving_mean"] = torch.full((3,), 5.0)
    bn.load_state_dict(state)
    bn.train()(torch.zeros(4, 3, 5, 5))
    torch.testing.assert_close(bn.moving_mean, torch.full((3,), 4.5))  # 0.9 · 5 + 0.1 · 0


def test_slim_variable_names_map_to_state_dict_keys_by_rule():
    keys = set(InceptionV3().state_dict())
    for name in (
        "InceptionV3/Conv2d_1a_3x3/weights",
        "InceptionV3/Mixed_5b/Branch_1/Conv2d_0b_5x5/BatchNorm/beta",
        "InceptionV3/Mixed_5c/Branch_1/Conv_1_0c_5x5/BatchNorm/moving_mean",
        "InceptionV3/Mixed_7b/Branch_1/Conv2d_0b_3x1/weights",
        "InceptionV3/Mixed_7c/Branch_1/Conv2d_0c_3x1/BatchNorm/moving_variance",
        "InceptionV3/AuxLogits/Conv2d_2a_5x5/weights",
        "InceptionV3/AuxLogits/Conv2d_2b_1x1/biases",
        "InceptionV3/Logits/Conv2d_1c_1x1/weights:0",
    ):
        assert slim_to_torch_key(name) in keys, name


def test_weight_decay_goes_to_conv_and_logits_weights_only():
    model = tiny()
    decay, no_decay = parameter_groups(model, 4e-5)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 4e-5 and no_decay["weight_decay"] == 0.0
    assert all(names[id(p)].endswith(".weight") for p in decay["params"])
    assert {names[id(p)].rsplit(".", 1)[1] for p in no_decay["params"]} == {"beta", "bias"}
    assert len(decay["params"]) + len(no_decay["params"]) == len(names)


def test_a_training_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = tiny(dropout_keep_prob=1.0).train()
    x, y = torch.randn(8, 3, 75, 75), torch.arange(8) % 5
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loss() -> torch.Tensor:
        out = model(x)
        return nn.functional.cross_entropy(out.logits, y) + 0.4 * nn.functional.cross_entropy(
            out.aux_logits, y
        )

    first = loss()
    for _ in range(5):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    assert loss().item() < first.item()


@pytest.mark.smoke
def test_channels_last_and_bf16_autocast_match_fp32():
    torch.manual_seed(0)
    model = tiny().eval()
    x = torch.randn(2, 3, 75, 75)
    with torch.no_grad():
        reference = model(x)
        cl = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    torch.testing.assert_close(cl, reference, rtol=1e-4, atol=1e-4)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), reference, rtol=0.1, atol=0.1)


def test_compiles_as_one_graph():
    model = tiny().eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(2, 3, 75, 75)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


@pytest.mark.smoke
def test_torch_export_gives_the_same_logits():
    model = tiny().eval()
    x = torch.randn(2, 3, 75, 75)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))
