"""The effective training config: defaults, then a preset, then a TOML file, then `--set key=value`.

Keys are flat (`image_size`, `batch_size`); the model's go into `TrainConfig.model`. Every value is
converted to its field's type here, string choices checked against their `Literal`. Also writes a
config as TOML (RUN/config.toml), readable back by `--config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import typing
from pathlib import Path

from inception3.config import PRESETS, ModelConfig, TrainConfig
from inception3.errors import Inception3Error

# The model's class count comes from the dataset; `num_classes` is TrainConfig's own override.
MODEL_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name != "num_classes")
_TYPES = {key: typing.get_type_hints(ModelConfig)[key] for key in MODEL_KEYS}
_TYPES |= {key: kind for key, kind in typing.get_type_hints(TrainConfig).items() if key != "model"}


def _convert(key: str, value: object, where: str) -> object:
    """`value` (a TOML value or a --set string) as the type of field `key`."""
    if key not in _TYPES:
        raise Inception3Error(f"{where}: unknown config key {key!r}; {_closest_keys(key)}")
    kind = _TYPES[key]
    text = value.strip() if isinstance(value, str) else None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if text is not None and text.lower() in ("true", "false", "1", "0", "yes", "no"):
                return text.lower() in ("true", "1", "yes")
            raise ValueError
        if kind == int | None:
            return None if text is not None and text.lower() in ("", "none") else _number(value, int)
        if kind is int:
            return _number(value, int)
        if kind is float:
            return float(value)
        if kind == tuple[float, float]:
            items = value if isinstance(value, list) else (text or "").split(",")
            low, high = (float(v) for v in items)
            return (low, high)
        if kind == tuple[str, ...]:
            items = value if isinstance(value, list) else [s for s in (text or "").split(",")]
            return tuple(str(s).strip() for s in items if str(s).strip())
        if kind is str:
            return str(value)
        if typing.get_origin(kind) is typing.Literal:
            choices = typing.get_args(kind)
            if str(value) in choices:
                return str(value)
            raise Inception3Error(f"{where}: {key} must be {' or '.join(choices)}, got {value!r}")
    except (TypeError, ValueError):
        pass
    raise Inception3Error(f"{where}: {key} = {value!r} is not a valid {getattr(kind, '__name__', kind)}")


def _closest_keys(key: str) -> str:
    """The likely meant key, else every key: a typo should cost one look, not a read of the README."""
    close = difflib.get_close_matches(key, list(_TYPES), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(_TYPES)}"


def _number(value: object, kind: type) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    return kind(float(value)) if isinstance(value, str) and "e" in value.lower() else kind(value)


def parse_set(items: list[str]) -> dict[str, object]:
    """`["key=value", ...]` (from --set) as typed config values."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise Inception3Error(f"--set {item!r}: expected key=value, e.g. --set batch_size=64")
        values[key.strip()] = _convert(key.strip(), value, f"--set {item}")
    return values


def read_toml(path: Path) -> dict[str, object]:
    """The typed config values of a TOML file (flat keys, as config.toml is written)."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Inception3Error(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as error:
        raise Inception3Error(f"{path}: not valid TOML ({error})") from None
    return {key: _convert(key, value, str(path)) for key, value in raw.items()}


def resolve_config(
    preset: str | None = None, config_file: Path | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Defaults, then the preset's overrides, then the file's, then --set's; validated."""
    values: dict[str, object] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise Inception3Error(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    if config_file is not None:
        values.update(read_toml(config_file))
    values.update(parse_set(overrides or []))
    cfg = make_config(values)
    validate(cfg)
    return cfg


def make_config(values: dict[str, object]) -> TrainConfig:
    """A TrainConfig from flat typed keys (those of `--set` and config.toml)."""
    model = {key: values.pop(key) for key in MODEL_KEYS if key in values}
    return TrainConfig(model=ModelConfig(**model), **values)


def flat_config(cfg: TrainConfig) -> dict[str, object]:
    """`cfg` as flat keys, in the order config.toml lists them (the model's first)."""
    flat = {key: getattr(cfg.model, key) for key in MODEL_KEYS}
    flat |= {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "model"}
    return flat


def validate(cfg: TrainConfig) -> None:
    """Refuse values that cannot work, with the key at fault."""
    checks = [
        (
            cfg.batch_size >= 1,
            f"batch_size must be at least 1, got {cfg.batch_size} (it is the global batch, "
            "split across the ranks)",
        ),
        (cfg.grad_accum >= 1, f"grad_accum must be at least 1, got {cfg.grad_accum}"),
        (cfg.max_steps >= 1, f"max_steps must be at least 1, got {cfg.max_steps}"),
        (cfg.learning_rate > 0, f"learning_rate must be positive, got {cfg.learning_rate}"),
        (0.0 <= cfg.ema_decay < 1.0, f"ema_decay must be in [0, 1), got {cfg.ema_decay}"),
        (0.0 <= cfg.label_smoothing < 1.0, f"label_smoothing must be in [0, 1), got {cfg.label_smoothing}"),
        (cfg.log_every >= 1 and cfg.summary_every >= 1, "log_every and summary_every must be at least 1"),
        (cfg.checkpoint_every >= 1, "checkpoint_every must be at least 1"),
        (cfg.num_classes is None or cfg.num_classes >= 1, "num_classes must be at least 1"),
        (
            0.0 <= cfg.crop_min_object_covered <= 1.0,
            f"crop_min_object_covered must be in [0, 1], got {cfg.crop_min_object_covered}",
        ),
        (
            0.0 < cfg.crop_area_range[0] <= cfg.crop_area_range[1] <= 1.0,
            f"crop_area_range must be two fractions 0 < low <= high <= 1, got {cfg.crop_area_range}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise Inception3Error(f"config: {message}; fix it with --set or in the --config file")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_to_toml(cfg: TrainConfig, header: str = "") -> str:
    """Every key of `cfg` as TOML, one a line; keys whose value is None (unset) are left out."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key} = {_toml_value(value)}" for key, value in flat_config(cfg).items() if value is not None]
    return "\n".join(lines) + "\n"
