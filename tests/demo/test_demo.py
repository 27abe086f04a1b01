"""`inception3 demo` end to end at a tiny size, through the real command line, checking every artefact."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import numpy as np
import onnxruntime
import pytest

from inception3.cli import main
from inception3.demo.shapes import SHAPES


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A whole demo run: 20 training and 10 validation images, 4 steps of batch 8 at 75x75."""
    out = tmp_path_factory.mktemp("demo") / "out"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "inception3",
            "demo",
            "--out",
            str(out),
            "--train-per-class",
            "4",
            "--validation-per-class",
            "2",
            "--steps",
            "4",
            "--checkpoint-every",
            "2",
            "--set",
            "image_size=75",
            "--set",
            "batch_size=8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return out, process


def test_demo_exits_cleanly(demo):
    _, process = demo
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]


def test_demo_builds_shards_with_boxes_from_the_drawn_images(demo):
    out, _ = demo
    assert (out / "images" / "boxes.csv").is_file()
    meta = json.loads((out / "shards" / "dataset.json").read_text())
    assert sorted(meta["class_names"]) == sorted(SHAPES)
    assert meta["splits"]["train"]["records"] == 20 and meta["splits"]["validation"]["records"] == 10
    assert meta["splits"]["train"]["bounding_boxes"] == 20
    assert (out / "shards" / "train-00000-of-00001").is_file()
    assert (out / "shards" / "validation-00000-of-00001").is_file()


def test_demo_trains_with_its_settings_and_checkpoints_as_asked(demo):
    out, _ = demo
    run = out / "run"
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["image_size"] == 75 and config["batch_size"] == 8, "--set comes after the demo's own"
    assert config["depth_multiplier"] == 0.25 and config["max_steps"] == 4
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.pt")) == [
        "ckpt-00000002.pt",
        "ckpt-00000004.pt",
    ]
    assert list(run.glob("events.out.tfevents.*")), "TensorBoard summaries"


def test_the_separate_evaluator_scored_every_checkpoint_on_all_validation_images(demo):
    out, process = demo
    lines = (out / "run" / "eval" / "validation.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records] == [2, 4]
    assert all(r["examples"] == 10 and 0.0 <= r["top1"] <= r["top5"] <= 1.0 for r in records)
    for r in records:
        assert f"{r['step']:>7}  {100 * r['top1']:5.1f}%" in process.stdout, "the summary shows each one"


def test_demo_predicts_exports_onnx_and_plots_the_report(demo):
    out, _ = demo
    predicted = (out / "logs" / "predict.log").read_text()
    assert all(f"/{shape}/" in predicted for shape in SHAPES)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    (logits,) = session.run(None, {session.get_inputs()[0].name: np.zeros((3, 3, 75, 75), np.float32)})
    assert logits.shape == (3, len(SHAPES))
    assert (out / "run" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_summary_tells_where_things_are_and_how_to_repeat_each_step(demo):
    out, process = demo
    assert f"tensorboard --logdir {out / 'run'}" in process.stdout
    assert f"ONNX model:          {out / 'model.onnx'}" in process.stdout
    commands = (out / "commands.sh").read_text().splitlines()
    assert [c.split()[c.split().index("inception3") + 1] for c in commands] == [
        "build",
        "train",
        "eval",
        "predict",
        "export",
        "report",
    ]
    assert all(command in process.stdout for command in commands)


def test_demo_refuses_a_directory_that_holds_files(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("an earlier run")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "already holds files" in error and "Traceback" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"]
