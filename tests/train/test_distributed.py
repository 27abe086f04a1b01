"""Two ranks with gloo on the CPU: the same gradients as one process on the same global batch."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import tiny_config

from inception3.config import TrainConfig
from inception3.data.augment import distort_batch
from inception3.errors import Inception3Error
from inception3.model import BatchNorm, InceptionV3, parameter_groups
from inception3.run import distributed
from inception3.run.checkpoint import list_checkpoints, load_checkpoint
from inception3.train import parallel
from inception3.train.loop import train
from inception3.train.optim import build_optimizer
from inception3.train.step import AUGMENT_STREAM, inception_loss, step_seed, train_step

GLOBAL_BATCH = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, world_size: int, port: int) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randint(0, 256, (GLOBAL_BATCH, 3, 75, 75), dtype=torch.uint8, generator=g), torch.randint(
        0, 5, (GLOBAL_BATCH,), generator=g
    )


def _model(cfg: TrainConfig) -> InceptionV3:
    torch.manual_seed(0)
    return InceptionV3.from_config(cfg.model_config(5)).train()


def _first_step_gradients(rank: int, world_size: int, port: int, cfg: TrainConfig, out: str) -> None:
    _join(rank, world_size, port)
    ctx = distributed.init_distributed("cpu")
    model = _model(cfg)
    if cfg.sync_batch_norm:
        parallel.convert_sync_batch_norm(model)
    optimizer = build_optimizer(parameter_groups(model, cfg.weight_decay), cfg)
    images, labels = _batch()
    share = GLOBAL_BATCH // world_size
    part = slice(rank * share, (rank + 1) * share)
    train_step(parallel.wrap_model(model, ctx), optimizer, images[part], labels[part], 0, rank, cfg)
    if rank == 0:
        torch.save({n: p.grad for n, p in model.named_parameters()}, out)
    distributed.shutdown(ctx)


def _reference_gradients(cfg: TrainConfig, world_size: int, whole_batch_statistics: bool) -> dict:
    """One process: each rank's share distorted with that rank's seed; per-share or whole-batch BN."""
    model = _model(cfg)
    images, labels = _batch()
    share = GLOBAL_BATCH // world_size
    shares = []
    for rank in range(world_size):
        g = torch.Generator().manual_seed(step_seed(cfg.seed, 0, rank, AUGMENT_STREAM))
        shares.append(distort_batch(images[rank * share : (rank + 1) * share], g))
    if whole_batch_statistics:
        inception_loss(model(torch.cat(shares)), labels, cfg)[0].backward()
    else:
        for rank, x in enumerate(shares):
            loss = inception_loss(model(x), labels[rank * share : (rank + 1) * share], cfg)[0]
            (loss / world_size).backward()
    return {n: p.grad for n, p in model.named_parameters()}


def _ddp_gradients(cfg: TrainConfig, tmp_path: Path) -> dict:
    out = str(tmp_path / "grads.pt")
    mp.spawn(_first_step_gradients, args=(2, _free_port(), cfg, out), nprocs=2, join=True)
    return torch.load(out, weights_only=True)


@pytest.mark.smoke
def test_two_ranks_average_gradients_like_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    cfg = tiny_config(dropout_keep_prob=1.0, batch_size=GLOBAL_BATCH)  # dropout off: masks are per rank
    ddp = _ddp_gradients(cfg, tmp_path)
    reference = _reference_gradients(cfg, 2, whole_batch_statistics=False)
    assert ddp.keys() == reference.keys()
    for name, grad in reference.items():
        torch.testing.assert_close(ddp[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_synchronized_batch_norm_uses_the_statistics_of_the_whole_global_batch(tmp_path: Path) -> None:
    cfg = tiny_config(dropout_keep_prob=1.0, batch_size=GLOBAL_BATCH, sync_batch_norm=True)
    ddp = _ddp_gradients(cfg, tmp_path)
    whole = _reference_gradients(cfg, 2, whole_batch_statistics=True)
    per_share = _reference_gradients(cfg, 2, whole_batch_statistics=False)
    # Gradients through ~40 batch norms over 8 samples are ill-conditioned: rounding differences grow
    # to a few % by the first layer, while per-share statistics change the gradients by ~100%.
    for name, grad in whole.items():
        error = float((ddp[name] - grad).norm() / grad.norm().clamp_min(1e-12))
        assert error < 0.05, f"{name}: relative error {error}"
        assert float((per_share[name] - grad).norm() / grad.norm().clamp_min(1e-12)) > 5 * error


def _sync_batch_norm_statistics(rank: int, world_size: int, port: int, out: str) -> None:
    """A SyncBatchNorm over 3 images on rank 0 and 5 on rank 1, one update; rank 0 saves its statistics."""
    _join(rank, world_size, port)
    ctx = distributed.init_distributed("cpu")
    bn = parallel.convert_sync_batch_norm(BatchNorm(3, 0.9, 0.001)).train()
    whole = torch.randn(8, 3, 2, 2, generator=torch.Generator().manual_seed(3)) * 2 + 1
    bn(whole[:3] if rank == 0 else whole[3:])
    if rank == 0:
        torch.save({"mean": bn.moving_mean, "variance": bn.moving_variance, "whole": whole}, out)
    distributed.shutdown(ctx)


def test_synchronized_batch_norm_feeds_the_biased_moments_of_the_whole_batch(tmp_path: Path) -> None:
    """`tf.nn.moments` over every rank's images: the variance divided by N·H·W, not N·H·W − 1."""
    out = str(tmp_path / "stats.pt")
    mp.spawn(_sync_batch_norm_statistics, args=(2, _free_port(), out), nprocs=2, join=True)
    saved = torch.load(out, weights_only=True)
    values = saved["whole"].double().permute(1, 0, 2, 3).reshape(3, -1)  # a channel's N·H·W values
    mean = values.sum(1) / values.shape[1]
    variance = ((values - mean[:, None]) ** 2).sum(1) / values.shape[1]
    # The first update of a zero-debiased average is the batch's value itself.
    torch.testing.assert_close(saved["mean"].double(), mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(saved["variance"].double(), variance, rtol=1e-5, atol=1e-6)


def _train_rank(rank: int, world_size: int, port: int, shards: Path, run: Path, max_steps: int = 3) -> None:
    _join(rank, world_size, port)
    out = io.StringIO()
    train(tiny_config(max_steps=max_steps, checkpoint_every=2), shards, run, out=out, force=True)
    (run.parent / f"log-{rank}.txt").write_text(out.getvalue())


def test_train_under_two_ranks_writes_once_from_rank_zero(shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    mp.spawn(_train_rank, args=(2, _free_port(), shards, run), nprocs=2, join=True)
    assert [s for s, _ in list_checkpoints(run)] == [2, 3]
    state = load_checkpoint(list_checkpoints(run)[-1][1])
    assert (
        state["data"]["world_size"] == 2 and state["data"]["position"] == 3 * 8
    )  # global records of 3 steps
    assert "step 2, loss" in (tmp_path / "log-0.txt").read_text()
    assert (tmp_path / "log-1.txt").read_text() == ""


def test_a_run_continues_on_another_number_of_ranks_at_the_same_data_position(
    shards: Path, tmp_path: Path
) -> None:
    """1 rank, then 2 (a node joined), then 1 again (it was lost): the global batch and position carry on."""
    run = tmp_path / "run"
    train(tiny_config(max_steps=2), shards, run, out=io.StringIO())
    mp.spawn(_train_rank, args=(2, _free_port(), shards, run, 4), nprocs=2, join=True)
    assert "resuming from" in (tmp_path / "log-0.txt").read_text()
    assert load_checkpoint(list_checkpoints(run)[-1][1])["data"] | {"skipped_records": 0} == {
        "order": "global-batches",
        "position": 4 * 8,
        "seed": 0,
        "world_size": 2,
        "records": 40,
        "skipped_records": 0,
    }
    out = io.StringIO()
    result = train(tiny_config(max_steps=5), shards, run, out=out)
    assert "resuming from" in out.getvalue() and result.step == 5
    assert load_checkpoint(result.checkpoint)["data"]["position"] == 5 * 8


def _start_rank(rank: int, world_size: int, port: int, shards: Path, run: Path, overrides: dict) -> None:
    """Train one step on this rank; its output, or the one-line error it stopped with, to a file."""
    _join(rank, world_size, port)
    out = io.StringIO()
    try:
        train(tiny_config(max_steps=1, **overrides), shards, run, out=out)
    except Inception3Error as error:
        out.write(f"error: {error}\n")
    (run.parent / f"start-{rank}.txt").write_text(out.getvalue())


def _start(world_size: int, shards: Path, tmp_path: Path, **overrides) -> list[str]:
    run = tmp_path / "run"
    args = (world_size, _free_port(), shards, run, overrides)
    mp.spawn(_start_rank, args=args, nprocs=world_size, join=True)
    return [(tmp_path / f"start-{rank}.txt").read_text() for rank in range(world_size)]


def test_a_per_rank_batch_makes_the_global_batch_and_the_start_line_says_both(shards, tmp_path) -> None:
    logs = _start(4, shards, tmp_path, batch_size_per_rank=8)
    assert "batch: 32 images a step, 4 rank(s) × 8; batch norm over each rank's own images" in logs[0]
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[-1][1])
    assert state["config"]["batch_size"] == 32 and state["data"]["position"] == 32
    # Resumed on 2 ranks (a node lost): the run keeps its global batch, now 16 per rank.
    out = io.StringIO()
    train(tiny_config(max_steps=2, batch_size_per_rank=8), shards, tmp_path / "run", out=out)
    assert "keeping the run's global batch of 32 on 1 rank(s)" in out.getvalue()
    assert "batch: 32 images a step, 1 rank(s) × 32" in out.getvalue()


def test_fewer_than_8_images_per_ranks_batch_norm_are_refused_on_every_rank(shards, tmp_path) -> None:
    logs = _start(2, shards, tmp_path, batch_size=8)
    for log in logs:
        assert "error: config: batch_size 8 leaves 4 images to each rank's batch norm" in log
        assert "set sync_batch_norm=true with --set, or pass --force" in log
    assert not list_checkpoints(tmp_path / "run")
