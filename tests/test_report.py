"""`inception3 report RUN`: a PNG of loss, learning rate and precision, read from events and JSON lines."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

from inception3.cli import main
from inception3.errors import Inception3Error
from inception3.evaluate import Tally
from inception3.metrics import confusion_cells, reliability
from inception3.report import CURVES_WIDTH, DPI, SIDE_WIDTH, most_confused, read_run, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _write_events(run_dir: Path, steps: range, first_loss: float = 2.0) -> None:
    with SummaryWriter(str(run_dir)) as writer:
        for step in steps:
            writer.add_scalar("loss/total", first_loss / (1 + step), step)
            writer.add_scalar("loss/cross_entropy", first_loss / (2 + step), step)
            writer.add_scalar("learning_rate", 0.1 * 0.5 ** (step // 5), step)
            writer.add_scalar("throughput/examples_per_sec", 100.0, step)


def _write_eval(run_dir: Path, split: str, records: list[dict]) -> None:
    (run_dir / "eval").mkdir(parents=True, exist_ok=True)
    with open(run_dir / "eval" / f"{split}.jsonl", "a") as f:
        for record in records:
            f.write(
                json.dumps(
                    {"checkpoint": "x", "loss": 1.0, "examples": 10, "ema": True, "time": 0.0, **record}
                )
                + "\n"
            )


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_reads_losses_learning_rate_and_precision_by_step(tmp_path):
    _write_events(tmp_path, range(0, 20, 2))
    _write_eval(
        tmp_path,
        "validation",
        [{"step": 10, "top1": 0.5, "top5": 0.9}, {"step": 20, "top1": 0.75, "top5": 1.0}],
    )
    curves = read_run(tmp_path)
    assert sorted(curves.losses) == ["loss/cross_entropy", "loss/total"]
    steps, values = curves.losses["loss/total"]
    assert steps == list(range(0, 20, 2))
    assert values == pytest.approx([2.0 / (1 + s) for s in steps])
    assert curves.learning_rates["learning_rate"][1][-1] == pytest.approx(0.1 * 0.5**3)
    assert curves.precisions == {
        "validation top1": ([10, 20], [0.5, 0.75]),
        "validation top5": ([10, 20], [0.9, 1.0]),
    }


def test_a_step_evaluated_again_keeps_its_last_result(tmp_path):
    _write_eval(
        tmp_path,
        "validation",
        [{"step": 10, "top1": 0.5, "top5": 0.9}, {"step": 10, "top1": 0.6, "top5": 0.95}],
    )
    assert read_run(tmp_path).precisions["validation top1"] == ([10], [0.6])


def test_report_is_a_png_of_sensible_size_in_the_run_directory(tmp_path):
    _write_events(tmp_path, range(30))
    _write_eval(
        tmp_path,
        "validation",
        [{"step": 10, "top1": 0.4, "top5": 0.8}, {"step": 29, "top1": 0.9, "top5": 1.0}],
    )
    path = write_report(tmp_path)
    assert path == tmp_path / "report.png"
    width, height = _png_size(path)
    assert 600 <= width <= 2000 and 600 <= height <= 2000
    assert path.stat().st_size > 20_000, "three panels of curves, not an empty canvas"
    assert read_run(tmp_path).evaluation is None, "records from before the confusion matrix: curves only"


def test_plots_what_is_there_when_only_the_evaluator_has_run(tmp_path):
    _write_eval(tmp_path, "train", [{"step": 5, "top1": 0.3, "top5": 0.7}])
    only_eval = _png_size(write_report(tmp_path, tmp_path / "out" / "eval-only.png"))
    _write_events(tmp_path, range(10))
    everything = _png_size(write_report(tmp_path))
    assert only_eval[1] < everything[1], "one panel is shorter than three"


def test_cli_writes_the_report_where_asked(tmp_path, capsys):
    _write_events(tmp_path / "run", range(10))
    assert main(["report", str(tmp_path / "run"), "--output", str(tmp_path / "curves.png")]) == 0
    assert _png_size(tmp_path / "curves.png")[0] > 0
    assert str(tmp_path / "curves.png") in capsys.readouterr().out


def test_run_without_summaries_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Inception3Error, match="nothing|no training summaries"):
        write_report(tmp_path / "empty")
    assert main(["report", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert "missing: no such run directory" in error and "Traceback" not in error
    assert not (tmp_path / "empty" / "report.png").exists()


def test_a_corrupt_eval_line_names_the_file_and_line(tmp_path):
    _write_eval(tmp_path, "validation", [{"step": 1, "top1": 0.1, "top5": 0.5}])
    with open(tmp_path / "eval" / "validation.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(Inception3Error, match=r"validation.jsonl:2"):
        read_run(tmp_path)


def test_each_step_is_plotted_once_and_raw_weights_apart(tmp_path):
    _write_eval(
        tmp_path,
        "validation",
        [
            {"step": 10, "top1": 0.5, "top5": 0.9},
            {"step": 10, "top1": 0.5, "top5": 0.9},  # `eval --once` run twice by an older version
            {"step": 10, "top1": 0.3, "top5": 0.8, "ema": False},  # `eval --no-ema`
            {"step": 20, "top1": 0.7, "top5": 1.0},
        ],
    )
    precisions = read_run(tmp_path).precisions
    assert precisions["validation top1"] == ([10, 20], [0.5, 0.7])
    assert precisions["validation top1 (raw weights)"] == ([10], [0.3])


def test_evaluation_records_linked_from_elsewhere_are_refused(tmp_path, capsys):
    other = tmp_path / "other"
    _write_eval(other, "validation", [{"step": 1, "top1": 0.1, "top5": 0.5}])
    (tmp_path / "run" / "eval").mkdir(parents=True)
    (tmp_path / "run" / "eval" / "validation.jsonl").symlink_to(other / "eval" / "validation.jsonl")
    assert main(["report", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "validation.jsonl: a link to" in err and "are its own" in err
    assert not (tmp_path / "run" / "report.png").exists()


def test_a_failed_report_leaves_no_partial_png(tmp_path, monkeypatch):
    import matplotlib.figure

    _write_events(tmp_path, range(10))

    def full_disk(self, file, **kwargs):
        file.write(PNG_SIGNATURE)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    with pytest.raises(OSError):
        write_report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if "png" in p.name) == []


def _explained(num_classes: int, seed: int = 0) -> tuple[dict, Tally]:
    """The fields an evaluation records beyond top-k, of random logits over `num_classes` classes."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (20 * num_classes,), generator=generator)
    logits = torch.randn(len(labels), num_classes, generator=generator) * 2
    logits[torch.arange(len(labels)), labels] += 2.5
    tally = Tally(num_classes)
    tally.add(logits, labels)
    fields = {
        "class_names": [f"class {i} with a long name, cut on the axes" for i in range(num_classes)],
        "confusion": confusion_cells(tally.confusion),
        "reliability": dataclasses.asdict(reliability(tally.reliability)),
    }
    return fields, tally


