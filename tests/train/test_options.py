"""The effective config: presets, TOML files, --set values, and config.toml written back."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from inception3 import config
from inception3.config import (
    PRESETS,
    AugmentConfig,
    BuildConfig,
    EvalConfig,
    ModelConfig,
    TrainConfig,
    check_fields,
    flat_keys,
    table_rows,
)
from inception3.errors import Inception3Error
from inception3.train.options import (
    config_to_toml,
    flat_config,
    make_config,
    parse_set,
    read_toml,
    resolve_config,
)


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
    assert cfg.num_classes is None and cfg.precision == "auto" and cfg.channels_last is None


def test_presets_override_only_what_they_name() -> None:
    dist = resolve_config("imagenet-distributed")
    assert (dist.learning_rate, dist.num_epochs_per_decay, dist.learning_rate_decay_factor) == (
        config.DIST_INITIAL_LEARNING_RATE,
        2.0,
        0.94,
    )
    assert dist.batch_size_per_rank == 32  # each replica's own batch, as the original's
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
    with pytest.raises(Inception3Error, match="precision must be auto or fp32 or bf16 or fp16"):
        resolve_config(overrides=["precision=fp8"])
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
        augment=AugmentConfig(crop_area_range=(0.25, 0.75)),
    )
    path = tmp_path / "config.toml"
    path.write_text(config_to_toml(cfg, header="written by a test"))
    assert path.read_text().startswith("# written by a test\n")
    assert make_config(read_toml(path)) == cfg
    assert "label_offset" not in path.read_text()  # None: unset, left to the dataset


def test_the_table_has_a_row_for_every_config_key_and_no_other() -> None:
    rows = table_rows(TrainConfig)
    model_keys = {key for key, row in flat_keys(TrainConfig).items() if row.record == "model"}
    assert set(rows) == set(flat_config(TrainConfig())) and model_keys < set(rows)
    for cls in (EvalConfig, BuildConfig):
        assert {f.name for f in dataclasses.fields(cls)} == set(table_rows(cls))
    for key, row in {**rows, **table_rows(EvalConfig), **table_rows(BuildConfig)}.items():
        assert len(row.why) > 10, key


def test_the_defaults_and_every_preset_are_inside_the_table() -> None:
    for preset in PRESETS:
        resolve_config(preset)  # a TrainConfig checks itself when it is made
    with pytest.raises(Inception3Error, match="^config: batch_size must be "):
        TrainConfig(batch_size=0)
    assert EvalConfig().batch_size == config.BATCH_SIZE
    check_fields(BuildConfig(Path("images"), Path("shards")))


HINTS = {key: row.kind for key, row in flat_keys(TrainConfig).items()}  # each flat key's type


def _numbers(key: str, row) -> list[tuple[str, bool]]:
    """`--set` texts at, just inside and just beyond the row's bounds, each with whether it is valid."""
    is_int = HINTS[key] in (int, int | None)
    cases = []
    for bound, closed, inward in (
        (row.at_least, True, 1),
        (row.above, False, 1),
        (row.at_most, True, -1),
        (row.below, False, -1),
    ):
        if bound is None:
            continue
        if is_int:
            cases += [(int(bound), closed), (int(bound) + inward, True), (int(bound) - inward, False)]
        else:
            inside, outside = (
                math.nextafter(bound, inward * math.inf),
                math.nextafter(bound, -inward * math.inf),
            )
            cases += [(float(bound), closed), (inside, True), (outside, False)]
    return [(repr(value), ok) for value, ok in cases]


def test_every_bound_of_the_table_holds_at_its_edge() -> None:
    """Each numeric key: its inclusive bounds accepted, exclusive ones refused, one step beyond refused."""
    checked = 0
    for key, row in table_rows(TrainConfig).items():
        if HINTS[key] == tuple[float, float]:  # pairs (crop_area_range, ...): their bounds hold per item
            continue
        for text, ok in _numbers(key, row):
            setting = [f"{key}={text}"]
            if ok:
                resolve_config(overrides=setting)
            else:
                with pytest.raises(Inception3Error, match=f"^config: {key} must be "):
                    resolve_config(overrides=setting)
            checked += 1
    assert checked > 100


def test_floats_must_be_finite_and_numbers_must_not_be_booleans(tmp_path: Path) -> None:
    floats = [key for key in table_rows(TrainConfig) if HINTS[key] is float]
    assert {"learning_rate", "batch_norm_epsilon", "checkpoint_secs", "aux_loss_weight"} <= set(floats)
    for key in floats:
        for bad in ("nan", "inf", "-inf"):
            with pytest.raises(Inception3Error, match=f"^config: {key} must be a finite number, got {bad}"):
                resolve_config(overrides=[f"{key}={bad}"])
    toml = tmp_path / "c.toml"
    for text, message in (
        ("learning_rate = true", "learning_rate = True is not a valid float"),
        ("seed = false", "seed = False is not a valid int"),
        ("compile_backend = 3", "compile_backend = 3 is not a valid str"),
    ):
        toml.write_text(text + "\n")
        with pytest.raises(Inception3Error, match=message):
            read_toml(toml)


