"""Predict: class names and probabilities of image files with the evaluation preprocessing."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import pytest
import torch
from evalfixtures import CLASSES, write_checkpoint

from inception3.cli import main
from inception3.predict import predict_each
from inception3.weights import load_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("run"), 10, seed=5, ema_seed=6)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 96×128 PNG (lossless, so the pixels are known exactly)."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(96, 128, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("images") / "photo.png"
    PIL.Image.fromarray(pixels).save(path)
    return path, pixels


def _tf1_resize_bilinear(image: torch.Tensor, size: int) -> torch.Tensor:
    """TF1's resize_bilinear(align_corners=False) by its definition: output pixel i samples i × in/out."""

    def grid(length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        source = torch.arange(size, dtype=torch.float64) * length / size
        lower = source.floor().long()
        return lower, (lower + 1).clamp(max=length - 1), source - lower

    (y0, y1, wy), (x0, x1, wx) = grid(image.shape[1]), grid(image.shape[2])
    rows = image[:, y0] * (1 - wy)[:, None] + image[:, y1] * wy[:, None]
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


def _expected_probabilities(checkpoint, pixels: np.ndarray) -> torch.Tensor:
    """The original's eval_image written out: TF central crop 0.875 (H // 16 a side), TF1 bilinear
    resize of the float image (unrounded), [-1, 1]."""
    model, _ = load_model(checkpoint)
    image = torch.from_numpy(pixels).permute(2, 0, 1).double()
    top, left = 96 // 16, 128 // 16
    resized = _tf1_resize_bilinear(image[:, top : 96 - top, left : 128 - left], 75).float()
    with torch.no_grad():
        return model((resized / 255 * 2 - 1)[None]).softmax(dim=1)[0]


def test_predict_gives_the_known_images_classes_and_probabilities(checkpoint, photo):
    path, pixels = photo
    expected = _expected_probabilities(checkpoint, pixels)
    (prediction,), unreadable = predict_each(checkpoint, [path], top_k=2)
    assert unreadable == []
    order = expected.argsort(descending=True)[:2].tolist()
    assert prediction.indices == tuple(order)
    assert prediction.classes == tuple(CLASSES[i] for i in order)
    assert prediction.probabilities == pytest.approx(expected[order].tolist(), abs=1e-5)


def test_cli_json_lists_every_image_with_top_k(checkpoint, photo, capsys):
    path, _ = photo
    assert (
        main(["predict", str(path), str(path), "--checkpoint", str(checkpoint), "--top-k", "3", "--json"])
        == 0
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in records] == [str(path), str(path)]
    assert sorted(records[0]["classes"]) == sorted(CLASSES)
    assert records[0]["probabilities"] == sorted(records[0]["probabilities"], reverse=True)
    assert sum(records[0]["probabilities"]) == pytest.approx(1.0, abs=1e-5)


def test_cli_text_shows_class_names_under_each_image(checkpoint, photo, capsys):
    path, _ = photo
    assert main(["predict", str(path), "--checkpoint", str(checkpoint), "--top-k", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{path}:"
    probability, name = lines[1].split()
    assert name in CLASSES and 0.0 < float(probability) <= 1.0


def test_device_option_runs_the_model_where_asked(checkpoint, photo, capsys, monkeypatch):
    path, _ = photo
    argv = ["predict", str(path), "--checkpoint", str(checkpoint), "--json"]
    assert main(argv) == 0
    default = json.loads(capsys.readouterr().out)
    assert main([*argv, "--device", "cpu"]) == 0
    on_cpu = json.loads(capsys.readouterr().out)  # the default is CUDA where there is one
    assert on_cpu["classes"] == default["classes"]
    assert on_cpu["probabilities"] == pytest.approx(default["probabilities"], abs=1e-4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([*argv, "--device", "cuda"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "no CUDA device is available" in err and "predict: --device cpu" in err


def test_an_unreadable_or_missing_image_is_a_one_line_error(checkpoint, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["predict", str(broken), "--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "broken.jpg" in err and len(err.strip().splitlines()) == 1
    assert main(["predict", str(tmp_path / "absent.png"), "--checkpoint", str(checkpoint)]) == 2
    assert "absent.png" in capsys.readouterr().err


def test_several_files_with_bad_ones_print_the_good_then_one_line_for_the_bad(
    checkpoint, photo, tmp_path, capsys
):
    path, _ = photo
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    argv = [str(path), str(broken), str(tmp_path / "absent.png"), str(tmp_path), str(path)]
    assert main(["predict", *argv, "--checkpoint", str(checkpoint), "--json"]) == 2
    out, err = capsys.readouterr()
    assert [json.loads(line)["image"] for line in out.splitlines()] == [str(path), str(path)]
    assert err.count("\n") == 1 and err.startswith(
        "inception3 predict: error: 3 of 5 images could not be read"
    )
    assert "the others are classified above" in err
    assert "broken.jpg: not a readable image" in err and "absent.png: no such image file" in err
    assert f"{tmp_path}: is a directory, not an image file" in err
    assert main(["predict", str(broken), str(tmp_path / "absent.png"), "--checkpoint", "nowhere.pt"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "2 of 2 images could not be read (none of them was classified)" in err


def test_preprocessing_option_overrides_the_weights_and_is_said_once(checkpoint, photo, capsys):
    path, pixels = photo
    argv = ["predict", str(path), "--checkpoint", str(checkpoint), "--json", "--top-k", "3"]
    assert main([*argv, "--preprocessing", "keras"]) == 0
    out, err = capsys.readouterr()
    assert err == (
        "inception3 predict: evaluation preprocessing: keras (whole image to 75x75 (nearest), no crop; "
        "as --preprocessing asks)\n"
    )
    model, _ = load_model(checkpoint)
    squashed = np.array(PIL.Image.fromarray(pixels).resize((75, 75), PIL.Image.Resampling.NEAREST))
    with torch.no_grad():
        expected = model(torch.from_numpy(squashed).permute(2, 0, 1)[None] / 127.5 - 1).softmax(1)[0]
    record = json.loads(out)
    assert record["indices"] == expected.topk(3).indices.tolist()
    assert record["probabilities"] == pytest.approx(expected.topk(3).values.tolist(), abs=1e-5)
    assert main(argv) == 0
    assert capsys.readouterr().err == ""  # inception3's own preprocessing goes without saying


def test_labels_file_renames_the_outputs_and_weights_format_is_checked(checkpoint, photo, tmp_path, capsys):
    path, _ = photo
    labels = tmp_path / "labels.txt"
    labels.write_text("fourmi\nabeille\nchat\n")
    argv = ["predict", str(path), "--checkpoint", str(checkpoint), "--json"]
    assert main([*argv, "--labels-file", str(labels)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["classes"] == [("fourmi", "abeille", "chat")[i] for i in record["indices"]]
    assert main([*argv, "--weights-format", "inception3"]) == 0
    capsys.readouterr()
    assert main([*argv, "--weights-format", "torchvision"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torchvision" in err
