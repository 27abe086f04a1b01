"""The effective config: presets, TOML files, --set values, and config.toml written back."""

from __future__ import annotations

from pathlib import Path

import pytest

from inception3 import config
from inception3.config import PRESETS, ModelConfig, TrainConfig
from inception3.errors import Inception3Error
from inception3.train.options import config_to_toml, make_config, parse_set, read_toml, resolve_config


def test_defaults_are_the_original_recipe() -> None:
    cfg = resolve_config()
    assert (cfg.learning_rate, cfg.num_epochs_per_decay, cfg.learning_rate_decay_factor) == (0.1, 30.0, 0.16)
    assert (cfg.optimizer, cfg.rmsprop_decay, cfg.momentum, cfg.rmsprop_epsilon) == ("rmsprop", 0.9, 0.9, 1.0)
    assert (cfg.label_smoothing, cfg.aux_loss_weight, cfg.weight_decay) == (0.1, 0.4, 0.00004)
    assert (cfg.ema_decay, cfg.model.batch_norm_decay, cfg.batch_size, cfg.model.image_size) == (
        0.9999,
        0.9997,
        32,
        299,
    )
    assert cfg.num_classes is None and cfg.precision == "fp32"


def test_presets_override_only_what_they_name() -> None:
    dist = resolve_config("imagenet-distributed")
    assert (dist.learning_rate, dist.num_epochs_per_decay, dist.learning_rate_decay_factor) == (
        config.DIST_INITIAL_LEARNING_RATE,
        2.0,
        0.94,
    )
    flowers = resolve_config("flowers")
    assert flowers.learning_rate == 0.001 and flowers.fine_tune
    assert resolve_config("imagenet") == TrainConfig()
    assert set(PRESETS) >= {"imagenet", "imagenet-distributed", "flowers", "tiny"}
    with pytest.raises(Inception3Error, match="unknown preset 'cifar'"):
        resolve_config("cifar")


def test_set_values_take_the_type_of_their_key() -> None:
    values = parse_set(
        [
            "batch_size=64",
            "learning_rate=4.5e-2",
            "compile=true",
            "num_classes=none",
            "trainable=Logits, AuxLogits",
            "precision=bf16",
            "max_steps=1e3",
            "crop_area_range=0.3, 1",
        ]
    )
    assert values == {
        "batch_size": 64,
        "learning_rate": 0.045,
        "compile": True,
        "num_classes": None,
        "trainable": ("Logits", "AuxLogits"),
        "precision": "bf16",
        "max_steps": 1000,
        "crop_area_range": (0.3, 1.0),
    }
    for bad, message in (
        ("batch_size=big", "batch_size = 'big' is not a valid int"),
        ("colour=red", "unknown config key 'colour'"),
        ("batch_size", "expected key=value"),
        ("compile=maybe", "not a valid bool"),
        ("crop_area_range=0.3", "crop_area_range = '0.3' is not a valid"),
    ):
        with pytest.raises(Inception3Error, match=message):
            parse_set([bad])


def test_later_sources_win_and_bad_values_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text("batch_size = 16\nlearning_rate = 0.5\n")
    cfg = resolve_config("flowers", toml, ["learning_rate=0.25"])
    assert (cfg.batch_size, cfg.learning_rate, cfg.fine_tune) == (16, 0.25, True)
    with pytest.raises(Inception3Error, match="precision must be fp32 or bf16"):
        resolve_config(overrides=["precision=fp16"])
    with pytest.raises(Inception3Error, match=r"crop_area_range must be two fractions .* got \(0.5, 0.2\)"):
        resolve_config(overrides=["crop_area_range=0.5,0.2"])
    toml.write_text("batch_size = [\n")
    with pytest.raises(Inception3Error, match="run.toml: not valid TOML"):
        resolve_config(config_file=toml)


def test_config_toml_reads_back_to_the_same_config(tmp_path: Path) -> None:
    cfg = TrainConfig(
        model=ModelConfig(image_size=107, aux_logits=False),
        num_classes=7,
        trainable=("Logits", "Mixed_7c"),
        init_from='C:\\w "x".pt',
        weight_decay=4e-5,
        compile=True,
        crop_area_range=(0.25, 0.75),
    )
    path = tmp_path / "config.toml"
    path.write_text(config_to_toml(cfg, header="written by a test"))
    assert path.read_text().startswith("# written by a test\n")
    assert make_config(read_toml(path)) == cfg
    assert "label_offset" not in path.read_text()  # None: unset, left to the dataset
