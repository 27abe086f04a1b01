"""What a loader worker does to one batch: read its records, decode them, crop them at random
(training) or centrally (evaluation), and resize, into memory it reuses; on a GPU host it stops
after the decode or after reading, and the training device finishes the batch (`device_crop.py`).
`loader.py` plans the batches and runs these in `torch.utils.data` worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import get_worker_info

from inception3.config import DEFAULT_EVAL_PREPROCESSING, AugmentConfig
from inception3.data.crop import crop_and_resize, crop_minimums, sample_distorted_box, scale_box
from inception3.data.dataset import FolderRecords, SplitRecords
from inception3.data.decode import DECODE_ERRORS, decode_pixels, decoded_size, image_size
from inception3.data.device_crop import Packed
from inception3.data.example import ImageRecord
from inception3.data.preprocess import decode, get_preprocessing, prepare
from inception3.data.records import CorruptRecordError
from inception3.data.shared_slots import SlotRing
from inception3.errors import Inception3Error

_ORIGINAL = AugmentConfig()  # the original recipe's random crop

# What a training worker hands over: resized images, the decoded images with their crop boxes
# (cropped and resized on the device), or the encoded images with their boxes (decoded there too).
HAND_OVERS = ("images", "decoded", "jpegs")


@dataclass(frozen=True)
class Job:
    """One batch to decode: record numbers and the epoch each was drawn in (for its crop seed)."""

    records: np.ndarray
    epochs: np.ndarray


# What a worker returns for a job: images (or a Packed batch), labels (NumPy's, which travel between
# processes by value), records skipped, an error message, and the stamp of the ring slot the data is in
# (None when it is in no slot).
Handed = tuple[torch.Tensor | Packed, np.ndarray, int, str | None, int | None]
_NO_LABELS = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class _Planned:
    """A record read and its crop drawn, before its image is decoded into the batch's buffer."""

    record: int
    label: int
    encoded: bytes
    box: tuple[int, int, int, int]  # in the full image's pixels
    full: tuple[int, int]  # the image's (height, width)
    decoded: tuple[int, int]  # what it decodes to for this crop; (0, 0) when it stays encoded


