"""The effective training config: defaults, then a preset, then a TOML file, then `--set key=value`,
then the CLI's own options; and the config written as TOML (RUN/config.toml), readable back by
`--config`.

Keys are flat (`image_size`, `batch_size`, `crop_area_range`); those of a nested record go into it
(`TrainConfig.model`, `TrainConfig.augment`). Values are read as their field's type and checked by
the one table of config/check.py.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from inception3.config import TrainConfig, convert, from_flat, shown, to_flat
from inception3.config.presets import with_preset
from inception3.errors import Inception3Error


def parse_set(items: list[str]) -> dict[str, object]:
    """`["key=value", ...]` (from --set) as typed config values."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise Inception3Error(f"--set {item!r}: expected key=value, e.g. --set batch_size=64")
        where = f"--set {item}" if item.isprintable() and len(item) <= 60 else f"--set {shown(item)}"
        values[key.strip()] = convert(TrainConfig, key.strip(), value, where)
    return values


def read_toml(path: Path) -> dict[str, object]:
    """The typed config values of a TOML file (flat keys, as config.toml is written)."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Inception3Error(f"{path}: no such config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise Inception3Error(f"{path}: not valid TOML ({error})") from None
    except RecursionError:  # arrays or tables nested thousands deep: tomllib recurses
        raise Inception3Error(f"{path}: not a config file (nested too deeply to read)") from None
    except OSError as error:  # a directory, no permission
        raise Inception3Error(f"{path}: cannot read the config file ({error.strerror})") from None
    return {key: convert(TrainConfig, key, value, str(path)) for key, value in raw.items()}


def resolve_config(
    preset: str | None = None,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
    typed: dict[str, object] | None = None,
) -> TrainConfig:
    """Defaults, then the preset's overrides, then the file's, then --set's, then `typed` values (the
    CLI's own options, already of their key's type); checked as TrainConfig checks itself."""
    mine = read_toml(config_file) if config_file is not None else {}
    mine.update(parse_set(overrides or []))
    mine.update(typed or {})
    return make_config(with_preset(preset, mine))


def make_config(values: dict[str, object]) -> TrainConfig:
    """A TrainConfig from flat typed keys (those of `--set` and config.toml)."""
    return from_flat(TrainConfig, values)


def flat_config(cfg: TrainConfig) -> dict[str, object]:
    """`cfg` as flat keys, in the order config.toml lists them (the model's first)."""
    return to_flat(cfg)


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
