"""Checkpoints: atomic files, the `latest` pointer, pruning, weights-only loading."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tinycheckpoints import checkpoint_state, tiny_model

from inception3 import files
from inception3.config import ModelConfig
from inception3.errors import Inception3Error
from inception3.run.checkpoint import (
    IgnoredFileWarning,
    check_step,
    ignored_files,
    is_final,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from inception3.run.layout import CHECKPOINTS
from inception3.run.record import Checkpoint


def test_save_then_load_round_trips_with_weights_only(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_checkpoint(tmp_path, 10, checkpoint_state(model))
    assert path == tmp_path / CHECKPOINTS / "ckpt-00000010.pt"
    assert (tmp_path / CHECKPOINTS / "latest").read_text().strip() == path.name
    torch.load(path, weights_only=True)  # readable without arbitrary unpickling
    state = load_checkpoint(path)
    assert state["format"] == "inception3/1" and state["step"] == 10 and not is_final(state)
    assert state["data"] == {"position": 8} and state["class_names"] == ["a", "b", "c", "d", "e"]
    for key, value in model.state_dict().items():
        assert torch.equal(state["model"][key], value)


def test_latest_and_list_follow_the_steps(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None and list_checkpoints(tmp_path) == []
    state = checkpoint_state(tiny_model())
    for step in (5, 20, 10):
        save_checkpoint(tmp_path, step, state, keep=0)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [5, 10, 20]
    assert latest_checkpoint(tmp_path).name == "ckpt-00000010.pt"  # the last written, not the highest


def test_keeps_the_last_k_plus_final_and_marked(tmp_path: Path) -> None:
    state = checkpoint_state(tiny_model())
    save_checkpoint(tmp_path, 1, state, keep=2, mark=True)
    for step in (2, 3, 4):
        save_checkpoint(tmp_path, step, state, keep=2)
    save_checkpoint(tmp_path, 5, state, keep=2, final=True)
    save_checkpoint(tmp_path, 6, state, keep=2)
    save_checkpoint(tmp_path, 7, state, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1, 5, 6, 7]
    assert is_final(load_checkpoint(latest_checkpoint(tmp_path).with_name("ckpt-00000005.pt")))


def test_a_failed_rename_leaves_the_previous_checkpoint_and_no_partial_file(
    tmp_path: Path, monkeypatch
) -> None:
    state = checkpoint_state(tiny_model())
    good = save_checkpoint(tmp_path, 1, state)

    def broken_replace(src, dst):
        raise OSError("disk vanished")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(
        Inception3Error,
        match=r"cannot write the checkpoint of step 2 \(disk vanished\); "
        r"nothing partial was left and ckpt-00000001.pt is intact",
    ):
        save_checkpoint(tmp_path, 2, state)
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == good
    assert sorted(p.name for p in (tmp_path / CHECKPOINTS).iterdir()) == [good.name, "latest"]


def test_a_process_killed_while_saving_leaves_latest_on_a_complete_file(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 1, checkpoint_state(tiny_model()))
    script = textwrap.dedent(f"""
        import os, signal, torch
        from inception3 import files
        from inception3.run import checkpoint
        real_fsync = os.fsync
        def dying_fsync(fd):
            real_fsync(fd)
            os.kill(os.getpid(), signal.SIGKILL)  # killed after writing the temp file, before the rename
        files.os.fsync = dying_fsync
        checkpoint.save_checkpoint({str(tmp_path)!r}, 2, {{"model": {{"w": torch.ones(1000)}}}})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == -9
    assert [s for s, _ in list_checkpoints(tmp_path)] == [1]
    assert latest_checkpoint(tmp_path).name == "ckpt-00000001.pt"
    load_checkpoint(latest_checkpoint(tmp_path))