class BatchDecoder:
    """Decodes a `Job` into (images, labels, skipped, error); runs in the loader's workers.

    Errors travel back as text rather than exceptions so that the main process raises one
    Inception3Error with a one-line message, whatever the worker count.
    """

    def __init__(
        self,
        records: SplitRecords | FolderRecords,
        image_size: int,
        *,
        train: bool,
        seed: int,
        skip_corrupt: bool,
        augment: AugmentConfig = _ORIGINAL,
        preprocessing: str = DEFAULT_EVAL_PREPROCESSING,
    ) -> None:
        self.records = records
        self.preprocessing = preprocessing  # evaluation only (`preprocess.py`); training crops at random
        self.dtype = torch.uint8 if train else get_preprocessing(preprocessing).dtype
        self.augment = augment  # training only: the random crop's settings
        self.image_size = image_size
        self.train = train
        self.seed = seed
        self.skip_corrupt = skip_corrupt
        self.hand_over = "images"  # one of HAND_OVERS; training only
        self.ring: SlotRing | None = None  # a training worker's shared buffers, made in the worker
        # What each decode of the "images" hand-over writes into, reused from image to image.
        self.scratch = np.empty(0, dtype=np.uint8)

    def _buffer(self, nbytes: int) -> torch.Tensor:
        """uint8 [nbytes] to fill and hand over: a slot of this worker's ring when training (sealed by
        `_seal`), else fresh shared memory in a worker, ordinary memory in the training process."""
        if get_worker_info() is None:
            return torch.empty(nbytes, dtype=torch.uint8)
        if not self.train:
            return torch.empty(nbytes, dtype=torch.uint8).share_memory_()
        if self.ring is None:
            self.ring = SlotRing()
        return self.ring.take(nbytes)

    def _seal(self, buffer: torch.Tensor) -> int | None:
        """The stamp the training process checks after copying `buffer` out (None: not a ring slot)."""
        return self.ring.seal(buffer) if self.train and get_worker_info() is not None else None

    def __getitem__(self, job: Job) -> Handed:
        if self.hand_over != "images":
            return self._pack(job)
        size = self.image_size
        count = len(job.records)
        buffer = self._buffer(count * 3 * size * size * self.dtype.itemsize)
        images = buffer.view(self.dtype).view(count, 3, size, size)
        labels: list[int] = []
        skipped = 0
        for record, epoch in zip(job.records.tolist(), job.epochs.tolist(), strict=True):
            try:
                image, label = self._decode(record, epoch)
            except CorruptRecordError as error:
                if not self.skip_corrupt:
                    return torch.empty(0), _NO_LABELS, skipped, str(error), self._seal(buffer)
                skipped += 1
                continue
            except Inception3Error as error:
                return torch.empty(0), _NO_LABELS, skipped, str(error), self._seal(buffer)
            images[len(labels)].copy_(image)
            labels.append(label)
        stamp = self._seal(buffer)
        return images[: len(labels)], np.array(labels, dtype=np.int64), skipped, None, stamp

    def _pack(self, job: Job) -> Handed:
        """The job's images decoded ("decoded") or still encoded ("jpegs"), in one flat buffer (`Packed`).

        Every record is read and its crop drawn first, which fixes from the header alone how large each
        image decodes; each is then decoded straight into its place in the buffer, so that the pixels
        are written once and never copied in this process.
        """
        planned: list[_Planned] = []
        skipped = 0
        for record, epoch in zip(job.records.tolist(), job.epochs.tolist(), strict=True):
            try:
                planned.append(self._plan(record, epoch))
            except CorruptRecordError as error:
                if not self.skip_corrupt:
                    return Packed.empty(self.hand_over), _NO_LABELS, skipped, str(error), None
                skipped += 1
            except Inception3Error as error:
                return Packed.empty(self.hand_over), _NO_LABELS, skipped, str(error), None
        # Each image's place holds its pixels, or its encoded bytes should it have to stay encoded.
        lengths = [max(p.decoded[0] * p.decoded[1] * 3, len(p.encoded)) for p in planned]
        data = self._buffer(sum(lengths))
        flat = data.numpy()
        rows = []  # per image kept: offset, bytes, decoded height and width, box (4), record, label
        offset = 0
        for plan, length in zip(planned, lengths, strict=True):
            try:
                box, shape, used = self._place(plan, flat[offset : offset + length])
            except DECODE_ERRORS as error:
                failure = self.records.corrupt(plan.record, f"image does not decode: {error}")
                if not self.skip_corrupt:
                    return Packed.empty(self.hand_over), _NO_LABELS, skipped, str(failure), None
                skipped += 1
                continue
            rows.append((offset, used, *shape, *box, plan.record, plan.label))
            offset += length
        table = np.array(rows, dtype=np.int64).reshape(-1, 10)
        packed = Packed(self.hand_over, data, table[:, 0:2], table[:, 2:4], table[:, 4:8], table[:, 8])
        return packed, table[:, 9], skipped, None, self._seal(data)

    def _plan(self, record: int, epoch: int) -> _Planned:
        """Read `record`, draw its crop and size its decode; CorruptRecordError when it cannot be read."""
        parsed, label = self.records.read(record)
        try:
            full = image_size(parsed.encoded)
            box = self._box(parsed, full, record, epoch)
            decoded = (0, 0)
            if self.hand_over == "decoded":
                decoded = decoded_size(parsed.encoded, *crop_minimums(*full, box, self.image_size))
        except DECODE_ERRORS as error:
            raise self.records.corrupt(record, f"image does not decode: {error}") from error
        return _Planned(record, label, parsed.encoded, box, full, decoded)

    def _place(
        self, plan: _Planned, place: np.ndarray
    ) -> tuple[tuple[int, int, int, int], tuple[int, int], int]:
        """Write `plan`'s image into `place`, decoded as planned or else encoded: (its crop box in what
        it will be once decoded, its decoded (height, width) or (0, 0), the bytes written)."""
        encoded = np.frombuffer(plan.encoded, dtype=np.uint8)
        if plan.decoded != (0, 0):
            pixels = decode_pixels(plan.encoded, *plan.decoded, buffer=place)
            if pixels.shape[:2] == plan.decoded:
                if not np.may_share_memory(pixels, place):  # Pillow decodes into memory of its own
                    place[: pixels.size] = pixels.reshape(-1)
                return scale_box(plan.box, plan.full, plan.decoded), plan.decoded, pixels.size
        place[: encoded.size] = encoded
        return plan.box, (0, 0), encoded.size

    def _scratch(self, encoded: bytes) -> np.ndarray:
        """`scratch`, grown to hold the full-size pixels of `encoded` (a JPEG; other formats ignore it)."""
        height, width = image_size(encoded)
        if self.scratch.size < height * width * 3:
            self.scratch = np.empty(int(1.25 * height * width * 3), dtype=np.uint8)
        return self.scratch

    def _box(
        self, parsed: ImageRecord, full: tuple[int, int], record: int, epoch: int
    ) -> tuple[int, int, int, int]:
        """The random crop of `record` (its image `full` = (height, width) pixels) in epoch `epoch`: drawn
        from a generator seeded by (seed, epoch, record), so the same whatever the worker or the run."""
        height, width = full
        return sample_distorted_box(
            height,
            width,
            parsed.boxes,
            np.random.default_rng([self.seed, epoch, record]),
            min_object_covered=self.augment.crop_min_object_covered,
            area_range=self.augment.crop_area_range,
        )

    def _decode(self, record: int, epoch: int) -> tuple[torch.Tensor, int]:
        """Record `record` cropped to [3, S, S] and its 0-based label: a random crop seeded by (seed,
        epoch, record) when training, else the evaluation preprocessing's decode, crop and resize."""
        parsed, label = self.records.read(record)
        try:
            if self.train:
                box = self._box(parsed, image_size(parsed.encoded), record, epoch)
                return crop_and_resize(
                    parsed.encoded, box, self.image_size, self._scratch(parsed.encoded)
                ), label
            image = decode(parsed.encoded, self.preprocessing)
            return prepare(image, self.image_size, self.preprocessing), label
        except DECODE_ERRORS as error:
            raise self.records.corrupt(record, f"image does not decode: {error}") from error
