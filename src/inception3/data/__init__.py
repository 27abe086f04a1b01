"""Shards of tf.train.Example records: building them, reading them, and the original's preprocessing."""

from inception3.data.augment import distort_batch, eval_image, scale_to_unit
from inception3.data.dataset import DatasetInfo, load_dataset_info
from inception3.data.loader import Batch, EvalLoader, TrainLoader

__all__ = ["Batch", "DatasetInfo", "EvalLoader", "TrainLoader", "distort_batch", "eval_image",
           "load_dataset_info", "scale_to_unit"]
