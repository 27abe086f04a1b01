"""Shards -> records: what a dataset directory holds, and the order its records are read in.

A dataset directory holds shards named `<split>-00000-of-00008` and, when inception3 built it,
`dataset.json` (class names, label offset, records per split and shard). Directories built by
TensorFlow's `build_image_data.py` have no `dataset.json`: their labels are 1-based (0 is the unused
background class), and the offset and classes must be given, never guessed.

The order of records is a pure function of (seed, epoch) and the shard sizes: the shards are
shuffled, their records concatenated, and a shuffle buffer of `SHUFFLE_BUFFER` records (the
original's `min_queue_examples`) is simulated on record numbers, so that a run can resume at any
position and every worker count gives the same sequence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inception3.config import SHUFFLE_BUFFER
from inception3.data.example import ImageRecord, MalformedExampleError
from inception3.data.records import CorruptRecordError, RecordFile, corrupt_record
from inception3.errors import Inception3Error

DATASET_JSON = "dataset.json"
DATASET_FORMAT = "inception3-shards/1"
LABELS_FILE = "labels.txt"
SPLITS = ("train", "validation")


@dataclass(frozen=True)
class DatasetInfo:
    """What the trainer and evaluator need to know about a shard directory."""

    data_dir: Path
    class_names: tuple[str, ...]  # index = 0-based label
    label_offset: int  # 0-based label = stored label - label_offset (1 for TF-built shards)
    split_sizes: dict[str, int]  # records per split, e.g. {"train": 3000, "validation": 500}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def shard_name(split: str, index: int, num_shards: int) -> str:
    """The original's shard naming: `train-00003-of-00128`."""
    return f"{split}-{index:05d}-of-{num_shards:05d}"


def split_shards(data_dir: Path, split: str) -> list[Path]:
    """The complete, ordered list of shard files of `split`; Inception3Error if any is missing."""
    data_dir = Path(data_dir)
    pattern = re.compile(rf"{re.escape(split)}-(\d{{5}})-of-(\d{{5}})")
    found: dict[int, set[int]] = {}
    for path in data_dir.glob(f"{split}-*-of-*"):
        match = pattern.fullmatch(path.name)
        if match:
            found.setdefault(int(match[2]), set()).add(int(match[1]))
    if not found:
        raise Inception3Error(f"{data_dir}: no '{split}' shards (files named {shard_name(split, 0, 8)} ...); "
                              "check --data-dir or build them with `inception3 build`")
    if len(found) > 1:
        raise Inception3Error(f"{data_dir}: '{split}' shards of several builds "
                              f"(-of-{', -of-'.join(f'{n:05d}' for n in sorted(found))}); keep only one")
    ((total, indices),) = found.items()
    missing = sorted(set(range(total)) - indices)
    if missing:
        raise Inception3Error(f"{data_dir}: shard {shard_name(split, missing[0], total)} is missing "
                              f"({len(missing)} of {total} missing); finish the build with "
                              "`inception3 build`")
    return [data_dir / shard_name(split, i, total) for i in range(total)]


