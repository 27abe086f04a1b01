"""With skip_corrupt, training on rotten shards goes on, and what it left out is counted where users look:
the log line, a TensorBoard scalar and the summary at the end, summed over every rank."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from faultkit import ENV, flip_byte_in_record, one_thread, train_args
from tinyshards import make_shards

from inception3.cli import main
from inception3.data.loader import TrainLoader
from inception3.data.meta import load_dataset_info
from inception3.run.checkpoint import latest_checkpoint, load_checkpoint
from inception3.train.summaries import SKIPPED_TAG

STEPS = 7  # 56 records of 40: the bad ones come round again in the second epoch

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


@pytest.fixture(scope="module")
def rotten(tmp_path_factory) -> Path:
    """Tiny shards with two bad records in shard 0 and the last record of shard 1 cut short."""
    shards = make_shards(tmp_path_factory.mktemp("rotten"))
    flip_byte_in_record(shards / "train-00000-of-00002", 2)
    flip_byte_in_record(shards / "train-00000-of-00002", 10, seed=1)  # one for each of two ranks
    last = shards / "train-00001-of-00002"
    last.write_bytes(last.read_bytes()[:-10])
    return shards


def _scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def _skips_by_rank(shards: Path, per_rank: int, world_size: int, steps: int) -> tuple[list[int], int]:
    """What each rank's loader skips in `steps` batches by itself, and the records lost to damaged framing
    (which every rank counts)."""
    info, own, lost = load_dataset_info(shards), [], 0
    for rank in range(world_size):
        loader = TrainLoader(
            info, per_rank, 75, rank=rank, world_size=world_size, num_workers=0, skip_corrupt=True
        )
        batches = iter(loader)
        for _ in range(steps):
            next(batches)
        lost = loader.records.lost_records
        own.append(loader.skipped_records - lost)
    return own, lost


def test_without_skip_corrupt_training_stops_naming_shard_and_record(rotten, tmp_path, capsys):
    assert main(train_args(rotten, tmp_path / "run", max_steps=STEPS)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "train-0000" in line and "record" in line and "skip_corrupt" in line


def test_skipped_records_are_logged_summarised_and_written_as_a_scalar(rotten, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(rotten, run, max_steps=STEPS, extra=("--set=skip_corrupt=true",))) == 0
    out = capsys.readouterr().out
    (own,), lost = _skips_by_rank(rotten, 8, 1, STEPS)
    skipped = own + lost
    assert own >= 2 and lost == 1  # the two flipped records; the last of shard 1 is lost with its end
    assert load_checkpoint(latest_checkpoint(run))["data"]["skipped_records"] == skipped
    lines = [line for line in out.splitlines() if line.startswith("step ") and ", loss = " in line]
    assert len(lines) == STEPS and lines[-1].endswith(f", skipped records = {skipped}")
    assert f"skip_corrupt: {skipped} corrupt record(s) were left out of training so far" in out
    scalars = _scalars(run, SKIPPED_TAG)
    assert [step for step, _ in scalars[:STEPS]] == list(range(STEPS))
    assert scalars[-1] == (STEPS, skipped) and [v for _, v in scalars] == sorted(v for _, v in scalars)


def test_two_ranks_report_the_sum_of_what_each_skipped(rotten, tmp_path):
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "inception3",
        *train_args(rotten, run, max_steps=STEPS, extra=("--set=skip_corrupt=true",), ranks=2),
    ]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    own, lost = _skips_by_rank(rotten, 4, 2, STEPS)
    assert all(own)  # both ranks met a flipped record: the total must add them up
    skipped = sum(own) + lost
    assert f"skip_corrupt: {skipped} corrupt record(s)" in done.stdout
    assert _scalars(run, SKIPPED_TAG)[-1] == (STEPS, skipped)
