"""What a dataset directory holds: the one reader and writer of `dataset.json`, labels files and names.

A directory inception3 built holds shards named `<split>-00000-of-00008` and `dataset.json` (class
names, label offset, records per split and shard, and the build's own record of how it made them).
Directories built by TensorFlow's `build_image_data.py` have no `dataset.json`: their labels are
1-based (0 is the unused background class), and the offset and classes must be given, never
guessed; the class names may come from a `labels.txt` beside the shards. An image folder (class
folders, or train/ and validation/ folders of class folders) is read directly, without shards.
`load_dataset_info` tells these apart once and describes the directory in a `DatasetInfo`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from inception3.config import MAX_CLASSES
from inception3.data.records import RecordFile
from inception3.errors import Inception3Error
from inception3.files import is_utf8, printable, require_directory, what_is_at, write_text_atomic

DATASET_JSON = "dataset.json"
LABELS_FILE = "labels.txt"  # TensorFlow's build scripts' labels file: one class name per line, in label order
# Each record's 0-based label in record order, written by `build` beside the shards, so that class
# balance need not read every record to learn them (NumPy's .npy, int32).
RECORD_LABELS = "{split}-record-labels.npy"
SPLITS = ("train", "validation")
_FORMAT = "inception3-shards/1"
_SHARD = re.compile(r"(.+)-(\d{5})-of-(\d{5})")


@dataclass(frozen=True)
class DatasetInfo:
    """What the trainer and evaluator need to know about a dataset directory."""

    data_dir: Path
    class_names: tuple[str, ...]  # index = 0-based label
    label_offset: int  # 0-based label = stored label - label_offset (1 for TF-built shards)
    split_sizes: dict[str, int]  # records per split, e.g. {"train": 3000, "validation": 500}
    # Records per shard of each split as dataset.json records them; empty when it is not known.
    shard_sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    # For an image folder read without shards: each split's folder of class folders.
    folders: dict[str, Path] = field(default_factory=dict)
    # Records per class of each split, index = 0-based label, as dataset.json records them (builds
    # since class balance came); empty when it is not known.
    class_counts: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # The SHA-256 of each split's RECORD_LABELS array as the build wrote it; empty when not known.
    record_labels: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# Shard names


def shard_name(split: str, index: int, num_shards: int) -> str:
    """The original's shard naming: `train-00003-of-00128`."""
    return f"{split}-{index:05d}-of-{num_shards:05d}"


def is_shard_name(name: str) -> bool:
    """Whether `name` is a shard's file name (`train-00003-of-00128`)."""
    return _SHARD.fullmatch(name) is not None


def shard_splits(data_dir: Path) -> list[str]:
    """The names of the splits that have shards in `data_dir`, sorted."""
    return sorted({m[1] for p in Path(data_dir).iterdir() if (m := _SHARD.fullmatch(p.name))})


def split_shards(data_dir: Path, split: str) -> list[Path]:
    """The complete, ordered list of shard files of `split`; Inception3Error if any is missing."""
    data_dir = Path(data_dir)
    found: dict[int, set[int]] = {}
    for path in data_dir.glob(f"{split}-*-of-*"):
        match = _SHARD.fullmatch(path.name)
        if match and match[1] == split:
            found.setdefault(int(match[3]), set()).add(int(match[2]))
    if not found:
        raise Inception3Error(
            f"{data_dir}: no '{split}' shards (files named {shard_name(split, 0, 8)} ...); "
            "check --data-dir or build them with `inception3 build`"
        )
    if len(found) > 1:
        raise Inception3Error(
            f"{data_dir}: '{split}' shards of several builds "
            f"(-of-{', -of-'.join(f'{n:05d}' for n in sorted(found))}); keep only one"
        )
    ((total, indices),) = found.items()
    missing = sorted(set(range(total)) - indices)
    if missing:
        raise Inception3Error(
            f"{data_dir}: shard {shard_name(split, missing[0], total)} is missing "
            f"({len(missing)} of {total} missing); finish the build with "
            "`inception3 build`"
        )
    return [data_dir / shard_name(split, i, total) for i in range(total)]


