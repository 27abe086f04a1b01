"""Evaluation: exact counts over a split (any batch, any rank count), EMA by default, following a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from evalfixtures import CLASSES, make_shards, write_checkpoint

from inception3.cli import main
from inception3.config import CALIBRATION_BINS, EvalConfig
from inception3.data.augment import scale_to_unit
from inception3.data.loader import EvalLoader
from inception3.data.meta import load_dataset_info
from inception3.errors import Inception3Error
from inception3.evaluate import Tally, evaluate_checkpoint
from inception3.watch import evaluated_steps, watch
from inception3.weights import load_model

VALIDATION = 7  # not a multiple of any batch size used below
EXPLAINED = (  # the fields beyond top-k in every record
    "class_names",
    "precision",
    "recall",
    "f1",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "confusion",
    "ece",
    "reliability",
)


QUIET = EvalConfig(num_workers=0, progress=False)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("eval"), validation=VALIDATION)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("run"), 100, seed=1, ema_seed=2)


@pytest.fixture(scope="module")
def reference(checkpoint, shards) -> dict[bool, tuple[float, float, list[int]]]:
    """By use_ema: top-1 and mean loss of the whole split in one batch, and every record's label."""
    batch = next(iter(EvalLoader(load_dataset_info(shards), VALIDATION, 75, num_workers=0)))
    found = {}
    for use_ema in (True, False):
        model, _ = load_model(checkpoint, use_ema=use_ema)
        with torch.no_grad():
            logits = model(scale_to_unit(batch.images))
        top1 = (logits.argmax(1) == batch.labels).double().mean().item()
        found[use_ema] = top1, F.cross_entropy(logits, batch.labels).item(), batch.labels.tolist()
    return found


def test_tally_counts_top1_top_k_loss_and_per_class_accuracy():
    logits = torch.tensor([[5.0, 4.0, 3.0, 2.0], [0.0, 1.0, 2.0, 3.0], [1.0, 0.0, 0.0, 9.0]])
    labels = torch.tensor([1, 3, 0])
    tally = Tally(num_classes=4)
    tally.add(logits[:2], labels[:2], top_k=2)
    tally.add(logits[2:], labels[2:], top_k=2)
    assert (tally.examples, tally.correct_1, tally.correct_k) == (3, 1, 3)
    assert tally.loss_sum == pytest.approx(F.cross_entropy(logits, labels, reduction="sum").item(), rel=1e-6)
    assert tally.class_count.tolist() == [1, 1, 0, 1] and tally.class_correct.tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("batch_size", [3, 4])
def test_eval_counts_every_example_once_whatever_the_batch(checkpoint, shards, reference, batch_size):
    cfg = EvalConfig(batch_size=batch_size, num_workers=0, progress=False)
    result = evaluate_checkpoint(checkpoint, shards, cfg)
    top1, loss, labels = reference[True]
    assert result.examples == VALIDATION
    assert result.top1 == pytest.approx(top1) and result.loss == pytest.approx(loss, rel=1e-5)
    assert result.top5 == 1.0  # 3 classes: the label is always among the top 5
    for c, name in enumerate(CLASSES):
        assert result.per_class[name] is not None and labels.count(c) > 0
    assert result.ema and result.step == 100 and result.split == "validation"


def test_eval_counts_every_example_once_across_two_ranks(checkpoint, shards, tmp_path):
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "inception3",
        "eval",
        "--checkpoint",
        str(checkpoint),
        "--data-dir",
        str(shards),
        "--train-dir",
        str(run),
        "--batch-size",
        "4",
        "--num-workers",
        "0",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count(f"[{VALIDATION} examples]") == 1  # rank 0 reports, once
    (record,) = [json.loads(line) for line in (run / "eval" / "validation.jsonl").read_text().splitlines()]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as torchrun's ranks: the resize rounds a few pixels by thread count
    try:
        single = evaluate_checkpoint(checkpoint, shards, QUIET)
    finally:
        torch.set_num_threads(threads)
    assert record["examples"] == VALIDATION
    assert record["top1"] == pytest.approx(single.top1) and record["loss"] == pytest.approx(single.loss)
    assert record["per_class"] == pytest.approx(single.per_class)
    # The confusion matrix and calibration bins are summed over the ranks too: each example once.
    assert sum(count for _, _, count in record["confusion"]) == VALIDATION
    assert record["confusion"] == single.confusion and record["f1"] == pytest.approx(single.f1)
    assert sum(record["reliability"]["count"]) == VALIDATION
    assert record["reliability"]["count"] == single.reliability["count"]
    assert record["ece"] == pytest.approx(single.ece) and record["macro_f1"] == pytest.approx(single.macro_f1)


def test_moving_average_weights_are_the_default_and_differ_from_raw(checkpoint, shards, reference):
    default = evaluate_checkpoint(checkpoint, shards, QUIET)
    raw = evaluate_checkpoint(checkpoint, shards, EvalConfig(use_ema=False, num_workers=0, progress=False))
    assert default.ema and not raw.ema
    assert default.loss == pytest.approx(reference[True][1], rel=1e-5)
    assert raw.loss == pytest.approx(reference[False][1], rel=1e-5)
    assert abs(default.loss - raw.loss) > 1e-3


