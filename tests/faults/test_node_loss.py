"""A job on two machines survives losing one: simulated here by two `torchrun` agents on one machine.

Each agent stands for a node (`--nnodes 2 --nproc-per-node 1`, c10d rendezvous, `--max-restarts 3`);
both train into the same run directory, as nodes on shared storage do (rank 0 holds its lock and
writes). One job takes two faults: a worker killed on one node, then the whole non-host node lost
(agent and worker) and its agent started again with the same command. Each time the job comes back
from the last checkpoint, and it ends bitwise equal to a job that lost nothing, which runs beside it.

The agents run with `TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`: without it the group restarted after the
first fault hangs, and the agents never re-form after the second (docs/reliability.md says why).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from faultkit import ENV, assert_same_state, logged_steps, train_args
from tinyshards import make_shards

from inception3.run.checkpoint import checkpoint_name, latest_checkpoint

MAX_STEPS = 10
CHECKPOINT_EVERY = 2
KILL_AFTER = 3  # steps logged by an attempt: its first checkpoint is on disk, most steps are to come
TIMEOUT = 110.0  # a job that has not ended by then hangs (a rendezvous that never forms)
MARK = "INCEPTION3_NODE_LOSS_JOB"  # in every agent's and worker's environment, to find them all
RESUMED = re.compile(r"^resuming from \S+ at step (\d+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("node-loss"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


class Job:
    """A training job of two nodes: agent 0 serves the rendezvous, agent 1 joins it."""

    def __init__(self, shards: Path, root: Path, name: str) -> None:
        self.root, self.run = root, root / name
        self.id = f"{name}-{uuid.uuid4().hex[:8]}"
        self.port = _free_port()
        self.env = ENV | {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1", MARK: self.id}
        self.command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *("--nnodes", "2", "--nproc-per-node", "1", "--max-restarts", "3"),
            *("--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{self.port}", "--rdzv-id", self.id),
            # a lost node is noticed within 5 s (5 missed heartbeats of 1 s) instead of 15
            *("--rdzv-conf", "keep_alive_interval=1,keep_alive_max_attempt=5"),
            *("--log-dir", str(root / f"{name}-torchelastic")),  # not a new folder in /tmp per agent
            "-m",
            "inception3",
            *train_args(
                shards, self.run, max_steps=MAX_STEPS, checkpoint_every=CHECKPOINT_EVERY, batch_size=16
            ),
        ]
        self.logs: list[Path] = []
        self.agents: list[subprocess.Popen] = []
        self.deadline = time.monotonic() + TIMEOUT
        try:
            self.start_agent()
            self.wait_for(self._serving, "agent 0 never served the rendezvous")
            self.start_agent()
        except BaseException:
            self.kill_all()
            raise

    def start_agent(self) -> None:
        """One more agent running the job's command (a node joining, or back after it was lost)."""
        log = self.root / f"{self.run.name}-agent-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "w") as out:
            self.agents.append(
                subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env)
            )

    def _serving(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def output(self, tail: int = 8000) -> str:
        return "".join(f"--- {log.name}\n{log.read_text()}" for log in self.logs)[-tail:]

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        while not condition():
            assert time.monotonic() < self.deadline, f"{what}\n{self.output()}"
            assert all(a.poll() in (None, 0, -signal.SIGKILL) for a in self.agents), self.output()
            time.sleep(0.02)

    def resumed_at(self) -> list[int]:
        """The step of each `resuming from ... at step N` line so far."""
        return [int(step) for step in RESUMED.findall(self.output(tail=10**7))]

    def steps_since_resumed(self) -> int:
        """Steps logged since the last resume (since the start if none)."""
        text = self.output(tail=10**7)
        return len(logged_steps(text.rsplit("resuming from", 1)[-1]))

    def worker(self, rank: int) -> int:
        """The pid of the worker of global rank `rank`, a child of one of the live agents."""
        agents = {a.pid for a in self.agents if a.poll() is None}
        for pid in _pids():
            if _parent(pid) in agents and f"RANK={rank}".encode() in _environ(pid):
                return pid
        raise AssertionError(f"no worker of rank {rank}\n{self.output()}")

    def lose_node(self, index: int) -> None:
        """SIGKILL agent `index` and its worker at once, as when its machine goes down."""
        agent = self.agents[index]
        workers = [pid for pid in _pids() if _parent(pid) == agent.pid]
        assert workers, self.output()
        agent.kill()
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        assert agent.wait() == -signal.SIGKILL

    def finish(self) -> list[int]:
        """Wait for every agent that was not killed; their exit codes."""
        alive = [a for a in self.agents if a.returncode != -signal.SIGKILL]
        try:
            return [a.wait(timeout=max(1.0, self.deadline - time.monotonic())) for a in alive]
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the job did not end in {TIMEOUT:.0f} s\n{self.output()}") from None

    def final_state(self) -> dict:
        final = latest_checkpoint(self.run)
        assert final is not None and final.name == checkpoint_name(MAX_STEPS), self.output()
        return torch.load(final, map_location="cpu", weights_only=True)

    def kill_all(self) -> None:
        """SIGKILL every process of this job: agents, and workers whose agent is gone too."""
        mark = f"{MARK}={self.id}".encode()
        for pid in _pids():
            if pid != os.getpid() and mark in _environ(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for agent in self.agents:
            agent.wait()


@pytest.fixture
def jobs(shards: Path, tmp_path: Path) -> Iterator[Callable[[str], Job]]:
    """Starts jobs of two nodes; every process of each is killed when the test ends, however it ends."""
    started: list[Job] = []

    def start(name: str) -> Job:
        started.append(Job(shards, tmp_path, name))
        return started[-1]

    yield start
    for job in started:
        job.kill_all()


def test_a_two_node_job_survives_a_killed_worker_and_a_lost_node(jobs: Callable[[str], Job]) -> None:
    straight = jobs("straight")  # beside the faulted job: the machine's idle waits overlap
    job = jobs("faulted")

    # A worker killed on one node: torchrun restarts the worker group on both nodes.
    job.wait_for(lambda: job.steps_since_resumed() >= KILL_AFTER, "no progress before the first kill")
    assert latest_checkpoint(job.run) is not None
    os.kill(job.worker(1), signal.SIGKILL)
    job.wait_for(lambda: len(job.resumed_at()) == 1, "the job did not resume after its worker was killed")

    # The node that does not serve the rendezvous lost, then back: the same command joins again.
    job.wait_for(lambda: job.steps_since_resumed() >= KILL_AFTER, "no progress after the first resume")
    job.lose_node(1)
    job.start_agent()
    assert job.finish() == [0, 0], job.output()

    first, second = job.resumed_at()
    assert CHECKPOINT_EVERY <= first < second < MAX_STEPS, job.output()
    assert straight.finish() == [0, 0], straight.output()
    assert assert_same_state(straight.final_state(), job.final_state()) > 100