def load_dataset_info(data_dir: Path, label_offset: int | None = None,
                      num_classes: int | None = None) -> DatasetInfo:
    """Read `data_dir/dataset.json`, or describe a TensorFlow-built directory or an image folder.

    An image folder (class folders, or train/ and validation/ folders of class folders) is read
    directly, labels in sorted folder order or `labels.txt` order. For shards without dataset.json,
    `label_offset` must be given (1 for TensorFlow's build scripts) and the classes come from
    `data_dir/labels.txt` (one name per line, in label order) or from `num_classes`. Given values
    that contradict dataset.json are an error, not overridden.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise Inception3Error(f"{data_dir}: no such directory; pass the directory that holds the shards")
    meta_path = data_dir / DATASET_JSON
    if meta_path.exists():
        return _from_json(meta_path, label_offset, num_classes)
    if _is_image_folder(data_dir):
        return _folder_info(data_dir)
    if not any(data_dir.glob("*-of-*")):
        raise Inception3Error(f"{data_dir}: holds no shards, no {DATASET_JSON} and no class folders; "
                              "build shards with `inception3 build` or pass a folder of class folders")
    if label_offset is None:
        raise Inception3Error(
            f"{data_dir}: no {DATASET_JSON}, so the label offset is unknown; pass --label-offset 1 "
            "(train: --set label_offset=1) for shards built by TensorFlow's build_image_data.py (labels "
            "1..N, 0 = background), or 0 for 0-based labels (`inception3 inspect` shows the label range)")
    labels_path = data_dir / LABELS_FILE
    if labels_path.exists():
        names = tuple(line.strip() for line in labels_path.read_text().splitlines() if line.strip())
        if num_classes is not None and num_classes != len(names):
            raise Inception3Error(f"{labels_path}: {len(names)} classes, "
                                  f"but num_classes={num_classes} was given")
    elif num_classes is not None:
        names = tuple(str(i) for i in range(num_classes))
    else:
        raise Inception3Error(f"{data_dir}: no {DATASET_JSON} and no {LABELS_FILE}, so the classes are "
                              "unknown; set the class count (train: --set num_classes=N) or put the "
                              "labels file (one class per line) there")
    sizes = {}
    for split in SPLITS:
        if any(data_dir.glob(f"{split}-*-of-*")):
            sizes[split] = sum(len(RecordFile(p)) for p in split_shards(data_dir, split))
    return DatasetInfo(data_dir, names, int(label_offset), sizes)


def _from_json(meta_path: Path, label_offset: int | None, num_classes: int | None) -> DatasetInfo:
    try:
        meta = json.loads(meta_path.read_text())
        names = tuple(str(n) for n in meta["class_names"])
        offset = int(meta["label_offset"])
        sizes = {split: int(entry["records"]) for split, entry in meta["splits"].items()}
    except (ValueError, KeyError, TypeError) as error:
        raise Inception3Error(f"{meta_path}: not a valid {DATASET_JSON} ({error}); rebuild with "
                              "`inception3 build` or delete it and pass --label-offset") from error
    if label_offset is not None and label_offset != offset:
        raise Inception3Error(f"{meta_path}: records labels with offset {offset}, "
                              f"but label_offset={label_offset} was given; drop the option")
    if num_classes is not None and num_classes != len(names):
        raise Inception3Error(f"{meta_path}: lists {len(names)} classes, "
                              f"but num_classes={num_classes} was given")
    return DatasetInfo(meta_path.parent, names, offset, sizes)


class SplitRecords:
    """All records of one split, numbered 0..N-1 across its shards in shard order."""

    def __init__(self, data_dir: Path, split: str, *, skip_corrupt: bool = False) -> None:
        """`skip_corrupt`: a shard whose headers are damaged keeps the records before the damage, and
        the ones lost are counted in `lost_records` (from dataset.json's counts; 1 per damaged shard
        when the shards came without it)."""
        self.split = split
        self.files = [RecordFile(p, stop_at_damage=skip_corrupt) for p in split_shards(data_dir, split)]
        expected = _shard_counts(data_dir, split)
        self.lost_records = sum(max(1, expected.get(f.path.name, 0) - len(f)) for f in self.files if f.damage)
        counts = np.array([len(f) for f in self.files], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        if self.starts[-1] == 0:
            raise Inception3Error(f"{data_dir}: the '{split}' shards hold no records")

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shard_sizes(self) -> np.ndarray:
        return np.diff(self.starts)

    def locate(self, record: int) -> tuple[RecordFile, int]:
        """The shard file holding global record number `record`, and its index within that shard."""
        shard = int(np.searchsorted(self.starts, record, side="right")) - 1
        return self.files[shard], record - int(self.starts[shard])

    def where(self, record: int) -> str:
        """`SHARD: record I`, for messages."""
        file, index = self.locate(record)
        return f"{file.path}: record {index}"

    def corrupt(self, record: int, what: str) -> CorruptRecordError:
        file, index = self.locate(record)
        return corrupt_record(file.path, index, what)

    def image(self, record: int) -> ImageRecord:
        """Global record `record`, checksums checked; CorruptRecordError when it is damaged."""
        file, index = self.locate(record)
        try:
            return ImageRecord.parse(file.read(index))
        except MalformedExampleError as error:
            raise corrupt_record(file.path, index, str(error)) from error


class FolderRecords:
    """An image folder read directly, without shards: record i is the i-th file in label order.

    A convenience for small experiments; labels are the class folders' indices (offset 0).
    """

    lost_records = 0  # files are checked one by one as they are read

    def __init__(self, root: Path, class_names: tuple[str, ...]) -> None:
        self.files: list[tuple[Path, int]] = []
        for label, name in enumerate(class_names):
            folder = Path(root) / name
            if folder.is_dir():
                self.files += [(p, label) for p in sorted(folder.iterdir())
                               if p.is_file() and not p.name.startswith(".")]
        if not self.files:
            raise Inception3Error(f"{root}: the class folders hold no images")

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shard_sizes(self) -> np.ndarray:
        return np.array([len(self.files)], dtype=np.int64)

    def where(self, record: int) -> str:
        return str(self.files[record][0])

    def corrupt(self, record: int, what: str) -> CorruptRecordError:
        return CorruptRecordError(f"{self.where(record)}: unreadable image ({what}); remove or replace it")

    def image(self, record: int) -> ImageRecord:
        path, label = self.files[record]
        try:
            return ImageRecord(encoded=path.read_bytes(), label=label, filename=path.name)
        except OSError as error:
            raise self.corrupt(record, str(error)) from error


def _folder_root(data_dir: Path, split: str) -> Path | None:
    """Where an image folder keeps `split`: DIR/<split>/<class>/..., or DIR/<class>/... for train."""
    if (data_dir / split).is_dir() and any(p.is_dir() for p in (data_dir / split).iterdir()):
        return data_dir / split
    if split == "train" and not any((data_dir / s).is_dir() for s in SPLITS):
        return data_dir
    return None


def _is_image_folder(data_dir: Path) -> bool:
    return not any(data_dir.glob("*-of-*")) and any(p.is_dir() and not p.name.startswith(".")
                                                     for p in data_dir.iterdir())


def _folder_info(data_dir: Path) -> DatasetInfo:
    train = _folder_root(data_dir, "train")
    if train is None:
        raise Inception3Error(f"{data_dir}: an image folder needs class folders, or train/<class>/ folders")
    labels_path = data_dir / LABELS_FILE
    if labels_path.exists():
        names = tuple(line.strip() for line in labels_path.read_text().splitlines() if line.strip())
    else:
        names = tuple(sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith(".")))
    sizes = {split: len(FolderRecords(root, names)) for split in SPLITS
             if (root := _folder_root(data_dir, split)) is not None}
    return DatasetInfo(data_dir, names, 0, sizes)


def _shard_counts(data_dir: Path, split: str) -> dict[str, int]:
    """Records per shard as dataset.json records them; empty for shards built without one."""
    path = data_dir / DATASET_JSON
    if not path.exists():
        return {}
    return {name: int(n) for name, n in json.loads(path.read_text())["splits"][split]["shards"].items()}


def open_split(info: DatasetInfo, split: str, *, skip_corrupt: bool = False) -> SplitRecords | FolderRecords:
    """The records of `split`: its shards, or, for an image folder, its files."""
    if _is_image_folder(info.data_dir) and not (info.data_dir / DATASET_JSON).exists():
        root = _folder_root(info.data_dir, split)
        if root is None:
            raise Inception3Error(f"{info.data_dir}: no '{split}' folder of class folders")
        return FolderRecords(root, info.class_names)
    return SplitRecords(info.data_dir, split, skip_corrupt=skip_corrupt)


def epoch_order(shard_sizes: np.ndarray, seed: int, epoch: int,
                shuffle_buffer: int = SHUFFLE_BUFFER) -> np.ndarray:
    """Global record numbers in the order epoch `epoch` reads them (a permutation of 0..N-1).

    Shard order is shuffled, then records pass through a shuffle buffer: once it is full, each
    incoming record replaces a uniformly chosen one, which is emitted (as `tf.data`'s `shuffle`).
    """
    rng = np.random.default_rng([seed, epoch])
    starts = np.concatenate([[0], np.cumsum(shard_sizes)])
    total = int(starts[-1])
    if total <= shuffle_buffer:
        return rng.permutation(total)
    stream = np.concatenate([np.arange(starts[s], starts[s + 1]) for s in rng.permutation(len(shard_sizes))])
    buffer = stream[:shuffle_buffer].copy()
    picks = rng.integers(0, shuffle_buffer, size=total - shuffle_buffer)
    out = np.empty(total, dtype=np.int64)
    for i, (pick, incoming) in enumerate(zip(picks.tolist(), stream[shuffle_buffer:].tolist(), strict=True)):
        out[i] = buffer[pick]
        buffer[pick] = incoming
    out[total - shuffle_buffer:] = rng.permutation(buffer)
    return out


def rank_records(order: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of an epoch: every world_size-th record, the same count on every rank."""
    per_rank = len(order) // world_size
    return order[rank::world_size][:per_rank]
