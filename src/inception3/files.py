"""Files on disk: the one atomic write, and the one-line words for what the file system refused.

Atomic writes: a file appears whole or not at all, whatever instant a kill or a full disk strikes.
It is written under a temporary sibling named `.NAME.tmp-PID` (so two processes never share one,
and leftovers are recognisable by name), flushed and fsynced, renamed over NAME, then the
directory fsynced so the rename itself survives. The file gets the mode any new file gets (0666
less the umask), and a symlink at NAME is replaced, never written through.

Paths a command follows inside a directory the user named stay inside it: `inside` tells whether a
name, once its symlinks are resolved, is still an entry of that directory.

A file a command writes at a path the user named (`report --output`, `export --output`) passes
`check_output`, the one rule for them all: never one of the command's inputs, never a file (or a
new name) that a run or a dataset owns, and an existing file only with `--force`.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from inception3.errors import Inception3Error

_TEMPORARY = re.compile(r"\.(.+)\.tmp-\d+")
_LONGEST_SHOWN = 160  # characters of a path shown in an error line; longer ones lose their middle


def temporary_name(path: Path) -> Path:
    """The temporary sibling `atomic_write` writes `path` under in this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def leftover_temporaries(directory: Path, ours: Callable[[str], bool]) -> list[Path]:
    """The temporaries of `atomic_write`s that a kill left in `directory` (any process's), for the file
    names `ours` accepts. They are never complete; delete them before writing those files again."""
    found = [(path, _TEMPORARY.fullmatch(path.name)) for path in directory.glob(".*.tmp-*")]
    return sorted(path for path, match in found if match and ours(match[1]))


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary sibling of `path` for binary writing; on a clean exit, make it `path` atomically.

    On an exception the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """`path` holds exactly `text`, written atomically."""
    with atomic_write(path) as f:
        f.write(text.encode())


# Where paths lead


def inside(path: Path, directory: Path) -> bool:
    """Whether `path` is an entry of `directory` itself once every symlink is resolved.

    A link to a sibling in the same directory is inside; one that leads elsewhere (another run,
    a sub-folder, `..`), a broken link and a link loop are not. `directory` may itself be a link.
    """
    try:
        return Path(path).resolve(strict=True).parent == Path(directory).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a broken link, a loop
        return False


def what_is_at(path: Path) -> str:
    """'a file', 'a directory', 'a broken link', ... or 'nothing': for messages about the wrong kind."""
    path = Path(path)
    try:
        if path.is_symlink() and not path.exists():
            return "a broken link"
        if not path.exists():
            return "nothing"
    except OSError:
        return "nothing readable"
    if path.is_dir():
        return "a directory"
    return "a file" if path.is_file() else "a special file (not a regular file)"


def require_directory(path: Path, what: str, hint: str) -> Path:
    """`path` when it is a directory; otherwise an Inception3Error saying what is there instead.

    `what` names the directory expected ("directory of class folders"); `hint` says what to do.
    """
    path = Path(path)
    if path.is_dir():
        return path
    found = what_is_at(path)
    there = f"no such {what}" if found == "nothing" else f"is {found}, not a {what}"
    raise Inception3Error(f"{path}: {there}; {hint}")


# Files a command writes where the user said


