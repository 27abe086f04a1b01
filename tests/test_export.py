"""Export: ONNX, TorchScript and safetensors files reproduce the PyTorch network's logits."""

from __future__ import annotations

import json
import os
import stat

import onnxruntime
import pytest
import torch
from evalfixtures import CLASSES, write_checkpoint
from safetensors import safe_open
from safetensors.torch import load_file

from inception3.cli import main
from inception3.errors import Inception3Error
from inception3.export import export_checkpoint
from inception3.weights import load_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("run"), 10, seed=1, ema_seed=2)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(3, 3, 75, 75, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.fixture(scope="module")
def ema_logits(checkpoint, images) -> torch.Tensor:
    model, _ = load_model(checkpoint)
    with torch.no_grad():
        return model(images)


@pytest.mark.smoke
def test_onnx_matches_pytorch_with_any_batch_size(checkpoint, images, ema_logits, tmp_path):
    path = export_checkpoint(checkpoint, "onnx", tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"images": images.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), ema_logits, atol=1e-4, rtol=0)
    (one,) = session.run(["logits"], {"images": images[:1].numpy()})
    torch.testing.assert_close(torch.from_numpy(one), ema_logits[:1], atol=1e-4, rtol=0)
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["class_names"]) == list(CLASSES)
    assert metadata["eval_preprocessing"] == "inception"


@pytest.mark.smoke
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_matches_pytorch(checkpoint, images, ema_logits, tmp_path):
    path = export_checkpoint(checkpoint, "torchscript", tmp_path / "model.pt")
    extra = {"class_names.json": "", "eval_preprocessing.txt": ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), ema_logits, atol=1e-4, rtol=0)
    assert json.loads(extra["class_names.json"]) == list(CLASSES)
    assert extra["eval_preprocessing.txt"] == b"inception"  # extra files come back as bytes


def test_safetensors_holds_the_ema_weights_by_default_and_raw_on_request(checkpoint, tmp_path):
    ema_model, _ = load_model(checkpoint)
    raw_model, _ = load_model(checkpoint, use_ema=False)
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(checkpoint),
                "--format",
                "safetensors",
                "--output",
                str(tmp_path / "ema.safetensors"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(checkpoint),
                "--format",
                "safetensors",
                "--no-ema",
                "--output",
                str(tmp_path / "raw.safetensors"),
            ]
        )
        == 0
    )
    ema, raw = load_file(tmp_path / "ema.safetensors"), load_file(tmp_path / "raw.safetensors")
    key = "Conv2d_1a_3x3.weight"
    assert torch.equal(ema[key], ema_model.state_dict()[key])
    assert torch.equal(raw[key], raw_model.state_dict()[key])
    assert not torch.equal(ema[key], raw[key])
    with safe_open(tmp_path / "ema.safetensors", "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["class_names"]) == list(CLASSES)
    assert json.loads(meta["model_config"])["depth_multiplier"] == 0.25
    assert meta["eval_preprocessing"] == "inception"


def test_an_exported_safetensors_file_predicts_like_its_checkpoint(
    checkpoint, images, ema_logits, tmp_path, capsys
):
    exported = tmp_path / "model.safetensors"
    assert (
        main(
            ["export", "--checkpoint", str(checkpoint), "--format", "safetensors", "--output", str(exported)]
        )
        == 0
    )
    model, meta = load_model(exported)
    assert meta.class_names == tuple(CLASSES) and meta.ema and model.config.image_size == 75
    with torch.no_grad():
        assert torch.equal(model(images), ema_logits)
    (tmp_path / "broken.safetensors").write_bytes(b"not safetensors")
    capsys.readouterr()
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(tmp_path / "broken.safetensors"),
                "--format",
                "onnx",
                "--output",
                str(tmp_path / "model.onnx"),
            ]
        )
        == 2
    )
    assert "broken.safetensors: not a readable safetensors file" in capsys.readouterr().err


def test_unknown_format_and_missing_checkpoint_are_user_errors(checkpoint, tmp_path, capsys):
    with pytest.raises(Inception3Error, match="choose one of onnx, torchscript, safetensors"):
        export_checkpoint(checkpoint, "tflite", tmp_path / "m.bin")
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(tmp_path / "missing.pt"),
                "--format",
                "onnx",
                "--output",
                str(tmp_path / "m.onnx"),
            ]
        )
        == 2
    )
    assert "missing.pt" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def _export(checkpoint, output, *extra: str) -> list[str]:
    return [
        "export",
        "--checkpoint",
        str(checkpoint),
        "--format",
        "safetensors",
        "--output",
        str(output),
        *extra,
    ]


def test_export_never_writes_over_its_own_checkpoint(checkpoint, tmp_path, capsys):
    original = checkpoint.read_bytes()
    (tmp_path / "hard.pt").hardlink_to(checkpoint)
    (tmp_path / "soft.pt").symlink_to(checkpoint)
    spellings = [
        checkpoint,
        checkpoint.parent / ".." / checkpoint.parent.name / checkpoint.name,
        tmp_path / "hard.pt",
        tmp_path / "soft.pt",
    ]
    for output in spellings:
        for force in ((), ("--force",)):
            capsys.readouterr()
            assert main(_export(checkpoint, output, *force)) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "is the checkpoint being exported" in err, err
            assert "choose another --output" in err
    assert checkpoint.read_bytes() == original


def test_an_existing_output_is_replaced_only_with_force(checkpoint, tmp_path, capsys):
    output = tmp_path / "model.safetensors"
    output.write_bytes(b"someone's file")
    assert main(_export(checkpoint, output)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{output}: already exists; pass --force to replace it" in err
    assert output.read_bytes() == b"someone's file"
    assert main(_export(checkpoint, output, "--force")) == 0
    assert load_file(output).keys() == load_model(checkpoint)[0].state_dict().keys()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_exported_files_get_the_mode_any_new_file_gets(checkpoint, tmp_path, umask):
    old = os.umask(umask)
    try:
        path = export_checkpoint(checkpoint, "safetensors", tmp_path / "model.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_other_projects_weights_export_with_their_preprocessing(tmp_path, capsys):
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    source = tmp_path / "inception_v3_google-0cc3c7bd.pth"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), source)
    exported = tmp_path / "torchvision.safetensors"
    argv = ["--format", "safetensors", "--output", str(exported)]
    assert main(["export", "--checkpoint", str(source), "--weights-format", "torchvision", *argv]) == 0
    with safe_open(exported, "pt") as f:
        assert f.metadata()["eval_preprocessing"] == "torchvision"
    assert load_model(exported)[1].eval_preprocessing == "torchvision"  # read back, it travels on
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(source), "--weights-format", "keras", *argv, "--force"]) == 2
    assert "keras" in capsys.readouterr().err
