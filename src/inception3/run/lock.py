"""One trainer per run directory: a lock file that names its holder and is renewed while it lives.

Clusters start a job twice (a requeue while the old allocation still runs, a second terminal, two
jobs given one `--rdzv-id`, two `srun` steps of one allocation); two trainers writing one run
directory would overwrite each other's checkpoints. `RUN/.trainer.lock` names its holder: host,
process id and that process's start time (a pid reused by an unrelated process is not the holder),
the host's boot, and the launcher's job id (`TORCHELASTIC_RUN_ID` of torchrun, `SLURM_JOB_ID`). Its
modification time is a lease, renewed every `RENEW_SECS` by a thread of the holder.

Who may take it over, with a line saying so:
- nobody while the holder lives. On this host that is exact: its process runs and began when the
  lock says. On another host, whose processes cannot be seen, the holder lives while its lease does:
  a lock not renewed for `LEASE_SECS` is a dead holder's.
- an attempt of the same job on another host need not wait for the lease: when rank 0 comes back on
  another node (a node lost, a torchrun restart) it watches the lock for `HANDOVER_RENEWALS` of the
  holder's renewal periods (10 s) and takes it if nothing renewed it. A live holder of the same job (a
  second job with the same `--rdzv-id`, a second `srun` step) renews it meanwhile and is refused as
  any other. Restart counts do not decide: torchrun's is per agent (a node started again counts from
  0, and an agent that restarts its group for a membership change does not count it), so a later
  attempt may carry a lower or an equal one.

How only one takes it, on local disks and on NFS alike: every change of the lock file (create,
take over, release) happens under an `flock` of `RUN/.trainer.lock.guard` (never removed, so all
contenders lock the same file; held for milliseconds, never while training; the kernel drops it when
its process dies). Under it the lock is read and judged, and replaced only then, so a stale lock is
taken over by one contender: the next reads the new holder (a compare-and-swap). The content is
written to a temporary file and published whole, by `link` where there is no lock (which fails if one
is there) and by `rename` over a stale one, so no reader ever sees a half-written lock. On NFS, Linux
sends `flock` to the server as a lock of the whole file (NFSv4 has it built in, v3 needs lockd), so the
guard holds across hosts. On a mount with `nolock` or `local_lock=flock` it holds on each host alone,
and where locks are refused (no lock manager) it is skipped: `link` still lets one creator of a fresh
lock win, but two hosts taking over one stale lock in the same instant could both replace it; the one
displaced stops at its first `check`. A lease compares the server's modification time with this
host's clock; the handover watch compares modification times only, reopening the file each time (NFS
revalidates attributes on open), so clock skew does not matter there.

A holder that lost the lock anyway (paused or cut off from the storage past its lease) finds out by
`check` (`check_held`), which the trainer calls before each checkpoint write, and stops with one line.
Readers (`eval`, `report`) take no lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from inception3.errors import Inception3Error
from inception3.run.layout import LOCK_GUARD, lock_path

LEASE_SECS = 120.0  # a holder on another host that has not renewed for this long is presumed dead
RENEW_SECS = 2.0  # how often the holder renews its lease (at most a quarter of the lease)
HANDOVER_RENEWALS = 5  # an attempt of the same job elsewhere waits this many unrenewed periods
GUARD_SECS = 30.0  # the guard is held for milliseconds: a wait this long means a hung holder of it

_HELD: dict[str, RunLock] = {}  # the locks this process holds, by lock file: what `check_held` checks


@dataclass(frozen=True)
class _Seen:
    """The lock file as read once: its bytes, and the inode and modification time that carry the lease."""

    data: bytes
    inode: int
    mtime_ns: int

    @property
    def holder(self) -> dict | None:
        """The holder it names; None for a file that is not a lock (damaged, or written by hand)."""
        try:
            held = json.loads(self.data)
        except ValueError:
            return None
        if not isinstance(held, dict):
            return None
        fields = (held.get("host"), held.get("pid"), held.get("started"))
        if not (isinstance(fields[0], str) and type(fields[1]) is int and isinstance(fields[2], int | float)):
            return None
        if fields[1] <= 0:
            return None  # not a process (0 and -1 would make `kill` ask about a whole group)
        return held


class RunLock:
    """The trainer's hold on a run directory, from `acquire` to `release`."""

    def __init__(self, run_dir: Path, *, lease_secs: float = LEASE_SECS) -> None:
        self.path = lock_path(run_dir)
        self.guard = self.path.with_name(LOCK_GUARD)
        self.lease_secs = lease_secs
        self.renew_secs = min(RENEW_SECS, lease_secs / 4)
        self.holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "job": _job(),
            "boot": _boot_id(),
            "pid_start": _own_start_ticks(),
            "renew": self.renew_secs,
        }
        self._data = json.dumps(self.holder).encode()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> str | None:
        """Take the lock; returns a line about a stale lock taken over, if any. Refuses a live one."""
        unrenewed = None  # a lock of this job on another host, seen unrenewed for the handover time
        while True:
            with self._guarded():
                seen = self._look()
                if seen is None:
                    if not self._publish(replace=False):
                        continue  # created beside the guard (a mount without locks): judge it
                    note = None
                    break
                verdict = "stale" if seen == unrenewed else self._judge(seen)
                if verdict == "stale":
                    self._publish(replace=True)
                    note = self._took_over(seen.holder)
                    break
                if verdict == "live":
                    raise self._refusal(seen.holder)
            unrenewed = self._watch(seen)  # outside the guard: the holder may release meanwhile
        _HELD[os.path.abspath(self.path)] = self
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="run-lock-lease", daemon=True)
        self._renewer.start()
        return note

    def check(self) -> None:
        """Raise Inception3Error unless the lock is still ours: another trainer took it over while this
        one was paused or cut off from the storage past its lease, and writes this run now."""
        seen = self._look()
        if seen is not None and seen.data == self._data:
            return
        now = "the lock file is gone" if seen is None else f"the lock names {self._describe(seen.holder)}"
        raise Inception3Error(
            f"{self.path.parent}: this trainer no longer holds the run directory ({now}); another trainer "
            "took it over, so this one stopped without writing its checkpoint"
        )

    def release(self) -> None:
        """Give the lock back (only if it is still ours)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if _HELD.get(os.path.abspath(self.path)) is self:
            del _HELD[os.path.abspath(self.path)]
        try:
            with self._guarded():
                seen = self._look()
                if seen is not None and seen.data == self._data:
                    self.path.unlink()
        except (OSError, Inception3Error):
            pass  # the directory went away or became unwritable: the lock names a holder that is gone

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """Hold the guard's flock: the lock file changes only under it."""
        fd = os.open(self.guard, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            deadline = time.monotonic() + GUARD_SECS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                        break  # a file system without locks (NFS without its lock manager): `link` alone
                    if not isinstance(error, BlockingIOError):
                        raise
                    if time.monotonic() > deadline:
                        raise Inception3Error(
                            f"{self.guard}: held for over {GUARD_SECS:.0f} s by another process (a trainer "
                            "starting or stopping is hung); stop it, or train into another --train-dir"
                        ) from None
                    time.sleep(0.002)
            yield
        finally:
            os.close(fd)  # drops the flock

    def _look(self) -> _Seen | None:
        """The lock file as it is now; None if there is none. Opened afresh (NFS revalidates on open)."""
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                return _Seen(f.read(), st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            return None

    def _publish(self, *, replace: bool) -> bool:
        """Our holder record as the lock file, published whole; False if a lock appeared (not replacing)."""
        temporary = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "xb") as f:
                f.write(self._data)
            if replace:
                os.replace(temporary, self.path)
                return True
            try:
                os.link(temporary, self.path)
            except FileExistsError:
                # NFS may answer a retried link that had succeeded with EEXIST: then the lock is our file.
                try:
                    return os.path.samefile(self.path, temporary)
                except FileNotFoundError:
                    return False
            return True
        finally:
            temporary.unlink(missing_ok=True)

    def _judge(self, seen: _Seen) -> str:
        """'live' (refused), 'stale' (taken over) or 'watch' (this job's lock elsewhere, lease fresh)."""
        held = seen.holder
        if held is None:
            return "stale"  # published whole, so not a write in progress: a damaged or foreign file
        if held["host"] == self.holder["host"]:
            return "live" if self._runs(held) else "stale"
        if time.time() - seen.mtime_ns / 1e9 >= self.lease_secs:
            return "stale"
        return "watch" if self._same_job(held) else "live"

    def _watch(self, seen: _Seen) -> _Seen | None:
        """Watch a fresh lock of this job on another host for a few of its renewal periods: renewed, it
        is refused; still the same, it is returned, to be taken over; changed otherwise, None."""
        period = seen.holder.get("renew") if seen.holder else None
        if not isinstance(period, int | float) or period <= 0:
            period = self.lease_secs / 4  # a holder that does not say: the old renewal period
        deadline = time.monotonic() + min(HANDOVER_RENEWALS * period, self.lease_secs)
        while time.monotonic() < deadline:
            time.sleep(min(period / 4, 0.5))
            now = self._look()
            if now is None or now.data != seen.data:
                return None
            if now != seen:
                raise self._refusal(seen.holder)  # renewed: the holder lives
        return seen

    def _same_job(self, held: dict) -> bool:
        """The lock is of the job that is starting, which torchrun or SLURM (or a user) started again."""
        return held.get("job") is not None and held.get("job") == self.holder["job"]

    def _runs(self, held: dict) -> bool:
        """Whether the holder's process on this host still runs: the same pid begun at the same time."""
        pid = held["pid"]
        if held.get("boot") and self.holder["boot"] and held["boot"] != self.holder["boot"]:
            return False  # the host started again since: every process of that boot is gone
        if held.get("pid_start") is not None:
            try:
                return _start_ticks(pid) == held["pid_start"]  # None: a zombie
            except (OSError, ValueError, IndexError):
                pass  # no such process, one /proc hides (hidepid), or no /proc: ask the kernel below
        if pid == self.holder["pid"] and held["started"] < _process_started() - 2.0:
            return False  # our pid, taken before this process began (a container started again)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's live process
        except (OverflowError, ValueError):
            return False  # not a pid at all
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_secs):
            with contextlib.suppress(OSError):  # a storage hiccup: the next renewal tries again
                os.utime(self.path)

    def _took_over(self, held: dict | None) -> str:
        earlier = held is not None and self._same_job(held)
        gone = "an earlier attempt of this job" if earlier else "a trainer that is gone"
        return f"took over the lock of {gone} ({self._describe(held)})"

    def _refusal(self, held: dict | None) -> Inception3Error:
        assert held is not None
        return Inception3Error(
            f"{self.path.parent}: another trainer holds this run directory (host {held['host']}, "
            f"process {held['pid']}, since {time.ctime(held['started'])}); stop it first, or train "
            "into another --train-dir"
        )

    @staticmethod
    def _describe(held: dict | None) -> str:
        if held is None:
            return "an unreadable lock file"
        return f"host {held['host']}, process {held['pid']}"


def check_held(run_dir: Path) -> None:
    """Raise Inception3Error if this process took `run_dir`'s lock and another trainer has it now;
    nothing where this process took none (ranks other than 0, the API without a trainer)."""
    lock = _HELD.get(os.path.abspath(lock_path(run_dir)))
    if lock is not None:
        lock.check()


def _job() -> str | None:
    """The launcher's id of the job this process belongs to, the same in every attempt; None alone."""
    for name in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID"):
        if os.environ.get(name):
            return f"{name}={os.environ[name]}"
    return None


def _start_ticks(pid: int | str) -> int | None:
    """When process `pid` began, in clock ticks since boot (/proc/PID/stat); None for a zombie.
    Raises FileNotFoundError if there is no such process, another OSError where /proc cannot tell."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _own_start_ticks() -> int | None:
    """When this process began, in clock ticks since boot; None where /proc is not."""
    try:
        return _start_ticks("self")
    except (OSError, ValueError, IndexError):
        return None


def _boot_id() -> str | None:
    """This boot of this host's kernel (pids and start ticks count from it); None where not known."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _process_started() -> float:
    """When this process began (seconds since the epoch, to about a second); -inf where /proc is not."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return float("-inf")
