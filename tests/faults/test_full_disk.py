"""A full disk during a checkpoint write: one clear line, the previous checkpoint intact, nothing half-written
ever read, and the same command resumes once there is room again, losing nothing."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from faultkit import assert_same_state, one_thread, train_args
from tinyshards import make_shards

from inception3 import files
from inception3.cli import main
from inception3.run.checkpoint import checkpoint_name, latest_checkpoint, list_checkpoints, load_checkpoint

STEPS = 4

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("disk"))


@pytest.fixture(scope="module")
def straight(shards: Path, tmp_path_factory) -> dict:
    """The final state of the same run, never interrupted."""
    run = tmp_path_factory.mktemp("straight") / "run"
    assert main(train_args(shards, run, max_steps=STEPS, checkpoint_every=1)) == 0
    return load_checkpoint(latest_checkpoint(run))


class _FillingFile:
    """A file that takes `room` more bytes, then fails as a full disk does (the bytes before stay)."""

    def __init__(self, file, room: int) -> None:
        self.file, self.room = file, room

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        if len(data) > self.room:
            self.file.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name: str):
        return getattr(self.file, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


def _fill_disk(monkeypatch, victim: Callable[[Path], bool], room: int) -> None:
    """The checkpoint module's next write of a file `victim` picks stops after `room` bytes: disk full."""

    def filling_open(path, mode="r", *args, **kwargs):
        file = open(path, mode, *args, **kwargs)  # noqa: SIM115 (the caller closes it)
        return _FillingFile(file, room) if victim(Path(path)) else file

    monkeypatch.setattr(files, "open", filling_open, raising=False)


