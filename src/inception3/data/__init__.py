"""Shards of tf.train.Example records: building them, reading them, and the original's preprocessing.

An image's way from a JPEG to a batch, one module a stage: `build` (image folders -> shards, with
`images` and `boxes`) writes `records` of `example`s and the `meta` that describes them; `dataset`
numbers a split's records and orders them; `loader` reads, `decode`s and `crop`s them in worker
processes; `augment` distorts and scales the batch on the training device. `inspect` reports on a
directory of shards.
"""

from inception3.data.augment import distort_batch, scale_to_unit
from inception3.data.crop import eval_image
from inception3.data.loader import Batch, EvalLoader, TrainLoader, synthetic_batches
from inception3.data.meta import DatasetInfo, load_dataset_info

__all__ = [
    "Batch",
    "DatasetInfo",
    "EvalLoader",
    "TrainLoader",
    "synthetic_batches",
    "distort_batch",
    "eval_image",
    "load_dataset_info",
    "scale_to_unit",
]