# Class names and image folders

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_class_count(count: int, source: object, *, at_least: bool = False) -> int:
    """`count` when at most MAX_CLASSES: the one limit on a class count, whatever gives it.

    The model's logits layers are sized by the class count (2816 weights a class, kept 4 times):
    200,000 names would take 4.4 GB before the first step, so every source of the count (dataset.json,
    a labels file, class folders, a given num_classes) is refused here, before anything is sized by it.
    `at_least`: `count` is how many were read before stopping, not all there are.
    """
    if count > MAX_CLASSES:
        raise Inception3Error(
            f"{source}: {'at least ' if at_least else ''}{count} classes, more than the {MAX_CLASSES} "
            "inception3 trains (the logits layers hold 2816 weights a class, kept 4 times: "
            f"{MAX_CLASSES} classes take 4.5 GB)"
        )
    return count


def check_class_names(names: object, source: object) -> tuple[str, ...]:
    """`names` as a tuple when they are a list of distinct, non-empty names without control characters.

    Each is a label's name in logs, labels files and exports, so an empty one, a NUL or a newline,
    or a name given twice (two labels one could not tell apart) is refused with the first such name.
    """
    if isinstance(names, str):
        raise Inception3Error(
            f"{source}: the class names are one string, not a list of names (each character would be "
            "taken for a class); write them as a list"
        )
    if not isinstance(names, list | tuple):
        raise Inception3Error(
            f"{source}: the class names must be a list of names, got {type(names).__name__}"
        )
    check_class_count(len(names), source)
    if not names:
        raise Inception3Error(f"{source}: lists no classes; give one name per class")
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise Inception3Error(f"{source}: class {index} is {name!r}, not a name (text)")
        if not name.strip():
            raise Inception3Error(f"{source}: class {index} has an empty name; give every class a name")
        if _CONTROL.search(name):
            raise Inception3Error(
                f"{source}: class {index}'s name {name!r} holds a control character (NUL, newline, ...); "
                "give it a name of printable characters"
            )
        if name in first:
            raise Inception3Error(
                f"{source}: a class is listed twice ({name!r}, classes {first[name]} and {index}); "
                "each class needs its own name"
            )
        first[name] = index
    return tuple(names)