def _eval_once(run: Path, shards: Path) -> int:
    """`inception3 eval --once` on the run; returns the step it evaluated."""
    assert (
        main(
            [
                "eval",
                "--train-dir",
                str(run),
                "--data-dir",
                str(shards),
                "--split",
                "train",
                "--once",
                "--batch-size",
                "20",
                "--num-workers",
                "0",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    return json.loads((run / "eval" / "train.jsonl").read_text().splitlines()[-1])["step"]


def _temporaries(run: Path) -> list[str]:
    return [name for name in os.listdir(run / "checkpoints") if ".tmp-" in name]


FULL_DURING = {  # where the disk fills: which write fails, after how many bytes
    "the checkpoint file": (lambda p: p.name.startswith(f".{checkpoint_name(2)}.tmp-"), 1 << 20),
    "the latest pointer": (
        lambda p: p.name.startswith(".latest.tmp-") and (p.parent / checkpoint_name(2)).exists(),
        0,
    ),
}


@pytest.mark.parametrize("where", FULL_DURING)
def test_a_full_disk_stops_training_clearly_and_loses_nothing(
    where, shards, straight, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    _fill_disk(monkeypatch, *FULL_DURING[where])
    assert main(train_args(shards, run, max_steps=STEPS, checkpoint_every=1)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "the disk is full" in line and "checkpoint of step 2" in line and "Traceback" not in line
    assert f"{checkpoint_name(1)} is intact" in line and "run the same command again" in line
    assert not _temporaries(run)
    assert (run / "checkpoints" / "latest").read_text().strip() == checkpoint_name(1)
    assert latest_checkpoint(run).name == checkpoint_name(1)
    assert load_checkpoint(latest_checkpoint(run))["step"] == 1
    complete = [1] if where == "the checkpoint file" else [1, 2]  # a pointer failing after the rename
    assert [step for step, _ in list_checkpoints(run)] == complete
    assert all(load_checkpoint(path)["step"] == step for step, path in list_checkpoints(run))
    assert _eval_once(run, shards) == 1

    monkeypatch.undo()  # room again: the same command resumes
    assert main(train_args(shards, run, max_steps=STEPS, checkpoint_every=1)) == 0
    assert f"resuming from {run / 'checkpoints' / checkpoint_name(1)} at step 1" in capsys.readouterr().out
    assert_same_state(straight, load_checkpoint(latest_checkpoint(run)))


def test_the_leftovers_of_a_killed_writer_are_never_read_and_are_cleared_on_resume(
    shards, straight, tmp_path, capsys
):
    run = tmp_path / "run"
    assert main(train_args(shards, run, max_steps=2, checkpoint_every=1)) == 0
    folder = run / "checkpoints"
    half = folder / f".{checkpoint_name(3)}.tmp-4242"  # as a writer killed mid-file leaves them
    half.write_bytes((folder / checkpoint_name(2)).read_bytes()[: 1 << 20])
    (folder / ".latest.tmp-4242").write_text(f"{checkpoint_name(3)}\n")
    assert [step for step, _ in list_checkpoints(run)] == [1, 2]
    assert latest_checkpoint(run).name == checkpoint_name(2)
    assert (
        main(
            [
                "eval",
                "--train-dir",
                str(run),
                "--data-dir",
                str(shards),
                "--split",
                "train",
                "--batch-size",
                "20",
                "--num-workers",
                "0",
                "--device",
                "cpu",
                "--interval",
                "0.1",
            ]
        )
        == 0
    )
    steps = [json.loads(line)["step"] for line in (run / "eval" / "train.jsonl").read_text().splitlines()]
    assert steps == [1, 2]  # following the run: each complete checkpoint once, then stop at the final one
    assert _eval_once(run, shards) == 2
    capsys.readouterr()

    assert main(train_args(shards, run, max_steps=STEPS, checkpoint_every=1)) == 0
    assert "removed 2 partial file(s) of an interrupted checkpoint write" in capsys.readouterr().out
    assert not _temporaries(run)
    assert_same_state(straight, load_checkpoint(latest_checkpoint(run)))


def test_the_full_disk_line_names_the_file_and_what_helps(shards, tmp_path, monkeypatch, capsys):
    """Room for two more checkpoint files only: keep_checkpoints 5 fills it, and the line says that
    lowering keep_checkpoints helps; it does, as the oldest go before each new one is written."""
    run = tmp_path / "run"
    folder = run / "checkpoints"

    def no_room(path: Path) -> bool:  # a third checkpoint file in the folder does not fit
        is_new = path.name.startswith(".ckpt-") and ".tmp-" in path.name
        return is_new and len(list(folder.glob("ckpt-*.pt"))) >= 2

    _fill_disk(monkeypatch, no_room, 1 << 20)
    assert main(train_args(shards, run, max_steps=STEPS, checkpoint_every=1)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"{folder / checkpoint_name(3)}: the disk is full" in line, line
    assert f"{checkpoint_name(2)} is intact" in line and "Free space on that disk" in line
    assert "lower keep_checkpoints (now 5; 1 older checkpoint(s) there)" in line
    assert [step for step, _ in list_checkpoints(run)] == [1, 2]

    lower = ("--set", "keep_checkpoints=2")
    assert main(train_args(shards, run, max_steps=STEPS, checkpoint_every=1, extra=lower)) == 0
    assert [step for step, _ in list_checkpoints(run)] == [3, 4]


class _EventsFillTheDisk:
    """Event files opened for writing take bytes until `full()` says the disk is full, then fail."""

    def __init__(self, real_open: Callable, full: Callable[[], bool]) -> None:
        self.real_open, self.full = real_open, full

    def __call__(self, path, mode="r", *args, **kwargs):
        file = self.real_open(path, mode, *args, **kwargs)
        events = isinstance(path, str | bytes | os.PathLike) and "tfevents" in os.fsdecode(path)
        return _FullWhen(file, self.full) if events and "r" not in mode else file


class _FullWhen(_FillingFile):
    """A `_FillingFile` with room until the disk is full."""

    def __init__(self, file, full: Callable[[], bool]) -> None:
        self.file, self.full = file, full

    @property
    def room(self) -> int:
        return 0 if self.full() else 1 << 40

    @room.setter
    def room(self, value: int) -> None:
        pass


def test_a_full_disk_while_writing_tensorboard_events_is_one_line(
    shards, straight, tmp_path, monkeypatch, capsys
):
    """The disk fills once step 2's checkpoint is written: our one line, no writer thread's traceback."""
    run = tmp_path / "run"
    opener = _EventsFillTheDisk(builtins.open, lambda: (run / "checkpoints" / checkpoint_name(2)).exists())
    monkeypatch.setattr(builtins, "open", opener)
    monkeypatch.setattr(io, "open", opener)
    # What a CLI process does with a thread's exception (pytest would otherwise turn it into a warning).
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    code = main(train_args(shards, run, max_steps=STEPS, checkpoint_every=1))
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err and "Exception in thread" not in err, err
    (events,) = run.glob("events.out.tfevents.*")
    advice = "the disk is full; free space there and run the same command again"
    assert err == f"inception3 train: error: {events}: {advice}\n"

    assert main(train_args(shards, run, max_steps=STEPS, checkpoint_every=1)) == 0  # room again: it resumes
    assert "at step 2" in capsys.readouterr().out
    assert_same_state(straight, load_checkpoint(latest_checkpoint(run)))
