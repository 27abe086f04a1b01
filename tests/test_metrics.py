"""Per-class precision/recall/F1, the confusion matrix and calibration from a Tally's sums, against
scikit-learn and the written-out formula of Guo et al. (2017), eq. 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from inception3.config import CALIBRATION_BINS
from inception3.evaluate import Tally
from inception3.metrics import (
    class_scores,
    confusion_cells,
    read_confusion,
    read_reliability,
    reliability,
)

CLASSES = 8
NEVER_PREDICTED = 0  # has examples: precision undefined, recall and F1 0
NEITHER = CLASSES - 1  # no example and never predicted: all three undefined


@pytest.fixture(scope="module")
def scored() -> tuple[torch.Tensor, torch.Tensor, Tally]:
    """Random logits of 300 examples at several temperatures (confidences across every bin), tallied
    in uneven batches; no example of NEITHER, and neither it nor NEVER_PREDICTED ever the top-1."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, NEITHER, (300,), generator=generator)
    logits = torch.randn(300, CLASSES, generator=generator) * torch.linspace(0.1, 6.0, 300)[:, None]
    logits[torch.arange(300), labels] += 1.0  # better than chance, not perfect
    logits[:, [NEVER_PREDICTED, NEITHER]] = -50.0
    tally = Tally(CLASSES)
    for batch in torch.tensor_split(torch.arange(300), [7, 100, 101, 250]):
        tally.add(logits[batch], labels[batch])
    return logits, labels, tally


def _nan_for_none(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values])


def test_per_class_precision_recall_f1_match_sklearn(scored):
    logits, labels, tally = scored
    predicted = logits.argmax(1).numpy()
    scores = class_scores(tally.class_correct, tally.class_count, tally.class_predicted)
    reference = precision_recall_fscore_support(
        labels.numpy(), predicted, labels=range(CLASSES), zero_division=np.nan
    )
    for ours, theirs in zip((scores.precision, scores.recall, scores.f1), reference[:3], strict=True):
        np.testing.assert_allclose(_nan_for_none(ours), theirs, rtol=1e-12)
    assert scores.precision[NEVER_PREDICTED] is None and scores.recall[NEVER_PREDICTED] == 0.0
    assert scores.f1[NEVER_PREDICTED] == 0.0
    assert scores.precision[NEITHER] is None and scores.recall[NEITHER] is None and scores.f1[NEITHER] is None


def test_macro_averages_leave_out_undefined_scores_as_sklearn_does(scored):
    logits, labels, tally = scored
    scores = class_scores(tally.class_correct, tally.class_count, tally.class_predicted)
    macro = precision_recall_fscore_support(
        labels.numpy(), logits.argmax(1).numpy(), labels=range(CLASSES), zero_division=np.nan, average="macro"
    )
    ours = (scores.macro_precision, scores.macro_recall, scores.macro_f1)
    assert ours == pytest.approx(macro[:3], rel=1e-12)


def test_confusion_cells_are_sklearns_confusion_matrix(scored):
    logits, labels, tally = scored
    cells = confusion_cells(tally.confusion)
    assert all(count > 0 for _, _, count in cells) and cells == sorted(cells)
    expected = confusion_matrix(labels.numpy(), logits.argmax(1).numpy(), labels=range(CLASSES))
    np.testing.assert_array_equal(read_confusion(cells, CLASSES), expected)
    assert tally.examples == 300 and tally.correct_1 == int(np.trace(expected))


def test_expected_calibration_error_is_guo_et_als_formula(scored):
    logits, labels, tally = scored
    probabilities = torch.softmax(logits.double(), dim=1).numpy()
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels.numpy()
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    ece, counts = 0.0, []
    for lower, upper in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lower) & (confidence <= upper)
        counts.append(int(in_bin.sum()))
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    bins = reliability(tally.reliability)
    assert bins.count == counts and sum(counts) == 300
    assert sum(n > 0 for n in counts) >= 10, "the fixture should fill most bins"
    assert bins.ece == pytest.approx(ece, rel=1e-5)  # the tally's softmax is float32
    for i, n in enumerate(counts):
        if n == 0:
            assert bins.confidence[i] is None and bins.accuracy[i] is None
        else:
            in_bin = (confidence > edges[i]) & (confidence <= edges[i + 1])
            assert bins.accuracy[i] == pytest.approx(correct[in_bin].mean(), rel=1e-12)


def test_read_confusion_and_reliability_refuse_what_they_cannot_draw():
    assert read_confusion([[0, 1, 2]], 2).tolist() == [[0, 2], [0, 0]]
    for cells in ("x", [[0, 1]], [[0, 2, 1]], [[0, 1, 0]], [[0, 1, 1.5]], [[True, 0, 1]]):
        with pytest.raises(ValueError, match="confusion"):
            read_confusion(cells, 2)
    good = {"count": [1, 0], "confidence": [0.7, None], "accuracy": [1.0, None]}
    assert read_reliability(good).ece == pytest.approx(0.3)
    for bad in (None, {**good, "count": [1]}, {**good, "accuracy": [2.0, None]}, {**good, "count": [-1, 0]}):
        with pytest.raises(ValueError, match="reliability"):
            read_reliability(bad)