def test_refusals_name_the_key_the_bound_the_value_and_why() -> None:
    fix = "; fix it with --set or in the --config file"
    for setting, message in (
        (
            "learning_rate=inf",
            "config: learning_rate must be a finite number, got inf (the step size, 0 learns nothing; the "
            "optimizer scales by it in float32)",
        ),
        (
            "num_epochs_per_decay=0",
            "config: num_epochs_per_decay must be positive, got 0.0 (epochs between staircase decays: 0 "
            "would decay at every step; for no decay at all use lr_schedule=constant)",
        ),
        (
            "seed=-3",
            "config: seed must be at least 0, got -3 (it seeds numpy's SeedSequence, which takes no "
            "negatives, and torch's 64-bit generator)",
        ),
        (
            "keep_checkpoints=-1",
            "config: keep_checkpoints must be at least 0, got -1 (the newest kept; 0 keeps all)",
        ),
        (
            "crop_area_range=0,0.5",
            "config: crop_area_range must be 2 numbers, each in (0, 1], got (0.0, 0.5) (the random crop's "
            "area, as fractions of the image)",
        ),
        ("init_from=a\tb", "config: init_from must be text without control characters, got 'a\\tb'"),
    ):
        with pytest.raises(Inception3Error) as refused:
            resolve_config(overrides=[setting])
        assert str(refused.value).startswith(message) and str(refused.value).endswith(fix), str(refused.value)
    with pytest.raises(Inception3Error) as refused:
        resolve_config(overrides=["seed=1e300"])
    assert str(refused.value).startswith(
        "config: seed must be at most 9223372036854775807, got 100000000000000005250476…00540160, 301 digits "
        "long (it seeds numpy's"
    )


def test_eval_and_build_configs_check_themselves_naming_the_option() -> None:
    with pytest.raises(Inception3Error) as refused:
        EvalConfig(batch_size=0)
    assert str(refused.value) == (
        "--batch-size must be at least 1, got 0 (images per batch, global: split across the ranks)"
    )
    with pytest.raises(Inception3Error, match=r"^--num-workers must be at least 0, got -1"):
        EvalConfig(num_workers=-1)
    with pytest.raises(Inception3Error, match=r"^--split must be a plain name"):
        EvalConfig(split="../x")
    with pytest.raises(Inception3Error, match=r"^--validation-fraction must be below 1, got 1.5"):
        BuildConfig(Path("a"), Path("b"), validation_fraction=1.5)
    with pytest.raises(Inception3Error, match=r"^--train-shards must be at least 1, got 0 \(shard names"):
        BuildConfig(Path("a"), Path("b"), train_shards=0)
    with pytest.raises(Inception3Error, match=r"^--train-dir must be a path \(without NUL characters\)"):
        BuildConfig(Path("a\0"), Path("b"))


def test_a_global_batch_of_ones_own_replaces_the_presets_per_rank_batch() -> None:
    cfg = resolve_config("imagenet-distributed", overrides=["batch_size=256"])
    assert cfg.batch_size == 256 and cfg.batch_size_per_rank is None
    assert (
        resolve_config("imagenet-distributed", overrides=["batch_size_per_rank=64"]).batch_size_per_rank == 64
    )
    with pytest.raises(Inception3Error, match="batch_size .global. and batch_size_per_rank are both set"):
        resolve_config(overrides=["batch_size=256", "batch_size_per_rank=32"])


def test_the_augmentation_keys_round_trip_through_set_and_config_toml(tmp_path: Path) -> None:
    cfg = resolve_config(
        overrides=["crop_min_object_covered=0.5", "crop_area_range=0.25, 1", "augment_ops=flip_left_right"]
    )
    assert cfg.augment == AugmentConfig(0.5, (0.25, 1.0), ("flip_left_right",))
    path = tmp_path / "config.toml"
    path.write_text(config_to_toml(cfg))
    assert 'augment_ops = ["flip_left_right"]' in path.read_text()
    assert resolve_config(config_file=path) == cfg
    assert resolve_config(overrides=["augment_ops="]).augment.augment_ops == ()


def test_a_config_toml_without_augment_ops_takes_the_originals_ops(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = config_to_toml(TrainConfig(augment=AugmentConfig(crop_min_object_covered=0.3)))
    path.write_text("".join(f"{line}\n" for line in text.splitlines() if not line.startswith("augment_ops")))
    cfg = resolve_config(config_file=path)
    assert cfg.augment == AugmentConfig(crop_min_object_covered=0.3)
    assert cfg.augment.augment_ops == ("flip_left_right", "distort_color")
