"""Weight files: the one reader; torchvision, timm and TF-Slim weights give the same network."""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from tinycheckpoints import checkpoint_state, tiny_model
from torchvision.models import inception_v3

from inception3 import config
from inception3.errors import Inception3Error
from inception3.imagenet import imagenet_classes
from inception3.model import InceptionV3
from inception3.run.checkpoint import save_checkpoint
from inception3.weights import (
    WEIGHTS_FORMATS,
    convert_tf_slim,
    load_model,
    load_tf_slim,
    load_timm,
    load_torchvision,
    read_weights,
)
from inception3.weights.meta import WeightsMeta
from inception3.weights.registry import FORMATS, weights_format
from inception3.weights.safetensors import meta_from_metadata, to_metadata


@pytest.fixture(scope="module")
def torchvision_model() -> torch.nn.Module:
    """torchvision's Inception v3 with random weights and random, non-trivial batch norms."""
    torch.manual_seed(0)
    model = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.weight.data = torch.rand(n, generator=generator) * 2 - 0.5  # some negative gammas
            module.bias.data = torch.randn(n, generator=generator) * 0.1
            module.running_mean = torch.randn(n, generator=generator) * 0.1
            module.running_var = torch.rand(n, generator=generator) + 0.5
    return model.eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 83, 83, generator=torch.Generator().manual_seed(2)) * 2 - 1


@pytest.fixture(scope="module")
def expected(torchvision_model, images) -> torch.Tensor:
    with torch.no_grad():
        return torchvision_model(images)


def test_torchvision_weights_give_identical_logits(torchvision_model, images, expected):
    ours = load_torchvision(torchvision_model.state_dict())
    with torch.no_grad():
        got = ours(images)
    assert got.shape == (2, 1000)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_eval_and_predict_give_a_torchvision_files_logits_exactly(
    torchvision_model, images, expected, tmp_path
):
    path = tmp_path / "inception_v3_google.pth"
    torch.save(torchvision_model.state_dict(), path)
    model, meta = load_model(path)  # what eval, predict and export load
    assert meta.source == "torchvision"
    with torch.no_grad():
        torch.testing.assert_close(model(images), expected, atol=1e-5, rtol=0)


def test_tensorflow_pooling_changes_only_the_border_averages(torchvision_model, images, expected):
    tf_pooling = load_torchvision(torchvision_model.state_dict(), exact_pooling=False)
    with torch.no_grad():
        assert (tf_pooling(images) - expected).abs().max() > 1e-4


def test_sorted_safetensors_file_loads_the_same(torchvision_model, images, expected, tmp_path):
    path = tmp_path / "inception_v3.safetensors"
    state = {k: v.contiguous() for k, v in sorted(torchvision_model.state_dict().items())}
    save_file(state, path)
    ours = load_timm(path)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), expected, atol=1e-5, rtol=0)


def test_timm_tf_weights_with_background_class_lose_it(torchvision_model, images, expected):
    state = dict(torchvision_model.state_dict())
    state["fc.weight"] = torch.cat([torch.randn(1, 2048), state["fc.weight"]])
    state["fc.bias"] = torch.cat([torch.tensor([5.0]), state["fc.bias"]])
    for key in ("AuxLogits.fc.weight", "AuxLogits.fc.bias"):
        state[key] = torch.cat([state[key][:1], state[key]])
    ours = load_timm(state)
    assert ours.config.num_classes == 1000
    with torch.no_grad():
        torch.testing.assert_close(ours(images), expected, atol=1e-5, rtol=0)


def test_leftover_tensors_are_reported(torchvision_model):
    state = dict(torchvision_model.state_dict())
    state["extra.head.weight"] = torch.zeros(3)
    with pytest.raises(Inception3Error, match="extra.head.weight"):
        load_torchvision(state)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_torchvision(state, strict=False)
    assert any("extra.head.weight" in str(w.message) for w in caught)


def test_a_foreign_state_dict_is_refused():
    with pytest.raises(Inception3Error, match="not a torchvision Inception v3"):
        load_torchvision({"layer1.weight": torch.zeros(1)})


def _slim_name(key: str) -> str:
    parts = key.split(".")
    parts[-1] = {"weight": "weights", "bias": "biases"}.get(parts[-1], parts[-1])
    return "InceptionV3/" + "/".join(parts)


