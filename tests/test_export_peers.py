"""Export to other projects' networks: each project loads the file itself and gives our logits.

torchvision's `inception_v3`, timm's `create_model("inception_v3")` and Keras 3's
`keras.applications.InceptionV3` (on its PyTorch backend) are full width only: the networks here are
full width at 75 px (the smallest every peer takes), 5 classes, with random weights and batch-norm
statistics, built on the meta device and filled (a truncated-normal initialisation of 24M weights
is slow on two cores).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported: its default needs TensorFlow

import numpy as np
import pytest
import timm
import torch
from evalfixtures import randomize_statistics, write_checkpoint, write_image
from safetensors.torch import load_file
from timm.models._hub import save_config_for_hf
from tinycheckpoints import checkpoint_state
from torch import nn
from torchvision.models import inception_v3

from inception3.cli import main
from inception3.cli_args import EXPORT_FORMATS
from inception3.export import CHECK_IMAGES, FORMATS, check_images
from inception3.model import InceptionV3
from inception3.run.checkpoint import save_checkpoint
from inception3.train.finetune import init_from
from inception3.weights import load_model
from inception3.weights.convert import with_pooling

keras = pytest.importorskip("keras", reason="keras is not installed (pip install keras h5py)")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' numpy-2 copy= notes

SIZE = 75
CLASSES = ("a", "b", "c", "d", "e")  # tinycheckpoints.checkpoint_state's names
TOLERANCE = 1e-4  # largest logit difference relative to the largest logit


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


def _fill(module: nn.Module, seed: int) -> nn.Module:
    """He-normal convolutions and classifiers, batch-norm gammas in [0.5, 1.5], the rest zero, statistics
    of unit variance: built on the meta device, nothing drawn twice."""
    generator = torch.Generator().manual_seed(seed)
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if value.dim() > 1:
                fan_in = value[0].numel()
                value.copy_(torch.randn(value.shape, generator=generator) * math.sqrt(2 / fan_in))
            elif name.endswith(("running_var", "moving_variance", "bn.weight")):
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
            elif value.is_floating_point():
                value.copy_(torch.randn(value.shape, generator=generator) * 0.2)
            else:
                value.zero_()
    return module.eval()


def _images(seed: int = 5) -> torch.Tensor:
    return torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(images)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A checkpoint of a full-width network trained here (TF-Slim's pooling), with its aux head."""
    with torch.device("meta"):
        model = InceptionV3(num_classes=len(CLASSES), image_size=SIZE)
    model = randomize_statistics(_fill(model, seed=0), seed=0)  # statistics of its own activations
    return save_checkpoint(tmp_path_factory.mktemp("run"), 10, checkpoint_state(model))


@pytest.fixture(scope="module")
def ours(trained) -> InceptionV3:
    return load_model(trained)[0]


def _loaded(build: Callable[[], nn.Module], path: Path) -> nn.Module:
    """The peer's own network, built without drawing its 24M initial weights (slow on two cores),
    taking the file's state dict with strict=True: every key it has, none it lacks, every shape."""
    with torch.device("meta"):
        model = build()
    model.load_state_dict(torch.load(path, weights_only=True), strict=True, assign=True)
    return model.eval()


def _export(capsys, checkpoint: Path, fmt: str, output: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["export", "--checkpoint", str(checkpoint), "--format", fmt, "--output", str(output), *extra])
    return code, capsys.readouterr().err


