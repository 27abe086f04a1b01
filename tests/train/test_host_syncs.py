"""The training loop runs ahead of the device: host reads and collectives only at check steps.

On a GPU every `.item()`, `float()`, `bool()`, `.tolist()` or `.cpu()` of a device tensor waits for
the device. Two gloo ranks train 25 steps with log_every=10; every host read of a tensor made outside
the data pipeline (which works on the host by design) and every `torch.distributed` call is counted
per step. Steps 0, 10 and 20 log and step 24 is the last: each of them makes one all-reduce; every
other step makes none and reads nothing (DDP's gradient buckets are its own, in C++).
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from collections import Counter
from pathlib import Path

import torch
import torch.distributed
import torch.multiprocessing as mp
from conftest import tiny_config

from inception3.train import loop

READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")
COLLECTIVES = ("all_reduce", "all_gather", "broadcast", "barrier", "reduce", "all_gather_object")
PACKAGE = f"{os.sep}inception3{os.sep}"
HOST_SIDE = f"{os.sep}inception3{os.sep}data{os.sep}"  # decoding and cropping: host work by design


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _caller() -> str | None:
    """The first frame of the package on the stack (file:line), or None when there is none."""
    frame = sys._getframe(2)
    while frame is not None:
        if PACKAGE in frame.f_code.co_filename:
            return f"{frame.f_code.co_filename.split(PACKAGE)[-1]}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _count(events: list, step: list[int]):
    """Patch tensor reads, collectives and train_step so that each event is filed under its step."""

    def read(name: str, original):
        def counted(self, *args, **kwargs):
            where = _caller()
            if where is not None and not where.startswith(f"data{os.sep}") and step[0] >= 0:
                events.append((step[0], f"{name} at {where}"))
            return original(self, *args, **kwargs)

        return counted

    def collective(name: str, original):
        def counted(*args, **kwargs):
            if step[0] >= 0:
                events.append((step[0], f"collective {name}"))
            return original(*args, **kwargs)

        return counted

    for name in READS:
        setattr(torch.Tensor, name, read(name, getattr(torch.Tensor, name)))
    for name in COLLECTIVES:
        setattr(torch.distributed, name, collective(name, getattr(torch.distributed, name)))
    train_step = loop.train_step

    def marked(*args, **kwargs):
        step[0] = args[4]  # the global step this call runs
        return train_step(*args, **kwargs)

    loop.train_step = marked
    finish = loop._finish

    def unmarked(*args, **kwargs):  # the final checkpoint and barrier come after the steps
        step[0] = -1
        return finish(*args, **kwargs)

    loop._finish = unmarked


def _rank(rank: int, port: int, shards: Path, run: Path, out: Path) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
        | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )
    events: list = []
    step = [-1]
    _count(events, step)
    cfg = tiny_config(max_steps=25, log_every=10, checkpoint_every=1000, summary_every=1000)
    loop.train(cfg, shards, run, out=io.StringIO(), force=True)
    if rank == 0:
        out.write_text(json.dumps(events))


def test_only_log_steps_and_the_last_read_the_device_or_talk_to_other_ranks(shards, tmp_path) -> None:
    out = tmp_path / "events.json"
    mp.spawn(_rank, args=(_free_port(), shards, tmp_path / "run", out), nprocs=2, join=True)
    by_step: dict[int, list[str]] = {}
    for step, event in json.loads(out.read_text()):
        by_step.setdefault(step, []).append(event)
    del by_step[0]  # step 0 also writes the first summaries (histograms read every layer)
    quiet = {step: events for step, events in by_step.items() if step not in (10, 20, 24)}
    assert quiet == {}, f"host reads or collectives in steady-state steps: {quiet}"
    for step in (10, 20, 24):
        collectives = Counter(e for e in by_step[step] if e.startswith("collective"))
        assert collectives == {"collective all_reduce": 1}, (step, by_step[step])