def _as_tf_slim(model: InceptionV3) -> dict[str, np.ndarray]:
    """The model's tensors as TF-Slim variables: HWIO kernels, a background class prepended."""
    variables = {}
    for key, value in model.state_dict().items():
        if key.startswith(("Logits.", "AuxLogits.Conv2d_2b_1x1.")):
            value = torch.cat([value[:1] * 0 + 9, value])
        array = value.numpy()
        variables[_slim_name(key)] = array.transpose(2, 3, 1, 0) if array.ndim == 4 else array
    return variables


def test_tf_slim_variables_map_by_name_and_drop_the_background(torchvision_model):
    model = load_torchvision(torchvision_model.state_dict(), exact_pooling=False)
    variables = _as_tf_slim(model)
    assert variables["InceptionV3/Logits/Conv2d_1c_1x1/weights"].shape == (1, 1, 2048, 1001)
    loaded = convert_tf_slim(variables)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    variables["global_step"] = np.int64(100)
    with pytest.raises(Inception3Error, match="global_step"):
        convert_tf_slim(variables)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed")
def test_tf_slim_checkpoint_without_tensorflow_says_what_to_install(tmp_path):
    with pytest.raises(Inception3Error, match="pip install tensorflow"):
        load_tf_slim(tmp_path / "inception_v3.ckpt")


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_a_pickle_carrying_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"fc.weight": _RunsCode()}, path)
    with pytest.raises(Inception3Error, match="weights-only"):
        read_weights(path)


def test_load_model_uses_the_average_by_default(tmp_path: Path) -> None:
    raw, averaged = tiny_model(seed=1), tiny_model(seed=2)
    path = save_checkpoint(tmp_path, 7, checkpoint_state(raw, averaged), final=True)
    model, meta = load_model(path)
    assert not model.training and meta.ema and meta.step == 7 and meta.final
    assert model.config.image_size == 75 and model.config.depth_multiplier == 0.25
    assert meta.class_names == ("a", "b", "c", "d", "e")
    for key, value in averaged.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    model, meta = load_model(path, use_ema=False)
    assert not meta.ema
    for key, value in raw.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_load_model_reads_a_plain_state_dict(tmp_path: Path) -> None:
    source = tiny_model(num_classes=7)
    path = tmp_path / "plain.pt"
    torch.save(source.state_dict(), path)
    model, meta = load_model(path)
    assert model.config.num_classes == 7 and model.config.depth_multiplier == 0.25
    assert meta.step == 0 and not meta.final
    x = torch.rand(2, 3, 75, 75) * 2 - 1
    assert torch.equal(model(x), source.eval()(x))


def test_imagenet_classes_ship_with_the_package_in_the_standard_order() -> None:
    classes = imagenet_classes()
    synsets = [synset for synset, _ in classes]
    assert len(classes) == 1000 and synsets == sorted(set(synsets))
    assert classes[0] == ("n01440764", "tench") and classes[-1] == ("n15075141", "toilet tissue")


def test_weights_of_1000_classes_without_names_get_imagenets(tmp_path: Path) -> None:
    path = tmp_path / "imagenet.pt"
    torch.save(InceptionV3(num_classes=1000, depth_multiplier=0.25, image_size=75).state_dict(), path)
    _, meta = load_model(path)
    assert meta.class_names[:2] == ("tench", "goldfish") and len(meta.class_names) == 1000
    torch.save(tiny_model(num_classes=7).state_dict(), path)
    assert load_model(path)[1].class_names is None  # 7 outputs: no names are made up


def test_tf_slim_variables_of_a_narrow_small_model_keep_its_width_and_aux_kernel() -> None:
    source = tiny_model(num_classes=7)
    heads = ("InceptionV3/Logits/", "InceptionV3/AuxLogits/Conv2d_2b_1x1/")
    variables = {k: v[..., 1:] if k.startswith(heads) else v for k, v in _as_tf_slim(source).items()}
    model = convert_tf_slim(dict(reversed(variables.items())))  # 7 classes: no background to drop
    assert model.config.depth_multiplier == 0.25 and model.config.num_classes == 7
    assert model.AuxLogits.kernel == source.AuxLogits.kernel == 1
    for key, value in source.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(model.state_dict()[key], value), key


