"""SIGTERM (a scheduler's preemption, torchrun's shutdown) and Ctrl-C: a checkpoint, then a clean exit."""

from __future__ import annotations

import signal
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


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_saves_a_checkpoint_at_the_step_reached_and_resume_continues(shards, tmp_path, sent):
    run, log = tmp_path / "run", tmp_path / "train.log"
    args = train_args(shards, run, max_steps=100_000)
    process = _train_until_step(args, 2, log)
    process.send_signal(sent)
    assert process.wait(timeout=60) == 0, log.read_text()
    text = log.read_text()
    stopped = max(logged_steps(text)) + 1  # the step it finished after its last log line
    assert f"{sent.name}: stopping after this step" in text and "Traceback" not in text
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
