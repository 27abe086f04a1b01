"""A dataset directory's own values, edited or damaged: each command refuses them in one line, exit code 2.

dataset.json's class names and record counts size the model and set the learning-rate schedule, so
they are checked where they are read (`data/meta.py`) and the counts again against the shards where
the shards are opened (`data/dataset.py`, `inspect`). A shard that is not a regular file (a FIFO would
block the reader for ever) is refused where shards are opened (`data/records.py`). Shards TensorFlow
built (no dataset.json) with a damaged shard train under skip_corrupt as inception3's do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from faultkit import eval_args, one_thread, refused, train_args
from tinyshards import make_shards

from inception3.cli import main
from inception3.config import MAX_CLASSES
from inception3.run.checkpoint import latest_checkpoint

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("values"), per_class=4)  # 20 records, 2 shards of 10


def _edited(shards: Path, tmp_path: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of `shards` whose dataset.json `edit` changed."""
    copy = tmp_path / "edited"
    shutil.copytree(shards, copy)
    document = json.loads((copy / "dataset.json").read_text())
    edit(document)
    (copy / "dataset.json").write_text(json.dumps(document))
    return copy


def _set(path: str, value: object) -> Callable[[dict], None]:
    """An edit that sets the value at a dotted path (`splits.train.records`)."""

    def edit(document: dict) -> None:
        *parents, key = path.split(".")
        for parent in parents:
            document = document[parent]
        document[key] = value

    return edit


def test_more_classes_than_the_limit_are_refused_from_every_source(shards, tmp_path, capsys):
    """200,000 class names used to pass and size a 4.4 GB model; a labels file alike (and class folders,
    through the same check, `meta.check_class_count`)."""
    many = [f"c{i}" for i in range(2 * MAX_CLASSES)]
    data = _edited(shards, tmp_path, _set("class_names", many))
    line = refused(capsys, train_args(data, tmp_path / "run", max_steps=1))
    assert f"class_names: {2 * MAX_CLASSES} classes, more than the {MAX_CLASSES} inception3 trains" in line
    assert not (tmp_path / "run").exists()

    tf_built = tmp_path / "tf"
    shutil.copytree(shards, tf_built)
    (tf_built / "dataset.json").unlink()
    (tf_built / "labels.txt").write_text("".join(f"c{i}\n" for i in range(2 * MAX_CLASSES)))
    line = refused(
        capsys, train_args(tf_built, tmp_path / "run", max_steps=1, extra=("--set=label_offset=0",))
    )
    assert f"labels.txt: at least {MAX_CLASSES + 1} classes, more than the {MAX_CLASSES}" in line

    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (_set("class_names", "abcde"), "the class names are one string, not a list of names"),
        (_set("class_names", ["a", "b", "a", "c", "d"]), "a class is listed twice ('a', classes 0 and 2)"),
        (_set("class_names", ["a", "", "c", "d", "e"]), "class 1 has an empty name"),
        (
            _set("class_names", ["a", "b\x00", "c", "d", "e"]),
            "class 1's name 'b\\x00' holds a control character",
        ),
        (_set("class_names", ["a", 2, "c", "d", "e"]), "class 1 is 2, not a name"),
        (_set("format", "inception3-shards/9"), 'format is "inception3-shards/9", not "inception3-shards/1"'),
        (_set("label_offset", -1), "label_offset must be a whole number, 0 or more, got -1"),
    ],
    ids=["string", "twice", "empty", "nul", "number", "format", "offset"],
)
def test_bad_class_names_and_format_arerefused(shards, tmp_path, capsys, edit, said):
    data = _edited(shards, tmp_path, edit)
    line = refused(capsys, train_args(data, tmp_path / "run", max_steps=1))
    assert f"{data / 'dataset.json'}: " in line and said in line
    assert not (tmp_path / "run").exists()
    assert said in refused(capsys, ["inspect", str(data)])


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (
            _set("splits.train.records", -5),
            "splits.train.records must be a whole number of records (0 or more), got -5",
        ),
        (
            _set("splits.train.records", 1e9),
            "splits.train.records must be a whole number of records (0 or more), got 1000000000.0",
        ),
        (
            _set("splits.train.records", 10**9),
            "splits.train.records is 1000000000, but its shards' counts add up to 20",
        ),
        (
            _set("splits.train.shards.train-00001-of-00002", True),
            "must be a whole number of records (0 or more), got true",
        ),
    ],
    ids=["negative", "float", "sum", "bool"],
)
def test_record_counts_that_are_not_counts_arerefused(shards, tmp_path, capsys, edit, said):
    data = _edited(shards, tmp_path, edit)
    line = refused(capsys, train_args(data, tmp_path / "run", max_steps=1))
    assert said in line and "rebuild with `inception3 build`" in line
    assert not (tmp_path / "run").exists()


