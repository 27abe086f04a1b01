"""Class balance from the training records' labels: a class-balanced record order, and class weights.

`class_balance = "sampler"`: each epoch is as long as the split, and every class with records
is drawn equally often in it (the epoch's N draws go to the classes in turns, ⌊N/K⌋ or ⌈N/K⌉ each),
each draw a record of its class picked uniformly, with replacement, then shuffled: as torch's
`WeightedRandomSampler` with weights 1 / (records of the class), but with the counts exact rather
than equal in expectation. A pure function of (labels, seed, epoch), like the plain order, so a run
resumes mid-epoch at the same record. Classes without records are left out.

`class_balance = "loss"`: class c weighs N / (K · n_c) in the cross entropy (n_c its training
records, K the classes that have any, N all records), so the mean weight over the training images
is 1 (scikit-learn's `compute_class_weight("balanced")`); a class without records weighs 0.
"""

from __future__ import annotations

import numpy as np

_BALANCED_STREAM = 1  # the balanced order draws apart from the plain order's (seed, epoch) stream


def balanced_order(labels: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """Record numbers of epoch `epoch`, len(labels) of them, every class drawn equally often.

    `labels`: each record's 0-based label, -1 for a record left out (unreadable).
    """
    rng = np.random.default_rng([seed, epoch, _BALANCED_STREAM])
    total = len(labels)
    by_class = np.argsort(labels, kind="stable")
    classes, starts, counts = np.unique(labels[by_class], return_index=True, return_counts=True)
    present = classes >= 0
    starts, counts = starts[present], counts[present]
    turns = np.resize(rng.permutation(len(counts)), total)  # class (index) of each draw
    picks = starts[turns] + (rng.random(total) * counts[turns]).astype(np.int64)
    return by_class[picks][rng.permutation(total)]


def class_weights(counts: np.ndarray) -> np.ndarray:
    """float32 [K] weights N / (K_present · n_c) for per-class record counts `counts`; 0 where n_c is 0."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros(len(counts))
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)
