"""A weights file being identified and read: its path, what kind of file it is, its tensors read once.

Every format's `detect` and `read` take the same `WeightsFile`, so a PyTorch pickle is unpickled
once however many formats ask about it. The kind comes from the file itself, in this order: a TF
checkpoint prefix (an `.index` beside it), a timm / Hugging Face model folder (`config.json` and
`model.safetensors`), Keras' HDF5 signature or a zip holding `model.weights.h5`, safetensors' header,
else a PyTorch file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple

from torch import Tensor

from inception3.errors import Inception3Error
from inception3.run.checkpoint import load_checkpoint
from inception3.run.layout import CHECKPOINTS

Kind = Literal["tf-slim", "hf", "keras", "safetensors", "torch"]
WRAPPERS = ("state_dict", "model", "state_dict_ema")  # where other projects' files nest the state dict
PREFIXES = ("module.", "_orig_mod.")  # DDP's and torch.compile's, removed from every key
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
KERAS_ZIP_WEIGHTS = "model.weights.h5"  # the weights inside a Keras 3 `.keras` zip
HF_CONFIG = "config.json"  # a timm / Hugging Face model folder: its config and its weights
HF_WEIGHTS = "model.safetensors"


class SafetensorsContent(NamedTuple):
    """A safetensors file: its tensors, and its metadata (empty when it has none)."""

    tensors: dict[str, Tensor]
    metadata: dict[str, str]


@dataclass(frozen=True)
class ReadOptions:
    """How the caller wants a file read."""

    use_ema: bool = True  # an inception3 checkpoint's moving averages rather than its raw weights
    strict: bool = False  # source tensors a conversion leaves unused are an error, not a warning
    given: str | None = None  # the format the caller named (`--weights-format`), None when detected


def is_tf_slim_prefix(path: Path) -> bool:
    """A TF checkpoint: its `.index` file, or the prefix that has one beside it."""
    return path.suffix == ".index" or Path(f"{path}.index").is_file()


def is_model_folder(path: Path) -> bool:
    """A timm / Hugging Face model folder: a directory holding `config.json` and `model.safetensors`."""
    return path.is_dir() and (path / HF_CONFIG).is_file() and (path / HF_WEIGHTS).is_file()


def is_keras_file(path: Path) -> bool:
    """HDF5 (a legacy `.h5`, a Keras 3 `.weights.h5`) or a `.keras` zip holding `model.weights.h5`.

    torch.save writes zips too, so a zip counts only with Keras' member in it.
    """
    with open(path, "rb") as f:
        head = f.read(len(HDF5_MAGIC))
    if head == HDF5_MAGIC:
        return True
    if not head.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return KERAS_ZIP_WEIGHTS in archive.namelist()
    except zipfile.BadZipFile:
        return False


def read_member(path: Path, archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """The bytes of one member of a zip archive, refused in one line when they exceed `limit`.

    A few compressed bytes can stand for a gigabyte, so the size the archive's directory states is
    checked before anything is read; `zipfile` never returns more than that size (a member that holds
    more fails its checksum).
    """
    size = archive.getinfo(name).file_size
    if size > limit:
        raise Inception3Error(
            f"{path}: its member {name} holds {size:,} bytes, above the {limit:,} this reader accepts; "
            "not a file it was written to read"
        )
    return archive.read(name)


def has_safetensors_header(path: Path) -> bool:
    """safetensors' header: an 8-byte little-endian length, then the JSON object it measures."""
    with open(path, "rb") as f:
        head = f.read(9)
    size = int.from_bytes(head[:8], "little")
    return len(head) == 9 and head[8:] == b"{" and 0 < size <= path.stat().st_size - 8


class WeightsFile:
    """One file (or TF checkpoint prefix) and what has been read of it so far."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @cached_property
    def kind(self) -> Kind:
        """What the file is, before any format looks inside: a missing file is an error here."""
        if is_tf_slim_prefix(self.path):
            return "tf-slim"
        if is_model_folder(self.path):
            return "hf"
        if self.path.is_dir():
            raise Inception3Error(
                f"{self.path}: a directory, but not a timm / Hugging Face model folder (no {HF_CONFIG} "
                f"and {HF_WEIGHTS} in it); give a weights file (a run keeps its checkpoints in "
                f"RUN/{CHECKPOINTS}/) or such a folder"
            )
        if not self.path.is_file():
            raise Inception3Error(
                f"{self.path}: no such checkpoint or weights file; check the path (a run keeps its "
                f"checkpoints in RUN/{CHECKPOINTS}/)"
            )
        if is_keras_file(self.path):
            return "keras"
        if self.path.suffix == ".safetensors" or has_safetensors_header(self.path):
            return "safetensors"
        return "torch"

    @cached_property
    def pickled(self) -> dict:
        """A PyTorch file's top-level dict, read without unpickling code (`load_checkpoint`)."""
        return load_checkpoint(self.path)

    @cached_property
    def safetensors(self) -> SafetensorsContent:
        """A safetensors file's tensors and its metadata (empty when it has none)."""
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as f:
                info = f.metadata() or {}
                state = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - not a dict
        except Exception as error:  # safetensors raises its own and OS errors alike
            raise Inception3Error(f"{self.path}: not a readable safetensors file ({error})") from None
        return SafetensorsContent(state, info)

    @cached_property
    def tensors(self) -> dict[str, Tensor]:
        """The state dict of a safetensors or PyTorch file: unwrapped, prefixes removed, all tensors."""
        if self.kind == "safetensors":
            state = self.safetensors.tensors
        else:
            state = self.pickled
            for key in WRAPPERS:
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
        if not state or not all(isinstance(v, Tensor) for v in state.values()):
            raise Inception3Error(
                f"{self.path}: neither an inception3 checkpoint nor a plain state dict of tensors"
            )
        return {_without_prefixes(k): v for k, v in state.items()}


def _without_prefixes(key: str) -> str:
    for prefix in PREFIXES:
        key = key.removeprefix(prefix)
    return key
