"""Checkpoints that survive a crash at any instant, and the model they hold.

Layout: `RUN/checkpoints/ckpt-00001000.pt`, one file per save, plus `RUN/checkpoints/latest`, a
text file naming the newest complete one. Each file is written under a temporary name, flushed,
fsynced and renamed into place; only then is `latest` replaced the same way. A kill at any moment
leaves either the old or the new checkpoint complete, and `latest` never names a partial file.

Files hold only tensors, numbers, strings, lists and dicts, so `torch.load(weights_only=True)`
reads them without unpickling arbitrary objects. A checkpoint dict holds:
"format", "step", "final", "model_config", "model", "ema", "optimizer", "data", "rng",
"config", "class_names", "image_size".
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pickle
import re
from pathlib import Path

import torch

from inception3.config import IMAGE_SIZE, MIN_IMAGE_SIZE, ModelConfig
from inception3.errors import Inception3Error
from inception3.model import InceptionV3, _base_size

CHECKPOINT_DIR = "checkpoints"
FORMAT = "inception3/1"
LATEST = "latest"
KEPT = "kept"  # names of checkpoints never pruned, one a line (final ones, and those marked)
_NAME = re.compile(r"^ckpt-(\d+)\.pt$")
_PARTIAL = re.compile(r"^\.(ckpt-\d+\.pt|latest|kept)\.tmp-\d+$")  # written by _write_atomic, never complete
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint at `step`: zero-padded so names sort by step."""
    return f"ckpt-{step:08d}.pt"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, write) -> None:
    """Write via `write(file)` to a temporary sibling, fsync it, rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _kept_names(directory: Path) -> set[str]:
    kept = directory / KEPT
    return set(kept.read_text().split()) if kept.exists() else set()


def save_checkpoint(run_dir: Path, step: int, state: dict, *, keep: int = 5, final: bool = False,
                    mark: bool = False) -> Path:
    """Write `state` as the checkpoint of `step` atomically, point `latest` at it, prune old ones.

    Keeps the newest `keep` checkpoints (all when `keep` is 0) plus every final or `mark`ed one;
    only files this module wrote are ever removed. Returns the checkpoint's path.
    """
    directory = Path(run_dir) / CHECKPOINT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    state = {**state, "format": FORMAT, "step": int(step), "final": bool(final)}
    path = directory / checkpoint_name(step)
    previous = latest_checkpoint(run_dir)
    try:
        _write_atomic(path, lambda f: torch.save(state, f))
        if final or mark:
            kept = sorted(_kept_names(directory) | {path.name})
            _write_atomic(directory / KEPT, lambda f: f.write(("\n".join(kept) + "\n").encode()))
        _write_atomic(directory / LATEST, lambda f: f.write(f"{path.name}\n".encode()))
    except (OSError, RuntimeError) as error:
        cause = _os_error(error)
        if cause is None:
            raise
        raise _write_error(cause, directory, step, previous) from None
    if keep > 0:
        kept = _kept_names(directory)
        prunable = [p for _, p in list_checkpoints(run_dir) if p.name not in kept and p != path]
        for old in prunable[:max(0, len(prunable) - (keep - 1))]:
            old.unlink()
    return path


def _os_error(error: BaseException | None) -> OSError | None:
    """The OSError behind `error`: torch.save's zip writer hides a failed write behind a RuntimeError."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error