def check_output(
    path: Path,
    *,
    force: bool,
    option: str = "--output",
    example: str = "out.png",
    inputs: Mapping[str, Path] | None = None,
) -> Path:
    """`path` when a command may write its file there; otherwise an Inception3Error saying why.

    The one rule of every user-named output file: not a directory (`example` names a file to
    suggest in it); never one of the command's `inputs` ({'the checkpoint being exported': path}),
    however spelled or linked; never a file or a new name that a run or a dataset owns
    (`owner_of`), even with `force`; and a file that is already there only with `force`. A link at
    `path` is replaced by the write, never written through.
    """
    path = Path(path)
    if path.is_dir():
        raise Inception3Error(f"{path}: is a directory; give {option} a file name, such as {path / example}")
    for what, source in (inputs or {}).items():
        if _same_file(Path(source), path):
            raise Inception3Error(
                f"{path}: is {what} ({source}); writing it would destroy it: choose another {option}"
            )
    owner = owner_of(path)
    if owner is not None:
        raise Inception3Error(
            f"{path}: {owner}; no other command writes there, not even with --force: choose another {option}"
        )
    if (path.exists() or path.is_symlink()) and not force:
        raise Inception3Error(
            f"{path}: already exists; pass --force to replace it, or choose another {option}"
        )
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same spelling resolved, a hard link or a symlink."""
    try:
        return a.absolute() == b.absolute() or a.resolve() == b.resolve() or os.path.samefile(a, b)
    except (OSError, RuntimeError):  # one of them does not exist (yet), or a link loop
        return False


def owner_of(path: Path) -> str | None:
    """ "is the run RUN's own config.toml", "is in the checkpoints folder of the run RUN, ...": what a
    write at `path` would replace, or add to, that a run or a dataset owns; None when neither owns it.

    Where the write lands is what counts: `path`'s nearest existing folder with its links resolved,
    and the first name below it (the file, or the first folder a command would create for it).
    """
    from inception3.data.build_folder import LOCK_FILE, STATE_DIR  # those modules write with this one
    from inception3.data.meta import DATASET_JSON, LABELS_FILE, is_shard_name
    from inception3.run import layout

    folder, name = Path(path).absolute().parent, Path(path).name
    while not folder.exists() and folder != folder.parent:
        folder, name = folder.parent, folder.name
    try:
        folder = folder.resolve()
    except (OSError, RuntimeError):
        return None
    if folder.name in (layout.CHECKPOINTS, layout.EVAL) and layout.is_run_dir(folder.parent):
        return f"is in the {folder.name} folder of the run {folder.parent}, which only the run writes"
    if layout.is_run_dir(folder) and layout.is_run_name(name):
        return f"is the run {folder}'s own {name}"
    if folder.name == STATE_DIR:
        return f"is in {folder}, the state of an unfinished build"
    dataset = {DATASET_JSON, LABELS_FILE, STATE_DIR, LOCK_FILE}
    if (name in dataset or is_shard_name(name)) and _is_dataset_dir(folder, DATASET_JSON, is_shard_name):
        return f"is the dataset {folder}'s own {name}"
    return None


def _is_dataset_dir(folder: Path, dataset_json: str, is_shard: Callable[[str], bool]) -> bool:
    """Whether `folder` holds a dataset: its dataset.json, or shards."""
    if (folder / dataset_json).exists():
        return True
    try:
        return any(is_shard(entry.name) for entry in os.scandir(folder))
    except OSError:
        return False


# Names that are not UTF-8


def printable(name: str | os.PathLike) -> str:
    """`name` as UTF-8 text can hold it, for a line or a JSON file: the bytes of a file name that are
    not UTF-8 (kept by Python as lone surrogates, as os.fsdecode does) are shown as \\xNN."""
    text = os.fspath(name)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate no file name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_utf8(name: str | os.PathLike) -> bool:
    """Whether `name` is UTF-8 text, not the bytes of a name that is not (os.fsdecode's surrogates)."""
    try:
        os.fspath(name).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_utf8(path: Path, hint: str) -> str:
    """The text of the UTF-8 file `path`; a byte that is not UTF-8 is an Inception3Error naming the file,
    line and column (`hint` says what the file should hold), not a UnicodeDecodeError."""
    return decode_utf8(Path(path).read_bytes(), path, hint)


def decode_utf8(data: bytes, path: Path, hint: str) -> str:
    """`data`, read from `path`, as UTF-8 text; else an Inception3Error as `read_utf8` raises it."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - data.rfind(b"\n", 0, error.start)
        raise Inception3Error(
            f"{printable(path)}:{line}: byte 0x{data[error.start]:02x} at column {column} is not UTF-8 "
            f"text; {hint}"
        ) from None


def require_utf8_path(path: Path, what: str, why: str) -> Path:
    """`path` when its name is UTF-8; otherwise an Inception3Error naming it and `why` it must be."""
    if not is_utf8(path):
        raise Inception3Error(f"{printable(path)}: the {what}'s path is not UTF-8 ({why}); rename it")
    return path


# The file system's refusals, in one line


def shown(path: object) -> str:
    """A path for an error line: the file a temporary stood for, its middle cut when very long."""
    text = os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else str(path)
    name = os.path.basename(text)
    if (match := _TEMPORARY.fullmatch(name)) is not None:
        text = os.path.join(os.path.dirname(text), match[1])
    if len(text) > _LONGEST_SHOWN:
        half = _LONGEST_SHOWN // 2
        text = f"{text[:half]}…{text[-half:]} ({len(text)} characters)"
    return text


_ADVICE = {
    errno.EACCES: "permission denied; make it writable (or readable) for this user, or choose another path",
    errno.EPERM: "operation not permitted; make it writable for this user, or choose another path",
    errno.EROFS: "the file system is read-only; choose a directory on a writable disk, or remount it "
    "read-write, and run the same command again",
    errno.ENOSPC: "the disk is full; free space there and run the same command again",
    errno.EDQUOT: "the disk quota is exceeded; free space there and run the same command again",
    errno.ENAMETOOLONG: "the name is longer than the file system allows (255 bytes a name on most); "
    "choose a shorter path",
    errno.EEXIST: "is already there as something else; move it away or choose another path",
    errno.ENOTDIR: "a part of this path is a file, not a directory; fix the path",
    errno.EISDIR: "is a directory where a file is needed; give a file name",
    errno.ELOOP: "a symbolic link loop (or a link where none is allowed); fix the link",
    errno.ENOENT: "no such file or directory; check the path",
}


def os_error_behind(error: BaseException | None) -> OSError | None:
    """The OSError behind `error`: torch.save's zip writer and others hide a failed write behind a
    RuntimeError."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error


def os_error_line(error: OSError) -> str:
    """One line for an OSError at a command's boundary: the path, what happened, what to do."""
    paths = [shown(p) for p in (error.filename, error.filename2) if p is not None]
    where = " -> ".join(paths)
    advice = _ADVICE.get(error.errno)
    if error.errno == errno.EEXIST and isinstance(error.filename, str | bytes | os.PathLike):
        found = what_is_at(Path(os.fsdecode(error.filename)))
        if found not in ("nothing", "nothing readable"):
            advice = f"is already there as {found}; move it away or choose another path"
    if advice is None:
        advice = f"{error.strerror or error}; check the path and run the same command again"
    elif not where:
        where = error.strerror or type(error).__name__
    text = f"{where}: {advice}" if where else advice
    return " ".join(text.split("\n"))
