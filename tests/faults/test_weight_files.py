"""Weight files of every format that are unusual or damaged: read right, or refused in one line (exit 2).

A float16 or bfloat16 file (safetensors or PyTorch, plain or an export with its metadata) gives the
float32 network a float32 file of the same values gives; a torchvision file whose classifier and
auxiliary classifier count different classes is refused naming both counts, as is such a state dict
of ours; a Keras HDF5 file with a layer (or a layer's weight) missing is refused naming it; a `.keras`
zip is read no further than a cap per member, however large its members are or say they are.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import save_file
from tinycheckpoints import tiny_model

from inception3.cli import main
from inception3.model import InceptionV3
from inception3.weights import keras
from inception3.weights.meta import WeightsMeta
from inception3.weights.safetensors import to_metadata

CLASSES = 5


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("image") / "image.jpg"
    pixels = np.random.default_rng(0).integers(0, 256, (80, 90, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """A depth-0.25 network whose logits differ from class to class."""
    model = tiny_model(CLASSES)
    with torch.no_grad():
        model.Logits.Conv2d_1c_1x1.weight.normal_(0, 1, generator=torch.Generator().manual_seed(1))
    return model.state_dict()


def _predict(capsys, checkpoint: Path, image: Path) -> tuple[int, str, str]:
    """`predict --json` on one image: exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(["predict", "--checkpoint", str(checkpoint), "--device", "cpu", "--json", str(image)])
    out, err = capsys.readouterr()
    return code, out, err


