"""Fixtures the fault tests share; each module brings its own `shards`."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import train_args

from inception3.cli import main


@pytest.fixture(scope="module")
def trained(shards: Path, tmp_path_factory) -> Path:
    """A run of two steps at depth 0.25 with a checkpoint after each; its directory."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(train_args(shards, run, max_steps=2, checkpoint_every=1)) == 0
    return run