def test_truncated_and_unsafe_files_are_refused_clearly(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 3, checkpoint_state(tiny_model()))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(Inception3Error, match="truncated.pt: cannot be read"):
        load_checkpoint(truncated)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"thing": pickle.PicklingError("arbitrary object")}, unsafe)
    with pytest.raises(Inception3Error, match="unsafe.pt: cannot be read"):
        load_checkpoint(unsafe)
    with pytest.raises(Inception3Error, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def _two_checkpoints(run: Path) -> Path:
    """A run with checkpoints 1 and 2 (tiny files: the pointer rules do not read them)."""
    for step in (1, 2):
        save_checkpoint(run, step, {"w": torch.ones(1)}, keep=0)
    return run / CHECKPOINTS


@pytest.mark.parametrize(
    "pointer",
    [
        "{other}/ckpt-00000009.pt",  # absolute, into another run
        "../../other/ckpt-00000009.pt",  # climbing out
        "sub/ckpt-00000002.pt",  # a sub-path
        "ckpt-00000009.pt",  # a link to another run's file
        "model.pt",  # not a checkpoint name
        "\x00\xff garbage",
        "",
    ],
)
def test_latest_is_followed_only_to_a_checkpoint_file_of_the_run(tmp_path: Path, pointer: str) -> None:
    directory = _two_checkpoints(tmp_path / "run")
    other = tmp_path / "other"
    other.mkdir()
    (other / "ckpt-00000009.pt").write_bytes(b"another run's checkpoint")
    (directory / "sub").mkdir()
    (directory / "ckpt-00000009.pt").symlink_to(other / "ckpt-00000009.pt")
    (directory / "latest").write_text(pointer.format(other=other) + "\n")
    assert latest_checkpoint(tmp_path / "run") == directory / "ckpt-00000002.pt"
    assert [step for step, _ in list_checkpoints(tmp_path / "run")] == [1, 2]
    with pytest.warns(IgnoredFileWarning) as warned:
        assert latest_checkpoint(tmp_path / "run", warn=True) == directory / "ckpt-00000002.pt"
    notes = [str(w.message) for w in warned]
    assert any("ckpt-00000009.pt: a link to" in note and "not followed" in note for note in notes)
    if pointer != "ckpt-00000009.pt":
        assert any("latest: names" in note and "ignored" in note for note in notes), notes


def test_latest_that_is_not_a_plain_file_is_ignored(tmp_path: Path) -> None:
    directory = _two_checkpoints(tmp_path / "run")
    (directory / "latest").unlink()
    (directory / "latest").mkdir()
    with pytest.warns(IgnoredFileWarning, match="latest: is a directory"):
        assert latest_checkpoint(tmp_path / "run", warn=True) == directory / "ckpt-00000002.pt"
    (directory / "latest").rmdir()
    os.mkfifo(directory / "latest")  # reading it would block for ever
    with pytest.warns(IgnoredFileWarning, match="latest: is a special file"):
        assert latest_checkpoint(tmp_path / "run", warn=True) == directory / "ckpt-00000002.pt"


def test_links_inside_the_run_and_a_moved_away_checkpoint_are_followed_quietly(tmp_path: Path) -> None:
    directory = _two_checkpoints(tmp_path / "run")
    (directory / "ckpt-00000003.pt").symlink_to("ckpt-00000002.pt")  # a sibling: stays in the folder
    (directory / "latest").write_text("ckpt-00000003.pt\n")
    assert latest_checkpoint(tmp_path / "run", warn=True) == directory / "ckpt-00000003.pt"
    assert ignored_files(tmp_path / "run") == []
    (directory / "ckpt-00000003.pt").unlink()  # moved out, as the resume hint advises
    assert latest_checkpoint(tmp_path / "run", warn=True) == directory / "ckpt-00000002.pt"
    assert ignored_files(tmp_path / "run") == []


def test_the_step_in_a_checkpoint_must_match_its_name(tmp_path: Path) -> None:
    directory = _two_checkpoints(tmp_path / "run")
    check_step(directory / "ckpt-00000002.pt", load_checkpoint(directory / "ckpt-00000002.pt")["step"])
    check_step(tmp_path / "exported.pt", 7)  # a name that says no step: nothing to compare
    with pytest.raises(Inception3Error, match="holds the state of step 1, but its name says step 2"):
        check_step(directory / "ckpt-00000002.pt", load_checkpoint(directory / "ckpt-00000001.pt")["step"])


def _record(model, **changes) -> Checkpoint:
    fields = {
        "step": 4,
        "model_config": model.config,
        "model": model.state_dict(),
        "ema": {key: value + 1 for key, value in model.state_dict().items()},
        "optimizer": {"state": {}, "param_groups": []},
        "data": {"position": 8},
        "rng": {"torch": torch.get_rng_state()},
        "config": {"seed": 0},
        "class_names": ("a", "b", "c", "d", "e"),
    }
    return Checkpoint(**(fields | changes))


def test_a_checkpoint_record_is_written_with_the_keys_checkpoints_always_had_and_read_back(tmp_path):
    record = _record(tiny_model(), final=True)
    path = record.save(tmp_path, keep=0)
    state = load_checkpoint(path)
    assert list(state) == [
        *("model_config", "model", "ema", "optimizer", "data", "rng", "config", "class_names"),
        *("image_size", "eval_preprocessing", "format", "step", "final"),
    ]
    assert state["format"] == "inception3/1" and state["step"] == 4 and is_final(state)
    assert state["image_size"] == 75 and state["class_names"] == ["a", "b", "c", "d", "e"]
    assert state["model_config"] == dataclasses.asdict(record.model_config)
    back = Checkpoint.from_state(state)
    assert (back.step, back.final, back.model_config, back.class_names) == (
        4,
        True,
        record.model_config,
        record.class_names,
    )
    assert (
        back.config == {"seed": 0} and back.data == {"position": 8} and back.eval_preprocessing == "inception"
    )
    weights, averaged = back.weights(use_ema=True)
    assert averaged and all(torch.equal(weights[k], v) for k, v in record.ema.items())
    weights, averaged = back.weights(use_ema=False)
    assert not averaged and all(torch.equal(weights[k], v) for k, v in record.model.items())


def test_an_older_checkpoint_reads_with_defaults_and_without_its_training_parts(tmp_path):
    model = tiny_model()
    state = load_checkpoint(_record(model).save(tmp_path))
    saved_shape = {k: v for k, v in state["model_config"].items() if k != "batch_norm_epsilon"}
    older = {k: v for k, v in state.items() if k not in ("eval_preprocessing", "class_names", "ema", "rng")}
    back = Checkpoint.from_state(older | {"model_config": saved_shape})
    assert back.model_config.batch_norm_epsilon == ModelConfig().batch_norm_epsilon
    assert back.eval_preprocessing == "inception" and back.class_names is None
    assert back.ema is None and back.rng is None
    assert back.weights(use_ema=True)[1] is False  # no averages: the raw weights


def test_a_dict_that_is_no_inception3_checkpoint_is_refused_by_the_record(tmp_path):
    state = load_checkpoint(_record(tiny_model()).save(tmp_path))
    with pytest.raises(Inception3Error, match="not an inception3 checkpoint"):
        Checkpoint.from_state(tiny_model().state_dict())
    with pytest.raises(Inception3Error, match="without its 'model'"):
        Checkpoint.from_state({k: v for k, v in state.items() if k != "model"})
    unknown = state | {"model_config": state["model_config"] | {"width": 2}}
    with pytest.raises(Inception3Error, match=r"settings this version does not know \(width\)"):
        Checkpoint.from_state(unknown)
