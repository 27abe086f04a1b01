"""The one table of valid values: each config field's row (`knob`), its flat key, and the one switch
over field types that both reads a value (a TOML value or a `--set` string) as the field's type and
checks a value against the field's type and row.

A config record nested in another (TrainConfig's `model`, `augment`) has no key of its own: its
fields are flat keys of the outer config, as `--set` and config.toml spell them.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from inception3.errors import Inception3Error

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a split: part of file names


@dataclass(frozen=True)
class Valid:
    """A config field's valid values and why: its row in the table `check_fields` reads.

    Types come from the field's annotation; floats must also be finite. Bounds are inclusive
    (`at_least`, `at_most`) or exclusive (`above`, `below`); `name`: text used in file names.
    """

    why: str
    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None
    name: bool = False


def knob(
    default: object = dataclasses.MISSING,
    why: str = "",
    *,
    factory: Callable[[], object] | None = None,
    **bounds: Any,
) -> Any:
    """A dataclass field with its row of the table: `x: int = knob(5, "why", at_least=1)`."""
    metadata = {"valid": Valid(why, **bounds)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# --- flat keys ---------------------------------------------------------------------------------
class FlatKey(NamedTuple):
    """One flat key of a config class: the nested record holding it (None: the class's own field),
    its type and its row of the table."""

    record: str | None
    kind: Any
    valid: Valid


@functools.cache
def flat_keys(cls: type) -> dict[str, FlatKey]:
    """Every key of config class `cls`, in the order config.toml lists them (read-only).

    A nested record's fields stand in its place, but for those `cls` has itself (the model's
    `num_classes` is TrainConfig's own key).
    """
    own = {f.name for f in dataclasses.fields(cls)}
    keys: dict[str, FlatKey] = {}
    for f in dataclasses.fields(cls):
        kind = _hints(cls)[f.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            inner = _hints(kind)
            for g in dataclasses.fields(kind):
                if g.name not in own:
                    keys[g.name] = FlatKey(f.name, inner[g.name], g.metadata["valid"])
        else:
            keys[f.name] = FlatKey(None, kind, f.metadata["valid"])
    return keys


def table_rows(cls: type) -> dict[str, Valid]:
    """Every key of config class `cls` (nested configs' keys flattened in) with its row of the table."""
    return {name: key.valid for name, key in flat_keys(cls).items()}


def from_flat(cls: type, values: dict[str, object]) -> Any:
    """A `cls` from flat keys: each nested record's keys go into it, the others to `cls` itself."""
    keys = flat_keys(cls)
    own: dict[str, object] = {}
    nested: dict[str, dict[str, object]] = {}
    for name, value in values.items():
        record = keys[name].record if name in keys else None
        (own if record is None else nested.setdefault(record, {}))[name] = value
    records = {record: _hints(cls)[record](**fields) for record, fields in nested.items()}
    return cls(**own, **records)


def to_flat(cfg: object) -> dict[str, object]:
    """`cfg` as flat keys, in the order config.toml lists them."""
    return {
        name: getattr(cfg if key.record is None else getattr(cfg, key.record), name)
        for name, key in flat_keys(type(cfg)).items()
    }


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The field types of `cls`, resolved once (its annotations are text: `from __future__`)."""
    return typing.get_type_hints(cls)


# --- reading and checking ----------------------------------------------------------------------
def convert(cls: type, name: str, value: object, where: str) -> object:
    """`value` (a TOML value or a `--set` string) as the type of `cls`'s flat key `name`.

    Refuses an unknown key (naming the likely meant one) and a value that is not of the key's type;
    bounds are `check_fields`'s, once the config is made.
    """
    rule = _rule(known_key(cls, name, where).kind)
    try:
        return rule.read(value)
    except _NotAChoiceError as choices:
        raise Inception3Error(f"{where}: {name} must be {choices}, got {shown(value)}") from None
    except (TypeError, ValueError, OverflowError):  # OverflowError: "1e400" as an int
        raise Inception3Error(f"{where}: {name} = {shown(value)} is not a valid {rule.name}") from None


def known_key(cls: type, name: str, where: str) -> FlatKey:
    """The flat key `name` of `cls`; an unknown one is refused, naming the likely meant key."""
    keys = flat_keys(cls)
    if name not in keys:
        raise Inception3Error(f"{where}: unknown config key {shown(name)}; {_closest(name, list(keys))}")
    return keys[name]


def _closest(name: str, known: list[str]) -> str:
    """The likely meant key, else every key: a typo should cost one look, not a read of the README."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"


def text_as_paths(cfg: object) -> None:
    """Text given for a Path field of `cfg` ("photos", from Python) becomes a Path, once, as it is made."""
    hints = _hints(type(cfg))
    for f in dataclasses.fields(cfg):  # type: ignore[arg-type]
        value, kind = getattr(cfg, f.name), hints[f.name]
        if isinstance(value, str) and Path in (kind, *typing.get_args(kind)):
            object.__setattr__(cfg, f.name, Path(value))  # the records are frozen once made


def check_fields(cfg: object, label: Callable[[str], str] = str, fix: str = "") -> None:
    """Refuse the first field of `cfg` (and of configs inside it) outside its row of the table.

    The message: `{label(key)} must be <what>, got <value> (<why>){fix}`.
    """
    hints = _hints(type(cfg))
    for f in dataclasses.fields(cfg):  # type: ignore[arg-type]
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_fields(value, label, fix)
            continue
        valid: Valid = f.metadata["valid"]
        wanted = _rule(hints[f.name]).problem(value, valid)
        if wanted is not None:
            raise Inception3Error(f"{label(f.name)} must be {wanted}, got {shown(value)} ({valid.why}){fix}")


class _Rule(NamedTuple):
    """How a field of one type is read from TOML or `--set` text, and what a value of it must be."""

    name: str  # the type, as "... is not a valid <name>" says it
    read: Callable[[object], object]  # raises ValueError (or TypeError, OverflowError) when it cannot
    problem: Callable[[object, Valid], str | None]  # what the value must be instead; None: valid


class _NotAChoiceError(Exception):
    """A string choice that is none of its `Literal`'s values; the message lists them."""


@functools.cache
def _rule(kind: Any) -> _Rule:
    """The one switch over the fields' types."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _optional(_rule(inner), str(kind))
    if origin is Literal:
        return _Rule(str(kind), functools.partial(_choose, args), lambda v, _: _not_one_of(v, args))
    if origin is tuple and args[-1] is Ellipsis:
        return _Rule("tuple", comma_list, _bad_names)
    if origin is tuple:
        return _fixed_tuple(tuple(_rule(a) for a in args))
    if kind in _SCALARS:
        return _SCALARS[kind]
    raise TypeError(f"the table has no rule for fields of type {kind}")


def _optional(inner: _Rule, name: str) -> _Rule:
    """`X | None`: None (unset), or an X. A switch reads "auto" or "none" as unset (channels_last=auto),
    a number "none" or nothing (num_classes=none)."""
    words, name = (("auto", "none"), inner.name) if inner.name == "bool" else (("", "none"), name)

    def read(value: object) -> object:
        unset = isinstance(value, str) and value.strip().lower() in words
        return None if value is None or unset else inner.read(value)

    return _Rule(name, read, lambda value, valid: None if value is None else inner.problem(value, valid))


def _fixed_tuple(items: tuple[_Rule, ...]) -> _Rule:
    """`tuple[float, float]`: a TOML list or comma-separated text of exactly that many values."""

    def read(value: object) -> tuple:
        return tuple(rule.read(v) for rule, v in zip(items, _items(value), strict=True))

    def problem(value: object, valid: Valid) -> str | None:
        ok = isinstance(value, tuple) and len(value) == len(items)
        ok = ok and not any(rule.problem(v, valid) for rule, v in zip(items, value, strict=True))
        return None if ok else f"{len(items)} numbers, each {_range(valid)}"

    return _Rule("tuple", read, problem)


def _items(value: object) -> list:
    """A TOML list as it is; text split at its commas."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return value.strip().split(",")
    raise ValueError


def comma_list(value: object) -> tuple[str, ...]:
    """Names from a TOML list or from comma-separated text ("Logits, AuxLogits"); blanks around the
    names and empty names go."""
    items = _items(value)
    if not all(isinstance(s, str) for s in items):
        raise ValueError
    return tuple(s.strip() for s in items if s.strip())


def _bad_names(value: object, valid: Valid) -> str | None:
    bad = _bad_text(value, valid) if not isinstance(value, tuple) else None
    bad = bad or next(filter(None, (_bad_text(v, valid) for v in value)), None)  # type: ignore[union-attr]
    return f"a list of {bad}" if bad else None


def _choose(choices: tuple[str, ...], value: object) -> str:
    if str(value) in choices:
        return str(value)
    raise _NotAChoiceError(" or ".join(choices))


def _not_one_of(value: object, choices: tuple[str, ...]) -> str | None:
    return None if value in choices and isinstance(value, str) else " or ".join(choices)


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in ("true", "false", "1", "0", "yes", "no"):
        return text in ("true", "1", "yes")
    raise ValueError


def _to_int(value: object) -> int:
    """A TOML number or a --set string as an int: "1e3" is 1000, 2.5 and true are not ints."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)


def _to_float(value: object) -> float:
    """A TOML number or a --set string as a float; true/false are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError
    return float(value)


def _to_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


def _int_problem(value: object, valid: Valid) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return "a whole number"
    return _outside(value, valid)


def _float_problem(value: object, valid: Valid) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "a number"
    return "a finite number" if not math.isfinite(value) else _outside(value, valid)


def _path_problem(value: object, valid: Valid) -> str | None:
    ok = isinstance(value, str | os.PathLike) and "\0" not in str(value)
    return None if ok else "a path (without NUL characters)"


def _outside(value: float, valid: Valid) -> str | None:
    """Which bound `value` breaks, as words; None when inside them all."""
    if valid.at_least is not None and value < valid.at_least:
        return f"at least {_num(valid.at_least)}"
    if valid.above is not None and value <= valid.above:
        return "positive" if valid.above == 0 else f"above {_num(valid.above)}"
    if valid.at_most is not None and value > valid.at_most:
        return f"at most {_num(valid.at_most)}"
    if valid.below is not None and value >= valid.below:
        return f"below {_num(valid.below)}"
    return None


def _range(valid: Valid) -> str:
    low = f"[{_num(valid.at_least)}" if valid.at_least is not None else f"({_num(valid.above)}"
    high = f"{_num(valid.at_most)}]" if valid.at_most is not None else f"{_num(valid.below)})"
    return f"in {low}, {high}"


def _bad_text(value: object, valid: Valid) -> str | None:
    """Text goes into config.toml and file names: printable, UTF-8, and a plain name where asked."""
    if not isinstance(value, str):
        return "text"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value) or not _utf8(value):
        return "text without control characters"
    if valid.name and not _NAME.fullmatch(value):
        return "a plain name: up to 64 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'"
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


_SCALARS: dict[Any, _Rule] = {
    bool: _Rule("bool", _to_bool, lambda v, _: None if isinstance(v, bool) else "true or false"),
    int: _Rule("int", _to_int, _int_problem),
    float: _Rule("float", _to_float, _float_problem),
    str: _Rule("str", _to_str, _bad_text),
    Path: _Rule("Path", lambda v: Path(_to_str(v)), _path_problem),
}


def shown(value: object) -> str:
    """`value` for a one-line message: repr (a Path as its text), long values cut in the middle."""
    text = repr(str(value)) if isinstance(value, Path) else repr(value)
    unit = "digits" if isinstance(value, int) else "characters"
    return text if len(text) <= 60 else f"{text[:24]}…{text[-8:]}, {len(text)} {unit} long"
