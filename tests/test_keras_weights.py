"""Keras' InceptionV3 weights in each file Keras writes give Keras' own logits.

Keras 3 runs here on its PyTorch backend (no TensorFlow): the model is `keras.applications.InceptionV3`
at 75×75 (the smallest it accepts), 5 classes, random weights and random batch-norm statistics.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported: its default needs TensorFlow

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras", reason="keras is not installed (pip install keras h5py)")
h5py = pytest.importorskip("h5py", reason="h5py is not installed (pip install h5py)")

from inception3.errors import Inception3Error  # noqa: E402
from inception3.model import InceptionV3  # noqa: E402
from inception3.train.finetune import init_from  # noqa: E402
from inception3.weights import WeightsMeta, load_model, read_weights  # noqa: E402
from inception3.weights.keras import creation_order, graph_order  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' numpy-2 copy= notes

SIZE = 75
TOLERANCE = 1e-4  # max abs difference of the logits (float32; 8.1e-6 measured, logits up to 11.7)


def _randomise(model: keras.Model, seed: int) -> None:
    """Non-trivial batch norms (beta, moving mean and variance) and a classifier with large logits."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.beta.shape[0]
            layer.set_weights([rng.normal(0, 0.1, n), rng.normal(0, 0.2, n), rng.uniform(0.3, 1.5, n)])
        elif isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * 20, rng.normal(0, 1, bias.shape)])


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory) -> Iterator[dict]:
    """One Keras model saved every way, with Keras' logits for random inputs in [-1, 1].

    The files (a third of a gigabyte) are deleted with the module.
    """
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    keras.utils.set_random_seed(0)  # seeds Python's, NumPy's and torch's global generators: put back
    model = keras.applications.InceptionV3(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=5, classifier_activation=None
    )
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])
    _randomise(model, seed=1)
    root = tmp_path_factory.mktemp("keras")
    files = {
        "weights.h5": root / "model.weights.h5",
        "keras": root / "model.keras",
        "whole.h5": root / "model.h5",
    }
    model.save_weights(files["weights.h5"])
    model.save(files["keras"])
    model.save(files["whole.h5"])  # Keras 3 still writes the legacy layout for a whole model
    images = np.random.default_rng(2).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    logits = np.asarray(model(images).detach().cpu())
    yield {"files": files, "images": images, "logits": logits, "model": model, "root": root}
    shutil.rmtree(root, ignore_errors=True)


