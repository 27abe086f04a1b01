"""A run's and a dataset's files are their own: no command writes over them, and a run never follows
its folders out of itself.

Through `inception3.cli.main`, as a user's command line would: `report --output` and `export --output`
pointed at a checkpoint, `latest`, `config.toml`, an evaluation record file, `dataset.json` or a shard
(refused even with --force; any other existing file only with --force); a run whose `checkpoints` or
`eval` folder links into another run (refused before anything is read, written or pruned); evaluators
racing to record one step (exactly one record); a refused `trainable` (nothing left behind).
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import pytest
from faultkit import one_thread, refused, train_args
from tinyshards import make_shards

from inception3.cli import main
from inception3.evaluate import EvalResult
from inception3.run.checkpoint import checkpoint_name
from inception3.watch import write_result

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("owned"), per_class=2)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its content: to show nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _eval_once(run: Path, shards: Path) -> list[str]:
    return ["eval", "--train-dir", str(run), "--data-dir", str(shards), "--split", "train", "--once"] + [
        "--num-workers",
        "0",
        "--device",
        "cpu",
    ]


# Outputs named by the user


def test_no_output_replaces_a_runs_or_a_datasets_own_files(shards, trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run, symlinks=True)
    assert main(_eval_once(run, shards)) == 0
    data = tmp_path / "shards"
    shutil.copytree(shards, data)
    source = run / "checkpoints" / checkpoint_name(1)  # export reads one checkpoint, aims at another
    owned = [
        run / "checkpoints" / checkpoint_name(2),
        run / "checkpoints" / "latest",
        run / "checkpoints" / checkpoint_name(7),  # a new name there would pass for a checkpoint
        run / "config.toml",
        run / "eval" / "train.jsonl",
        data / "dataset.json",
        data / "train-00000-of-00002",
    ]
    before = _tree(tmp_path)
    for output in owned:
        for force in ((), ("--force",)):
            report = ["report", str(run), "--output", str(output), *force]
            export = ["export", "--checkpoint", str(source), "--format", "safetensors"]
            for argv in (report, [*export, "--output", str(output), *force]):
                line = refused(capsys, argv)
                assert f"{output}: is " in line and "not even with --force" in line, line
                assert "choose another --output" in line
    line = refused(capsys, ["report", str(run), "--output", str(run / "checkpoints" / checkpoint_name(1))])
    assert f"in the checkpoints folder of the run {run}" in line
    line = refused(capsys, ["report", str(run), "--output", str(data / "dataset.json")])
    assert f"is the dataset {data}'s own dataset.json" in line
    alias = tmp_path / "alias"  # another spelling of the run: where the write lands is what counts
    alias.symlink_to(run)
    for output in (alias / "config.toml", data / ".." / "run" / "checkpoints" / "latest"):
        line = refused(capsys, ["report", str(run), "--output", str(output), "--force"])
        assert f"{output}: is " in line and f"the run {run}" in line, line
    alias.unlink()
    assert _tree(tmp_path) == before, "nothing written, nothing replaced"


def test_an_existing_report_is_replaced_only_with_force(trained, tmp_path, capsys):
    output = tmp_path / "curves.png"
    output.write_bytes(b"someone's file")
    line = refused(capsys, ["report", str(trained), "--output", str(output)])
    assert f"{output}: already exists; pass --force to replace it, or choose another --output" in line
    assert output.read_bytes() == b"someone's file"
    assert main(["report", str(trained), "--output", str(output), "--force"]) == 0
    assert output.read_bytes().startswith(b"\x89PNG")
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for _ in range(2):  # the default RUN/report.png is the report's own: replaced each time
        assert main(["report", str(run)]) == 0
    assert (run / "report.png").read_bytes().startswith(b"\x89PNG")


# A run's folders stay inside it


@pytest.mark.parametrize("folder", ["checkpoints", "eval"])
def test_a_run_folder_that_links_out_of_the_run_isrefused(folder, shards, trained, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(trained, other)
    assert main(_eval_once(other, shards)) == 0
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    shutil.rmtree(run / folder, ignore_errors=True)
    (run / folder).symlink_to(other / folder)
    before = _tree(tmp_path)
    commands = [_eval_once(run, shards)]  # eval reads the checkpoints and writes RUN/eval
    if folder == "checkpoints":  # train resumes, writes and prunes them
        commands.append(train_args(shards, run, max_steps=4, checkpoint_every=1))
    else:  # report reads the evaluation records
        commands.append(["report", str(run)])
    for argv in commands:
        line = refused(capsys, argv)
        assert f"{run / folder}: a link to {other / folder}, outside {run}" in line, line
        assert "replace the link with a folder" in line
    assert _tree(tmp_path) == before, "nothing resumed into, written or pruned in the other run"


def test_a_run_folder_linked_to_a_sibling_inside_the_run_is_followed(shards, trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "checkpoints").rename(run / "kept-here")
    (run / "checkpoints").symlink_to("kept-here")
    assert main(_eval_once(run, shards)) == 0
    assert json.loads((run / "eval" / "train.jsonl").read_text())["step"] == 2


# Evaluators racing to record a step


def _result(step: int, checkpoint: Path) -> EvalResult:
    return EvalResult(step, str(checkpoint), "train", 0.5, 1.0, 1.0, 10, True, False, 0.0, 0.1, {})


def _evaluator(run: Path, steps: int, barrier) -> None:
    """One evaluator that finished scoring each step at the same instant as the others."""
    for step in range(steps):
        barrier.wait()
        write_result(run, _result(step, run / "checkpoints" / checkpoint_name(step)))


def test_racing_evaluators_record_each_step_exactly_once(tmp_path):
    run, racers, steps = tmp_path / "run", 8, 40
    (run / "checkpoints").mkdir(parents=True)
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(racers)
    processes = [fork.Process(target=_evaluator, args=(run, steps, barrier)) for _ in range(racers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    lines = (run / "eval" / "train.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(steps)), "each step once, whole"


def test_an_evaluation_recorded_meanwhile_is_not_recorded_again(
    shards, trained, tmp_path, capsys, monkeypatch
):
    import inception3.watch as watch

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    scored = watch.evaluate_model

    def racing(*args, **kwargs):  # another evaluator records the step while this one scores it
        result = scored(*args, **kwargs)
        write_result(run, result)
        return result

    monkeypatch.setattr(watch, "evaluate_model", racing)
    assert main(_eval_once(run, shards)) == 0
    out = capsys.readouterr().out
    assert "step 2" in out and "by another evaluator meanwhile; not recorded again" in out
    assert len((run / "eval" / "train.jsonl").read_text().splitlines()) == 1


# A refused run leaves nothing


def test_a_refused_trainable_leaves_nothing_behind(shards, tmp_path, capsys):
    run = tmp_path / "run"
    line = refused(capsys, train_args(shards, run, max_steps=1, extra=("--trainable", "NoSuchScope")))
    assert "trainable scopes NoSuchScope match no parameter" in line
    assert not run.exists()
    run.mkdir()
    refused(capsys, train_args(shards, run, max_steps=1, extra=("--trainable", "NoSuchScope")))
    assert list(run.iterdir()) == []
