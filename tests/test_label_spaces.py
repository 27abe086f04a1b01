"""Weights, data and class names meet in eval and predict: every count mismatch is resolved by rule
(and said) or refused in one line; label spaces never shift silently.

ImageNet-sized label spaces on tiny data: 1000 classes listed, three of them with images.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from evalfixtures import CLASSES, make_shards, write_checkpoint, write_image
from tinycheckpoints import checkpoint_state, tiny_model
from torchvision.models import inception_v3

from inception3.cli import main
from inception3.config import BuildConfig, EvalConfig
from inception3.data.augment import scale_to_unit
from inception3.data.build import build_dataset
from inception3.data.preprocess import decode, prepare
from inception3.errors import Inception3Error
from inception3.evaluate import EvalResult, evaluate_checkpoint
from inception3.imagenet import imagenet_classes
from inception3.run.checkpoint import save_checkpoint
from inception3.watch import watch
from inception3.weights import load_model

USED = (1, 207, 999)  # the ImageNet labels that get images: goldfish, golden retriever, toilet tissue
PER_CLASS = 1  # validation images per used class: the full-width network is slow on a CPU


def _imagenet_folders(root: Path) -> dict[int, list[Path]]:
    """root/<split>/<synset>/*.jpg for the USED classes (the other folders empty), and root/synsets.txt
    listing all 1000."""
    synsets = [synset for synset, _ in imagenet_classes()]
    (root / "synsets.txt").write_text("\n".join(synsets) + "\n")
    for split in ("train", "validation"):
        for synset in synsets:
            (root / split / synset).mkdir(parents=True)
    files: dict[int, list[Path]] = {}
    for n, label in enumerate(USED):
        for split in ("train", "validation"):
            for i in range(PER_CLASS):
                path = write_image(root / split / synsets[label] / f"{i}.jpg", seed=10 * n + i, height=90)
                if split == "validation":
                    files.setdefault(label, []).append(path)
    return files


def _build(root: Path, label_offset: int, name: str = "shards") -> Path:
    build_dataset(
        BuildConfig(
            root / "train",
            root / name,
            validation_dir=root / "validation",
            labels_file=root / "synsets.txt",
            train_shards=1,
            validation_shards=1,
            workers=1,
            progress=False,
            label_offset=label_offset,
        )
    )
    return root / name


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory) -> tuple[Path, dict[int, list[Path]]]:
    root = tmp_path_factory.mktemp("imagenet")
    return root, _imagenet_folders(root)


@pytest.fixture(scope="module")
def shards(imagenet) -> Path:
    """1000-class shards with 0-based labels (dataset.json)."""
    return _build(imagenet[0], 0)


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory) -> Iterator[Path]:
    """Weights in torchvision's layout and file name, 1000 classes, random (torchvision's default init).

    Deleted with the module (100 MB).
    """
    torch.manual_seed(0)
    model = inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path_factory.mktemp("hub") / "inception_v3_google-0cc3c7bd.pth"
    torch.save(model.state_dict(), path)
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def torchvision_loss(torchvision_file, imagenet) -> float:
    return _reference_loss(torchvision_file, imagenet[1], "torchvision")


def _scored_classes(result) -> set[str]:
    return {name for name, accuracy in result.per_class.items() if accuracy is not None}


def _reference_loss(weights: Path, files: dict[int, list[Path]], preprocessing: str, drop: int = 0) -> float:
    """Mean cross entropy of the validation images against their true 0-based ImageNet labels."""
    model, meta = load_model(weights)
    size = model.config.image_size
    paths = [path for label_paths in files.values() for path in label_paths]
    images = [prepare(decode(path.read_bytes(), preprocessing), size, preprocessing) for path in paths]
    labels = torch.tensor([label for label, ps in files.items() for _ in ps])
    with torch.no_grad():
        logits = model(scale_to_unit(torch.stack(images)))[:, drop:]
    return F.cross_entropy(logits, labels).item()


def _evaluate(checkpoint: Path, data: Path, **options) -> tuple[EvalResult, list[str]]:
    """What `inception3 eval --checkpoint FILE` computes and prints, without a run directory."""
    lines: list[str] = []
    cfg = EvalConfig(num_workers=0, progress=False, **options)
    (result,) = watch(None, data, cfg, checkpoint=checkpoint, printer=lines.append)
    return result, lines


def test_1001_output_checkpoint_on_1000_class_shards_drops_the_background_output(shards, imagenet, tmp_path):
    model = tiny_model(num_classes=1001, seed=3)
    state = checkpoint_state(model) | {"class_names": ["background", *(n for _, n in imagenet_classes())]}
    saved = save_checkpoint(tmp_path / "run", 7, state)
    checkpoint = Path(shutil.copy(saved, tmp_path / "elsewhere.pt"))  # a file outside any run directory
    result, lines = _evaluate(checkpoint, shards)
    assert "1001 outputs, class 0 TensorFlow's background" in lines[0] and "left out" in lines[0]
    assert f"[{len(USED) * PER_CLASS} examples]" in lines[-1]
    assert len(result.per_class) == 1000
    assert _scored_classes(result) == {imagenet_classes()[label][1] for label in USED}
    assert result.loss == pytest.approx(
        _reference_loss(checkpoint, imagenet[1], "inception", drop=1), rel=1e-4
    )


@pytest.mark.parametrize("built_by", ["inception3", "tensorflow"])
def test_one_based_shards_with_torchvision_weights_read_labels_zero_based(
    imagenet, torchvision_file, torchvision_loss, built_by
):
    data = _build(imagenet[0], 1, f"one-based-{built_by}")  # labels 1..1000 on disk, 0 the background
    offset = None
    if built_by == "tensorflow":  # TensorFlow's build leaves no dataset.json: the offset is given
        (data / "dataset.json").unlink()
        offset = 1
    result, lines = _evaluate(torchvision_file, data, label_offset=offset)
    assert lines[0].startswith("evaluation preprocessing: torchvision (shorter side to 342 (bilinear)")
    assert result.preprocessing == "torchvision" and len(result.per_class) == 1000
    assert _scored_classes(result) == {imagenet_classes()[label][1] for label in USED}
    assert result.loss == pytest.approx(torchvision_loss, rel=1e-4)


def test_a_class_count_the_data_does_not_have_is_refused_in_one_line(
    shards, torchvision_file, tmp_path, capsys
):
    five = save_checkpoint(tmp_path / "run", 1, checkpoint_state(tiny_model(num_classes=5)))
    assert main(["eval", "--checkpoint", str(five), "--data-dir", str(shards), "--num-workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has 1000 classes but" in err and "outputs 5" in err
    assert f"inception3 train --init-from {five} --preset flowers" in err
    three = make_shards(tmp_path / "small", validation=3, train=3)  # 3 classes
    argv = ["eval", "--checkpoint", str(torchvision_file), "--data-dir", str(three), "--num-workers", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has 3 classes but" in err and "outputs 1000" in err


def test_class_names_in_another_order_are_warned_about_in_one_line(tmp_path, capsys):
    data = make_shards(tmp_path, validation=3, train=3)
    checkpoint = write_checkpoint(tmp_path / "run", 5)
    renamed = tmp_path / "labels.txt"
    renamed.write_text("\n".join(reversed(CLASSES)) + "\n")
    argv = ["eval", "--checkpoint", str(checkpoint), "--data-dir", str(data), "--num-workers", "0"]
    assert main([*argv, "--labels-file", str(renamed)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning:" in err and "the same 3 classes in another order" in err
    assert main(argv) == 0
    assert capsys.readouterr().err == ""


def test_predict_names_1001_outputs_by_1000_names_without_the_background(tmp_path, capsys):
    model = tiny_model(num_classes=1001, seed=4)
    checkpoint = save_checkpoint(tmp_path / "run", 1, checkpoint_state(model) | {"class_names": None})
    labels = tmp_path / "imagenet.txt"
    labels.write_text("\n".join(name for _, name in imagenet_classes()) + "\n")
    image = write_image(tmp_path / "photo.jpg", seed=1)
    argv = ["predict", str(image), "--checkpoint", str(checkpoint), "--json", "--top-k", "3"]
    assert main([*argv, "--labels-file", str(labels)]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    names = [name for _, name in imagenet_classes()]
    assert record["classes"] == [names[i] for i in record["indices"]]
    assert "1000 class names for 1001 outputs: output 0, TensorFlow's background, is left out" in err
    with torch.no_grad():
        loaded, _ = load_model(checkpoint)
        pixels = prepare(decode(image.read_bytes(), "inception"), 75, "inception")
        expected = loaded(scale_to_unit(pixels[None]))[0, 1:].softmax(0).topk(3)
    assert record["indices"] == expected.indices.tolist()


def test_a_labels_file_of_another_count_is_one_line_with_both_counts(tmp_path, capsys):
    checkpoint = write_checkpoint(tmp_path / "run", 5)
    labels = tmp_path / "labels.txt"
    labels.write_text("one\ntwo\n")
    image = write_image(tmp_path / "photo.jpg", seed=2)
    assert main(["predict", str(image), "--checkpoint", str(checkpoint), "--labels-file", str(labels)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{labels} lists 2 classes but the model outputs 3" in err
    with pytest.raises(Inception3Error, match="lists 2 classes but the model outputs 3"):
        cfg = EvalConfig(labels_file=labels, num_workers=0, progress=False)
        evaluate_checkpoint(checkpoint, make_shards(tmp_path, validation=3, train=3), cfg)