def read_labels(path: Path) -> tuple[str, ...]:
    """The class names a labels file lists, one per line in label order (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        found = what_is_at(path)
        there = "no such labels file" if found == "nothing" else f"is {found}, not a labels file"
        raise Inception3Error(f"{path}: {there}; it lists one class name per line")
    names: list[str] = []
    try:
        with path.open(encoding="utf-8") as lines:
            for line in lines:  # one line at a time: stop at the class limit, not at the file's end
                if line.strip():
                    names.append(line.strip())
                    check_class_count(len(names), path, at_least=True)
    except UnicodeDecodeError:
        raise Inception3Error(
            f"{path}: not a UTF-8 text file; a labels file lists one class name per line"
        ) from None
    if not names:
        raise Inception3Error(f"{path}: lists no classes; put one class name per line")
    return check_class_names(names, path)


def folder_classes(folder: Path, labels_file: Path | None = None) -> tuple[str, ...]:
    """The classes of a folder of class folders: the labels file's lines, or the sorted folder names."""
    if labels_file is not None:
        return read_labels(labels_file)
    names = tuple(sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not names:
        raise Inception3Error(f"{folder}: no class sub-folders; put each class's images in its own folder")
    for name in names:  # a class name is text (dataset.json, checkpoints, predictions): UTF-8
        if not is_utf8(name):
            raise Inception3Error(
                f"{printable(Path(folder) / name)}: a class folder's name is not UTF-8, and it would be "
                "the class's name; rename the folder (or list the classes in a labels file)"
            )
    return check_class_names(names, folder)


def list_images(root: Path, class_names: Sequence[str]) -> list[tuple[Path, int]]:
    """The image files of `root`'s class folders with their 0-based labels, in label then name order."""
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(class_names):
        folder = Path(root) / name
        if folder.is_dir():
            files += [
                (p, label) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
            ]
    if not files:
        raise Inception3Error(f"{root}: the class folders hold no images")
    return files


def _folder_root(data_dir: Path, split: str) -> Path | None:
    """Where an image folder keeps `split`: DIR/<split>/<class>/..., or DIR/<class>/... for train."""
    if (data_dir / split).is_dir() and any(p.is_dir() for p in (data_dir / split).iterdir()):
        return data_dir / split
    if split == "train" and not any((data_dir / s).is_dir() for s in SPLITS):
        return data_dir
    return None


def _is_image_folder(data_dir: Path) -> bool:
    return not shard_splits(data_dir) and any(
        p.is_dir() and not p.name.startswith(".") for p in data_dir.iterdir()
    )


def _folder_info(data_dir: Path) -> DatasetInfo:
    folders = {split: root for split in SPLITS if (root := _folder_root(data_dir, split)) is not None}
    if "train" not in folders:
        raise Inception3Error(f"{data_dir}: an image folder needs class folders, or train/<class>/ folders")
    labels_path = data_dir / LABELS_FILE
    names = folder_classes(folders["train"], labels_path if labels_path.exists() else None)
    sizes = {split: len(list_images(root, names)) for split, root in folders.items()}
    return DatasetInfo(data_dir, names, 0, sizes, folders=folders)


# dataset.json


def write_dataset_json(
    output_dir: Path, class_names: Sequence[str], label_offset: int, splits: dict[str, dict], build: dict
) -> None:
    """Write `output_dir/dataset.json` atomically.

    `splits` holds, per split, its records per shard under "shards", optionally its records per
    class under "class_counts", and any figures worth keeping beside them (box counts, image
    sizes); `build` is the build's own record, kept as given.
    """
    document = {
        "format": _FORMAT,
        "class_names": list(class_names),
        "label_offset": label_offset,
        "splits": {
            split: {"records": sum(entry["shards"].values()), **entry} for split, entry in splits.items()
        },
        "build": build,
    }
    write_text_atomic(Path(output_dir) / DATASET_JSON, json.dumps(document, indent=1) + "\n")


class DatasetRecord(NamedTuple):
    """What dataset.json records: the dataset, and the build's own record (fingerprint, files)."""

    info: DatasetInfo
    build: dict


def read_dataset_json(data_dir: Path) -> DatasetRecord | None:
    """What `data_dir/dataset.json` records: the dataset, and the build's own record; None without one."""
    path = Path(data_dir) / DATASET_JSON
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text())
        check_dataset_json(document, path)  # the values; a missing key or a wrong type is caught below
        names = tuple(str(n) for n in document["class_names"])
        offset = int(document["label_offset"])
        sizes = {split: int(entry["records"]) for split, entry in document["splits"].items()}
        shards = {
            split: {str(name): int(n) for name, n in entry.get("shards", {}).items()}
            for split, entry in document["splits"].items()
        }
        counts = {
            split: tuple(int(n) for n in entry["class_counts"])
            for split, entry in document["splits"].items()
            if "class_counts" in entry
        }
        digests = {
            split: str(entry["record_labels_sha256"])
            for split, entry in document["splits"].items()
            if "record_labels_sha256" in entry
        }
        build = dict(document.get("build", {}))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:  # deep nesting
        raise Inception3Error(
            f"{path}: not a valid {DATASET_JSON} ({error}); rebuild with "
            "`inception3 build` or delete it and pass --label-offset"
        ) from error
    info = DatasetInfo(
        path.parent, names, offset, sizes, shard_sizes=shards, class_counts=counts, record_labels=digests
    )
    return DatasetRecord(info, build)


