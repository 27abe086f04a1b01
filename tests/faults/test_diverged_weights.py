"""No checkpoint holds non-finite weights, even when the update after the last finite loss made them so.

The loss of step N is computed before step N's update: a finite loss says nothing of the weights that
update leaves. With the largest learning rate the config takes (3e38), the first update makes the
weights infinite while its loss is 2.3; the run used to write them as its final checkpoint and exit 0.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import one_thread, train_args
from tinyshards import make_shards

from inception3.cli import main

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("diverged"), per_class=4)


def test_weights_made_non_finite_by_the_last_update_are_never_checkpointed(shards, tmp_path, capsys):
    run = tmp_path / "run"
    argv = train_args(shards, run, max_steps=1, checkpoint_every=1, extra=("--set=learning_rate=3e38",))
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "step 0, loss = " in captured.out  # the loss was finite: the weights are what diverged
    err = captured.err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "the weights stopped being finite by step 1 (they are checked every 1 steps and before each" in err
    assert "The last good checkpoint is none (none was written yet); try a lower learning_rate" in err
    assert not list((run / "checkpoints").glob("ckpt-*")), "no checkpoint of the infinite weights"
