"""One trainer per run directory: a live holder is refused, a dead one's lock is taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inception3.errors import Inception3Error
from inception3.run.layout import LOCK
from inception3.run.lock import RunLock


def _write_lock(
    run: Path, host: str, pid: int, age: float = 0.0, job: str | None = None, renew: float = 2.0
) -> None:
    holder = {"host": host, "pid": pid, "started": time.time() - 3600, "job": job, "renew": renew}
    (run / LOCK).write_text(json.dumps(holder))
    then = time.time() - age
    os.utime(run / LOCK, (then, then))


def test_a_second_trainer_is_refused_and_the_first_releases_on_exit(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    assert first.acquire() is None
    with pytest.raises(
        Inception3Error, match=rf"another trainer holds this run directory \(host .*, process {os.getpid()}"
    ):
        RunLock(tmp_path).acquire()
    first.release()
    assert not (tmp_path / LOCK).exists()
    second = RunLock(tmp_path)
    assert second.acquire() is None
    second.release()


def test_the_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = RunLock(tmp_path)
    _write_lock(tmp_path, lock.holder["host"], int(gone.stdout))
    pid = gone.stdout.strip()
    assert (
        lock.acquire()
        == f"took over the lock of a trainer that is gone (host {lock.holder['host']}, process {pid})"
    )
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    lock.release()


def test_another_hosts_lock_holds_while_its_lease_is_renewed(tmp_path: Path) -> None:
    _write_lock(tmp_path, "elsewhere", 1, age=10)
    with pytest.raises(Inception3Error, match="host elsewhere, process 1"):
        RunLock(tmp_path, lease_secs=60).acquire()
    _write_lock(tmp_path, "elsewhere", 1, age=120)
    lock = RunLock(tmp_path, lease_secs=60)
    assert "host elsewhere" in lock.acquire()
    lock.release()


def test_an_earlier_attempt_of_the_same_job_hands_over_without_the_lease(tmp_path: Path, monkeypatch) -> None:
    """Rank 0 restarted by torchrun on another node: its predecessor's lease is fresh, but it is this job
    and nothing renews it (watched for 5 of its renewal periods, here 0.05 s)."""
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "imagenet")
    _write_lock(tmp_path, "node3", 77, age=1, job="TORCHELASTIC_RUN_ID=imagenet", renew=0.05)
    lock = RunLock(tmp_path)
    assert lock.acquire() == "took over the lock of an earlier attempt of this job (host node3, process 77)"
    lock.release()
    _write_lock(tmp_path, "node3", 77, age=1, job="TORCHELASTIC_RUN_ID=another")
    with pytest.raises(Inception3Error, match="host node3, process 77"):
        RunLock(tmp_path).acquire()


def test_a_lock_naming_our_own_pid_is_not_ours(tmp_path: Path) -> None:
    """A container started again under the same host name may get the same pid as the dead holder."""
    lock = RunLock(tmp_path)
    _write_lock(tmp_path, lock.holder["host"], os.getpid())  # started an hour ago, before this process
    assert "took over the lock of a trainer that is gone" in lock.acquire()
    lock.release()


def test_the_holder_renews_its_lease(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, lease_secs=0.2)
    lock.acquire()
    then = time.time() - 100
    os.utime(tmp_path / LOCK, (then, then))
    time.sleep(0.3)
    assert time.time() - (tmp_path / LOCK).stat().st_mtime < 1
    lock.release()