def _as(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def _write(state: dict[str, torch.Tensor], path: Path, kind: str) -> Path:
    if kind == "safetensors":
        save_file(state, path)
    elif kind == "export":  # what `export --format safetensors` writes, its metadata included
        config = tiny_model(CLASSES).config
        meta = WeightsMeta("inception3", class_names=tuple("abcde"), eval_preprocessing="inception")
        save_file(state, path, metadata=to_metadata(meta, config))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("kind", ["safetensors", "export", "state dict"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_give_the_float32_networks_predictions(
    state, image, tmp_path, capsys, kind, dtype
):
    half = _as(state, dtype)
    code, out, err = _predict(capsys, _write(half, tmp_path / f"half.{kind}", kind), image)
    assert code == 0 and err == "", err
    code, same, _ = _predict(capsys, _write(_as(half, torch.float32), tmp_path / f"full.{kind}", kind), image)
    assert code == 0
    assert json.loads(out)["probabilities"] == json.loads(same)["probabilities"]


def _refused(capsys, checkpoint: Path, image: Path) -> str:
    code, out, err = _predict(capsys, checkpoint, image)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"inception3 predict: error: {checkpoint}: ")
    return err


def test_a_torchvision_file_whose_heads_disagree_on_the_class_count(image, tmp_path, capsys):
    from torchvision.models import inception_v3

    with torch.device("meta"):  # only the shapes matter: no time spent on random weights
        model = inception_v3(weights=None, aux_logits=True, init_weights=False, num_classes=7)
        model.AuxLogits.fc = torch.nn.Linear(768, 10)
    path = tmp_path / "inception_v3.pth"
    torch.save({k: torch.zeros(v.shape, dtype=torch.float16) for k, v in model.state_dict().items()}, path)
    err = _refused(capsys, path, image)
    assert "fc has 7 outputs but the auxiliary classifier AuxLogits.fc has 10" in err


def test_a_state_dict_whose_heads_disagree_on_the_class_count(state, image, tmp_path, capsys):
    mixed = dict(state)
    mixed["AuxLogits.Conv2d_2b_1x1.weight"] = torch.zeros(
        3, *state["AuxLogits.Conv2d_2b_1x1.weight"].shape[1:]
    )
    mixed["AuxLogits.Conv2d_2b_1x1.bias"] = torch.zeros(3)
    err = _refused(capsys, _write(mixed, tmp_path / "mixed.safetensors", "safetensors"), image)
    assert f"Logits.Conv2d_1c_1x1.weight has {CLASSES} outputs but the auxiliary classifier" in err
    assert "AuxLogits.Conv2d_2b_1x1.weight has 3" in err


def _write_keras_h5(path: Path, *, leave_out: str | None = None) -> Path:
    """keras.applications' legacy HDF5 layout of a 75-px, 5-class InceptionV3 (Keras' full width), weights
    zero: a group per layer, its arrays in `weight_names`, the layers in the root's `layer_names`.

    `leave_out`: an HDF5 path (a layer's group, or one of its arrays) left out, still listed.
    """
    import h5py

    with torch.device("meta"):
        model = InceptionV3(num_classes=CLASSES, aux_logits=False, image_size=75)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    layers: dict[str, dict[str, tuple[int, ...]]] = {}
    for i, conv in enumerate(keras.creation_order(model), start=1):
        out, inputs, h, w = shapes[f"{conv}.weight"]
        layers[f"conv2d_{i}"] = {"kernel": (h, w, inputs, out)}
        layers[f"batch_normalization_{i}"] = dict.fromkeys(("beta", "moving_mean", "moving_variance"), (out,))
    layers["predictions"] = {"kernel": (2048, CLASSES), "bias": (CLASSES,)}
    with h5py.File(path, "w") as f:
        for name, arrays in layers.items():
            group = f.create_group(name)
            names = [f"{name}/{var}:0" for var in arrays]
            for array, shape in zip(names, arrays.values(), strict=True):
                group.create_dataset(array, data=np.zeros(shape, np.float32), compression="gzip")
            group.attrs["weight_names"] = [n.encode() for n in names]
        f.attrs["layer_names"] = [name.encode() for name in layers]
        if leave_out is not None:
            del f[leave_out]
    return path


@pytest.fixture(scope="module")
def keras_h5(tmp_path_factory) -> Path:
    return _write_keras_h5(tmp_path_factory.mktemp("keras") / "inception_v3.h5")


def test_a_whole_keras_file_predicts(keras_h5, image, capsys):
    code, out, err = _predict(capsys, keras_h5, image)
    assert code == 0 and json.loads(out)["indices"], err


@pytest.mark.parametrize(
    ("leave_out", "named"),
    [
        ("conv2d_5", "Keras layer conv2d_5, listed in layer_names, is missing"),
        ("batch_normalization_7/batch_normalization_7/moving_mean:0", "of Keras layer batch_normalization_7"),
    ],
)
def test_a_keras_file_with_a_layer_missing_names_it(image, tmp_path, capsys, leave_out, named):
    path = _write_keras_h5(tmp_path / "inception_v3.h5", leave_out=leave_out)
    err = _refused(capsys, path, image)
    assert named in err and "the file is incomplete" in err


def _write_keras_zip(path: Path, weights: Path, config: bytes) -> Path:
    """A `.keras` zip: `model.weights.h5` and `config.json` (deflated: padding costs little on disk)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(weights, "model.weights.h5")
        archive.writestr("config.json", config)
    return path


def test_a_keras_zip_is_read_no_further_than_a_cap_per_member(keras_h5, image, tmp_path, capsys, monkeypatch):
    within = b"{}".rjust(keras.MAX_CONFIG_BYTES)  # JSON may start with any amount of white space
    code, out, err = _predict(capsys, _write_keras_zip(tmp_path / "within.keras", keras_h5, within), image)
    assert code == 0 and json.loads(out)["indices"], err

    above = _write_keras_zip(tmp_path / "above.keras", keras_h5, b" " + within)
    assert above.stat().st_size < keras_h5.stat().st_size + (1 << 20)  # 16 MiB that take a few kB
    err = _refused(capsys, above, image)
    assert (
        f"config.json holds {keras.MAX_CONFIG_BYTES + 1:,} bytes, above the {keras.MAX_CONFIG_BYTES:,}" in err
    )

    monkeypatch.setattr(keras, "MAX_WEIGHTS_BYTES", 1 << 16)  # a whole gigabyte would take long to make
    err = _refused(capsys, _write_keras_zip(tmp_path / "weights.keras", keras_h5, b"{}"), image)
    assert f"model.weights.h5 holds {keras_h5.stat().st_size:,} bytes, above the {1 << 16:,}" in err
