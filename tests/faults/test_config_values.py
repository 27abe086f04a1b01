"""Every config value a user can type: `train` either runs or refuses it in one line, exit code 2.

The property test feeds hostile values of every key of the table (config/check.py) through the real CLI,
as `--set key=value` text or as a typed value in a `--config` TOML file, and runs a one-step tiny
training when the value is accepted. The other tests pin the refusals users meet most, and the
values checked against the data (a batch larger than the training split) and against torch.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import shutil
import sys
from pathlib import Path

import pytest
from faultkit import one_thread, refused, train_args
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tinyshards import make_shards

from inception3.cli import main
from inception3.config import CPU_CHANNELS_LAST, BuildConfig, EvalConfig, TrainConfig, flat_keys, table_rows
from inception3.errors import Inception3Error
from inception3.train.options import make_config, read_toml, resolve_config

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

ROWS = table_rows(TrainConfig)
HINTS = {key: row.kind for key, row in flat_keys(TrainConfig).items()}  # each flat key's type
# The tiny run every example starts from (the tiny preset, faultkit's settings, a batch of 2 of the
# 20 records); the fuzzed key comes last and wins.
BASE = {
    "max_steps": 1,
    "batch_size": 2,
    "num_workers": 0,
    "device": "cpu",
    "log_every": 1,
    "checkpoint_every": 1000,
    "summary_every": 1000,
}
# Refused only once the file is read, after the run directory exists.
CHECKED_LATER = {"init_from"}
# Keys read only by an augmentation op: their runs put the op in augment_ops, so the value is used.
OP_OF_KEYS = {"randaugment_": "randaugment", "erasing_": "random_erasing"}


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("values"), per_class=4)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A new run directory per example (hypothesis runs many in one test function)."""
    root = tmp_path_factory.mktemp("runs")
    return (root / f"run{i}" for i in itertools.count())


def _edges(key: str) -> list[object]:
    """Values at and beside the key's bounds, of the key's own type."""
    row, kind = ROWS[key], HINTS[key]
    bounds = [b for b in (row.at_least, row.above, row.at_most, row.below) if b is not None]
    if kind in (int, int | None):
        return list(dict.fromkeys(int(b) + d for b in bounds for d in (-1, 0, 1)))
    beside = ((b - 1, math.nextafter(b, -math.inf), b, math.nextafter(b, math.inf), b + 1) for b in bounds)
    return list(dict.fromkeys(v for values in beside for v in values))


def _extremes() -> list[tuple[str, object]]:
    """Every key's valid values nearest its bounds: where a value the table lets through breaks."""
    cases = []
    for key, row in sorted(ROWS.items()):
        is_int = HINTS[key] in (int, int | None)
        inside = [row.at_least, row.at_most]
        if row.at_most is None and row.below is None and not is_int:
            inside.append(sys.float_info.max)  # no upper bound: the largest float
        if row.above is not None:
            inside.append(row.above + 1 if is_int else math.nextafter(row.above, math.inf))
        if row.below is not None:
            inside.append(row.below - 1 if is_int else math.nextafter(row.below, -math.inf))
        for edge in filter(lambda v: v is not None, inside):
            value = int(edge) if is_int else float(edge)
            cases.append((key, [value, value] if HINTS[key] == tuple[float, float] else value))
    return cases


