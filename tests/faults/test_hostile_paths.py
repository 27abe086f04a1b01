"""Filesystem surprises: each command answers in one line (exit code 2), nothing leaves its directory.

Every case goes through `inception3.cli.main`, as a user's command line would: a `latest` pointer or
a checkpoint link leading to another run, a checkpoint whose content is of another step than its
name, a read-only file system under train (fresh and resuming), build, export, report and eval,
a file where a directory is expected, names longer than the file system takes, and Ctrl-C before
any command starts. Root ignores permission bits, so a read-only mount is simulated by making the
lowest write calls fail with EROFS under one directory, as the kernel does for a read-only mount.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from faultkit import one_thread, refused, train_args
from tinyshards import make_shards

import inception3.cli as cli
from inception3.cli import main
from inception3.run.checkpoint import checkpoint_name

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("hostile"), per_class=2)


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, symlinks=True)
    return to


def _eval(run: Path, shards: Path, *extra: str) -> list[str]:
    """`eval` following `run` on the tiny shards' train split, on the CPU in this process."""
    return ["eval", "--train-dir", str(run), "--data-dir", str(shards), "--split", "train"] + [
        "--num-workers",
        "0",
        "--device",
        "cpu",
        *extra,
    ]


def _eval_once(run: Path, shards: Path, *extra: str) -> list[str]:
    return _eval(run, shards, "--once", *extra)


def _records(run: Path) -> list[dict]:
    path = run / "eval" / "train.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and modification time: to show nothing changed."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_only(monkeypatch, root: Path) -> None:
    """Writes under `root` fail with EROFS, as on a read-only mount: open for writing, os.open with
    write flags, mkdir, rename, replace, unlink. Reading is untouched."""
    root_text = str(root.resolve())

    def under(path) -> bool:
        if isinstance(path, int):
            return False
        full = os.path.abspath(os.fsdecode(path))
        return full == root_text or full.startswith(root_text + os.sep)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_open, real_os_open = builtins.open, os.open

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and under(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & _WRITE_FLAGS and under(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    for name in ("mkdir", "rename", "replace", "unlink", "remove", "rmdir"):
        real = getattr(os, name)

        def fake(path, *args, _real=real, **kwargs):
            target = args[0] if args and isinstance(args[0], str | bytes | os.PathLike) else None
            if under(path) or (target is not None and under(target)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path), None, target)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, fake)


# The run's own checkpoints only


def test_a_latest_pointer_out_of_the_run_is_ignored_with_a_warning(shards, trained, tmp_path, capsys):
    """`latest` naming another run's checkpoint (absolute, climbing out, a sub-path): eval --once scores
    this run's newest checkpoint and records it under its own step; train resumes this run."""
    other = tmp_path / "other" / "checkpoints"
    other.mkdir(parents=True)
    shutil.copyfile(trained / "checkpoints" / checkpoint_name(1), other / checkpoint_name(9))
    pointers = [
        str(other / checkpoint_name(9)),
        f"../../other/checkpoints/{checkpoint_name(9)}",
        f"sub/{checkpoint_name(9)}",
    ]
    for number, pointer in enumerate(pointers):
        run = _copy(trained, tmp_path / f"run{number}")
        (run / "checkpoints" / "latest").write_text(pointer + "\n")
        capsys.readouterr()
        assert main(_eval_once(run, shards)) == 0
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and err.startswith("inception3 eval: warning: "), err
        assert "latest: names" in err and "ignored" in err and "newest checkpoint there is used" in err
        (record,) = _records(run)
        assert record["step"] == 2 and record["checkpoint"] == str(run / "checkpoints" / checkpoint_name(2))
        assert "[10 examples]" in out

    assert main(train_args(shards, run, max_steps=3)) == 0
    out, err = capsys.readouterr()
    assert f"resuming from {run / 'checkpoints' / checkpoint_name(2)} at step 2" in out
    assert "inception3 train: warning: " in err and "latest: names" in err
    assert (run / "checkpoints" / "latest").read_text().strip() == checkpoint_name(3)
    assert (other / checkpoint_name(9)).stat().st_size > 0 and len(list(other.iterdir())) == 1