_TRAINER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from evalfixtures import write_checkpoint
    for step in (10, 20):
        time.sleep(1.0)
        write_checkpoint(Path(sys.argv[1]), step, seed=step, final=step == 20)
""")


def test_eval_follows_a_training_run_and_evaluates_each_checkpoint_once(shards, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    trainer = subprocess.Popen([sys.executable, "-c", _TRAINER, str(run), str(Path(__file__).parent)])
    try:
        lines: list[str] = []
        results = watch(run, shards, QUIET, interval=0.2, printer=lines.append)
    finally:
        trainer.wait(timeout=60)
    assert trainer.returncode == 0
    assert [r.step for r in results] == [10, 20] and results[-1].final
    records = [json.loads(line) for line in (run / "eval" / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20]
    for key in ("step", "checkpoint", "top1", "top5", "loss", "examples", "ema", "time", *EXPLAINED):
        assert all(key in r for r in records), key
    assert all(r["examples"] == VALIDATION and r["ema"] for r in records)
    assert list((run / "eval").glob("events.out.tfevents.*"))
    assert sum("precision @ 1 = " in line for line in lines) == 2
    # A restarted evaluator finds every step done and the final one among them: nothing to do.
    started = time.perf_counter()
    assert watch(run, shards, QUIET, interval=0.2) == []
    assert time.perf_counter() - started < 5
    assert sorted(evaluated_steps(run, "validation", ema=True)) == [10, 20]


def test_eval_skips_a_checkpoint_removed_by_retention(shards, tmp_path):
    run = tmp_path / "run"
    paths = [write_checkpoint(run, step, seed=1, final=step == 3) for step in (1, 2, 3)]
    lines: list[str] = []

    def printer(line: str) -> None:
        lines.append(line)
        if paths[1].exists():
            paths[1].unlink()  # the trainer's retention, between two evaluations

    results = watch(run, shards, QUIET, interval=0.1, printer=printer)
    assert [r.step for r in results] == [1, 3]
    assert any("step 2:" in line and "removed" in line for line in lines)


@pytest.mark.smoke
def test_cli_once_json_prints_the_record_it_writes_and_the_original_line_apart(checkpoint, shards, capsys):
    run = checkpoint.parent.parent
    argv = ["eval", "--train-dir", str(run), "--data-dir", str(shards), "--once", "--num-workers", "0"]
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "precision @ 1 = " in err and "recall @ 5 = 1.0000" in err and f"[{VALIDATION} examples]" in err
    assert "macro F1 = " in err and "ECE = " in err
    (printed,) = [json.loads(line) for line in out.splitlines()]  # stdout: JSON lines only
    (record,) = [json.loads(line) for line in (run / "eval" / "validation.jsonl").read_text().splitlines()]
    assert printed == record
    assert record["step"] == 100 and record["checkpoint"] == str(checkpoint)
    assert record["preprocessing"] == "inception"
    assert record["class_names"] == list(CLASSES) and set(EXPLAINED) <= record.keys()
    hits = {true: count for true, predicted, count in record["confusion"] if true == predicted}
    assert sum(hits.values()) == round(record["top1"] * VALIDATION)
    assert record["recall"] == [record["per_class"][name] for name in CLASSES]
    assert len(record["reliability"]["count"]) == CALIBRATION_BINS
    # Asked again, the record already written is printed, not evaluated again.
    assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == [record] and "not evaluated again" in err


def test_the_preprocessing_option_changes_the_input_and_is_recorded(checkpoint, shards, reference, capsys):
    argv = ["eval", "--checkpoint", str(checkpoint), "--data-dir", str(shards), "--num-workers", "0"]
    assert main([*argv, "--preprocessing", "timm"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("evaluation preprocessing: timm (shorter side to 85 (bicubic), centre crop 75;")
    result = evaluate_checkpoint(checkpoint, shards, EvalConfig(preprocessing="timm", num_workers=0))
    assert result.preprocessing == "timm" and result.examples == VALIDATION
    assert result.loss != pytest.approx(reference[True][1], rel=1e-3)  # other pixels, other logits


def test_cli_once_without_a_checkpoint_is_a_one_line_error(shards, tmp_path, capsys):
    code = main(["eval", "--train-dir", str(tmp_path), "--data-dir", str(shards), "--once"])
    err = capsys.readouterr().err
    assert code == 2 and "no checkpoint" in err and len(err.strip().splitlines()) == 1


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_carrying_code_is_refused(shards, tmp_path, capsys):
    marker, evil = tmp_path / "code-ran", tmp_path / "evil.pt"
    torch.save({"model": _RunsCode(marker)}, evil)
    with pytest.raises(Inception3Error, match="weights-only"):
        evaluate_checkpoint(evil, shards, EvalConfig(num_workers=0))
    assert main(["eval", "--checkpoint", str(evil), "--data-dir", str(shards)]) == 2
    assert "evil.pt" in capsys.readouterr().err
    assert not marker.exists()
