"""Checkpoint files that survive a crash at any instant.

Layout: `RUN/checkpoints/ckpt-00001000.pt`, one file per save, plus `RUN/checkpoints/latest`, a
text file naming the newest complete one. Each file is written atomically (`files.atomic_write`);
only then is `latest` replaced the same way. A kill at any moment leaves either the old or the new
checkpoint complete, and `latest` never names a partial file.

Nothing leads out of RUN/checkpoints: `latest` is followed only when it holds the bare name of a
checkpoint file there, and checkpoint files that are links to elsewhere are not listed (a warning
says why), so another run's checkpoint is never resumed or scored as this run's. A checkpoint's
content must also be of the step its name says (`check_step`).

Files hold only tensors, numbers, strings, lists and dicts, so `torch.load(weights_only=True)`
reads them without unpickling arbitrary objects. What a training checkpoint holds is the
`Checkpoint` record (`run/record.py`): training fills it, resume, weights and eval read it.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import torch

from inception3.errors import Inception3Error
from inception3.files import (
    atomic_write,
    inside,
    leftover_temporaries,
    os_error_behind,
    what_is_at,
    write_text_atomic,
)
from inception3.run.layout import KEPT, LATEST, checkpoint_dir

FORMAT = "inception3/1"
_NAME = re.compile(r"ckpt-([0-9]+)\.pt")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def envelope(step: int, final: bool) -> dict:
    """The keys every checkpoint file carries, whatever else it holds."""
    return {"format": FORMAT, "step": int(step), "final": bool(final)}


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint at `step`: zero-padded so names sort by step."""
    return f"ckpt-{step:08d}.pt"


def _kept_names(directory: Path) -> set[str]:
    kept = directory / KEPT
    return set(kept.read_text().split()) if kept.exists() else set()


def save_checkpoint(
    run_dir: Path, step: int, state: dict, *, keep: int = 5, final: bool = False, mark: bool = False
) -> Path:
    """Write `state` as the checkpoint of `step` atomically, point `latest` at it, prune old ones.

    `state`: a `Checkpoint.to_state()` (`Checkpoint.save` calls this), or any dict of tensors and
    plain values; either way the file's format, step and final are set from the arguments.

    Keeps the newest `keep` checkpoints (all when `keep` is 0) plus every final or `mark`ed one;
    only files this module wrote are ever removed. The oldest are removed before the new file is
    written, so that the disk never holds more than `keep` of them (or two, when `keep` is 1: the
    newest complete checkpoint stays until its successor is complete). Returns the checkpoint's path.
    """
    directory = checkpoint_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    state = state | envelope(step, final)
    path = directory / checkpoint_name(step)
    previous = latest_checkpoint(run_dir)
    _prune(run_dir, keep, path, spare=previous)
    try:
        with atomic_write(path) as f:
            torch.save(state, f)
        if final or mark:
            kept = sorted(_kept_names(directory) | {path.name})
            write_text_atomic(directory / KEPT, "\n".join(kept) + "\n")
        write_text_atomic(directory / LATEST, f"{path.name}\n")
    except (OSError, RuntimeError) as error:
        cause = os_error_behind(error)
        if cause is None:
            raise
        raise _write_error(cause, path, keep, previous) from None
    _prune(run_dir, keep, path)
    return path


def _prune(run_dir: Path, keep: int, path: Path, spare: Path | None = None) -> None:
    """Remove the oldest checkpoints but the newest `keep` - 1 besides `path` (the one being written),
    never a kept one nor `spare`; nothing when `keep` is 0."""
    if keep <= 0:
        return
    kept = _kept_names(checkpoint_dir(run_dir))
    prunable = [p for _, p in list_checkpoints(run_dir) if p.name not in kept and p != path]
    for old in prunable[: max(0, len(prunable) - (keep - 1))]:
        if old != spare:
            old.unlink()


def _write_error(error: OSError, path: Path, keep: int, previous: Path | None) -> Inception3Error:
    """One line for a checkpoint that could not be written: where, what happened, what survived, what
    helps."""
    step = checkpoint_step(path)
    kept = f"{previous.name} is intact and `latest` still names it" if previous else "no earlier checkpoint"
    if error.errno in _DISK_FULL:
        kept_names = _kept_names(path.parent)
        older = [
            p for _, p in list_checkpoints(path.parent.parent) if p != previous and p.name not in kept_names
        ]
        fewer = (
            ""  # lowering keep_checkpoints would remove nothing: the newest complete one always stays
            if keep in (1, 2) or not older
            else f", or lower keep_checkpoints (now {keep}{', all' if keep == 0 else ''}; {len(older)} older "
            "checkpoint(s) there) with --set keep_checkpoints=N: the oldest are removed before each new "
            "one is written"
        )
        return Inception3Error(
            f"{path}: the disk is full ({error.strerror}) while writing the checkpoint of step {step}; "
            f"nothing partial was left and {kept}. Free space on that disk{fewer}; then run the same "
            "command again to resume"
        )
    return Inception3Error(
        f"{path}: cannot write the checkpoint of step {step} "
        f"({error.strerror or error}); nothing partial was left and {kept}. Fix the "
        "directory and run the same command again to resume"
    )