def _count(value: object, where: str, path: Path) -> int:
    """A record count as dataset.json must hold it: a whole number, not negative."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Inception3Error(
            f"{path}: {where} must be a whole number of records (0 or more), got {json.dumps(value)}; "
            f"the file was edited or damaged: rebuild with `inception3 build`"
        )
    return value


def check_dataset_json(document: dict, path: Path) -> None:
    """Refuse, in one line, a dataset.json whose values a build never writes.

    The values size and schedule everything after: the class names size the model and name its
    outputs (`check_class_names`); the record counts set the epochs of the learning-rate schedule
    and are checked against the shards as they are opened (`dataset.SplitRecords`), so here they
    must be counts and each split's must be the sum of its shards'.
    """
    if document["format"] != _FORMAT:
        raise Inception3Error(
            f"{path}: format is {json.dumps(document['format'])}, not {json.dumps(_FORMAT)}: "
            f"not a {DATASET_JSON} this inception3 reads (another tool's, or a newer version's); "
            "rebuild with `inception3 build`"
        )
    check_class_names(document["class_names"], f"{path}: class_names")
    offset = document["label_offset"]
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise Inception3Error(
            f"{path}: label_offset must be a whole number, 0 or more, got {json.dumps(offset)}; "
            "rebuild with `inception3 build`"
        )
    for split, entry in document["splits"].items():
        records = _count(entry["records"], f"splits.{split}.records", path)
        shards = entry.get("shards", {})
        counts = [_count(n, f"splits.{split}.shards.{name}", path) for name, n in shards.items()]
        if shards and sum(counts) != records:
            raise Inception3Error(
                f"{path}: splits.{split}.records is {records}, but its shards' counts add up to "
                f"{sum(counts)}; the file was edited or damaged: rebuild with `inception3 build`"
            )
        if "class_counts" in entry:
            _check_class_counts(entry["class_counts"], len(document["class_names"]), records, split, path)


def _check_class_counts(counts: object, num_classes: int, records: int, split: str, path: Path) -> None:
    """A split's records per class: one count per class, adding up to the split's records."""
    where = f"splits.{split}.class_counts"
    if not isinstance(counts, list) or len(counts) != num_classes:
        raise Inception3Error(
            f"{path}: {where} must list one count per class ({num_classes}); the file was edited or "
            "damaged: rebuild with `inception3 build`"
        )
    total = sum(_count(n, where, path) for n in counts)
    if total != records:
        raise Inception3Error(
            f"{path}: {where} add up to {total}, but the split holds {records} records; the file "
            "was edited or damaged: rebuild with `inception3 build`"
        )


def _from_json(info: DatasetInfo, label_offset: int | None, num_classes: int | None) -> DatasetInfo:
    """`info` as dataset.json records it, unless the given values contradict it."""
    path = info.data_dir / DATASET_JSON
    if label_offset is not None and label_offset != info.label_offset:
        raise Inception3Error(
            f"{path}: records labels with offset {info.label_offset}, "
            f"but label_offset={label_offset} was given; drop the option"
        )
    if num_classes is not None and num_classes != info.num_classes:
        raise Inception3Error(
            f"{path}: lists {info.num_classes} classes, but num_classes={num_classes} was given"
        )
    return info


def load_dataset_info(
    data_dir: Path, label_offset: int | None = None, num_classes: int | None = None
) -> DatasetInfo:
    """Read `data_dir/dataset.json`, or describe a TensorFlow-built directory or an image folder.

    An image folder (class folders, or train/ and validation/ folders of class folders) is read
    directly, labels in sorted folder order or `labels.txt` order. For shards without dataset.json,
    `label_offset` must be given (1 for TensorFlow's build scripts) and the classes come from
    `data_dir/labels.txt` (one name per line, in label order) or from `num_classes`. Given values
    that contradict dataset.json are an error, not overridden.
    """
    data_dir = require_directory(Path(data_dir), "directory", "pass the directory that holds the shards")
    recorded = read_dataset_json(data_dir)
    if recorded is not None:
        return _from_json(recorded.info, label_offset, num_classes)
    if _is_image_folder(data_dir):
        return _folder_info(data_dir)
    splits = shard_splits(data_dir)
    if not splits:
        raise Inception3Error(
            f"{data_dir}: holds no shards, no {DATASET_JSON} and no class folders; "
            "build shards with `inception3 build` or pass a folder of class folders"
        )
    if label_offset is None:
        raise Inception3Error(
            f"{data_dir}: no {DATASET_JSON}, so the label offset is unknown; pass --label-offset 1 "
            "(train: --set label_offset=1) for shards built by TensorFlow's build_image_data.py (labels "
            "1..N, 0 = background), or 0 for 0-based labels (`inception3 inspect` shows the label range)"
        )
    labels_path = data_dir / LABELS_FILE
    if labels_path.exists():
        names = read_labels(labels_path)
        if num_classes is not None and num_classes != len(names):
            raise Inception3Error(
                f"{labels_path}: {len(names)} classes, but num_classes={num_classes} was given"
            )
    elif num_classes is not None:
        names = tuple(str(i) for i in range(check_class_count(num_classes, f"{data_dir}: num_classes")))
    else:
        raise Inception3Error(
            f"{data_dir}: no {DATASET_JSON} and no {LABELS_FILE}, so the classes are "
            "unknown; set the class count (train: --set num_classes=N) or put the "
            "labels file (one class per line) there"
        )
    # The records before any damage: whether damage stops the run or is skipped (skip_corrupt) is
    # for the reader of the records to say, not for this description of the directory.
    sizes = {
        split: sum(len(RecordFile(p, stop_at_damage=True)) for p in split_shards(data_dir, split))
        for split in SPLITS
        if split in splits
    }
    return DatasetInfo(data_dir, names, int(label_offset), sizes)
