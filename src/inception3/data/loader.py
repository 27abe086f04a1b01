"""Records -> batches of cropped images: reading, decoding and cropping in CPU worker processes.

Which records form each batch comes from `dataset.py` (`train_batches`, `eval_records`), planned in
the main process from (seed, epoch) alone; workers (`worker.py`) only read, decode (`decode.py`),
crop (`crop.py`) and resize. On a CUDA device training's workers stop after the crop, or after
reading the record with `decode="gpu"`, and the batch is finished there (`device_crop.py`): on a GPU
host the workers' CPU time should go to decoding alone. The random crop of a record is drawn from a
generator seeded by (seed, epoch, record number), and `torch.utils.data.DataLoader` returns batches
in plan order, so the batches are the same for any number of workers, and `state_dict()` — the count
of records this rank has consumed — is all it takes to resume exactly. The batches go on to
`augment/`, on the training device.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from inception3.config import DEFAULT_EVAL_PREPROCESSING, AugmentConfig
from inception3.data.dataset import (
    eval_records,
    open_split,
    record_labels,
    train_batches,
)
from inception3.data.device_crop import Packed, finish_crops
from inception3.data.meta import DatasetInfo
from inception3.data.shared_slots import PREFETCH, SLOTS, check_stamp
from inception3.data.worker import BatchDecoder, Job
from inception3.errors import Inception3Error

_LOADER_STATE_KEYS = ("position", "seed", "world_size", "records", "skipped_records")
_ORDER = "global-batches"  # how "position" counts: records of the stream all ranks consumed
_ORIGINAL = AugmentConfig()  # the original recipe's random crop


@dataclass
class Batch:
    """Images cropped and resized but not yet distorted, with their 0-based labels."""

    # uint8 [B, 3, S, S]; float32 0-255 pixels for an evaluation preprocessing that does not round
    # (the original's: TensorFlow resizes the float image). `augment.scale_to_unit` takes either.
    images: torch.Tensor
    labels: torch.Tensor  # int64 [B]


def decode_place(decode: str, device: torch.device) -> str:
    """The `decode` setting ("auto", "cpu" or "gpu") made concrete for training on `device`: "auto" is
    "gpu" on CUDA and "cpu" elsewhere; "gpu" without CUDA is refused."""
    if decode == "auto":
        return "gpu" if device.type == "cuda" else "cpu"
    if decode == "gpu" and device.type != "cuda":
        raise Inception3Error(
            f"config: decode=gpu needs a CUDA device, and training runs on {device.type}; "
            "set decode=cpu or auto with --set"
        )
    return decode


def _copied_out(tensor: torch.Tensor, stamp: int | None, device: torch.device) -> torch.Tensor:
    """`tensor` on `device` in memory of this process's own: copied out of a worker's ring slot (and
    the slot's stamp checked after the copy), or moved as it is when it is no slot (stamp None)."""
    if stamp is None:
        return tensor.to(device, non_blocking=True)
    # From pageable memory CUDA stages the copy before returning, so the slot has been read by then;
    # non_blocking spares the loop a wait for the GPU (tests/cuda: no sync between steps).
    copied = tensor.clone() if device.type == "cpu" else tensor.to(device, non_blocking=True)
    check_stamp(tensor, stamp)
    return copied


def _unwrap(item: tuple) -> tuple:
    return item


def _data_loader(decoder: BatchDecoder, jobs, num_workers: int) -> DataLoader:
    return DataLoader(
        decoder,
        batch_size=None,
        sampler=jobs,
        num_workers=num_workers,
        collate_fn=_unwrap,
        prefetch_factor=PREFETCH if num_workers else None,
    )


def _check_rank(rank: int, world_size: int, batch_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise Inception3Error(f"rank {rank} is not within world size {world_size}")
    if batch_size < 1:
        raise Inception3Error(f"batch size {batch_size} per rank must be at least 1")


class TrainLoader:
    """Infinite batches of randomly cropped training images for one rank, epoch after epoch.

    The epochs' shuffled orders form one stream of global batches; each rank reads its slice of
    every one (so the ranks never overlap), and batches run on across epoch boundaries. With
    `skip_corrupt`, corrupt records are left out of their batch (which is then shorter) and counted
    in `skipped_records`, as are the records after a damaged header in a shard, which cannot be found.
    The random crop follows `augment` (its `crop_*` settings); the device-side ops are the trainer's.
    `balance_classes`: every class drawn equally often in each epoch (`balance.py`); the records'
    labels are read once, here (`labels`).

    Where the work is done: `decode="cpu"` decodes in the workers; they also resize the crops when
    the batches go to the CPU, and leave the resize to the device otherwise (`resize_in_workers`
    overrides that choice). `decode="gpu"` has the workers read records only; the batch is decoded
    (nvJPEG on CUDA; `torchvision.io.decode_jpeg` on any device), cropped and resized on the batches'
    device. The crops are the same in every case; the pixels agree within the decoders' and resize
    kernels' rounding (`device_crop.py`).
    """

    def __init__(
        self,
        info: DatasetInfo,
        batch_size: int,
        image_size: int,
        *,
        split: str = "train",
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        num_workers: int = 2,
        skip_corrupt: bool = False,
        augment: AugmentConfig = _ORIGINAL,
        balance_classes: bool = False,
        decode: str = "cpu",
        resize_in_workers: bool | None = None,
    ) -> None:
        _check_rank(rank, world_size, batch_size)
        if decode not in ("cpu", "gpu"):
            raise Inception3Error(f"decode must be cpu or gpu, not {decode!r}")
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        self.num_workers = num_workers
        self.decode = decode
        self.resize_in_workers = resize_in_workers
        self.records = open_split(info, split, skip_corrupt=skip_corrupt)
        if len(self.records) < world_size:
            raise Inception3Error(
                f"{info.data_dir}: {len(self.records)} '{split}' records cannot be shared "
                f"by {world_size} ranks"
            )
        self.decoder = BatchDecoder(
            self.records,
            image_size,
            train=True,
            seed=seed,
            skip_corrupt=skip_corrupt,
            augment=augment,
        )
        self.labels = record_labels(self.records, skip_corrupt=skip_corrupt) if balance_classes else None
        if self.labels is not None and not (self.labels >= 0).any():
            raise Inception3Error(f"{info.data_dir}: no '{split}' record could be read for its label")
        self.position = 0  # records all ranks have consumed: the stream's prefix (dataset.train_batches)
        # Records lost to damaged shard headers are left out of every epoch; counted once here.
        self.skipped_records = self.records.lost_records

    def __iter__(self) -> Iterator[Batch]:
        """This rank's batches in host memory; the position counts those handed out."""
        for batch, position, skipped in self._batches(torch.device("cpu")):
            self.position, self.skipped_records = position, skipped
            yield batch

    def device_batches(self, device: torch.device) -> Iterator[Batch]:
        """This rank's batches on `device`, the next one's copy under way while the current one trains.

        On CUDA the batches are copied out of the workers' shared memory and finished (resized, or
        decoded and resized) on a side stream, so that batch k+1's device work overlaps step k; the
        training stream waits for it only when it needs it. The position still counts only the batches handed
        out, not the one made ahead.
        """
        copier = torch.cuda.Stream(device) if device.type == "cuda" else None
        source = self._batches(device, copier)
        ahead = next(source)
        while True:
            batch, position, skipped = ahead
            if copier is not None:
                torch.cuda.current_stream(device).wait_stream(copier)
                for tensor in (batch.images, batch.labels):  # memory of the side stream, used on this one
                    tensor.record_stream(torch.cuda.current_stream(device))
            ahead = next(source)
            self.position, self.skipped_records = position, skipped
            yield batch

    def hand_over(self, device: torch.device) -> str:
        """What the workers hand over for batches on `device` (one of `HAND_OVERS`)."""
        if self.decode == "gpu":
            return "jpegs"
        in_workers = self.resize_in_workers
        return "images" if (device.type == "cpu" if in_workers is None else in_workers) else "decoded"

    def _batches(
        self, device: torch.device, copier: torch.cuda.Stream | None = None
    ) -> Iterator[tuple[Batch, int, int]]:
        """(batch on `device`, position, skipped records) after each non-empty batch, from the current
        position; the batch is moved and finished on the `copier` stream when there is one."""
        position, skipped_records = self.position, self.skipped_records
        for item, labels, skipped, stamp in self._worker_batches(device):
            position += self.batch_size * self.world_size
            skipped_records += skipped
            with torch.cuda.stream(copier) if copier is not None else contextlib.nullcontext():
                images, labels, failed = self._finish(item, labels, stamp, device)
            skipped_records += failed
            if len(labels):
                yield Batch(images, labels), position, skipped_records

    def _worker_batches(
        self, device: torch.device
    ) -> Iterator[tuple[torch.Tensor | Packed, np.ndarray, int, int | None]]:
        """What the workers hand over for batches on `device`, batch by batch, from the current position:
        (images or a `Packed` batch, labels, records skipped, the stamp of its worker's slot)."""
        jobs = (
            Job(records, epochs)
            for records, epochs in train_batches(
                self.records.shard_sizes,
                self.seed,
                self.rank,
                self.world_size,
                self.batch_size,
                self.position,
                labels=self.labels,
            )
        )
        decoder = copy.copy(self.decoder)
        decoder.hand_over = self.hand_over(device)
        # The batches received last, kept so that their slots stay mapped here: a slot that comes
        # round again is then found in torch's cache of shared memory instead of mapped anew.
        mapped = collections.deque(maxlen=SLOTS * self.num_workers)
        for images, labels, skipped, error, stamp in _data_loader(decoder, jobs, self.num_workers):
            if error is not None:
                raise Inception3Error(error)
            mapped.append(images)
            yield images, labels, skipped, stamp

    def _finish(
        self, images: torch.Tensor | Packed, labels: np.ndarray, stamp: int | None, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The workers' batch as uint8 [B, 3, S, S] on `device`, its labels, and how many records of it
        did not decode (left out with `skip_corrupt`, else an error naming the first)."""
        targets = torch.from_numpy(labels)
        if not isinstance(images, Packed):
            return _copied_out(images, stamp, device), targets.to(device, non_blocking=True), 0
        # Decoded pixels go to the device; JPEGs stay in host memory, where the device decoder reads them.
        data = _copied_out(images.data, stamp, device if images.kind == "decoded" else torch.device("cpu"))
        finished, failures = finish_crops(
            dataclasses.replace(images, data=data), self.decoder.image_size, device
        )
        if failures and not self.decoder.skip_corrupt:
            record, reason = failures[0]
            raise Inception3Error(str(self.records.corrupt(record, reason)))
        keep = torch.from_numpy(~np.isin(images.records, [record for record, _ in failures]))
        return finished, targets[keep].to(device, non_blocking=True), len(failures)

    def state_dict(self) -> dict:
        """The exact position (plain ints): records consumed by all ranks, and what it depends on."""
        return {
            "order": _ORDER,
            "position": self.position,
            "seed": self.seed,
            "world_size": self.world_size,
            "records": len(self.records),
            "skipped_records": self.skipped_records,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a `state_dict()`, saved on any number of ranks; seed and dataset must match.

        A state saved before the order was a stream of global batches counted each rank's records;
        its position is carried over as the same number of global batches.
        """
        missing = [key for key in _LOADER_STATE_KEYS if key not in state]
        if missing:
            raise Inception3Error(f"loader state lacks {', '.join(missing)}; it is not a TrainLoader state")
        mine = self.state_dict()
        for key in ("seed", "records"):
            if int(state[key]) != mine[key]:
                raise Inception3Error(
                    f"cannot resume the data position: it was saved with "
                    f"{key}={state[key]}, this run has {key}={mine[key]}"
                )
        position = int(state["position"])
        self.position = position if state.get("order") == _ORDER else position * int(state["world_size"])
        self.skipped_records = int(state["skipped_records"])


class EvalLoader:
    """One pass over a split: rank r takes records r, r + world_size, ...; every record once overall.

    Images get the evaluation preprocessing `preprocessing` names (`preprocess.py`; the original's
    central crop 0.875 and TF1 bilinear resize by default); the last batch may be short.
    """

    def __init__(
        self,
        info: DatasetInfo,
        batch_size: int,
        image_size: int,
        *,
        split: str = "validation",
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 2,
        preprocessing: str = DEFAULT_EVAL_PREPROCESSING,
    ) -> None:
        _check_rank(rank, world_size, batch_size)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.records = open_split(info, split)
        self.decoder = BatchDecoder(
            self.records, image_size, train=False, seed=0, skip_corrupt=False, preprocessing=preprocessing
        )
        self.mine = eval_records(len(self.records), rank, world_size)

    def __len__(self) -> int:
        return -(-len(self.mine) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        chunks = [self.mine[i : i + self.batch_size] for i in range(0, len(self.mine), self.batch_size)]
        jobs = [Job(chunk, np.zeros(len(chunk), dtype=np.int64)) for chunk in chunks]
        for images, labels, _, error, _ in _data_loader(self.decoder, jobs, self.num_workers):
            if error is not None:
                raise Inception3Error(error)
            yield Batch(images, torch.from_numpy(labels))


def synthetic_batches(
    batch_size: int, image_size: int, num_classes: int, device: torch.device, seed: int = 0
) -> Iterator[Batch]:
    """One random uint8 batch made on `device`, handed out for ever: training without an input pipeline.

    As TensorFlow's benchmarks did: the step's throughput on it, against real data's, says how much the
    input pipeline holds training back.
    """
    generator = torch.Generator(device=device).manual_seed(seed)
    shape = (batch_size, 3, image_size, image_size)
    images = torch.randint(0, 256, shape, generator=generator, device=device, dtype=torch.uint8)
    labels = torch.randint(0, num_classes, (batch_size,), generator=generator, device=device)
    while True:
        yield Batch(images, labels)
