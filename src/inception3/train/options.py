"""The effective training config: defaults, then a preset, then a TOML file, then `--set key=value`.

Keys are flat (`image_size`, `batch_size`); the model's go into `TrainConfig.model`. Every value is
converted to its field's type here, string choices checked against their `Literal`. Also writes a
config as TOML (RUN/config.toml), readable back by `--config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
import typing
from pathlib import Path

from inception3.config import PRESETS, ModelConfig, TrainConfig, check_fields, shown
from inception3.errors import Inception3Error

# The model's class count comes from the dataset; `num_classes` is TrainConfig's own override.
MODEL_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name != "num_classes")
_TYPES = {key: typing.get_type_hints(ModelConfig)[key] for key in MODEL_KEYS}
_TYPES |= {key: kind for key, kind in typing.get_type_hints(TrainConfig).items() if key != "model"}


def _convert(key: str, value: object, where: str) -> object:
    """`value` (a TOML value or a --set string) as the type of field `key`."""
    if key not in _TYPES:
        raise Inception3Error(f"{where}: unknown config key {shown(key)}; {_closest_keys(key)}")
    kind = _TYPES[key]
    text = value.strip() if isinstance(value, str) else None
    try:
        if kind == bool | None:  # None: "auto"
            if value is None or (text is not None and text.lower() in ("auto", "none")):
                return None
            kind = bool
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
            return _float(value)
        if kind == tuple[float, float]:
            items = value if isinstance(value, list) else (text or "").split(",")
            low, high = (_float(v) for v in items)
            return (low, high)
        if kind == tuple[str, ...]:
            items = value if isinstance(value, list) else (text or "").split(",")
            if not all(isinstance(s, str) for s in items):
                raise ValueError
            return tuple(s.strip() for s in items if s.strip())
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if typing.get_origin(kind) is typing.Literal:
            choices = typing.get_args(kind)
            if str(value) in choices:
                return str(value)
            raise Inception3Error(f"{where}: {key} must be {' or '.join(choices)}, got {shown(value)}")
    except (TypeError, ValueError, OverflowError):  # OverflowError: "1e400" as an int
        pass
    raise Inception3Error(f"{where}: {key} = {shown(value)} is not a valid {getattr(kind, '__name__', kind)}")


def _closest_keys(key: str) -> str:
    """The likely meant key, else every key: a typo should cost one look, not a read of the README."""
    close = difflib.get_close_matches(key, list(_TYPES), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(_TYPES)}"


def _number(value: object, kind: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    return kind(float(value)) if isinstance(value, str) and "e" in value.lower() else kind(value)


def _float(value: object) -> float:
    """A TOML number or a --set string as a float; true/false are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError
    return float(value)


def parse_set(items: list[str]) -> dict[str, object]:
    """`["key=value", ...]` (from --set) as typed config values."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise Inception3Error(f"--set {item!r}: expected key=value, e.g. --set batch_size=64")
        where = f"--set {item}" if item.isprintable() and len(item) <= 60 else f"--set {shown(item)}"
        values[key.strip()] = _convert(key.strip(), value, where)
    return values


def read_toml(path: Path) -> dict[str, object]:
    """The typed config values of a TOML file (flat keys, as config.toml is written)."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Inception3Error(f"{path}: no such config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise Inception3Error(f"{path}: not valid TOML ({error})") from None
    except OSError as error:  # a directory, no permission
        raise Inception3Error(f"{path}: cannot read the config file ({error.strerror})") from None
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
    mine = read_toml(config_file) if config_file is not None else {}
    mine.update(parse_set(overrides or []))
    if "batch_size" in mine and mine.get("batch_size_per_rank") is not None:
        raise Inception3Error(
            "config: batch_size (global) and batch_size_per_rank are both set; keep one of them"
        )
    if "batch_size" in mine:  # a global batch of one's own replaces the preset's per-rank one
        values.pop("batch_size_per_rank", None)
    values.update(mine)
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
    """Refuse values that cannot work, with the key at fault: each key against its row of the table
    (config.py), then the keys that must agree with each other."""
    fix = "; fix it with --set or in the --config file"
    check_fields(cfg, lambda key: f"config: {key}", fix)
    low, high = cfg.crop_area_range
    if low > high:
        raise Inception3Error(
            "config: crop_area_range must be two fractions 0 < low <= high <= 1, "
            f"got {cfg.crop_area_range}{fix}"
        )


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # JSON's string escapes are TOML's


def config_to_toml(cfg: TrainConfig, header: str = "") -> str:
    """Every key of `cfg` as TOML, one a line; keys whose value is None (unset) are left out."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key} = {_toml_value(value)}" for key, value in flat_config(cfg).items() if value is not None]
    return "\n".join(lines) + "\n"
