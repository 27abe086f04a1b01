"""The process group and this rank's device, for every command that runs under `torchrun` or `srun`.

`torchrun` sets RANK, WORLD_SIZE and LOCAL_RANK (also when it runs inside an `sbatch` script).
`srun inception3 ...`, one task per GPU and no torchrun, sets SLURM's own: SLURM_PROCID,
SLURM_STEP_NUM_TASKS, SLURM_LOCALID, and the step's node list, whose first host serves the
group's store (MASTER_ADDR and MASTER_PORT override it). Without either the run is a single
process and nothing here touches `torch.distributed`. CUDA ranks use NCCL, one GPU per local rank;
CPU ranks use gloo. The collectives below are no-ops for a single process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

from inception3.errors import Inception3Error


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: its rank among `world_size`, and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, summaries and logs."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """'auto' is this rank's CUDA device (LOCAL_RANK's unless given) when there is one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise Inception3Error(
                "device 'cuda' was asked for but no CUDA device is available; use the CPU "
                "(train: --set device=cpu, eval and predict: --device cpu)"
            )
        if local_rank is None:
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "cpu":
        return torch.device("cpu")
    raise Inception3Error(f"device must be 'auto', 'cuda' or 'cpu', got {name!r}")


def single_process(device: str = "auto") -> Distributed:
    """One process alone on `device`, whatever the environment says."""
    return Distributed(0, 1, 0, resolve_device(device))


def restart_store(rank: int, world_size: int) -> dist.Store | None:
    """Under torchrun, a store namespaced by this attempt (TORCHELASTIC_RESTART_COUNT); else None.

    torchrun's c10d rendezvous keeps one store for the whole job. Ranks that `--max-restarts`
    started again would read the addresses their killed predecessors left in it and fail to
    connect; each attempt's keys apart, the restarted group forms as the first one did.
    """
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != str(True):
        return None
    several_nodes = int(os.environ.get("GROUP_WORLD_SIZE", "1")) > 1
    if rank == 0 and several_nodes and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0:
        print(  # the nodes' restart counts can differ: a restarted group would wait for ever
            "inception3: torchrun on several machines shares its rendezvous store: set "
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 on every node, or a restart can hang "
            "(docs/reliability.md)",
            file=sys.stderr,
            flush=True,
        )
    store, _, _ = next(dist.rendezvous("env://", rank=rank, world_size=world_size))
    return dist.PrefixStore(f"inception3/attempt-{attempt}", store)


@dataclass(frozen=True)
class Launch:
    """What started this process: torchrun, srun, or nothing (a single process)."""

    launcher: str  # "torchrun", "srun" or "none"
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    init_method: str = "env://"  # srun: tcp://HOST:PORT of the first node


def launch_from(env: Mapping[str, str]) -> Launch:
    """Read the launcher's variables; torchrun's win, so `torchrun` inside `sbatch` works as ever."""
    if "WORLD_SIZE" in env or "RANK" in env:
        return Launch(
            "torchrun",
            int(env.get("RANK", "0")),
            int(env.get("WORLD_SIZE", "1")),
            int(env.get("LOCAL_RANK", "0")),
        )
    if "SLURM_STEP_NUM_TASKS" in env and "SLURM_PROCID" in env:  # a task of an srun step
        nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", "")
        host = env.get("MASTER_ADDR") or first_slurm_host(nodes)
        port = env.get("MASTER_PORT") or str(SLURM_PORT_BASE + int(env.get("SLURM_JOB_ID", "0")) % 20000)
        return Launch(
            "srun",
            int(env["SLURM_PROCID"]),
            int(env["SLURM_STEP_NUM_TASKS"]),
            int(env.get("SLURM_LOCALID", "0")),
            f"tcp://{host}:{port}",
        )
    return Launch("none")


SLURM_PORT_BASE = 20000  # + the job id modulo 20000: two jobs sharing a node use different ports


def first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list (`node[07-09,12],gpu1` -> `node07`).

    `scontrol show hostnames` expands it where SLURM is installed; the rule below is its first
    entry for the usual forms, for when it is not.
    """
    if not nodelist:
        raise Inception3Error(
            "srun gave no node list (SLURM_STEP_NODELIST); set MASTER_ADDR to the first node"
        )
    if shutil.which("scontrol"):
        done = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=30
        )
        if done.returncode == 0 and done.stdout.split():
            return done.stdout.split()[0]
    match = re.match(r"([^,\[]+)(?:\[([^\]\-,]+))?", nodelist)
    return match[1] + (match[2] or "")


def init_distributed(device: str = "auto") -> Distributed:
    """Join the process group torchrun or srun describes (if any) and pick this rank's device."""
    launch = launch_from(os.environ)
    rank, world_size, local_rank = launch.rank, launch.world_size, launch.local_rank
    where = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if where.type == "cuda":
            torch.cuda.set_device(where)
        backend = "nccl" if where.type == "cuda" else "gloo"
        if launch.launcher == "srun":
            dist.init_process_group(backend, init_method=launch.init_method, rank=rank, world_size=world_size)
        else:
            store = restart_store(rank, world_size)
            dist.init_process_group(backend, rank=rank, world_size=world_size, store=store)
    return Distributed(rank, world_size, local_rank, where)


def shutdown(ctx: Distributed) -> None:
    """Leave the process group (a no-op for a single process)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def mean_over_ranks(value: torch.Tensor, ctx: Distributed) -> torch.Tensor:
    """The mean of a tensor across ranks (the tensor itself when alone), for logging."""
    if not ctx.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / ctx.world_size


def any_rank(flag: bool, ctx: Distributed) -> bool:
    """Whether `flag` is true on at least one rank, so all ranks stop together."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def barrier(ctx: Distributed) -> None:
    if ctx.enabled:
        dist.barrier()


def sum_over_ranks(value: torch.Tensor, ctx: Distributed) -> torch.Tensor:
    """The sum of a tensor across ranks (the tensor itself when alone), on the tensor's device."""
    if not ctx.enabled:
        return value
    summed = value.detach().to(ctx.device, copy=True)
    dist.all_reduce(summed)
    return summed.to(value.device)


def from_main(value: object, ctx: Distributed) -> object:
    """Rank 0's value on every rank, so that all ranks take the same decision."""
    if not ctx.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