def test_a_checkpoint_linked_from_another_run_is_not_followed(shards, trained, tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    shutil.copyfile(trained / "checkpoints" / checkpoint_name(1), foreign)
    run = _copy(trained, tmp_path / "run")
    (run / "checkpoints" / checkpoint_name(5)).symlink_to(foreign)
    (run / "checkpoints" / "latest").write_text(checkpoint_name(5) + "\n")
    capsys.readouterr()
    assert main(_eval_once(run, shards)) == 0
    err = capsys.readouterr().err
    assert f"{checkpoint_name(5)}: a link to {foreign}, outside" in err and "not followed" in err
    assert [r["step"] for r in _records(run)] == [2]

    assert main(train_args(shards, run, max_steps=3)) == 0
    out = capsys.readouterr().out
    assert f"resuming from {run / 'checkpoints' / checkpoint_name(2)} at step 2" in out
    assert (run / "checkpoints" / checkpoint_name(5)).is_symlink(), "the link is left alone, not pruned"


def test_a_checkpoint_of_another_step_than_its_name_isrefused(shards, trained, tmp_path, capsys):
    run = _copy(trained, tmp_path / "run")
    renamed = run / "checkpoints" / checkpoint_name(2)
    shutil.copyfile(run / "checkpoints" / checkpoint_name(1), renamed)
    before = _tree(run)
    line = refused(capsys, train_args(shards, run, max_steps=3))
    assert f"{renamed}: holds the state of step 1, but its name says step 2" in line
    assert f"to resume from {checkpoint_name(1)} instead, move {checkpoint_name(2)} out of" in line
    line = refused(capsys, _eval_once(run, shards))
    assert "holds the state of step 1, but its name says step 2" in line and "move it out of" in line
    assert _tree(run) == before, "nothing written"
    line = refused(capsys, _eval(run, shards, "--interval", "0.1"))
    assert "holds the state of step 1, but its name says step 2" in line
    assert [r["step"] for r in _records(run)] == [1], "step 1 is scored, the misnamed file is not"


# Evaluating a step once


def test_eval_once_twice_records_the_step_once(shards, trained, tmp_path, capsys):
    run = _copy(trained, tmp_path / "run")
    assert main(_eval_once(run, shards)) == 0
    first = capsys.readouterr().out
    assert main(_eval_once(run, shards)) == 0
    again = capsys.readouterr().out
    assert "precision @ 1 = " in first and "[10 examples]" in first
    assert "step 2" in again and "already evaluated in" in again and "not evaluated again" in again
    assert "examples]" not in again
    checkpoint = str(run / "checkpoints" / checkpoint_name(1))
    for _ in range(2):
        assert main(_eval(run, shards, "--checkpoint", checkpoint)) == 0
    assert capsys.readouterr().out.count("already evaluated") == 1
    assert [(r["step"], Path(r["checkpoint"]).name) for r in _records(run)] == [
        (2, checkpoint_name(2)),
        (1, checkpoint_name(1)),
    ]
    assert main(["report", str(run), "--output", str(tmp_path / "r.png")]) == 0


def test_eval_waiting_for_a_first_checkpoint_says_so_once(shards, tmp_path, capsys, monkeypatch):
    import inception3.evaluate as evaluate

    naps = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt  # the user's Ctrl-C, the third time it waits

    monkeypatch.setattr(evaluate.time, "sleep", sleep)
    (tmp_path / "run").mkdir()
    assert main(_eval(tmp_path / "run", shards, "--interval", "0.5")) == 130
    out, err = capsys.readouterr()
    assert out.count("waiting for the first checkpoint in") == 1 and "Ctrl-C to stop" in out
    assert err == "inception3 eval: interrupted\n" and naps == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("interval", ["nan", "0", "-1", "inf", "1e300"])
def test_eval_interval_must_be_a_positive_number_of_seconds(shards, tmp_path, capsys, interval):
    line = refused(capsys, _eval(tmp_path, shards, "--interval", interval))
    assert f"--interval {float(interval)}: must be a number of seconds above 0" in line


# Files where directories are expected, and the other way round


def test_a_file_where_a_directory_is_expected(shards, trained, tmp_path, capsys):
    file = tmp_path / "file.txt"
    file.write_text("not a directory\n")
    line = refused(capsys, train_args(shards, file, max_steps=1))
    assert f"{file}: is a file, not a run directory" in line
    line = refused(capsys, _eval_once(file, shards))
    assert f"{file}: is a file, not a training directory" in line
    line = refused(capsys, ["report", str(file)])
    assert f"{file}: is a file, not a run directory" in line
    line = refused(capsys, train_args(file, tmp_path / "run", max_steps=1))
    assert f"{file}: is a file, not a directory" in line
    assert not (tmp_path / "run").exists()

    images = shards.parent / "images"
    build = ["build", "--train-dir", str(images), "--output-dir", str(tmp_path / "out"), "--workers", "1"]
    line = refused(capsys, ["build", "--train-dir", str(file), "--output-dir", str(tmp_path / "out")])
    assert f"{file}: is a file, not a directory of class folders" in line
    line = refused(capsys, [*build[:3], "--output-dir", str(file), *build[5:]])
    assert f"{file}: is a file, not a directory" in line
    line = refused(capsys, [*build, "--validation-dir", str(file)])
    assert f"{file}: is a file, not a directory of class folders" in line
    line = refused(capsys, [*build, "--labels-file", str(tmp_path)])
    assert f"{tmp_path}: is a directory, not a labels file" in line
    assert file.read_text() == "not a directory\n"


def test_an_output_that_is_a_folder(trained, tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    checkpoint = str(trained / "checkpoints" / checkpoint_name(2))
    line = refused(
        capsys, ["export", "--checkpoint", checkpoint, "--format", "safetensors", "--output", str(folder)]
    )
    assert f"{folder}: is a directory; give --output a file name" in line
    line = refused(capsys, ["report", str(trained), "--output", str(folder)])
    assert f"{folder}: is a directory; give --output a file name" in line
    assert list(folder.iterdir()) == []


def test_names_longer_than_the_file_system_allows(shards, trained, tmp_path, capsys):
    long = tmp_path / ("n" * 300)
    checkpoint = str(trained / "checkpoints" / checkpoint_name(2))
    commands = {
        "train": train_args(shards, long, max_steps=1),
        "eval": _eval_once(long, shards),
        "build": ["build", "--train-dir", str(shards.parent / "images"), "--output-dir", str(long / "out")],
        "export": ["export", "--checkpoint", checkpoint, "--format", "safetensors", "--output", str(long)],
        "report": ["report", str(trained), "--output", str(long)],
    }
    for command, argv in commands.items():
        line = refused(capsys, argv)
        assert "the name is longer than the file system allows" in line and "nnnnnnnn" in line, command
        assert "characters)" in line, command  # the middle of a very long path is cut


# A read-only file system


def test_read_only_file_system_in_every_command_that_writes(shards, trained, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    run = _copy(trained, ro / "run")
    (ro / "images").mkdir()
    before = _tree(ro)
    read_only(monkeypatch, ro)
    checkpoint = str(run / "checkpoints" / checkpoint_name(2))
    commands = {
        "train (fresh)": (train_args(shards, ro / "fresh", max_steps=1), ro / "fresh"),
        "train (resuming)": (train_args(shards, run, max_steps=3), run / ".trainer.lock"),  # its first write
        "build": (
            ["build", "--train-dir", str(shards.parent / "images"), "--output-dir", str(ro / "shards")],
            ro / "shards",
        ),
        "export": (
            ["export", "--checkpoint", checkpoint, "--format", "safetensors", "--output", str(ro / "m.st")],
            ro / "m.st",
        ),
        "report": (["report", str(run)], run / "report.png"),
        "eval": (_eval_once(run, shards), run / "eval"),
    }
    for command, (argv, path) in commands.items():
        line = refused(capsys, argv)
        assert f"{path}" in line and "the file system is read-only" in line, command
        assert "choose a directory on a writable disk" in line, command
    monkeypatch.undo()
    assert _tree(ro) == before, "nothing was written, nothing removed"


def test_a_full_disk_hidden_behind_a_runtime_error_is_one_line(trained, tmp_path, capsys, monkeypatch):
    import inception3.export as export

    def full(*args) -> None:
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "m.st"))
        except OSError as error:
            raise RuntimeError("[enforce fail at inline_container.cc] PytorchStreamWriter failed") from error

    monkeypatch.setattr(export, "export_safetensors", full)
    checkpoint = str(trained / "checkpoints" / checkpoint_name(2))
    argv = [
        "export",
        "--checkpoint",
        checkpoint,
        "--format",
        "safetensors",
        "--output",
        str(tmp_path / "m.st"),
    ]
    line = refused(capsys, argv)
    assert f"{tmp_path / 'm.st'}: the disk is full; free space there" in line
    assert list(tmp_path.iterdir()) == [], "no temporary file left"


# Ctrl-C


def test_ctrl_c_while_starting_up_is_one_line_and_exit_code_130(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_build_parser", interrupted)
    assert main(["report", "RUN"]) == 130
    assert capsys.readouterr().err == "inception3: interrupted\n"
    monkeypatch.undo()
    monkeypatch.setattr(cli.argparse.ArgumentParser, "parse_args", interrupted)
    assert main(["report", "RUN"]) == 130
    assert capsys.readouterr().err == "inception3: interrupted\n"


@pytest.mark.parametrize(
    ("number", "advice"),
    [
        (errno.EACCES, "permission denied; make it writable"),
        (errno.EPERM, "operation not permitted"),
        (errno.ENOSPC, "the disk is full; free space there and run the same command again"),
        (errno.EDQUOT, "the disk quota is exceeded"),
        (errno.EEXIST, "is already there as a file; move it away"),
        (errno.ENOTDIR, "a part of this path is a file, not a directory"),
        (errno.EISDIR, "is a directory where a file is needed"),
        (errno.EIO, "Input/output error; check the path"),
    ],
)
def test_every_refusal_of_the_file_system_is_one_line_naming_the_path(
    tmp_path, capsys, monkeypatch, number, advice
):
    import inception3.report as report

    there = tmp_path / "there"
    there.write_text("")

    def fails(*args, **kwargs):
        raise OSError(number, os.strerror(number), str(there))

    monkeypatch.setattr(report, "write_report", fails)
    line = refused(capsys, ["report", str(tmp_path)])
    assert line.startswith(f"inception3 report: error: {there}: {advice}"), line