def test_each_file_names_its_evaluation_preprocessing(torchvision_model, tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 3, checkpoint_state(tiny_model()), final=True)
    assert read_weights(path).meta.eval_preprocessing == "inception"
    stored = checkpoint_state(tiny_model()) | {"eval_preprocessing": "inception-tf2"}
    path = save_checkpoint(tmp_path / "stored", 3, stored, final=True)
    assert read_weights(path).meta.eval_preprocessing == "inception-tf2"  # the file's own wins
    plain = tmp_path / "plain.pt"
    torch.save(tiny_model().state_dict(), plain)
    assert read_weights(plain).meta.eval_preprocessing == "inception"
    tv = tmp_path / "tv.pt"
    torch.save(torchvision_model.state_dict(), tv)
    assert read_weights(tv).meta.eval_preprocessing == "torchvision"
    timm = read_weights(tv, weights_format="timm").meta  # timm keeps torchvision's names
    assert timm.source == "timm" and timm.eval_preprocessing == "timm"


def test_safetensors_are_recognised_by_their_header_not_their_name(tmp_path: Path) -> None:
    source = tiny_model(num_classes=7)
    path = tmp_path / "weights.bin"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    weights = read_weights(path)
    assert weights.meta.source == "safetensors"
    assert read_weights(path, weights_format="safetensors").meta.source == "safetensors"
    with pytest.raises(
        Inception3Error, match=r"format 'state-dict' was given, but the file is a safetensors"
    ):
        read_weights(path, weights_format="state-dict")


def test_a_format_the_contents_contradict_is_refused_naming_what_was_found(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save(tiny_model().state_dict(), plain)
    assert read_weights(plain, weights_format="state-dict").meta.source == "state dict"
    with pytest.raises(
        Inception3Error, match=r"'torchvision' was given, but the file is a PyTorch state dict"
    ):
        read_weights(plain, weights_format="torchvision")
    with pytest.raises(Inception3Error, match=r"'keras' was given, but the file is neither HDF5"):
        load_model(plain, weights_format="keras")
    hdf5 = tmp_path / "model.h5"
    hdf5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(Inception3Error, match=r"the file is Keras weights .* \('keras'\)"):
        read_weights(hdf5, weights_format="inception3")
    (tmp_path / "model.ckpt.index").write_bytes(b"")
    with pytest.raises(Inception3Error, match=r"the file is a TF-Slim .* \('tf-slim'\)"):
        read_weights(tmp_path / "model.ckpt", weights_format="keras")
    with pytest.raises(Inception3Error, match="unknown weights format 'onnx'; choose one of inception3, "):
        read_weights(plain, weights_format="onnx")
    assert WEIGHTS_FORMATS == (
        "inception3",
        "safetensors",
        "state-dict",
        "torchvision",
        "timm",
        "hf",
        "keras",
        "tf-slim",
    )


def test_the_registry_names_the_formats_weights_format_accepts_in_detection_order() -> None:
    assert tuple(FORMATS) == config.WEIGHTS_FORMATS
    for name in FORMATS:
        module = weights_format(name)
        assert callable(module.detect) and callable(module.read) and module.DESCRIPTION, name


def test_a_checkpoint_is_not_read_as_a_safetensors_file_but_an_export_is(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 3, checkpoint_state(tiny_model()), final=True)
    with pytest.raises(
        Inception3Error, match=r"the file is an inception3 checkpoint or export \('inception3'\)"
    ):
        read_weights(path, weights_format="safetensors")
    with pytest.raises(
        Inception3Error, match=r"the file is an inception3 checkpoint or export \('inception3'\)"
    ):
        read_weights(path, weights_format="state-dict")
    meta = WeightsMeta("inception3", step=3, class_names=("a", "b", "c", "d", "e"), ema=True)
    exported = tmp_path / "model.safetensors"
    state = {k: v.contiguous() for k, v in tiny_model().state_dict().items()}
    save_file(state, exported, metadata=to_metadata(meta, tiny_model().config))
    assert read_weights(exported, weights_format="safetensors").meta == meta
    assert read_weights(exported).meta == meta


def test_weights_meta_survives_the_safetensors_metadata_as_exported() -> None:
    meta = WeightsMeta("inception3", step=12, class_names=("x", "y"), ema=True, eval_preprocessing="timm")
    metadata = to_metadata(meta, tiny_model(num_classes=2).config)
    assert metadata["step"] == "12" and metadata["ema"] == "true" and metadata["class_names"] == '["x", "y"]'
    assert metadata["format"] == "inception3/1" and metadata["eval_preprocessing"] == "timm"
    assert meta_from_metadata(metadata) == meta
    assert meta_from_metadata({}) == WeightsMeta("inception3")
