"""`inception3 report RUN`: a PNG of loss, learning rate and precision, read from events and JSON lines."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from inception3.cli import main
from inception3.errors import Inception3Error
from inception3.report import read_run, write_report

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
