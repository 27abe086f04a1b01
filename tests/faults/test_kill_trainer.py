"""SIGKILL at any instant costs nothing: a run killed and restarted ends bitwise equal to a straight one.

The kills land at instants drawn from a fixed seed: during a step, while a checkpoint is being
written (the moment its temporary file appears), while `inception3 eval` follows the run beside
the trainer, and while the trainer starts up and resumes. After each kill the same command runs
again, as a user or a job scheduler would. Under `torchrun --max-restarts`, killing one rank
brings the whole job back from the last checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from faultkit import ENV, assert_same_state, inception3, logged_steps, train_args
from tinyshards import make_shards

from inception3.run.checkpoint import checkpoint_name, latest_checkpoint, load_checkpoint

SEED = 7
MAX_STEPS = 30
CHECKPOINT_EVERY = 2
KILLS = ("step",) * 4 + ("checkpoint",) * 4 + ("eval",) * 3 + ("startup",)
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("kill"))


@dataclass(frozen=True)
class Kill:
    """One planned kill: what it waits for, drawn once from the seed so the plan never varies."""

    kind: str  # "step", "checkpoint", "eval" (a step while the evaluator runs) or "startup"
    steps: int  # steps logged by this attempt before the kill
    delay: float  # then seconds into the next step
    startup: float  # for "startup": seconds after launch


def _plan(seed: int) -> list[Kill]:
    rng = random.Random(seed)
    return [
        Kill(kind, rng.randint(1, 3), rng.uniform(0.0, 0.15), rng.uniform(0.3, 2.5))
        for kind in rng.sample(KILLS, len(KILLS))
    ]


def _wait(condition: Callable[[], bool], process: subprocess.Popen) -> bool:
    """Poll until `condition` holds (True) or the process ends first (False)."""
    deadline = time.monotonic() + TIMEOUT
    while process.poll() is None:
        if condition():
            return True
        assert time.monotonic() < deadline, "the trainer made no progress"
        time.sleep(0.002)
    return False


def _temporary(run: Path, pid: int) -> Path | None:
    """The checkpoint file process `pid` is writing right now, under its temporary name."""
    directory = run / "checkpoints"
    names = os.listdir(directory) if directory.is_dir() else []
    return next((directory / n for n in names if n.startswith(".ckpt-") and n.endswith(f".tmp-{pid}")), None)


def _instant_reached(kill: Kill, process: subprocess.Popen, log: Path, run: Path) -> bool:
    """Wait for the instant `kill` names; False when the trainer finished first."""
    if kill.kind == "startup":
        time.sleep(kill.startup)
        return process.poll() is None
    if kill.kind == "checkpoint":
        return _wait(lambda: _temporary(run, process.pid) is not None, process)
    reached = _wait(lambda: len(logged_steps(log.read_text())) >= kill.steps, process)
    time.sleep(kill.delay)
    return reached and process.poll() is None


def _evaluator(shards: Path, run: Path, log: Path) -> subprocess.Popen:
    command = inception3(
        "eval",
        "--train-dir",
        run,
        "--data-dir",
        shards,
        "--split",
        "train",
        "--interval",
        "0.2",
        "--batch-size",
        "20",
        "--num-workers",
        "0",
        "--device",
        "cpu",
    )
    with open(log, "a") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=ENV)


def _stop(*processes: subprocess.Popen | None) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def _train_to_the_end(shards: Path, run: Path, args: dict) -> str:
    """The trainer's command run to its end, as a user runs it again; its output."""
    finished = subprocess.run(
        inception3(*train_args(shards, run, **args)), env=ENV, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def test_sigkill_at_random_instants_loses_nothing(shards: Path, tmp_path: Path) -> None:
    args = {
        "max_steps": MAX_STEPS,
        "checkpoint_every": CHECKPOINT_EVERY,
        "extra": ("--set=keep_checkpoints=3",),
    }
    _train_to_the_end(shards, tmp_path / "straight", args)

    run, kills, torn_writes = tmp_path / "killed", Counter(), 0
    trainer = evaluator = None
    try:
        for attempt, kill in enumerate(_plan(SEED)):
            if kill.kind == "eval" and evaluator is None:
                evaluator = _evaluator(shards, run, tmp_path / "eval.log")
            log = tmp_path / f"attempt-{attempt}.log"
            with open(log, "w") as out:
                trainer = subprocess.Popen(
                    inception3(*train_args(shards, run, **args)),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=ENV,
                )
            if _instant_reached(kill, trainer, log, run):
                assert kill.kind != "eval" or evaluator.poll() is None, (tmp_path / "eval.log").read_text()
                trainer.send_signal(signal.SIGKILL)
                assert trainer.wait() == -signal.SIGKILL
                kills[kill.kind] += 1
                torn_writes += _temporary(run, trainer.pid) is not None
            assert trainer.wait() in (0, -signal.SIGKILL), log.read_text()
        _train_to_the_end(shards, run, args)
        assert evaluator is not None and evaluator.wait(timeout=TIMEOUT) == 0, (
            tmp_path / "eval.log"
        ).read_text()
    finally:
        _stop(trainer, evaluator)

    print(f"kills: {dict(kills)}, {torn_writes} in the middle of a checkpoint file")
    assert sum(kills.values()) >= 10 and kills["checkpoint"] >= 2 and kills["eval"] >= 2
    assert torn_writes >= 1  # at least one kill left a half-written temporary file behind
    final = latest_checkpoint(run)
    assert final is not None and final.name == checkpoint_name(MAX_STEPS)
    assert (
        assert_same_state(
            load_checkpoint(tmp_path / "straight" / "checkpoints" / final.name), load_checkpoint(final)
        )
        > 100
    )
    assert not [p.name for p in (run / "checkpoints").iterdir() if ".tmp-" in p.name]
    _check_evaluations(run)


def _check_evaluations(run: Path) -> None:
    """The evaluator beside the killed trainer never read a partial file and scored each step once."""
    records = [json.loads(line) for line in (run / "eval" / "train.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)) and steps[-1] == MAX_STEPS and records[-1]["final"]
    assert all(r["examples"] == 40 for r in records)


def _torchrun(shards: Path, run: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "--max-restarts",
        "3",
        "-m",
        "inception3",
        *train_args(shards, run, max_steps=12, checkpoint_every=CHECKPOINT_EVERY, ranks=2),
    ]


def _rank_of_child(pid: str, parent: int) -> int | None:
    """The RANK of process `pid` when it is a child of `parent` (read from /proc), else None."""
    try:
        if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
            return None
        variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return None
    rank = next((v[5:] for v in variables if v.startswith(b"RANK=")), None)
    return int(rank) if rank is not None else None


def _worker(agent: subprocess.Popen, rank: int, not_pid: int = 0) -> int:
    """The pid of `rank` in the agent's worker group, waiting for one that is not `not_pid` (killed)."""

    def find() -> int | None:
        return next(
            (
                int(pid)
                for pid in os.listdir("/proc")
                if pid.isdigit() and int(pid) != not_pid and _rank_of_child(pid, agent.pid) == rank
            ),
            None,
        )

    assert _wait(lambda: find() is not None, agent)
    return find()


def test_torchrun_brings_a_two_rank_run_back_after_a_rank_is_killed(shards: Path, tmp_path: Path) -> None:
    straight = subprocess.run(
        _torchrun(shards, tmp_path / "straight"), env=ENV, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert straight.returncode == 0, straight.stderr
    run, log = tmp_path / "killed", tmp_path / "torchrun.log"
    with open(log, "w") as out:
        agent = subprocess.Popen(
            _torchrun(shards, run), stdout=out, stderr=subprocess.STDOUT, env=ENV, start_new_session=True
        )
    try:
        first_rank0, rank1 = _worker(agent, 0), _worker(agent, 1)
        assert _wait(lambda: len(logged_steps(log.read_text())) >= 3, agent)
        os.kill(rank1, signal.SIGKILL)  # mid-run: rank 0 is left waiting in an all-reduce
        rank0 = _worker(agent, 0, not_pid=first_rank0)
        assert _wait(lambda: _temporary(run, rank0) is not None, agent)
        os.kill(rank0, signal.SIGKILL)  # the writer itself, in the middle of a checkpoint
        assert agent.wait(timeout=TIMEOUT) == 0, log.read_text()
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()
    assert log.read_text().count("resuming from") == 2
    final = run / "checkpoints" / checkpoint_name(12)
    assert (
        assert_same_state(
            load_checkpoint(tmp_path / "straight" / "checkpoints" / final.name), load_checkpoint(final)
        )
        > 100
    )


# Every option of today's recipes at once: both augmentation policies and erasing, mixup/CutMix per
# image, the class-balanced order, AdamW with layer-wise decay and the cosine floor, fp16's loss scale.
MODERN = (
    "--set=augment_ops=flip_left_right,randaugment,trivialaugment,distort_color,random_erasing",
    "--set=mixup_alpha=0.2",
    "--set=cutmix_alpha=1.0",
    "--set=mix_mode=elem",
    "--set=class_balance=sampler",
    "--set=optimizer=adamw",
    "--set=learning_rate=0.001",
    "--set=layer_decay=0.8",
    "--set=lr_schedule=cosine",
    "--set=min_learning_rate=0.0001",
    "--set=precision=fp16",
    "--set=num_workers=1",
)


def test_sigkill_mid_epoch_with_every_modern_option_resumes_bitwise(shards: Path, tmp_path: Path) -> None:
    args = {"max_steps": 12, "checkpoint_every": 3, "extra": MODERN}
    _train_to_the_end(shards, tmp_path / "straight", args)
    run, log = tmp_path / "killed", tmp_path / "attempt.log"
    with open(log, "w") as out:
        trainer = subprocess.Popen(
            inception3(*train_args(shards, run, **args)), stdout=out, stderr=subprocess.STDOUT, env=ENV
        )
    try:  # 40 training images in batches of 8: step 7 is in the middle of the second epoch
        assert _instant_reached(Kill("step", 7, 0.05, 0.0), trainer, log, run), log.read_text()
        trainer.send_signal(signal.SIGKILL)
        assert trainer.wait() == -signal.SIGKILL
    finally:
        _stop(trainer)
    resumed = _train_to_the_end(shards, run, args)
    assert "resum" in resumed.lower(), resumed
    name = checkpoint_name(12)
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / name)
    b = load_checkpoint(run / "checkpoints" / name)
    assert assert_same_state(a, b) > 100
    assert a["scaler"] == b["scaler"]