def _ours(name: str) -> bool:
    return name in (LATEST, KEPT) or _NAME.fullmatch(name) is not None


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files of writes a kill interrupted (only this module's own, by name).

    Call before writing a run's first checkpoint; they are never read, but may be large.
    """
    directory = checkpoint_dir(run_dir)
    if not directory.is_dir():
        return []
    partial = leftover_temporaries(directory, _ours)
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


class IgnoredFileWarning(UserWarning):
    """A name in a run directory that leads out of it (or nowhere) and is therefore not followed."""


def checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint's file name says (`ckpt-00000100.pt` -> 100); None for other names."""
    match = _NAME.fullmatch(Path(path).name)
    return int(match.group(1)) if match else None


class _Scan(NamedTuple):
    """A run's checkpoint files that stay in its folder, oldest first, and why any others are not."""

    found: list[tuple[int, Path]]
    ignored: list[str]


class _Pointer(NamedTuple):
    """The checkpoint `latest` names when it may be followed (else None), or why it is not."""

    path: Path | None = None
    note: str | None = None


def _scan(run_dir: Path) -> _Scan:
    """The run's checkpoint files that stay in its folder, oldest first, and why any others are not."""
    directory = checkpoint_dir(run_dir)
    if not directory.is_dir():
        return _Scan([], [])
    found, ignored = [], []
    for path in directory.iterdir():
        if (step := checkpoint_step(path)) is None:
            continue
        if path.is_symlink() and not inside(path, directory):
            ignored.append(
                f"{path}: a link to {os.readlink(path)}, outside {directory}; not followed (a run "
                "uses its own checkpoints only): replace it with the file itself"
            )
        elif not path.is_file():
            ignored.append(f"{path}: is {what_is_at(path)}, not a checkpoint file; ignored")
        else:
            found.append((step, path))
    return _Scan(sorted(found), sorted(ignored))


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run as (step, path), oldest first.

    Temporary files are not listed, nor links that lead out of RUN/checkpoints (`ignored_files`).
    """
    return _scan(run_dir).found


def _pointer(directory: Path) -> _Pointer:
    """The checkpoint `latest` names when it may be followed; else why not (None: no `latest`)."""
    pointer = directory / LATEST
    if not pointer.exists() and not pointer.is_symlink():
        return _Pointer()
    if not (pointer.is_file() and inside(pointer, directory)):
        return _Pointer(
            note=(
                f"{pointer}: is {what_is_at(pointer)}"
                + (f" linked from outside {directory}" if pointer.is_symlink() else "")
                + ", not the pointer file training writes; ignored, and the newest checkpoint there is used"
            )
        )
    try:
        with open(pointer, "rb") as f:
            text = f.read(256).decode("utf-8", errors="replace").strip()
    except OSError as error:
        return _Pointer(note=f"{pointer}: cannot be read ({error.strerror}); ignored")
    if not _NAME.fullmatch(text):
        return _Pointer(
            note=(
                f"{pointer}: names {text[:100]!r}, not the name of a checkpoint file in {directory} "
                "(ckpt-NNNNNNNN.pt); ignored, and the newest checkpoint there is used instead"
            )
        )
    path = directory / text
    if not path.exists() and not path.is_symlink():
        return _Pointer()  # moved away on purpose (to resume from an earlier one): the listing decides
    if not (path.is_file() and inside(path, directory)):
        return _Pointer()  # the listing leaves it out and `ignored_files` says why
    return _Pointer(path)


def ignored_files(run_dir: Path) -> list[str]:
    """Why `latest` or a checkpoint file of the run is not followed: one line each, for warnings."""
    directory = checkpoint_dir(run_dir)
    note = _pointer(directory).note if directory.is_dir() else None
    return ([note] if note else []) + _scan(run_dir).ignored


def latest_checkpoint(run_dir: Path, *, warn: bool = False) -> Path | None:
    """The newest complete checkpoint: the one `latest` names, else the highest step on disk.

    `latest` is followed only when it holds the bare name of a checkpoint file of RUN/checkpoints
    that stays there (no path, no `..`, no link out of the folder): another run's checkpoint must
    never be taken for this run's. `warn`: say so (IgnoredFileWarning) for whatever is ignored.
    """
    directory = checkpoint_dir(run_dir)
    if warn:
        for note in ignored_files(run_dir):
            warnings.warn(note, IgnoredFileWarning, stacklevel=2)
    path = _pointer(directory).path if directory.is_dir() else None
    if path is not None:
        return path
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def check_step(path: Path, held: int) -> None:
    """Refuse a run's checkpoint whose content is of step `held` when its name says another (renamed,
    or copied in from elsewhere): resuming or scoring it would put it at the wrong step."""
    named = checkpoint_step(path)
    if named is not None and held != named:
        raise Inception3Error(
            f"{path}: holds the state of step {held}, but its name says step {named} (renamed, or "
            "copied in from another run)"
        )


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint (or any weights-only torch file) onto the CPU, without arbitrary unpickling."""
    path = Path(path)
    if not path.is_file():
        raise Inception3Error(
            f"{path}: no such checkpoint file; check the path (a run keeps its checkpoints "
            f"in RUN/checkpoints/)"
        )
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
        return Inception3Error(
            f"{path}: cannot be read: it holds Python objects besides tensors and plain "
            "values, which could run code when loaded, so the weights-only loader refuses "
            "it; use a checkpoint inception3 wrote or a state dict saved with "
            "torch.save(model.state_dict(), ...)"
        )
    if isinstance(error, RuntimeError) and text.strip():  # the zip reader's own words
        gist = text.strip().split(". ")[0].splitlines()[0][:160]
    else:
        gist = "it ends early" if isinstance(error, EOFError) else "not a PyTorch file"
    return Inception3Error(
        f"{path}: cannot be read: truncated or not a PyTorch checkpoint ({gist}); copy it "
        "again or pick another checkpoint"
    )


def is_final(state: dict) -> bool:
    """Whether training wrote this checkpoint at its end (max_steps reached)."""
    return bool(state.get("final", False))
