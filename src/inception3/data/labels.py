"""Label spaces: weights, data and class names must agree on what label i means.

A model's outputs, the dataset's classes (`meta.DatasetInfo`) and the class names (the weights' own
or a labels file's) are counted separately. Where they disagree, `label_space` applies a rule and
says so in one line (TensorFlow's 1001 ImageNet outputs lose the background on 1000 classes) or
refuses with what to do. Evaluation and prediction both resolve their outputs here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inception3.data.meta import DATASET_JSON, LABELS_FILE, DatasetInfo, load_dataset_info, read_labels
from inception3.errors import Inception3Error
from inception3.imagenet import NUM_CLASSES as IMAGENET_CLASSES
from inception3.imagenet import imagenet_classes

TF_BACKGROUND_CLASSES = IMAGENET_CLASSES + 1  # TF-Slim's ImageNet logits: class 0 is the background


@dataclass(frozen=True)
class LabelSpace:
    """Which of a model's outputs are scored, what they are called, and which rule said so."""

    first_column: int  # 1: output 0 of 1001, TensorFlow's background class, is left out; else 0
    names: tuple[str, ...] | None  # one per scored output; None: neither weights nor --labels-file name them
    notes: tuple[str, ...] = ()  # one line per rule applied


def real_classes(outputs: int) -> int:
    """The classes a model's outputs stand for: TF's 1001 ImageNet outputs are 1000 classes and background."""
    return outputs - 1 if outputs == TF_BACKGROUND_CLASSES else outputs


def output_names(weights_names: Sequence[str] | None, labels_file: Path | None) -> tuple[str, ...] | None:
    """`--labels-file`'s names when given (`meta.read_labels`), else the weights' own, else None."""
    if labels_file is not None:
        return read_labels(Path(labels_file))
    return tuple(str(n) for n in weights_names) if weights_names else None


def label_space(
    outputs: int,
    names: tuple[str, ...] | None,
    *,
    data_classes: int | None = None,
    checkpoint: Path | str = "the weights",
    data_dir: Path | str = "the data",
    labels_file: Path | None = None,
) -> LabelSpace:
    """Resolve how a model's `outputs` meet data of `data_classes` classes (None: no data, as in predict)
    and the class `names` (of the weights or `labels_file`), by rule or by refusal.

    Rules: equal counts need nothing. A model of 1001 outputs (TensorFlow's ImageNet: class 0 is the
    background) on 1000-class data, or named by 1000 names, has its background output dropped. Any
    other count that differs is an Inception3Error naming both counts and what to do.
    """
    first, notes = 0, []
    if data_classes is not None and data_classes != outputs:
        if outputs == TF_BACKGROUND_CLASSES and data_classes == outputs - 1:
            first = 1
            notes.append(
                f"{checkpoint} has {outputs} outputs, class 0 TensorFlow's background; {data_dir} has "
                f"{data_classes} classes: the background output is left out"
            )
        else:
            hint = (
                "; if its class 0 is TensorFlow's background, read it with --label-offset 1"
                if data_classes == outputs + 1
                else ""
            )
            raise Inception3Error(
                f"{data_dir} has {data_classes} classes but {checkpoint} outputs {outputs}; evaluate it on "
                f"data of its {outputs} classes (--data-dir), or fine-tune it on this data first: "
                f"inception3 train --init-from {checkpoint} --preset flowers --data-dir {data_dir}{hint}"
            )
    if names is not None and len(names) != outputs - first:
        if len(names) == outputs - 1 and outputs == TF_BACKGROUND_CLASSES and data_classes is None:
            first = 1
            notes.append(
                f"{len(names)} class names for {outputs} outputs: output 0, TensorFlow's background, "
                "is left out"
            )
        elif len(names) == outputs and first == 1:
            names = names[1:]
        else:
            source = labels_file if labels_file is not None else checkpoint
            what = "lists" if labels_file is not None else "names"
            raise Inception3Error(
                f"{source} {what} {len(names)} classes but the model outputs {outputs - first}; "
                f"give a labels file of {outputs - first} lines (one class name per line)"
            )
    return LabelSpace(first, names, tuple(notes))


def dataset_for(data_dir: Path, label_offset: int | None, outputs: int) -> DatasetInfo:
    """The dataset, whose class count is its own; shards that list no classes (TF-built, without
    labels.txt) take the model's, background left out."""
    lists_classes = (data_dir / DATASET_JSON).exists() or (data_dir / LABELS_FILE).exists()
    return load_dataset_info(
        data_dir, label_offset=label_offset, num_classes=None if lists_classes else real_classes(outputs)
    )


def _same_classes(ours: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """Equal names, or ImageNet's readable names against its synset ids (a dataset built from folders)."""
    if ours == theirs:
        return True
    classes = imagenet_classes()
    return len(ours) == len(classes) and {ours, theirs} == {
        tuple(n for _, n in classes),
        tuple(s for s, _ in classes),
    }


def warn_if_names_differ(
    names: tuple[str, ...] | None, info: DatasetInfo, checkpoint: Path, labels_file: Path | None
) -> None:
    """One warning line when the weights' class names and the data's disagree (counts already agree)."""
    data = tuple(info.class_names)
    if names is None or data == tuple(str(i) for i in range(len(data))) or _same_classes(names, data):
        return
    source = labels_file if labels_file is not None else checkpoint
    if sorted(names) == sorted(data):
        detail = f"the same {len(data)} classes in another order"
    else:
        i = next(i for i, (a, b) in enumerate(zip(names, data, strict=True)) if a != b)
        detail = f"label {i} is {names[i]!r} there, {data[i]!r} here"
    warnings.warn(
        f"the class names of {source} and {info.data_dir} differ ({detail}); labels are scored by "
        "index, so check that the data's label order is the weights' (--labels-file renames outputs)",
        stacklevel=3,
    )