def _keras_model(classes: int):
    """keras.applications.InceptionV3 as the brief's users build it; the global random state put back."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    model = keras.applications.InceptionV3(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=classes, classifier_activation=None
    )
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])
    return model


def _keras_logits(model, images: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.asarray(model(images.permute(0, 2, 3, 1).numpy()).detach().cpu()))


def test_the_cli_offers_every_format_export_writes():
    assert EXPORT_FORMATS == FORMATS


def test_a_model_trained_here_goes_to_keras_exactly_and_comes_back(trained, ours, tmp_path, capsys):
    path = tmp_path / "model.weights.h5"
    code, err = _export(capsys, trained, "keras", path)
    assert code == 0, err
    assert "the aux head is left out: keras.applications.InceptionV3 has none" in err
    assert "not the same network" not in err  # Keras pools as TF-Slim does
    images = _images()
    want = _logits(ours, images)
    assert want.abs().max() > 1.0  # logits large enough for the tolerance to mean something
    model = _keras_model(len(CLASSES))
    model.load_weights(path)
    assert _relative(_keras_logits(model, images), want) < TOLERANCE
    back, meta = load_model(path)  # inception3 reads its own export with what it stored
    assert _relative(_logits(back, images), want) < 1e-6
    assert meta.class_names == CLASSES and meta.eval_preprocessing == "inception" and meta.ema
    assert back.config.image_size == SIZE and not back.config.aux_logits


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, text
    return float(match.group(1))


@pytest.mark.parametrize("fmt", ["torchvision", "timm"])
def test_a_model_trained_here_goes_to_torchvision_and_timm_with_the_difference_measured(
    trained, ours, tmp_path, capsys, fmt
):
    path = tmp_path / f"{fmt}.pth"
    code, err = _export(capsys, trained, fmt, path)
    assert code == 0, err
    builds = {
        "torchvision": lambda: inception_v3(num_classes=len(CLASSES), aux_logits=False, init_weights=False),
        "timm": lambda: timm.create_model("inception_v3", num_classes=len(CLASSES)),
    }
    peer = _loaded(builds[fmt], path)
    images = _images()
    # the peer's network is ours with the zero padding counted in the Mixed blocks' pools
    padded = with_pooling(ours, count_padding=True)
    assert _relative(_logits(peer, images), _logits(padded, images)) < TOLERANCE
    # the note states what the peer itself computes on the fixed images, and says why
    fixed = check_images(SIZE)
    theirs, mine = _logits(peer, fixed), _logits(ours, fixed)
    agree = int((theirs.argmax(1) == mine.argmax(1)).sum())
    gap = float((theirs - mine).abs().max())
    assert f"agrees on the top-1 class for {agree} of {CHECK_IMAGES}" in err
    assert _number(r"differ by up to ([0-9.e+-]+)", err) == pytest.approx(gap, rel=5e-3)  # 3 digits
    assert gap > 1e-3  # the difference is real, not rounding
    assert "pools over the zero padding too, TF-Slim's and inception3's" in err
    assert f"its 1x1 conv (for {SIZE}-px inputs) is not {fmt}'s 5x5" in err
    assert "class names and the evaluation preprocessing are not kept" in err
    # read back, the file is the peer's network: its logits, not the original's
    back, meta = load_model(path, weights_format=fmt)
    assert _relative(_logits(back, images), _logits(peer, images)) < TOLERANCE
    assert meta.eval_preprocessing == fmt


@pytest.fixture(scope="module")
def torchvision_weights(tmp_path_factory) -> tuple[Path, nn.Module]:
    """torchvision's network with its aux head, random weights, gammas and statistics, saved."""
    with torch.device("meta"):
        model = inception_v3(weights=None, num_classes=len(CLASSES), aux_logits=True, init_weights=False)
    model = _fill(model, seed=1)
    # statistics of its own activations (momentum 1 keeps the batch's), then logits of a few units
    aux, model.AuxLogits = model.AuxLogits, None  # its 5x5 pool does not fit a 75-px input's Mixed_6e
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 1.0
    with torch.no_grad():
        model.train()(_images(seed=6))
        model.fc.weight.mul_(20)
    model.AuxLogits = aux
    model.eval()
    path = tmp_path_factory.mktemp("torchvision") / "inception_v3.pth"
    torch.save(model.state_dict(), path)
    return path, model


def test_torchvision_weights_go_back_to_torchvision_exactly_with_the_aux_head(
    torchvision_weights, tmp_path, capsys
):
    source, original = torchvision_weights
    path = tmp_path / "again.pth"
    code, err = _export(capsys, source, "torchvision", path)
    assert code == 0, err
    assert "not the same network" not in err and "aux head" not in err
    peer = _loaded(lambda: inception_v3(num_classes=len(CLASSES), aux_logits=True, init_weights=False), path)
    state = peer.state_dict()
    images = _images()
    want = _logits(original, images)
    assert want.abs().max() > 1.0
    assert _relative(_logits(peer, images), want) < TOLERANCE
    assert torch.equal(state["AuxLogits.fc.weight"], original.state_dict()["AuxLogits.fc.weight"])
    assert torch.equal(state["Mixed_5b.branch1x1.bn.weight"], torch.ones(64))  # gamma folded in
    # the same weights in Keras are another network: Keras' pools leave the padding out
    code, err = _export(capsys, source, "keras", tmp_path / "model.weights.h5")
    assert code == 0, err
    assert "Keras's" not in err and "Keras' Mixed blocks average their 3x3 pools over the real pixels" in err
    back, meta = load_model(tmp_path / "model.weights.h5")  # read back: the network it came from
    assert meta.source == "torchvision" and meta.eval_preprocessing == "torchvision"
    assert _relative(_logits(back, images), want) < TOLERANCE


def test_timm_weights_go_back_to_timm_and_to_a_timm_folder_exactly(torchvision_weights, tmp_path, capsys):
    source, original = torchvision_weights
    path = tmp_path / "timm.pth"
    code, err = _export(capsys, source, "timm", path, "--weights-format", "timm")
    assert code == 0, err
    assert "not the same network" not in err and "build timm's model with aux_logits=True" in err
    peer = _loaded(lambda: timm.create_model("inception_v3", num_classes=len(CLASSES), aux_logits=True), path)
    peer.aux_logits = False  # timm runs its aux head in eval mode too: its 5x5 pool needs 299 px
    images = _images()
    want = _logits(original, images)
    assert _relative(_logits(peer, images), want) < TOLERANCE
    folder = tmp_path / "hf"
    code, err = _export(capsys, source, "hf", folder, "--weights-format", "timm")
    assert code == 0, err
    assert "not the same network" not in err and "the aux head is left out" in err
    # the folder holds the tensors timm just took, less the aux head (timm loads the folder below)
    tensors = load_file(folder / "model.safetensors")
    assert tensors.keys() == {k for k in peer.state_dict() if not k.startswith("AuxLogits.")}
    assert all(torch.equal(tensors[k], peer.state_dict()[k]) for k in tensors)
    back, meta = load_model(folder)
    assert meta.source == "timm" and meta.eval_preprocessing == "timm"
    assert _relative(_logits(back, images), want) < TOLERANCE


