"""What a loader worker does to one batch: read its records, decode them, crop them at random
(training) or centrally (evaluation), and resize, into memory it reuses; on a GPU host it stops
after the crop or after reading, and the training device finishes the batch (`device_crop.py`).
`loader.py` plans the batches and runs these in `torch.utils.data` worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import get_worker_info

from inception3.config import DEFAULT_EVAL_PREPROCESSING, AugmentConfig
from inception3.data.crop import crop_and_resize, decode_crop, sample_distorted_box
from inception3.data.dataset import FolderRecords, SplitRecords
from inception3.data.decode import DECODE_ERRORS, image_size
from inception3.data.device_crop import Packed
from inception3.data.preprocess import decode, get_preprocessing, prepare
from inception3.data.records import CorruptRecordError
from inception3.data.shared_slots import SlotRing
from inception3.errors import Inception3Error

_ORIGINAL = AugmentConfig()  # the original recipe's random crop

# What a training worker hands over: resized images, the crops (resized on the device), or the
# encoded images with their boxes (decoded, cropped and resized on the device).
HAND_OVERS = ("images", "crops", "jpegs")


@dataclass(frozen=True)
class Job:
    """One batch to decode: record numbers and the epoch each was drawn in (for its crop seed)."""

    records: np.ndarray
    epochs: np.ndarray


# What a worker returns for a job: images (or a Packed batch), labels, records skipped, an error
# message, and the stamp of the ring slot the data is in (None when it is in no slot).
Handed = tuple[torch.Tensor | Packed, torch.Tensor, int, str | None, int | None]


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
        # Memory reused from image to image and batch to batch: what each decode writes into, and
        # where a batch's crops or encoded images gather before they go to the ring.
        self.scratch = np.empty(0, dtype=np.uint8)
        self.staging = np.empty(0, dtype=np.uint8)

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

    def __getitem__(
        self, job: Job
    ) -> tuple[torch.Tensor | Packed, torch.Tensor, int, str | None, int | None]:
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
                    return torch.empty(0), torch.empty(0), skipped, str(error), self._seal(buffer)
                skipped += 1
                continue
            except Inception3Error as error:
                return torch.empty(0), torch.empty(0), skipped, str(error), self._seal(buffer)
            images[len(labels)].copy_(image)
            labels.append(label)
        stamp = self._seal(buffer)
        return images[: len(labels)], torch.tensor(labels, dtype=torch.int64), skipped, None, stamp

    def _pack(self, job: Job) -> Handed:
        """The job's crops ("crops") or encoded images and boxes ("jpegs"), in one flat shared buffer."""
        boxes, sizes, records, labels = [], [], [], []
        skipped, total = 0, 0
        for record, epoch in zip(job.records.tolist(), job.epochs.tolist(), strict=True):
            try:
                parsed, label = self.records.read(record)
                try:
                    box = self._box(parsed, record, epoch)
                    piece = (
                        decode_crop(parsed.encoded, box, self.image_size, self._scratch(parsed.encoded))
                        if self.hand_over == "crops"
                        else None
                    )
                except DECODE_ERRORS as error:
                    raise self.records.corrupt(record, f"image does not decode: {error}") from error
            except CorruptRecordError as error:
                if not self.skip_corrupt:
                    return Packed.empty(self.hand_over), torch.empty(0), skipped, str(error), None
                skipped += 1
                continue
            except Inception3Error as error:
                return Packed.empty(self.hand_over), torch.empty(0), skipped, str(error), None
            if piece is None:
                piece = np.frombuffer(parsed.encoded, dtype=np.uint8)
                sizes.append((len(piece), 1))
            else:
                sizes.append(piece.shape[:2])
            self._stage(total, piece)
            total += piece.size
            boxes.append(box)
            records.append(record)
            labels.append(label)
        data = self._buffer(total)
        data.numpy()[:] = self.staging[:total]
        packed = Packed(
            self.hand_over,
            data,
            torch.tensor(sizes, dtype=torch.int64).view(-1, 2),
            torch.tensor(boxes, dtype=torch.int64).view(-1, 4),
            torch.tensor(records, dtype=torch.int64),
        )
        return packed, torch.tensor(labels, dtype=torch.int64), skipped, None, self._seal(data)

    def _scratch(self, encoded: bytes) -> np.ndarray:
        """`scratch`, grown to hold the full-size pixels of `encoded` (a JPEG; other formats ignore it)."""
        height, width = image_size(encoded)
        if self.scratch.size < height * width * 3:
            self.scratch = np.empty(int(1.25 * height * width * 3), dtype=np.uint8)
        return self.scratch

    def _stage(self, offset: int, piece: np.ndarray) -> None:
        """Copy `piece` into `staging` at `offset`, growing it (and keeping what is before) if needed."""
        end = offset + piece.size
        if self.staging.size < end:
            grown = np.empty(max(end, int(1.25 * self.staging.size)), dtype=np.uint8)
            grown[:offset] = self.staging[:offset]
            self.staging = grown
        self.staging[offset:end].reshape(piece.shape)[...] = piece

    def _box(self, parsed, record: int, epoch: int) -> tuple[int, int, int, int]:
        """The random crop of `record` in epoch `epoch`: drawn from a generator seeded by (seed, epoch,
        record), so the same whatever the worker or the run."""
        height, width = image_size(parsed.encoded)
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
                box = self._box(parsed, record, epoch)
                return crop_and_resize(
                    parsed.encoded, box, self.image_size, self._scratch(parsed.encoded)
                ), label
            image = decode(parsed.encoded, self.preprocessing)
            return prepare(image, self.image_size, self.preprocessing), label
        except DECODE_ERRORS as error:
            raise self.records.corrupt(record, f"image does not decode: {error}") from error