def _our_logits(path: Path, images: np.ndarray, **kwargs) -> tuple[np.ndarray, InceptionV3, WeightsMeta]:
    model, meta = load_model(path, **kwargs)
    with torch.no_grad():
        logits = model(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
    return logits.numpy(), model, meta


@pytest.mark.parametrize("kind", ["weights.h5", "keras", "whole.h5"])
def test_each_keras_file_gives_keras_logits(keras_files, kind):
    got, model, meta = _our_logits(keras_files["files"][kind], keras_files["images"])
    want = keras_files["logits"]
    assert np.abs(want).max() > 1.0  # logits large enough for the tolerance to mean something
    assert np.abs(got - want).max() < TOLERANCE
    assert meta.source == "keras" and meta.eval_preprocessing == "keras"
    assert model.config.num_classes == 5 and not model.config.aux_logits
    assert model.config.batch_norm_epsilon == 0.001
    # the files with a model config say the input size; weights alone get the default
    assert model.config.image_size == (299 if kind == "weights.h5" else SIZE)


def _legacy_weights_only(whole: Path, out: Path) -> Path:
    """The layout of keras.applications' downloads, from a whole-model legacy file.

    As in `inception_v3_weights_tf_dim_ordering_tf_kernels.h5`: layer groups at the root, listed in the
    root's `layer_names` with `backend` and `keras_version`; each group's `weight_names` name its arrays
    "conv2d_1/kernel:0" (Keras 2 numbered from 1, and wrote the ":0").
    """

    def renamed(name: str) -> str:
        base, _, number = name.rpartition("_")
        if base in ("conv2d", "batch_normalization", "activation") and number.isdigit():
            return f"{base}_{int(number) + 1}"
        return f"{name}_1" if name in ("conv2d", "batch_normalization", "activation") else name

    with h5py.File(whole, "r") as source, h5py.File(out, "w") as target:
        weights = source["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in weights.attrs["layer_names"]]
        target.attrs["layer_names"] = np.array([renamed(n).encode() for n in names])
        target.attrs["backend"] = b"tensorflow"
        target.attrs["keras_version"] = b"2.1.2"
        for name in names:
            group = target.create_group(renamed(name))
            weight_names = []
            for weight in weights[name].attrs["weight_names"]:
                weight = weight.decode() if isinstance(weight, bytes) else str(weight)
                new = f"{renamed(name)}/{weight.split('/')[-1]}:0"
                group.create_dataset(new, data=np.asarray(weights[name][weight]))
                weight_names.append(new.encode())
            group.attrs["weight_names"] = np.array(weight_names)  # float64 when empty, as Keras wrote it
    return out


def test_keras_applications_legacy_download_layout(keras_files):
    path = _legacy_weights_only(keras_files["files"]["whole.h5"], keras_files["root"] / "legacy.h5")
    got, _, _ = _our_logits(path, keras_files["images"])
    assert np.abs(got - keras_files["logits"]).max() < TOLERANCE
    # Keras itself reads the hand-written file back into its zeroed model: the layout is Keras' own
    model = keras_files["model"]
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.load_weights(path)
    again = np.asarray(model(keras_files["images"]).detach().cpu())
    assert np.abs(again - keras_files["logits"]).max() < 1e-6


def test_keras3_file_without_layer_names_maps_by_graph_order(keras_files, tmp_path):
    path = shutil.copy(keras_files["files"]["weights.h5"], tmp_path / "unnamed.weights.h5")
    with h5py.File(path, "a") as f:
        for key in f["layers"]:
            variables = f["layers"][key].get("vars")
            if variables is not None and "name" in variables.attrs:
                del variables.attrs["name"]
    got, _, _ = _our_logits(Path(path), keras_files["images"])
    assert np.abs(got - keras_files["logits"]).max() < TOLERANCE


def test_graph_order_is_keras_model_layers_order(keras_files):
    """`graph_order` puts this model's layers where Keras' `model.layers` has their twins."""
    keras_convs = [
        layer.name for layer in keras_files["model"].layers if isinstance(layer, keras.layers.Conv2D)
    ]
    with torch.device("meta"):
        ours = InceptionV3(num_classes=5, aux_logits=False)
    made = {name: i for i, name in enumerate(creation_order(ours))}
    number = [int(name.rpartition("_")[2]) if "_" in name else 0 for name in keras_convs]
    assert [made[name] for name in graph_order(ours)] == [n - min(number) for n in number]


def test_a_wrong_kernel_shape_names_the_keras_layer(keras_files, tmp_path):
    path = shutil.copy(keras_files["files"]["weights.h5"], tmp_path / "bad.weights.h5")
    with h5py.File(path, "a") as f:
        kernels = [f[f"layers/{key}/vars"] for key in f["layers"] if key.startswith("conv2d")]
        variables = next(v for v in kernels if v["0"].shape[0] != v["0"].shape[1])
        kernel = np.asarray(variables["0"])
        del variables["0"]
        variables["0"] = np.swapaxes(kernel, 0, 1)  # 1×7 stored as 7×1
    with pytest.raises(Inception3Error, match=r"Keras layer conv2d_\d+ has shape"):
        read_weights(Path(path))


def test_notop_file_refused_for_classifying_but_starts_a_fine_tune(keras_files, tmp_path):
    notop = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    _randomise(notop, seed=3)
    path = tmp_path / "notop.weights.h5"
    notop.save_weights(path)
    weights = read_weights(path)
    assert not any(key.startswith("Logits.") for key in weights.state)
    assert weights.meta.include_top is False
    with pytest.raises(Inception3Error, match="without the classifier"):
        load_model(path)
    torch.manual_seed(0)
    model = InceptionV3(num_classes=3, aux_logits=False, image_size=SIZE)
    fresh_logits = model.Logits["Conv2d_1c_1x1"].weight.clone()
    left = init_from(model, path)
    assert left == ["Logits.Conv2d_1c_1x1.weight", "Logits.Conv2d_1c_1x1.bias"]
    assert torch.equal(model.Logits["Conv2d_1c_1x1"].weight, fresh_logits)
    first = notop.get_layer(index=1).get_weights()[0]  # the first conv2d, HWIO
    assert torch.equal(model.Conv2d_1a_3x3.weight, torch.from_numpy(first.transpose(3, 2, 0, 1)))


def test_a_keras_file_named_as_another_format_is_refused(keras_files):
    with pytest.raises(Inception3Error, match="file is Keras weights"):
        read_weights(keras_files["files"]["keras"], weights_format="torchvision")
    assert read_weights(keras_files["files"]["keras"], weights_format="keras").meta.source == "keras"