def test_a_timm_folder_loads_in_timm_and_comes_back_to_every_command(trained, ours, tmp_path, capsys):
    folder = tmp_path / "hf"
    code, err = _export(capsys, trained, "hf", folder)
    assert code == 0, err
    assert "timm's config cannot state the 'inception' preprocessing" in err
    assert "not the same network" in err
    images = _images()
    padded = _logits(with_pooling(ours, count_padding=True), images)
    by_folder = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert _relative(_logits(by_folder, images), padded) < TOLERANCE
    assert list(by_folder.pretrained_cfg["label_names"]) == list(CLASSES)
    data = timm.data.resolve_data_config({}, model=by_folder)
    assert data["input_size"] == (3, SIZE, SIZE) and tuple(data["mean"]) == (0.5, 0.5, 0.5)
    assert data["crop_pct"] == 0.875 and data["interpolation"] == "bilinear"
    overlay = {"file": str(folder / "model.safetensors"), "num_classes": len(CLASSES)}
    by_file = timm.create_model(
        "inception_v3", pretrained=True, pretrained_cfg_overlay=overlay, num_classes=len(CLASSES)
    ).eval()
    assert _relative(_logits(by_file, images), padded) < TOLERANCE
    # the keys timm's own save_config_for_hf writes for this network are all there
    reference = tmp_path / "timm-config.json"
    save_config_for_hf(by_file, reference, model_config={"label_names": list(CLASSES)})
    written, expected = json.loads((folder / "config.json").read_text()), json.loads(reference.read_text())
    assert set(expected) <= set(written)
    assert set(expected["pretrained_cfg"]) - {"tag", "license", "pool_size"} <= set(written["pretrained_cfg"])
    # inception3 reads the folder back as the network that was exported, and every command takes it
    back, meta = load_model(folder)
    assert _relative(_logits(back, images), _logits(ours, images)) < 1e-6
    assert meta.class_names == CLASSES and meta.eval_preprocessing == "inception" and meta.step == 10
    image = write_image(tmp_path / "a.jpg", seed=0)
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(folder), str(image), "--device", "cpu", "--top-k", "1"]) == 0
    assert set(capsys.readouterr().out.split()) & set(CLASSES)  # the top class, by the folder's name
    with torch.device("meta"):
        fresh = InceptionV3(num_classes=len(CLASSES), image_size=SIZE)
    fresh = fresh.to_empty(device="cpu")
    left = init_from(fresh, folder)
    assert all(key.startswith("AuxLogits.") for key in left)  # the folder has no aux head
    assert torch.equal(fresh.Conv2d_1a_3x3.weight, ours.Conv2d_1a_3x3.weight)


def test_what_a_peer_cannot_build_is_refused_before_anything_is_written(tmp_path, capsys):
    narrow = write_checkpoint(tmp_path / "run", 10)  # depth_multiplier 0.25
    for fmt, output in [
        ("torchvision", tmp_path / "m.pth"),
        ("timm", tmp_path / "m.pth"),
        ("keras", tmp_path / "m.weights.h5"),
        ("hf", tmp_path / "hf"),
    ]:
        code, err = _export(capsys, narrow, fmt, output)
        assert code == 2 and err.count("\n") == 1, err
        assert "is full width only, and this model has depth_multiplier 0.25" in err
        assert "export it as onnx, torchscript or safetensors instead" in err
        assert not output.exists()
    code, err = _export(capsys, narrow, "keras", tmp_path / "model.h5")
    assert code == 2 and "Keras' load_weights takes a weights file only by its .weights.h5 ending" in err


def test_an_existing_output_is_kept_unless_forced(trained, tmp_path, capsys):
    kept = tmp_path / "model.weights.h5"
    kept.write_bytes(b"someone's file")
    code, err = _export(capsys, trained, "keras", kept)
    assert code == 2 and f"{kept}: already exists; pass --force" in err
    assert kept.read_bytes() == b"someone's file"
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    code, err = _export(capsys, trained, "hf", folder)
    assert code == 2 and f"{folder / 'config.json'}: already exists; pass --force" in err
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]
    code, err = _export(capsys, trained, "hf", folder, "--force")
    assert code == 0, err
    assert json.loads((folder / "config.json").read_text())["architecture"] == "inception_v3"
    code, err = _export(capsys, folder, "hf", folder, "--force")  # never over the weights it reads
    assert code == 2 and "is the weights being exported" in err


def test_a_folder_that_is_not_a_model_folder_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    code = main(["predict", "--checkpoint", str(tmp_path / "run"), str(write_image(tmp_path / "a.jpg", 0))])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "a directory, but not a timm / Hugging Face model folder (no config.json" in err
    assert "a run keeps its checkpoints in RUN/checkpoints/" in err
