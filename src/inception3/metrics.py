"""What explains a top-1 number: per-class precision, recall and F1, the confusion matrix and
calibration, from the sums `evaluate.Tally` keeps; and their JSON form (docs/formats.md), written
here and read back here (`read_confusion`, `read_reliability`) for `report`.

A score whose denominator is zero is undefined, not zero: precision of a class never predicted,
recall of a class with no example, F1 of a class with neither. It is None (JSON null), and the
macro averages leave it out, as scikit-learn's `precision_recall_fscore_support(zero_division=nan)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

Cell = list[int]  # [true class, predicted class, examples]: one nonzero cell of the confusion matrix


@dataclass(frozen=True)
class ClassScores:
    """Per-class scores in class order (None where undefined) and their macro averages."""

    precision: list[float | None]
    recall: list[float | None]
    f1: list[float | None]

    @property
    def macro_precision(self) -> float | None:
        return _mean_of_defined(self.precision)

    @property
    def macro_recall(self) -> float | None:
        return _mean_of_defined(self.recall)

    @property
    def macro_f1(self) -> float | None:
        return _mean_of_defined(self.f1)


def class_scores(hits: torch.Tensor, examples: torch.Tensor, predicted: torch.Tensor) -> ClassScores:
    """Scores from per-class counts [C]: top-1 hits, examples of the class, top-1 predictions of it.

    F1 is 2·hits / (examples + predicted) (= 2·TP / (2·TP + FP + FN)): 0, not undefined, for a class
    with examples that is never predicted, as scikit-learn has it.
    """
    hits, examples, predicted = (t.double().cpu() for t in (hits, examples, predicted))
    return ClassScores(
        precision=_ratios(hits, predicted),
        recall=_ratios(hits, examples),
        f1=_ratios(2 * hits, examples + predicted),
    )


def _ratios(numerator: torch.Tensor, denominator: torch.Tensor) -> list[float | None]:
    return [n / d if d > 0 else None for n, d in zip(numerator.tolist(), denominator.tolist(), strict=True)]


def _mean_of_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return math.fsum(defined) / len(defined) if defined else None


def calibration_bin(confidence: torch.Tensor, bins: int) -> torch.Tensor:
    """The bin of each confidence in (0, 1] among `bins` equal-width ones, (m/bins, (m+1)/bins] as in
    Guo et al. (config.CALIBRATION_BINS): indices 0..bins-1, on the confidences' device."""
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64, device=confidence.device)[1:-1]
    return torch.bucketize(confidence.double(), edges, right=False)


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: examples, their mean confidence and their top-1 accuracy (None: empty bin).
    What a reliability diagram draws; `ece` is the expected calibration error."""

    count: list[int]
    confidence: list[float | None]
    accuracy: list[float | None]

    @property
    def ece(self) -> float:
        """Σ_m (n_m / N)·|accuracy_m − confidence_m| over the non-empty bins (Guo et al. eq. 3)."""
        total = sum(self.count)
        gaps = (
            n * abs(a - c)
            for n, a, c in zip(self.count, self.accuracy, self.confidence, strict=True)
            if n > 0 and a is not None and c is not None
        )
        return math.fsum(gaps) / total if total > 0 else 0.0


def reliability(sums: torch.Tensor) -> Reliability:
    """From the per-bin sums [3, bins] a Tally keeps: examples, confidence sum, top-1 hits."""
    count, confidence, hits = sums.double().cpu().tolist()
    return Reliability(
        count=[int(n) for n in count],
        confidence=[c / n if n > 0 else None for c, n in zip(confidence, count, strict=True)],
        accuracy=[h / n if n > 0 else None for h, n in zip(hits, count, strict=True)],
    )


def confusion_cells(confusion: torch.Tensor) -> list[Cell]:
    """The nonzero cells of a [C, C] count matrix (rows: true class, columns: predicted), row-major."""
    where = confusion.nonzero()
    counts = confusion[where[:, 0], where[:, 1]].round().long()
    return torch.cat([where, counts[:, None]], dim=1).cpu().tolist()


def read_confusion(cells: object, num_classes: int) -> np.ndarray:
    """The dense [C, C] int64 matrix of a record's "confusion" cells; ValueError when they are not
    [true, predicted, count] triples of class indices below `num_classes` and counts above 0."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    if not isinstance(cells, list):
        raise ValueError("'confusion' is not a list of [true, predicted, count] cells")
    for cell in cells:
        if not (
            isinstance(cell, list)
            and len(cell) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in cell)
            and 0 <= cell[0] < num_classes
            and 0 <= cell[1] < num_classes
            and cell[2] > 0
        ):
            raise ValueError(
                f"confusion cell {cell!r} is not [true, predicted, count] of {num_classes} classes"
            )
        matrix[cell[0], cell[1]] += cell[2]
    return matrix


def read_reliability(value: object) -> Reliability:
    """A record's "reliability" back as a Reliability; ValueError when its lists do not match."""
    if not isinstance(value, dict):
        raise ValueError("'reliability' is not an object of 'count', 'confidence' and 'accuracy' lists")
    lists = [value.get(key) for key in ("count", "confidence", "accuracy")]
    if not all(isinstance(v, list) for v in lists) or len({len(v) for v in lists}) != 1 or not lists[0]:
        raise ValueError("'reliability' needs 'count', 'confidence' and 'accuracy' lists of one length")
    count, confidence, accuracy = lists
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in count):
        raise ValueError("'reliability' 'count' holds something other than example counts")
    for values in (confidence, accuracy):
        if not all(v is None or (_is_number(v) and 0.0 <= v <= 1.0) for v in values):
            raise ValueError("'reliability' 'confidence' and 'accuracy' hold fractions in [0, 1] or null")
    return Reliability(count, confidence, accuracy)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
