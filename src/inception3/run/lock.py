"""One trainer per run directory: a lock file that names its holder and is renewed while it lives.

Clusters start the same job twice (a requeue while the old allocation still runs, a second
terminal); two trainers writing one run directory would overwrite each other's checkpoints.
`RUN/.trainer.lock` holds the holder's host, process id and start time, and its modification time
is a lease, renewed every `LEASE_SECS / 4` seconds by a thread of the holder. A lock is stale, and
taken over with a line saying so, when its process is gone (same host) or its lease has run out
(another host, whose processes cannot be seen from here), and at once when it names the job that
is starting (`TORCHELASTIC_RUN_ID` of torchrun, `SLURM_JOB_ID`): an earlier attempt of this very job,
whose rank 0 died or moved to another node. Readers (`eval`, `report`) take no lock.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

from inception3.errors import Inception3Error
from inception3.files import write_text_atomic
from inception3.run.layout import lock_path

LEASE_SECS = 120.0  # a holder on another host that has not renewed for this long is presumed dead


class RunLock:
    """The trainer's hold on a run directory, from `acquire` to `release`."""

    def __init__(self, run_dir: Path, *, lease_secs: float = LEASE_SECS) -> None:
        self.path = lock_path(run_dir)
        self.lease_secs = lease_secs
        self.holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "job": _job(),
        }
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> str | None:
        """Take the lock; returns a line about a stale lock taken over, if any. Refuses a live one."""
        note = None
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            held = self._read()
            if held is not None and self._alive(held):
                raise Inception3Error(
                    f"{self.path.parent}: another trainer holds this run directory (host {held['host']}, "
                    f"process {held['pid']}, since {time.ctime(held['started'])}); stop it first, or train "
                    "into another --train-dir"
                ) from None
            earlier = held is not None and self._same_job(held)
            gone = "an earlier attempt of this job" if earlier else "a trainer that is gone"
            note = f"took over the lock of {gone} ({self._describe(held)})"
            write_text_atomic(self.path, json.dumps(self.holder))
        else:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self.holder))
        self._renewer = threading.Thread(target=self._renew, name="run-lock-lease", daemon=True)
        self._renewer.start()
        return note

    def release(self) -> None:
        """Give the lock back (only if it is still ours)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._read() == self.holder:
            self.path.unlink(missing_ok=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_secs / 4):
            try:
                os.utime(self.path)
            except OSError:
                return  # the directory went away or became read-only: the next write says so

    def _read(self) -> dict | None:
        try:
            held = json.loads(self.path.read_text())
            return held if {"host", "pid", "started"} <= set(held) else None
        except (OSError, ValueError):
            return None  # a lock file cut short by a crash while it was written: not a live holder

    def _same_job(self, held: dict) -> bool:
        """The lock is an earlier attempt's of this job, which torchrun or SLURM started again."""
        return held.get("job") is not None and held.get("job") == self.holder["job"]

    def _alive(self, held: dict) -> bool:
        if self._same_job(held):
            return False
        if held["host"] == self.holder["host"]:
            if int(held["pid"]) == self.holder["pid"] and held["started"] < _process_started() - 2.0:
                return False  # our pid before this process began: a container restarted under the same name
            try:
                os.kill(int(held["pid"]), 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True  # someone else's live process
            return True
        try:
            return time.time() - self.path.stat().st_mtime < self.lease_secs
        except OSError:
            return False

    @staticmethod
    def _describe(held: dict | None) -> str:
        if held is None:
            return "an unreadable lock file"
        return f"host {held['host']}, process {held['pid']}"


def _job() -> str | None:
    """The launcher's id of the job this process belongs to, the same in every attempt; None alone."""
    for name in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID"):
        if os.environ.get(name):
            return f"{name}={os.environ[name]}"
    return None


def _process_started() -> float:
    """When this process began (seconds since the epoch, to about a second); -inf where /proc is not."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return float("-inf")
