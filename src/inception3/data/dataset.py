"""Shards -> records in order: a split's records by number, and the order each rank reads them in.

`open_split` numbers the records of a split 0..N-1 across its shards (`SplitRecords`), or across an
image folder's files (`FolderRecords`), and reads each with its label made 0-based by the dataset's
label offset (`meta.py` says what the directory holds).

The order of records is a pure function of (seed, epoch) and the shard sizes: the shards are
shuffled, their records concatenated, and a shuffle buffer of `SHUFFLE_BUFFER` records (the
original's `min_queue_examples`) is simulated on record numbers, so that a run can resume at any
position and every worker count gives the same sequence. The epochs follow one another as one
stream, cut into global batches; each rank reads its slice of every global batch. The records a
run has consumed are therefore a prefix of that stream whatever the number of ranks, and a run
checkpointed on N ranks continues on M with nothing repeated or skipped. With class balance
(`balance.py`), each epoch's order is instead drawn class by class from the records' labels
(`record_labels`), the same way a pure function of (seed, epoch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from inception3.config import SHUFFLE_BUFFER
from inception3.data.balance import balanced_order
from inception3.data.example import ImageRecord, MalformedExampleError
from inception3.data.meta import DATASET_JSON, RECORD_LABELS, DatasetInfo, list_images, split_shards
from inception3.data.records import CorruptRecordError, RecordFile, corrupt_record
from inception3.errors import Inception3Error


class SplitRecords:
    """All records of one split, numbered 0..N-1 across its shards in shard order."""

    def __init__(self, info: DatasetInfo, split: str, *, skip_corrupt: bool = False) -> None:
        """`skip_corrupt`: a shard whose headers are damaged keeps the records before the damage, and
        the ones lost are counted in `lost_records` (from dataset.json's counts; 1 per damaged shard
        when the shards came without it)."""
        self.split = split
        self.label_offset, self.num_classes = info.label_offset, info.num_classes
        self.data_dir, self.record_labels = info.data_dir, info.record_labels.get(split)
        shards = split_shards(info.data_dir, split)
        self.files = [RecordFile(p, stop_at_damage=skip_corrupt) for p in shards]
        expected = info.shard_sizes.get(split, {})
        _check_recorded_counts(self.files, expected, split)
        self.lost_records = sum(max(1, expected.get(f.path.name, 0) - len(f)) for f in self.files if f.damage)
        counts = np.array([len(f) for f in self.files], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        if self.starts[-1] == 0:
            raise Inception3Error(f"{info.data_dir}: the '{split}' shards hold no records")

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shard_sizes(self) -> np.ndarray:
        return np.diff(self.starts)

    def locate(self, record: int) -> tuple[RecordFile, int]:
        """The shard file holding global record number `record`, and its index within that shard."""
        shard = int(np.searchsorted(self.starts, record, side="right")) - 1
        return self.files[shard], record - int(self.starts[shard])

    def corrupt(self, record: int, what: str) -> CorruptRecordError:
        """The error for global record `record`, naming its shard and index."""
        file, index = self.locate(record)
        return corrupt_record(file.path, index, what)

    def saved_labels(self) -> np.ndarray | None:
        """Every record's 0-based label (int64 [N]) as `build` saved them beside the shards; None when
        there is no such file or it is not the one dataset.json names (by its SHA-256), or records
        were lost to a damaged shard: the labels must then be read from the records. A record damaged
        since the build keeps its label here; the loader skips it (or stops) when it reads it."""
        digest = self.record_labels
        path = self.data_dir / RECORD_LABELS.format(split=self.split)
        if digest is None or self.lost_records:
            return None
        labels = _read_int32s(path, len(self))
        if labels is None or hashlib.sha256(labels.tobytes()).hexdigest() != digest:
            return None
        return labels.astype(np.int64)

    def read(self, record: int) -> tuple[ImageRecord, int]:
        """Global record `record`, checksums checked, and its 0-based label.

        CorruptRecordError when the record is damaged; Inception3Error when its label is not one of
        the dataset's classes, which means the label offset is wrong, not that the record is.
        """
        file, index = self.locate(record)
        try:
            parsed = ImageRecord.parse(file.read(index))
        except MalformedExampleError as error:
            raise corrupt_record(file.path, index, str(error)) from error
        label = parsed.label - self.label_offset
        if not 0 <= label < self.num_classes:
            raise Inception3Error(
                f"{file.path}: record {index} has label {parsed.label}, outside the {self.num_classes} "
                f"classes with label offset {self.label_offset}; check the dataset's label offset "
                "(`inception3 inspect` shows the label range)"
            )
        return parsed, label


def _check_recorded_counts(files: list[RecordFile], recorded: dict[str, int], split: str) -> None:
    """The shards hold the records dataset.json counts for them (`recorded`; empty when it has none).

    Those counts set the learning-rate schedule's epochs: a shard replaced, emptied or cut at a
    record boundary, or a count edited, would train on a schedule for data that is not there. The
    shards' headers are already scanned to index them, so this costs nothing more. Only a shard
    whose damage `skip_corrupt` stopped at may hold fewer (its lost records are counted).
    """
    if not recorded:
        return
    for file in files:
        name = file.path.name
        if name not in recorded:
            raise Inception3Error(
                f"{file.path}: not one of the '{split}' shards its {DATASET_JSON} records "
                f"({', '.join(sorted(recorded)[:2])}, ...); the shards and {DATASET_JSON} are of "
                "different builds: rebuild with `inception3 build`"
            )
        if len(file) > recorded[name] or (len(file) < recorded[name] and not file.damage):
            raise Inception3Error(
                f"{file.path}: holds {len(file)} records, but its {DATASET_JSON} records "
                f"{recorded[name]}; the shard was replaced or cut short, or {DATASET_JSON} edited: "
                "rebuild with `inception3 build`"
            )


class FolderRecords:
    """An image folder read directly, without shards: record i is the i-th file in label order.

    A convenience for small experiments; labels are the class folders' indices (offset 0).
    """

    lost_records = 0  # files are checked one by one as they are read

    def __init__(self, files: list[tuple[Path, int]]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shard_sizes(self) -> np.ndarray:
        return np.array([len(self.files)], dtype=np.int64)

    def corrupt(self, record: int, what: str) -> CorruptRecordError:
        """The error for file `record`, naming it."""
        return CorruptRecordError(
            f"{self.files[record][0]}: unreadable image ({what}); remove or replace it", what
        )

    def read(self, record: int) -> tuple[ImageRecord, int]:
        """File `record` as a record, and its 0-based label; CorruptRecordError when it cannot be read."""
        path, label = self.files[record]
        try:
            return ImageRecord(encoded=path.read_bytes(), label=label, filename=path.name), label
        except OSError as error:
            raise self.corrupt(record, str(error)) from error


def open_split(info: DatasetInfo, split: str, *, skip_corrupt: bool = False) -> SplitRecords | FolderRecords:
    """The records of `split`: its shards, or, for an image folder, its files."""
    if info.folders:
        if split not in info.folders:
            raise Inception3Error(f"{info.data_dir}: no '{split}' folder of class folders")
        return FolderRecords(list_images(info.folders[split], info.class_names))
    return SplitRecords(info, split, skip_corrupt=skip_corrupt)


def _read_int32s(path: Path, count: int) -> np.ndarray | None:
    """The int32 [count] array of the .npy file `path`; None when the file is missing, unreadable or
    holds anything else. The header is checked before any data is read, so a file that declares a
    huge array costs nothing."""
    if not path.is_file():  # a FIFO in its place would block the open
        return None
    try:
        with open(path, "rb") as f:
            if np.lib.format.read_magic(f) != (1, 0):
                return None
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
            if shape != (count,) or fortran_order or dtype != np.dtype("<i4"):
                return None
            labels = np.fromfile(f, dtype="<i4", count=count)
    except (OSError, ValueError, EOFError):
        return None
    return labels if len(labels) == count else None


def record_labels(records: SplitRecords | FolderRecords, *, skip_corrupt: bool = False) -> np.ndarray:
    """Each record's 0-based label (int64 [N]), for class balance; -1 for one `skip_corrupt` leaves out.

    An image folder's labels are its class folders'; shards built here come with theirs in a file
    (`SplitRecords.saved_labels`). Other shards (TensorFlow's, or built before that file) hold them
    only inside the records, so this reads every record of the split once (as much as one epoch's
    reading, without the decoding).
    """
    if isinstance(records, FolderRecords):
        return np.array([label for _, label in records.files], dtype=np.int64)
    saved = records.saved_labels()
    if saved is not None:
        return saved
    labels = np.empty(len(records), dtype=np.int64)
    for record in range(len(records)):
        try:
            labels[record] = records.read(record)[1]
        except CorruptRecordError:
            if not skip_corrupt:
                raise
            labels[record] = -1
    return labels


def epoch_order(
    shard_sizes: np.ndarray, seed: int, epoch: int, shuffle_buffer: int = SHUFFLE_BUFFER
) -> np.ndarray:
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
    out[total - shuffle_buffer :] = rng.permutation(buffer)
    return out


def train_batches(
    shard_sizes: np.ndarray,
    seed: int,
    rank: int,
    world_size: int,
    batch_size: int,
    position: int = 0,
    *,
    labels: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """This rank's training records, `batch_size` at a time, endlessly, from global record `position` on.

    Global batch k is records k·B .. (k+1)·B − 1 of the stream of epochs (B = batch_size ×
    world_size; a batch runs on across an epoch boundary), and rank r reads its r-th slice. Yields
    (record numbers, the epoch each was drawn in); `position`, the records all ranks have consumed,
    is all a resumed run needs, for any number of ranks. `labels` (`record_labels`): each epoch's
    order is class-balanced (`balance.balanced_order`) instead of shuffled.
    """
    total = int(shard_sizes.sum())
    global_batch = batch_size * world_size
    orders: dict[int, np.ndarray] = {}
    while True:
        start = position + rank * batch_size
        numbers = np.arange(start, start + batch_size)
        epochs = numbers // total
        records = np.empty(batch_size, dtype=np.int64)
        for epoch in np.unique(epochs).tolist():  # one epoch, or two where the batch crosses a boundary
            if epoch not in orders:  # once per epoch: the order of ImageNet's 1.28M records takes seconds
                orders[epoch] = (
                    epoch_order(shard_sizes, seed, epoch)
                    if labels is None
                    else balanced_order(labels, seed, epoch)
                )
            records[epochs == epoch] = orders[epoch][numbers[epochs == epoch] % total]
        for old in [e for e in orders if e < int(epochs[0])]:
            del orders[old]
        yield records, epochs
        position += global_batch


def eval_records(total: int, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of an evaluation pass: records rank, rank + world_size, ...

    Unlike `rank_records`, nothing is left out: every record is evaluated once over all ranks.
    """
    return np.arange(rank, total, world_size, dtype=np.int64)