def test_counts_the_shards_do_not_hold_are_refused_by_train_eval_and_inspect(
    shards, trained, tmp_path, capsys
):
    """A count edited to 1e9 in both places changed the schedule; emptied shards recorded as 10 passed
    `inspect --verify`."""

    def inflate(document: dict) -> None:
        document["splits"]["train"]["shards"]["train-00000-of-00002"] = 10**9 - 10
        document["splits"]["train"]["records"] = 10**9
        document["splits"]["train"]["class_counts"][0] += 10**9 - 20  # every count agrees with the others

    data = _edited(shards, tmp_path, inflate)
    line = refused(capsys, train_args(data, tmp_path / "run", max_steps=1))
    assert (
        f"{data / 'train-00000-of-00002'}: holds 10 records, but its dataset.json records 999999990" in line
    )
    assert not (tmp_path / "run" / "checkpoints").exists()

    emptied = tmp_path / "emptied"
    shutil.copytree(shards, emptied)
    for shard in emptied.glob("train-*"):
        shard.write_bytes(b"")
    line = refused(
        capsys, train_args(emptied, tmp_path / "run2", max_steps=1, extra=("--set=skip_corrupt=true",))
    )
    assert "train-00000-of-00002: holds 0 records, but its dataset.json records 10" in line
    line = refused(capsys, eval_args(latest_checkpoint(trained), emptied))
    assert "holds 0 records, but its dataset.json records 10" in line
    capsys.readouterr()
    assert main(["inspect", str(emptied), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "train-00000-of-00002: holds 0 records, dataset.json records 10" in out
    assert "train-00001-of-00002: holds 0 records, dataset.json records 10" in out


@contextmanager
def _no_hang(seconds: int) -> Iterator[None]:
    """Fail instead of blocking for ever (opening a FIFO waits for a writer; the alarm interrupts it)."""

    def hung(signum, frame):
        raise AssertionError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_fifo_as_a_shard_is_refused_not_waited_on(shards, trained, tmp_path, capsys):
    data = tmp_path / "fifo"
    shutil.copytree(shards, data)
    (data / "train-00001-of-00002").unlink()
    os.mkfifo(data / "train-00001-of-00002")  # nothing ever writes to it
    with _no_hang(30):
        for argv in (
            eval_args(latest_checkpoint(trained), data),
            train_args(data, tmp_path / "run", max_steps=1),
            ["inspect", str(data), "--verify"],
        ):
            line = refused(capsys, argv)
            assert (
                f"{data / 'train-00001-of-00002'}: is a special file (not a regular file), not a shard"
                in line
            )
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_skip_corrupt_trains_on_damaged_tensorflow_built_shards(tmp_path, capsys):
    """Shards as TensorFlow builds them (labels 1..5, labels.txt, no dataset.json), one cut short."""
    data = make_shards(tmp_path / "tf", per_class=4, label_offset=1)
    (data / "dataset.json").unlink()
    (data / "labels.txt").write_text("".join(f"class{c}\n" for c in range(5)))
    last = data / "train-00001-of-00002"
    last.write_bytes(last.read_bytes()[:-10])
    argv = train_args(data, tmp_path / "run", max_steps=2, extra=("--set=label_offset=1",))
    line = refused(capsys, argv)
    assert "train-00001-of-00002: record 9 is corrupt (file ends inside a record)" in line
    assert "pass skip_corrupt" in line
    capsys.readouterr()
    assert main([*argv, "--set=skip_corrupt=true"]) == 0
    assert "skip_corrupt: 1 corrupt record(s) were left out of training so far" in capsys.readouterr().out