def _write_error(error: OSError, directory: Path, step: int, previous: Path | None) -> Inception3Error:
    """One line for a checkpoint that could not be written: what happened, what survived, what to do."""
    kept = f"{previous.name} is intact and `latest` still names it" if previous else "no earlier checkpoint"
    if error.errno in _DISK_FULL:
        return Inception3Error(f"{directory}: the disk is full ({error.strerror}) while writing the "
                               f"checkpoint of step {step}; nothing partial was left and {kept}. Free space "
                               "there (or lower keep_checkpoints) and run the same command again to resume")
    return Inception3Error(f"{directory}: cannot write the checkpoint of step {step} "
                           f"({error.strerror or error}); nothing partial was left and {kept}. Fix the "
                           "directory and run the same command again to resume")


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files of writes a kill interrupted (only this module's own, by name).

    Call before writing a run's first checkpoint; they are never read, but may be large.
    """
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    partial = sorted(p for p in directory.iterdir() if _PARTIAL.match(p.name))
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run as (step, path), oldest first (temporary files are not listed)."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint: the one `latest` names, else the highest step on disk."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    pointer = directory / LATEST
    if pointer.exists():
        path = directory / pointer.read_text().strip()
        if _NAME.match(path.name) and path.exists():
            return path
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint (or any weights-only torch file) onto the CPU, without arbitrary unpickling."""
    path = Path(path)
    if not path.is_file():
        raise Inception3Error(f"{path}: no such checkpoint file; check the path (a run keeps its checkpoints "
                              f"in RUN/{CHECKPOINT_DIR}/)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated zip, a pickle of arbitrary objects, not a torch file at all
        raise _load_error(path, error) from None
    if not isinstance(state, dict):
        raise Inception3Error(f"{path}: holds a {type(state).__name__}, not a checkpoint or state dict")
    return state


def _load_error(path: Path, error: Exception) -> Inception3Error:
    """One line for an unreadable file: a refused pickle (which could run code), or damage."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    if isinstance(error, pickle.UnpicklingError) and "GLOBAL" in text:
        return Inception3Error(f"{path}: cannot be read: it holds Python objects besides tensors and plain "
                               "values, which could run code when loaded, so the weights-only loader refuses "
                               "it; use a checkpoint inception3 wrote or a state dict saved with "
                               "torch.save(model.state_dict(), ...)")
    if isinstance(error, RuntimeError) and text.strip():  # the zip reader's own words
        gist = text.strip().split(". ")[0].splitlines()[0][:160]
    else:
        gist = "it ends early" if isinstance(error, EOFError) else "not a PyTorch file"
    return Inception3Error(f"{path}: cannot be read: truncated or not a PyTorch checkpoint ({gist}); copy it "
                           "again or pick another checkpoint")


def is_final(state: dict) -> bool:
    """Whether training wrote this checkpoint at its end (max_steps reached)."""
    return bool(state.get("final", False))


def _aux_kernel(image_size: int) -> int:
    side = _base_size(image_size)
    return min(5, (side - min(5, side)) // 3 + 1)


def _plain_config(weights: dict[str, torch.Tensor]) -> ModelConfig:
    """The ModelConfig of a plain InceptionV3 state dict, from its tensor shapes."""
    logits = weights.get("Logits.Conv2d_1c_1x1.weight")
    first = weights.get("Conv2d_1a_3x3.weight")
    if logits is None or first is None:
        raise Inception3Error("not an inception3 checkpoint nor an InceptionV3 state dict "
                              "(no Logits.Conv2d_1c_1x1.weight / Conv2d_1a_3x3.weight)")
    aux = any(key.startswith("AuxLogits.") for key in weights)
    aux_kernel = next((int(k.split("_")[-1].split("x")[0]) for k in weights
                       if k.startswith("AuxLogits.Conv2d_2a_")), 5)
    image_size = next((size for size in range(IMAGE_SIZE, MIN_IMAGE_SIZE - 1, -1)
                       if _aux_kernel(size) == aux_kernel), IMAGE_SIZE)
    candidates = [first.shape[0] / 32] if first.shape[0] > 16 else [0.5, 0.25, 0.125, 0.0625]
    for multiplier in candidates:
        cfg = ModelConfig(num_classes=logits.shape[0], aux_logits=aux, depth_multiplier=multiplier,
                          image_size=image_size)
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in InceptionV3.from_config(cfg).state_dict().items()}
        if all(k in weights and weights[k].shape == s for k, s in shapes.items()):
            return cfg
    raise Inception3Error("the state dict's tensor shapes match no InceptionV3 width "
                          f"(first conv has {first.shape[0]} channels)")


def load_model(path: Path, *, use_ema: bool = True) -> tuple[InceptionV3, dict]:
    """The model of a checkpoint, in eval mode, with the averaged (default) or raw weights.

    Also reads a `.safetensors` file as `inception3 export` writes it (the config and class names
    from its metadata), and a plain InceptionV3 state dict, whose metadata then holds only what the
    shapes tell. Returns (model, metadata) with at least "step", "class_names", "model_config",
    "image_size", "final", and "ema" (whether averaged weights were loaded).
    """
    if Path(path).suffix == ".safetensors":
        weights, cfg, meta = _read_safetensors(Path(path))
    else:
        weights, cfg, meta = _read_torch(Path(path), use_ema)
    meta["model_config"] = dataclasses.asdict(cfg)
    meta["image_size"] = cfg.image_size
    model = InceptionV3.from_config(cfg)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise Inception3Error(f"{path}: weights do not fit the model they describe: "
                              f"{str(error).splitlines()[0]}") from None
    return model.eval(), meta


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            info = f.metadata() or {}
            weights = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - not a dict
    except Exception as error:  # safetensors raises its own and OS errors alike
        raise Inception3Error(f"{path}: not a readable safetensors file ({error})") from None
    if "model_config" in info:
        cfg = ModelConfig(**json.loads(info["model_config"]))
        names = json.loads(info["class_names"]) if "class_names" in info else None
        meta = {"step": int(info.get("step", 0)), "class_names": names, "final": False,
                "ema": info.get("ema") == "true"}
    else:
        cfg = _plain_config(weights)
        meta = {"step": 0, "class_names": None, "final": False, "ema": False}
    return weights, cfg, meta


def _read_torch(path: Path, use_ema: bool) -> tuple[dict[str, torch.Tensor], ModelConfig, dict]:
    state = load_checkpoint(path)
    if state.get("format") == FORMAT:
        cfg = ModelConfig(**state["model_config"])
        weights = state["ema"] if use_ema and state.get("ema") else state["model"]
        meta = {key: value for key, value in state.items()
                if key not in ("model", "ema", "optimizer", "rng", "data")}
        meta["ema"] = weights is state.get("ema")
    else:
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise Inception3Error(f"{path}: neither an inception3 checkpoint nor a plain state dict")
        weights = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state.items()}
        cfg = _plain_config(weights)
        meta = {"step": 0, "class_names": None, "final": False, "ema": False}
    return weights, cfg, meta