def test_report_draws_the_confusion_matrix_and_reliability_diagram_beside_the_curves(tmp_path):
    _write_events(tmp_path, range(30))
    old, _ = _explained(30, seed=1)
    newest, tally = _explained(30, seed=2)
    _write_eval(
        tmp_path,
        "validation",
        [
            {"step": 10, "top1": 0.4, "top5": 0.8},  # written before the confusion matrix was
            {"step": 20, "top1": 0.5, "top5": 0.9, **old},
            {"step": 29, "top1": 0.6, "top5": 1.0, **newest},
            {"step": 29, "top1": 0.1, "top5": 0.5, "ema": False},  # the moving averages' record wins
        ],
    )
    evaluation = read_run(tmp_path).evaluation
    assert (evaluation.split, evaluation.step, evaluation.ema) == ("validation", 29, True)
    np.testing.assert_array_equal(evaluation.confusion, tally.confusion.long().numpy())
    assert evaluation.reliability == reliability(tally.reliability)
    width, height = _png_size(write_report(tmp_path))
    assert width == DPI * (CURVES_WIDTH + SIDE_WIDTH), "the two panels beside the curves"
    assert 600 <= height <= 2000
    assert read_run(tmp_path, step=10).evaluation is None, "step 10's record draws the curves alone"
    assert read_run(tmp_path, step=20).evaluation.confusion.sum() == 20 * 30


def test_the_most_confused_classes_are_those_in_the_most_mistakes():
    confusion = np.diag([50] * 6)
    confusion[1, 4] = 9  # class 1 taken for 4
    confusion[5, 4] = 3
    confusion[2, 0] = 1
    assert most_confused(confusion, 3) == [1, 4, 5]
    assert most_confused(confusion, 10) == list(range(6))


def test_a_chosen_split_and_step_are_drawn_and_a_missing_one_is_one_line(tmp_path, capsys):
    fields, _ = _explained(3)
    _write_eval(tmp_path, "validation", [{"step": s, "top1": 0.5, "top5": 1.0, **fields} for s in (10, 29)])
    _write_eval(tmp_path, "train", [{"step": 5, "top1": 0.5, "top5": 1.0, **fields}])
    assert read_run(tmp_path).evaluation.step == 29
    assert read_run(tmp_path, "train").evaluation.step == 5
    assert main(["report", str(tmp_path), "--split", "validation", "--step", "10"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path), "--step", "11"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "validation.jsonl: no evaluation of step 11" in err and "10, 29" in err
    assert main(["report", str(tmp_path), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "test.jsonl: no evaluation records (evaluated splits: train, validation)" in err


def test_a_malformed_confusion_matrix_names_the_file_and_step(tmp_path):
    fields, _ = _explained(3)
    _write_eval(
        tmp_path, "validation", [{"step": 7, "top1": 0.5, "top5": 1.0, **fields, "confusion": [[0, 3, 1]]}]
    )
    with pytest.raises(Inception3Error, match=r"validation.jsonl: step 7: confusion cell \[0, 3, 1\]"):
        read_run(tmp_path)