def _scalars() -> st.SearchStrategy:
    return st.one_of(
        st.integers(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(),
        st.booleans(),
        st.text(max_size=12),
        st.sampled_from(["", "none", "1e400", "-0", "0x10", " 7 ", "yes", "cuda", "x" * 300, "a\nb", "a=b"]),
    )


def _values(key: str) -> st.SearchStrategy:
    """Half the time a value at a bound of the key, else anything a user could type or a TOML file hold."""
    anything = st.one_of(
        _scalars(),
        st.lists(_scalars(), max_size=3),
        st.dictionaries(st.text("ab", min_size=1, max_size=2), st.integers(), max_size=1),
    )
    return st.sampled_from(_edges(key)) | anything if _edges(key) else anything


def _as_text(value: object) -> str:
    """How a user would type `value` after --set key=."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(_as_text(v) for v in value)
    return str(value)


def _as_toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # nan, inf, -inf: TOML's own spellings
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_as_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_as_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)  # JSON's string escapes are TOML's


def _too_slow_to_train(cfg: TrainConfig) -> bool:
    """Accepted values that make one step take seconds to minutes: a bigger network or image, more
    steps, worker processes, a compile. These are resolved (accepted) but not trained."""
    model = cfg.model
    return (
        model.image_size > 107
        or model.depth_multiplier > 0.5
        or model.min_depth > 32
        or (cfg.num_classes or 0) > 1000
        or cfg.max_steps > 2
        or cfg.num_workers > 1
        or cfg.compile
    )


def _as_run_on_one_cpu(cfg: TrainConfig) -> TrainConfig:
    """What the trainer makes of `cfg` on one CPU process: "auto" speed settings and a per-rank batch."""
    batch = cfg.batch_size_per_rank or cfg.batch_size
    return dataclasses.replace(
        cfg,
        precision="fp32" if cfg.precision == "auto" else cfg.precision,
        channels_last=CPU_CHANNELS_LAST if cfg.channels_last is None else cfg.channels_last,
        batch_size=batch,
        batch_size_per_rank=None,
    )


def _train_with(key: str, value: object, as_toml: bool, shards: Path, run: Path, capsys) -> str:
    """`inception3 train` of the tiny run with `key` set to `value`; checks the outcome, returns it.

    The run directory is deleted afterwards: a few hundred runs would keep gigabytes of checkpoints.
    """
    try:
        return _check_train_with(key, value, as_toml, shards, run, capsys)
    finally:
        shutil.rmtree(run, ignore_errors=True)
        run.with_suffix(".toml").unlink(missing_ok=True)


def _check_train_with(key: str, value: object, as_toml: bool, shards: Path, run: Path, capsys) -> str:
    extra = {"compile": True} if key == "compile_backend" else {}  # the backend is read when compiling
    for prefix, op in OP_OF_KEYS.items():
        if key.startswith(prefix):
            extra["augment_ops"] = [op]
    argv = ["train", "--data-dir", str(shards), "--train-dir", str(run), "--preset", "tiny"]
    if as_toml:
        toml = run.with_suffix(".toml")
        lines = {k: _as_toml(v) for k, v in (BASE | extra).items()} | {key: _as_toml(value)}
        toml.write_text("".join(f"{k} = {v}\n" for k, v in lines.items()), encoding="utf-8")
        argv += ["--config", str(toml)]
        sources = {"config_file": toml}
    else:
        sets = [f"{k}={_as_text(v)}" for k, v in (BASE | extra).items()] + [f"{key}={_as_text(value)}"]
        argv += [f"--set={item}" for item in sets]
        sources = {"overrides": sets}
    try:
        cfg = resolve_config("tiny", **sources)
    except Inception3Error:
        cfg = None
    if cfg is not None and _too_slow_to_train(cfg):
        return "accepted; too slow to train here"

    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    if code == 2:
        assert err.startswith("inception3 train: error: ") and err.count("\n") == 1, err
        # a step was taken (the table let the value through) and made the loss or the weights non-finite
        diverged = re.search(r"error: the (loss|weights) stopped being finite", err) is not None
        assert diverged or key in CHECKED_LATER or not run.exists(), f"{run} was created before: {err}"
        return "refused"
    assert code == 0 and cfg is not None, err
    assert make_config(read_toml(run / "config.toml")) == _as_run_on_one_cpu(cfg)  # config.toml reads back
    return "trained"


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
@pytest.mark.parametrize("key", sorted(ROWS))
def test_any_value_of_any_key_trains_or_is_refused_in_one_line(key, data, shards, runs, capsys):
    value = data.draw(_values(key), label="value")
    as_toml = data.draw(st.booleans(), label="as_toml")
    event(_train_with(key, value, as_toml, shards, next(runs), capsys))


@pytest.mark.parametrize(("key", "value"), _extremes())
def test_the_extreme_valid_values_of_every_key_train_or_are_refused_in_one_line(
    key, value, shards, runs, capsys
):
    _train_with(key, value, False, shards, next(runs), capsys)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("learning_rate=inf", "config: learning_rate must be a finite number, got inf (the step size"),
        ("batch_norm_epsilon=nan", "config: batch_norm_epsilon must be a finite number, got nan"),
        ("num_epochs_per_decay=0", "config: num_epochs_per_decay must be positive, got 0.0 (epochs between"),
        ("keep_checkpoints=-1", "config: keep_checkpoints must be at least 0, got -1 (the newest kept"),
        ("warmup_steps=-5", "config: warmup_steps must be at least 0, got -5"),
        ("checkpoint_secs=-1", "config: checkpoint_secs must be at least 0, got -1.0"),
        ("min_depth=0", "config: min_depth must be at least 1, got 0 (the fewest channels of a layer"),
        ("depth_multiplier=0", "config: depth_multiplier must be positive, got 0.0"),
        ("depth_multiplier=1e9", "config: depth_multiplier must be at most 4, got 1000000000.0"),
        ("seed=-1", "config: seed must be at least 0, got -1 (it seeds numpy's SeedSequence"),
        (
            "seed=1e30",
            "config: seed must be at most 9223372036854775807, got 1000000000000000019884624838656",
        ),
        ("num_workers=-1", "config: num_workers must be at least 0, got -1"),
        ("image_size=74", "config: image_size must be at least 75, got 74"),
        ("image_size=100000", "config: image_size must be at most 2048, got 100000"),
        ("batch_size=1000000000", "config: batch_size must be at most 1048576, got 1000000000"),
        ("batch_size=1e400", "--set batch_size=1e400: batch_size = '1e400' is not a valid int"),
        ("learning_rate=true", "--set learning_rate=true: learning_rate = 'true' is not a valid float"),
        ("init_from=a\x00b", "config: init_from must be text without control characters"),
    ],
)
def test_meaningless_values_are_refused_before_anything_is_created(
    shards, tmp_path, capsys, setting, message
):
    line = refused(capsys, [*train_args(shards, tmp_path / "run", max_steps=1), "--set", setting])
    assert message in line
    assert line.endswith("; fix it with --set or in the --config file") or "is not a valid" in line
    assert not (tmp_path / "run").exists()


def test_a_batch_larger_than_the_training_split_is_refused_naming_both(shards, tmp_path, capsys):
    line = refused(capsys, train_args(shards, tmp_path / "run", max_steps=1, batch_size=24))
    assert f"config: batch_size 24 is larger than the 20 training records of {shards}" in line
    assert "lower batch_size with --set" in line
    assert not (tmp_path / "run").exists()
    assert main(train_args(shards, tmp_path / "run", max_steps=1, batch_size=20)) == 0  # the whole split


def test_a_micro_batch_of_one_image_is_refused_before_training(shards, tmp_path, capsys):
    """Batch norm cannot train on one image: PyTorch used to raise it as a traceback mid-step."""
    for batch, accum in ((1, 1), (4, 4)):
        extra = (f"--set=grad_accum={accum}",)
        line = refused(
            capsys, train_args(shards, tmp_path / "run", max_steps=1, batch_size=batch, extra=extra)
        )
        assert (
            f"config: batch_size {batch} leaves 1 image per micro-batch (1 ranks × {accum} accumulation"
            in line
        )
        assert "batch norm needs at least 2" in line and not (tmp_path / "run").exists()


def test_an_unknown_compile_backend_is_refused_before_the_first_step(shards, tmp_path, capsys):
    extra = ("--set=compile=true", "--set=compile_backend=inductr")
    line = refused(capsys, train_args(shards, tmp_path / "run", max_steps=1, extra=extra))
    assert "config: compile_backend 'inductr' is not a torch.compile backend; choose one of" in line
    assert "inductor" in line and not (tmp_path / "run").exists()


def test_a_typed_value_in_a_config_file_must_have_its_keys_type(shards, tmp_path, capsys):
    toml = tmp_path / "recipe.toml"
    argv = [*train_args(shards, tmp_path / "run", max_steps=1), "--config", str(toml)]
    for text, message in (
        ("learning_rate = true", "learning_rate = True is not a valid float"),
        ("compile_backend = ['eager']", "compile_backend = ['eager'] is not a valid str"),
        ("trainable = [1, 2]", "trainable = [1, 2] is not a valid"),
        ("seed = 1e400", "seed = inf is not a valid int"),
        ("ema_decay = nan", "config: ema_decay must be a finite number, got nan"),
    ):
        toml.write_text(text + "\n")
        assert message in refused(capsys, argv), text
    toml.write_bytes(b"seed = 1 # \xff\n")
    assert "recipe.toml: not valid TOML" in refused(capsys, argv)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0 (images per batch"),
        (["--batch-size", "1000000000"], "--batch-size must be at most 1048576, got 1000000000"),
        (["--num-workers", "-1"], "--num-workers must be at least 0, got -1"),
        (["--split", "../../etc"], "--split must be a plain name"),
    ],
)
def test_bad_eval_options_are_refused_in_one_line(shards, tmp_path, capsys, flags, message):
    argv = ["eval", "--checkpoint", str(tmp_path / "none.pt"), "--data-dir", str(shards), *flags]
    assert message in refused(capsys, argv)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1, got 0 (processes converting images"),
        (["--validation-fraction", "1.5"], "--validation-fraction must be below 1, got 1.5"),
        (["--validation-fraction", "nan"], "--validation-fraction must be a finite number, got nan"),
        (["--validation-fraction", "0"], "--validation-fraction must be positive, got 0.0"),
        (["--train-shards", "0"], "--train-shards must be at least 1, got 0"),
        (["--validation-shards", "100000"], "--validation-shards must be at most 99999, got 100000"),
    ],
)
def test_bad_build_options_are_refused_in_one_line(shards, tmp_path, capsys, flags, message):
    argv = [
        "build",
        "--train-dir",
        str(shards.parent / "images"),
        "--output-dir",
        str(tmp_path / "out"),
        *flags,
    ]
    assert message in refused(capsys, argv)
    assert not (tmp_path / "out").exists()


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_eval_and_build_configs_take_any_value_or_refuse_it(data):
    """Any value of any field: the config is made, or refused with the project's error."""
    for cls, required in ((EvalConfig, {}), (BuildConfig, {"train_dir": Path("a"), "output_dir": Path("b")})):
        key = data.draw(st.sampled_from(sorted(table_rows(cls))), label=f"{cls.__name__} key")
        value = data.draw(
            _values("batch_size") | st.none() | st.builds(Path, st.text(max_size=5)), label="value"
        )
        try:
            cls(**(required | {key: value}))
        except Inception3Error as error:
            assert "\n" not in str(error) and key.replace("_", "-") in str(error)
