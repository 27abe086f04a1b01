"""TFRecord files: framing with masked CRC-32C, checked on every read, and an index of offsets.

A TFRecord file is a sequence of records, each
    uint64 length (little-endian) | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)
exactly as TensorFlow's `tf.io.TFRecordWriter` writes it (no compression).
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import google_crc32c
import numpy as np

from inception3.errors import Inception3Error
from inception3.files import atomic_write, what_is_at

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8


class CorruptRecordError(Inception3Error):
    """A record whose framing, checksum or contents are wrong, or a file cut short.

    The message is the one-line advice for a user; `what` is the damage alone, for a listing.
    """

    def __init__(self, message: str, what: str = "") -> None:
        super().__init__(message)
        self.what = what


def corrupt_record(path: Path | str, index: int, what: str) -> CorruptRecordError:
    """The error for record `index` of shard `path`, in one line that says what to do."""
    return CorruptRecordError(
        f"{path}: record {index} is corrupt ({what}); rebuild or replace this shard, "
        "or pass skip_corrupt to skip and count such records",
        what,
    )


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C rotated right by 15 bits plus a constant, modulo 2**32."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record's bytes on disk: header, data, footer."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + _FOOTER.pack(masked_crc32c(data))


def write_records(path: Path, records: Iterable[bytes]) -> int:
    """Write records to `path` atomically (`files.atomic_write`); returns how many."""
    count = 0
    with atomic_write(path) as f:
        for data in records:
            f.write(frame(data))
            count += 1
    return count


def open_shard(path: Path | str) -> BinaryIO:
    """`path` opened for reading, when it is a regular file: the one way shards are opened.

    Opening a FIFO blocks until something writes to it, and a device never ends: a shard that is
    not a regular file is refused in one line instead of hanging the command (as build does with
    such images).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise Inception3Error(f"{path}: the shard is gone; rebuild with `inception3 build`") from None
    if not stat.S_ISREG(mode):
        raise Inception3Error(
            f"{path}: is {what_is_at(Path(path))}, not a shard (a TFRecord file); "
            "remove it, or rebuild the shards with `inception3 build`"
        )
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


def _read_record(f: BinaryIO, path: Path | str, index: int, check_crc: bool) -> bytes | None:
    """Read the record at the file's position; None at a clean end of file."""
    header = f.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise corrupt_record(path, index, "file ends inside a record header")
    length, length_crc = _HEADER.unpack(header)
    if check_crc and masked_crc32c(header[:8]) != length_crc:
        raise corrupt_record(path, index, "length checksum mismatch")
    # A damaged length can claim terabytes: compare it with what the file holds before reading.
    if length + _FOOTER.size > os.fstat(f.fileno()).st_size - f.tell():
        raise corrupt_record(path, index, "file ends inside a record")
    body = f.read(length + _FOOTER.size)
    if len(body) < length + _FOOTER.size:
        raise corrupt_record(path, index, "file ends inside a record")
    data = body[:length]
    if check_crc and masked_crc32c(data) != _FOOTER.unpack(body[length:])[0]:
        raise corrupt_record(path, index, "data checksum mismatch")
    return data


def iter_records(path: Path, *, check_crc: bool = True) -> Iterator[bytes]:
    """Every record of a TFRecord file, in order; CorruptRecordError names the first bad one."""
    with open_shard(path) as f:
        index = 0
        while (data := _read_record(f, path, index, check_crc)) is not None:
            yield data
            index += 1


def scan_records(path: Path) -> tuple[np.ndarray, str | None]:
    """Byte offsets (int64) of the complete records before any damage, and the damage, if any.

    Reads only the headers: checks each length's checksum and that the file ends exactly after
    the last record. A TFRecord file has no markers to find the records after a damaged length.
    """
    path = Path(path)
    offsets: list[int] = []
    with open_shard(path) as f:
        size = os.fstat(f.fileno()).st_size
        offset = 0
        while offset < size:
            f.seek(offset)
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return np.asarray(offsets, dtype=np.int64), "file ends inside a record header"
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                return np.asarray(offsets, dtype=np.int64), "length checksum mismatch"
            end = offset + _HEADER.size + length + _FOOTER.size
            if end > size:
                return np.asarray(offsets, dtype=np.int64), "file ends inside a record"
            offsets.append(offset)
            offset = end
    return np.asarray(offsets, dtype=np.int64), None


def index_records(path: Path) -> np.ndarray:
    """Byte offsets of every record in a file (int64); CorruptRecordError names a damaged one.

    A truncated shard is reported here, before training starts.
    """
    offsets, damage = scan_records(path)
    if damage is not None:
        raise corrupt_record(path, len(offsets), damage)
    return offsets


class RecordFile:
    """Random access to the records of one TFRecord file by index, given its offsets."""

    def __init__(
        self, path: Path, offsets: np.ndarray | None = None, *, stop_at_damage: bool = False
    ) -> None:
        """`stop_at_damage`: keep the records before a damaged header (`damage` says what) instead
        of raising CorruptRecordError."""
        self.path = Path(path)
        self.damage: str | None = None
        if offsets is None:
            offsets, self.damage = scan_records(self.path)
            if self.damage is not None and not stop_at_damage:
                raise corrupt_record(self.path, len(offsets), self.damage)
        self.offsets = offsets
        self._file: BinaryIO | None = None
        self._pid = 0  # the process that opened _file: a forked worker must not share its position

    def __len__(self) -> int:
        return len(self.offsets)

    def read(self, index: int, *, check_crc: bool = True) -> bytes:
        """The data of record `index`, checksums checked; CorruptRecordError when it is damaged."""
        if self._file is None or self._pid != os.getpid():
            self._file = open_shard(self.path)  # kept open across reads, closed in close()
            self._pid = os.getpid()
        self._file.seek(int(self.offsets[index]))
        data = _read_record(self._file, self.path, index, check_crc)
        if data is None:
            raise corrupt_record(self.path, index, "file ends before the record")
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict:
        """Pickle without the open file, so a RecordFile can be sent to loader worker processes."""
        return {"path": self.path, "offsets": self.offsets, "damage": self.damage, "_file": None, "_pid": 0}
