"""Bad checkpoints and configs: each command refuses them with exit code 2 and one line saying what to do.

Every case goes through `inception3.cli.main`, as a user's command line would: a truncated checkpoint,
one of another model size, a pickle that would run code, an unknown config key, a negative batch
size, a data directory without shards, and labels beyond the model's classes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from faultkit import eval_args, one_thread, refused, train_args
from tinyshards import make_shards

from inception3.run.checkpoint import checkpoint_name, latest_checkpoint

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("bad"), per_class=4)


def _users_of_a_checkpoint(path: Path, shards: Path, tmp_path: Path) -> dict[str, list[str]]:
    """Every command that reads a checkpoint file given on its command line."""
    image = next((shards.parent / "images" / "class0").glob("*.jpg"))
    return {
        "eval": eval_args(path, shards),
        "predict": ["predict", "--checkpoint", str(path), str(image)],
        "export": [
            "export",
            "--checkpoint",
            str(path),
            "--format",
            "safetensors",
            "--output",
            str(tmp_path / "model.safetensors"),
        ],
        "train --init-from": train_args(
            shards, tmp_path / "fresh", max_steps=1, extra=("--init-from", str(path))
        ),
    }


def _run_whose_latest_is(path: Path, trained: Path, tmp_path: Path) -> Path:
    """A copy of `trained` whose newest checkpoint (step 2, named by `latest`) is replaced by `path`."""
    run = tmp_path / "resumed"
    shutil.copytree(trained, run)
    shutil.copyfile(path, run / "checkpoints" / checkpoint_name(2))
    return run


def test_a_truncated_checkpoint(shards, trained, tmp_path, capsys):
    truncated = tmp_path / "truncated.pt"
    whole = (trained / "checkpoints" / checkpoint_name(2)).read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    for command, argv in _users_of_a_checkpoint(truncated, shards, tmp_path).items():
        line = refused(capsys, argv)
        assert "truncated.pt: cannot be read: truncated" in line, command
        assert "copy it again or pick another checkpoint" in line, command
    assert not (tmp_path / "model.safetensors").exists() and not (tmp_path / "fresh" / "checkpoints").exists()

    run = _run_whose_latest_is(truncated, trained, tmp_path)
    line = refused(capsys, train_args(shards, run, max_steps=3))
    assert f"cannot resume {run}" in line and "truncated" in line
    assert f"to resume from {checkpoint_name(1)} instead, move {checkpoint_name(2)} out of" in line


def test_a_checkpoint_of_another_model_size(shards, trained, tmp_path, capsys):
    wider = ("--set=depth_multiplier=0.5",)
    line = refused(
        capsys,
        train_args(
            shards,
            tmp_path / "wider",
            max_steps=1,
            extra=(*wider, "--init-from", str(latest_checkpoint(trained))),
        ),
    )
    assert "has shape" in line and "check depth_multiplier and image_size" in line
    line = refused(capsys, train_args(shards, trained, max_steps=3, extra=wider))
    assert "the checkpoint holds another network (depth_multiplier was 0.25, now 0.5)" in line
    assert "train into a new --train-dir, or use --init-from" in line
    assert latest_checkpoint(trained).name == checkpoint_name(2)  # the run is untouched


class _RunsCode:
    """Unpickling this creates `marker`: what a hostile checkpoint could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(shards, trained, tmp_path, capsys):
    marker, hostile = tmp_path / "code-ran", tmp_path / "hostile.pt"
    torch.save({"model": _RunsCode(marker), "step": 7}, hostile)
    commands = _users_of_a_checkpoint(hostile, shards, tmp_path)
    commands["resume"] = train_args(shards, _run_whose_latest_is(hostile, trained, tmp_path), max_steps=3)
    for command, argv in commands.items():
        line = refused(capsys, argv)
        assert "could run code when loaded" in line and "refuses it" in line, command
        assert "use a checkpoint inception3 wrote" in line, command
    assert not marker.exists()


def test_an_unknown_config_key_names_the_closest_one(shards, tmp_path, capsys):
    args = train_args(shards, tmp_path / "run", max_steps=1)
    line = refused(capsys, [*args, "--set", "batch_sise=4"])
    assert "--set batch_sise=4: unknown config key 'batch_sise'; did you mean 'batch_size'?" in line
    line = refused(capsys, [*args, "--set", "nosuch=1"])
    assert "unknown config key 'nosuch'; known keys: image_size, depth_multiplier" in line
    toml = tmp_path / "recipe.toml"
    toml.write_text("batch_size = 8\nleaning_rate = 0.1\n")
    line = refused(capsys, [*args, "--config", str(toml)])
    assert f"{toml}: unknown config key 'leaning_rate'; did you mean 'learning_rate'?" in line
    assert not (tmp_path / "run").exists()


def test_a_negative_batch_size(shards, tmp_path, capsys):
    line = refused(capsys, [*train_args(shards, tmp_path / "run", max_steps=1), "--set", "batch_size=-8"])
    assert "config: batch_size must be at least 1, got -8" in line and "fix it with --set" in line
    assert not (tmp_path / "run").exists()


def test_a_data_directory_without_shards(shards, trained, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = refused(capsys, train_args(empty, tmp_path / "run", max_steps=1))
    assert f"{empty}: holds no shards" in line and "build shards with `inception3 build`" in line
    emptied = tmp_path / "emptied"
    shutil.copytree(shards, emptied)
    for shard in emptied.glob("train-*"):
        shard.unlink()
    line = refused(capsys, train_args(emptied, tmp_path / "run", max_steps=1))
    assert f"{emptied}: no 'train' shards" in line and "build them with `inception3 build`" in line
    line = refused(
        capsys,
        [
            "eval",
            "--checkpoint",
            str(latest_checkpoint(trained)),
            "--data-dir",
            str(empty),
            "--device",
            "cpu",
        ],
    )
    assert f"{empty}: holds no shards" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_labels_beyond_the_class_count(tmp_path, capsys):
    """Shards as TensorFlow builds them: labels 1..5 (0 = background), a labels file, no dataset.json."""
    one_based = make_shards(tmp_path / "tf", per_class=2, label_offset=1)
    (one_based / "dataset.json").unlink()
    (one_based / "labels.txt").write_text("".join(f"class{c}\n" for c in range(5)))
    line = refused(
        capsys, train_args(one_based, tmp_path / "run", max_steps=1, extra=("--set=label_offset=0",))
    )
    assert "train-0000" in line and "has label 5, outside the 5 classes with label offset 0" in line
    assert "check the dataset's label offset (`inception3 inspect` shows the label range)" in line
    line = refused(
        capsys,
        train_args(
            one_based, tmp_path / "run", max_steps=1, extra=("--set=label_offset=1", "--set=num_classes=3")
        ),
    )
    assert "the dataset has 5 classes but num_classes is 3" in line and "check label_offset" in line
    assert not (tmp_path / "run" / "checkpoints").exists()
