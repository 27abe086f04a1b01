"""The trainer lock under attack: rivals racing for it, one job started twice, a pid reused, a holder
displaced while it trains.

The races run 5 processes released together by a barrier, 200 rounds each on a fresh directory and
on one whose lock names a dead process: exactly one may win each round. The lock this replaced let two
win 15 times in 30 on a fresh directory and 30 in 30 on a stale one.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import train_args
from tinyshards import make_shards

import inception3.train.loop as loop
from inception3.cli import main
from inception3.errors import Inception3Error
from inception3.run.layout import LOCK
from inception3.run.lock import RunLock, check_held

CONTENDERS = 5
ROUNDS = 200


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(gone.stdout)


def _write_lock(run: Path, fields: dict, age: float = 0.0) -> None:
    holder = {"host": "elsewhere", "pid": 1, "started": time.time() - 3600, "job": None} | fields
    (run / LOCK).write_text(json.dumps(holder))
    then = time.time() - age
    os.utime(run / LOCK, (then, then))


def _contend(runs: list[Path], barrier, wins) -> None:
    """One contender: every round, try the round's directory the moment all are ready; the winner
    lets go only once every contender has tried."""
    for run in runs:
        lock = RunLock(run)
        barrier.wait()
        try:
            lock.acquire()
        except Inception3Error:
            won = False
        else:
            won = True
        wins.put((str(run), won))
        barrier.wait()
        if won:
            lock.release()


def _race(runs: list[Path]) -> Counter:
    """How many contenders won each directory."""
    context = multiprocessing.get_context("fork")  # no start-up cost; the contenders use no torch
    barrier, wins = context.Barrier(CONTENDERS, timeout=60), context.Queue()
    contenders = [context.Process(target=_contend, args=(runs, barrier, wins)) for _ in range(CONTENDERS)]
    for process in contenders:
        process.start()
    results = [wins.get(timeout=60) for _ in range(CONTENDERS * len(runs))]
    for process in contenders:
        process.join(timeout=60)
        assert process.exitcode == 0
    return Counter(run for run, won in results if won)


def test_racing_for_a_fresh_lock_exactly_one_wins(tmp_path: Path) -> None:
    runs = [tmp_path / f"run-{i}" for i in range(ROUNDS)]
    for run in runs:
        run.mkdir()
    winners = _race(runs)
    assert [winners[str(run)] for run in runs] == [1] * ROUNDS
    assert not [run for run in runs if (run / LOCK).exists()], "every winner released its lock"
    left = {p.name for p in tmp_path.glob("run-*/*")}
    assert left == {f"{LOCK}.guard"}, "no temporary file left behind, only the guard every contender locks"


def test_racing_for_a_stale_lock_exactly_one_takes_it_over(tmp_path: Path) -> None:
    runs = [tmp_path / f"run-{i}" for i in range(ROUNDS)]
    dead = _dead_pid()
    for run in runs:
        run.mkdir()
        _write_lock(run, {"host": RunLock(run).holder["host"], "pid": dead})
    winners = _race(runs)
    assert [winners[str(run)] for run in runs] == [1] * ROUNDS


@pytest.fixture
def job(monkeypatch) -> Iterator[str]:
    """This process as a rank of torchrun job `imagenet`."""
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "imagenet")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    yield "TORCHELASTIC_RUN_ID=imagenet"


def test_the_same_job_started_twice_is_refused_while_its_holder_lives(tmp_path: Path, job: str) -> None:
    """Two jobs given one --rdzv-id (or two srun steps of one allocation) both train into one run."""
    first = RunLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(Inception3Error, match="another trainer holds this run directory"):
            RunLock(tmp_path).acquire()  # this host: the holder's process runs
    finally:
        first.release()

    # Another host, lease fresh and renewed (every 0.05 s) while the second one looks: a live holder.
    _write_lock(tmp_path, {"host": "node3", "pid": 77, "job": job, "renew": 0.05})
    renewing = threading.Event()

    def renew() -> None:
        while not renewing.wait(0.05):
            os.utime(tmp_path / LOCK)

    renewer = threading.Thread(target=renew)
    renewer.start()
    try:
        with pytest.raises(Inception3Error, match="host node3, process 77"):
            RunLock(tmp_path).acquire()
    finally:
        renewing.set()
        renewer.join()
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == 77


def test_a_later_attempt_of_the_job_takes_over_a_holder_gone_or_out_of_lease(
    tmp_path: Path, job: str, monkeypatch
) -> None:
    """Rank 0 back after a restart: at once from a holder gone on this host; from another host once the
    lock goes unrenewed for a few of its renewal periods, well before the lease (120 s) runs out."""
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    here = RunLock(tmp_path).holder["host"]
    _write_lock(tmp_path, {"host": here, "pid": _dead_pid(), "job": job, "attempt": 0})
    lock = RunLock(tmp_path)
    assert lock.acquire().startswith("took over the lock of an earlier attempt of this job")
    lock.release()

    _write_lock(tmp_path, {"host": "node3", "pid": 77, "job": job, "renew": 0.05}, age=0.5)
    start = time.monotonic()
    lock = RunLock(tmp_path)
    assert lock.acquire() == "took over the lock of an earlier attempt of this job (host node3, process 77)"
    assert time.monotonic() - start < 5
    lock.release()

    _write_lock(tmp_path, {"host": "node3", "pid": 77, "job": job}, age=200)  # out of lease
    lock = RunLock(tmp_path)
    assert "an earlier attempt of this job (host node3" in lock.acquire()
    lock.release()


def test_a_dead_holders_pid_reused_by_another_process_does_not_keep_the_lock(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        here = RunLock(tmp_path).holder
        real = dict(here, pid=sleeper.pid, pid_start=_start_ticks(sleeper.pid))
        _write_lock(tmp_path, real)  # the sleeper itself holds it: refused
        with pytest.raises(Inception3Error, match=f"process {sleeper.pid}"):
            RunLock(tmp_path).acquire()
        _write_lock(tmp_path, dict(real, pid_start=real["pid_start"] - 100))  # a process before it
        lock = RunLock(tmp_path)
        assert lock.acquire() == (
            f"took over the lock of a trainer that is gone (host {here['host']}, process {sleeper.pid})"
        )
        lock.release()
    finally:
        sleeper.kill()
        sleeper.wait()


def _start_ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def test_a_displaced_holder_stops_before_its_next_checkpoint_write(tmp_path: Path) -> None:
    lock = RunLock(tmp_path)
    lock.acquire()
    check_held(tmp_path)  # still ours: nothing to say
    _write_lock(tmp_path, {"host": "node3", "pid": 77})  # taken over while this one was cut off
    with pytest.raises(Inception3Error, match=r"no longer holds .*host node3, process 77"):
        check_held(tmp_path)
    lock.release()
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == 77, "the new holder's lock stays"
    check_held(tmp_path)  # released: this process holds nothing there


def test_a_displaced_trainer_stops_with_one_line_and_writes_nothing(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """Through the CLI: the lock replaced before the first checkpoint; no checkpoint is written."""
    shards = make_shards(tmp_path / "shards")
    run = tmp_path / "run"
    opened = loop._open_run_dir

    def open_then_lose(plan, say, held) -> None:
        opened(plan, say, held)
        _write_lock(run, {"host": "node3", "pid": 77})

    monkeypatch.setattr(loop, "_open_run_dir", open_then_lose)
    assert main(train_args(shards, run, max_steps=2, checkpoint_every=1)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no longer holds" in err[0] and "host node3, process 77" in err[0], err
    assert not list(run.glob("checkpoints/ckpt-*")), "no checkpoint written over the new holder's run"
