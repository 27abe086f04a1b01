"""SIGTERM (preemption, torchrun), SIGUSR1 (SLURM's warning) and Ctrl-C: a checkpoint, then a clean exit."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from faultkit import ENV, inception3, logged_steps, train_args
from tinyshards import make_shards

from inception3.run.checkpoint import checkpoint_name, latest_checkpoint, load_checkpoint


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("stop"))


def _train_until_step(args: list[str], step: int, log: Path) -> subprocess.Popen:
    """Start training with its output in `log`; return once it has logged `step`."""
    process = subprocess.Popen(inception3(*args), stdout=log.open("w"), stderr=subprocess.STDOUT, env=ENV)
    deadline = time.monotonic() + 120
    while not any(s >= step for s in logged_steps(log.read_text())):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "training never reached step 2"
        time.sleep(0.05)
    return process


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_a_stop_signal_saves_a_checkpoint_at_the_step_reached_and_resume_continues(shards, tmp_path, sent):
    run, log = tmp_path / "run", tmp_path / "train.log"
    args = train_args(shards, run, max_steps=100_000)
    process = _train_until_step(args, 2, log)
    process.send_signal(sent)
    assert process.wait(timeout=60) == 0, log.read_text()
    text = log.read_text()
    stopped = max(logged_steps(text)) + 1  # the step it finished after its last log line
    assert f"{sent.name}: stopping at the next check step (after this step)" in text  # log_every 1
    assert "Traceback" not in text
    assert f"stopped at step {stopped} as asked; run the same command again" in text
    checkpoint = latest_checkpoint(run)
    assert checkpoint is not None and checkpoint.name == checkpoint_name(stopped)
    assert not load_checkpoint(checkpoint)["final"]

    resumed = subprocess.run(
        inception3(*train_args(shards, run, max_steps=stopped + 1)),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint} at step {stopped}" in resumed.stdout
    assert logged_steps(resumed.stdout) == [stopped]


def test_a_stop_signal_acts_at_the_next_check_step_and_says_so(shards, tmp_path):
    """The ranks agree on stopping at check steps only (every log_every steps, and before checkpoints):
    with log_every 4 the run stops after the next step a multiple of 4, which its line announces."""
    run, log = tmp_path / "run", tmp_path / "train.log"
    process = _train_until_step(
        train_args(shards, run, max_steps=100_000, extra=("--set=log_every=4",)), 4, log
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()
    text = log.read_text()
    assert "SIGTERM: stopping at the next check step (within 4 steps) and saving a checkpoint" in text
    stopped = max(logged_steps(text)) + 1
    assert stopped % 4 == 1 and f"stopped at step {stopped} as asked" in text
    assert latest_checkpoint(run).name == checkpoint_name(stopped)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_srun_tasks_form_a_group_from_slurms_variables_and_stop_together_on_usr1(shards, tmp_path):
    """Two tasks as `srun` starts them (no torchrun): SLURM's variables alone make the group."""
    run = tmp_path / "run"
    slurm = {
        "SLURM_STEP_NUM_TASKS": "2",
        "SLURM_STEP_NODELIST": "localhost",
        "SLURM_JOB_ID": "4242",
        "MASTER_PORT": str(_free_port()),
    }
    logs = [tmp_path / f"task{rank}.log" for rank in range(2)]
    tasks = [
        subprocess.Popen(
            inception3(*train_args(shards, run, max_steps=100_000, ranks=2)),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            env=ENV | slurm | {"SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)},
        )
        for rank, log in enumerate(logs)
    ]
    deadline = time.monotonic() + 120
    while not any(s >= 2 for s in logged_steps(logs[0].read_text())):
        assert all(t.poll() is None for t in tasks), logs[0].read_text() + logs[1].read_text()
        assert time.monotonic() < deadline, "the tasks never reached step 2"
        time.sleep(0.05)
    tasks[1].send_signal(signal.SIGUSR1)  # one task warned: the group stops after the same step
    assert [t.wait(timeout=60) for t in tasks] == [0, 0], logs[0].read_text() + logs[1].read_text()
    text = logs[0].read_text()
    stopped = max(logged_steps(text)) + 1
    assert f"stopped at step {stopped} as asked" in text and "Traceback" not in text
    state = load_checkpoint(latest_checkpoint(run))
    assert state["step"] == stopped and state["data"]["world_size"] == 2


def test_one_trainer_per_run_directory_and_a_killed_ones_lock_is_taken_over(shards, tmp_path):
    run, log = tmp_path / "run", tmp_path / "first.log"
    first = _train_until_step(train_args(shards, run, max_steps=100_000), 2, log)
    second = subprocess.run(
        inception3(*train_args(shards, run, max_steps=5)),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2 and "another trainer holds this run directory" in second.stderr
    assert f"process {first.pid}" in second.stderr
    first.kill()  # SIGKILL: the lock stays behind, naming a process that is gone
    first.wait(timeout=60)
    third = subprocess.run(
        inception3(*train_args(shards, run, max_steps=3)),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert third.returncode == 0, third.stderr
    assert (
        f"took over the lock of a trainer that is gone (host {socket.gethostname()}, process {first.pid})"
        in third.stdout
    )
