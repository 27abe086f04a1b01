"""`inception3 COMMAND`: the options reach the API as typed config values."""

from __future__ import annotations

import typing
from pathlib import Path
from types import SimpleNamespace

import pytest

from inception3 import config
from inception3.cli import main


def test_trains_own_options_are_config_keys_typed_and_applied_after_set(monkeypatch, tmp_path: Path) -> None:
    seen = {}

    def train(cfg, data_dir, train_dir, force):
        seen["cfg"] = cfg
        return SimpleNamespace(checkpoint=None, step=0)

    monkeypatch.setattr("inception3.train.loop.train", train)
    argv = ["train", "--data-dir", str(tmp_path), "--train-dir", str(tmp_path / "run"), "--set=max_steps=5"]
    argv += ["--max-steps", "7", "--trainable", "Logits, AuxLogits", "--init-from", "./w.pt"]
    assert main(argv) == 0
    cfg = seen["cfg"]
    assert (cfg.max_steps, cfg.trainable, cfg.init_from) == (7, ("Logits", "AuxLogits"), "w.pt")


def test_device_choices_are_the_device_literals(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["predict", "--device", "tpu", "--checkpoint", "x.pt", "image.jpg"])
    err = capsys.readouterr().err
    assert "invalid choice: 'tpu'" in err and all(c in err for c in typing.get_args(config.Device))
