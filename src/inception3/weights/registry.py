"""The weights formats, in detection order: each name `--weights-format` takes -> the module that reads it.

A format's module has `DESCRIPTION` (what such a file is, for messages), `ALSO` (other names a
caller may give for a file it detects), `detect(file) -> bool` and `read(file, options) -> Weights`,
both on a `weights.file.WeightsFile`. `identify` asks each module in order and the first that says
yes reads the file. Adding a format is one module and one line here.

This module imports no torch: the CLI and the config list the names before torch loads, and a
format's module is imported when it is first asked.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol, cast

from inception3.errors import Inception3Error

if TYPE_CHECKING:
    from inception3.weights.file import ReadOptions, WeightsFile
    from inception3.weights.meta import Weights

FORMATS: dict[str, str] = {
    "inception3": "inception3.weights.inception3",
    "safetensors": "inception3.weights.safetensors",
    "state-dict": "inception3.weights.state_dict",
    "torchvision": "inception3.weights.torchvision",
    "timm": "inception3.weights.timm",
    "hf": "inception3.weights.hf",
    "keras": "inception3.weights.keras",
    "tf-slim": "inception3.weights.tf_slim",
}
NAMES: tuple[str, ...] = tuple(FORMATS)
BY_SIGNATURE = ("keras", "tf-slim")  # told by their first bytes (or an .index) alone, without unpickling
UNSIGNED = {  # the kinds of file without such a signature, in the words that refuse them to those formats
    "safetensors": "a safetensors file",
    "torch": "neither HDF5 nor a .keras zip nor a checkpoint prefix",
}


class WeightsFormat(Protocol):
    """What a format's module provides."""

    DESCRIPTION: str
    ALSO: tuple[str, ...]

    def detect(self, file: WeightsFile) -> bool: ...

    def read(self, file: WeightsFile, options: ReadOptions) -> Weights: ...


def weights_format(name: str) -> WeightsFormat:
    """The module of the format called `name`; an unknown name is an Inception3Error listing them."""
    if name not in FORMATS:
        raise Inception3Error(f"unknown weights format {name!r}; choose one of {', '.join(NAMES)}")
    return cast("WeightsFormat", importlib.import_module(FORMATS[name]))


def identify(file: WeightsFile, given: str | None) -> WeightsFormat:
    """The format that reads `file`: detected from its contents, and refusing a `given` name they contradict.

    A given name is taken when its own `detect` says yes (timm's file is torchvision's) or when the
    detected format lists it in `ALSO`; otherwise the message names what the file is.
    """
    wanted = weights_format(given) if given is not None else None
    if given in BY_SIGNATURE and file.kind in UNSIGNED:  # refused before it is read to say what it is
        raise Inception3Error(
            f"{file.path}: weights format {given!r} was given, but the file is {UNSIGNED[file.kind]}; "
            "check the path, or leave the format out to detect it"
        )
    name = next(name for name in NAMES if weights_format(name).detect(file))
    detected = weights_format(name)
    if wanted is None or given == name or given in detected.ALSO:
        return detected
    if _claims(wanted, file):
        return wanted
    raise Inception3Error(
        f"{file.path}: weights format {given!r} was given, but the file is {detected.DESCRIPTION} "
        f"({name!r}); pass {name!r} or leave the format out to detect it"
    )


def _claims(candidate: WeightsFormat, file: WeightsFile) -> bool:
    """Whether `candidate` detects `file` too; a file it cannot even look at is not its."""
    try:
        return candidate.detect(file)
    except Inception3Error:
        return False
