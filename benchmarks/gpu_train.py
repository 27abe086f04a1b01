"""The Python half of `benchmarks/gpu.sh`: photo-like JPEGs, training runs measured in-process, one table.

    python benchmarks/gpu_train.py images DIR [--count 2000] [--classes 10] [--width 500] [--height 375]
    python benchmarks/gpu_train.py run --name NAME --results DIR [--skip-logs 2] -- train ARGS...
    python benchmarks/gpu_train.py flops --results DIR [--image-size 299] [--classes 10]
    python benchmarks/gpu_train.py environment --results DIR [--images N --image-shape WxH --classes C]
    python benchmarks/gpu_train.py table --results DIR

`run` calls `inception3.cli.main` in this process, so that the GPU's peak memory is
`torch.cuda.max_memory_allocated()` of the run itself (sampling nvidia-smi would miss short peaks and
count the CUDA context and the allocator's cache), copies the trainer's output to the terminal, and
reads its `step N, loss = L (E examples/sec; S sec/batch)` lines. Each writes a JSON file into
--results; `table` turns them, with benchmarks/train_step.py's JSON and the CUDA tests' JUnit XML,
into the markdown for docs/performance.md. MFU divides model FLOPs (forward + backward, counted by
PyTorch's FlopCounterMode) by the dense peak of the arithmetic the run used, from `PEAKS`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# The trainer's line (train/summaries.py); the learning rate and skipped records may follow it.
LOG_LINE = re.compile(r"^step (\d+), loss = (\S+) \((\S+) examples/sec; (\S+) sec/batch\)", re.MULTILINE)


@dataclass(frozen=True)
class Peaks:
    """A GPU's dense (no sparsity) peak TFLOPS: bf16 tensor cores, TF32 tensor cores, plain fp32; fp16
    tensor cores where they differ from bf16's (None: the same)."""

    bf16: float | None
    tf32: float | None
    fp32: float
    fp16: float | None = None


# NVIDIA datasheet figures, dense: the datasheets' tensor-core numbers are "with sparsity", twice these.
# Matched in this order against torch.cuda.get_device_name() (A100 before A10, L40S before L4).
# V100 and T4 have no bf16 (their 125 and 65 TFLOPS are fp16) and no TF32. The A10G is AWS's
# variant of the A10 with fewer tensor-core FLOPs; NVIDIA publishes no sheet for it (70/35 are the
# usual estimates). GPU_PEAK_TFLOPS="bf16,tf32,fp32" overrides the table.
PEAKS: tuple[tuple[str, Peaks], ...] = (
    ("H100 PCIe", Peaks(756.0, 378.0, 51.0)),
    ("H100 NVL", Peaks(835.0, 418.0, 60.0)),
    ("H200 NVL", Peaks(835.0, 418.0, 60.0)),
    ("GH200", Peaks(989.0, 495.0, 67.0)),
    ("H100", Peaks(989.0, 495.0, 67.0)),  # SXM
    ("H200", Peaks(989.0, 495.0, 67.0)),  # SXM: the H100 SXM's compute with more memory
    ("A100", Peaks(312.0, 156.0, 19.5)),
    ("A10G", Peaks(70.0, 35.0, 31.2)),
    ("A10", Peaks(125.0, 62.5, 31.2)),
    ("L40S", Peaks(362.0, 183.0, 91.6)),
    ("L4", Peaks(121.0, 60.0, 30.3)),
    ("V100-PCIE", Peaks(None, None, 14.0, fp16=112.0)),
    ("V100", Peaks(None, None, 15.7, fp16=125.0)),
    ("T4", Peaks(None, None, 8.1, fp16=65.0)),
)


def peaks_for(device_name: str) -> Peaks | None:
    """The peak figures of a GPU by its name; None when the table does not know it."""
    override = os.environ.get("GPU_PEAK_TFLOPS")
    if override:
        bf16, tf32, fp32 = (float(x) if x else None for x in override.split(","))
        return Peaks(bf16, tf32, fp32 or 0.0)
    upper = device_name.upper()
    for key, peaks in PEAKS:
        if key.upper() in upper:
            return peaks
    return None


def conv_uses_tf32() -> bool:
    """Whether cuDNN convolutions run fp32 as TF32 (PyTorch's default on Ampere and later).

    Only the per-backend settings of torch >= 2.9 are read: reading the legacy `allow_tf32` flag
    raises once the new ones were set.
    """
    import torch

    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None:
        precision = conv.fp32_precision
        if precision == "none":  # inherits cuDNN's, then the global setting
            precision = torch.backends.cudnn.fp32_precision
        if precision == "none":
            precision = torch.backends.fp32_precision
        return precision == "tf32"
    return bool(torch.backends.cudnn.allow_tf32)


def peak_tflops(device_name: str, precision: str, tf32: bool) -> float | None:
    """The dense peak a run of `precision` ("bf16", "fp16" or "fp32") can reach; None when unknown."""
    peaks = peaks_for(device_name)
    if peaks is None:
        return None
    if precision == "bf16":
        return peaks.bf16
    if precision == "fp16":
        return peaks.fp16 or peaks.bf16
    return peaks.tf32 if tf32 and peaks.tf32 else peaks.fp32


# --- images ------------------------------------------------------------------------------------


def _photo(index: int, classes: int, width: int, height: int, quality: int = 90) -> tuple[str, bytes]:
    """One JPEG with what makes decoding cost what a photo costs (smooth areas, edges, sensor-like
    noise; ~100 KiB at 500×375), tinted by its class so that the loss can fall."""
    import numpy as np
    import PIL.Image

    rng = np.random.default_rng(index)
    label = index % classes
    cells = rng.integers(0, 256, (max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    scene = np.asarray(PIL.Image.fromarray(cells).resize((width, height), PIL.Image.BICUBIC), dtype=np.int16)
    hue = 2 * np.pi * label / classes
    tint = 60 * np.array([np.cos(hue), np.cos(hue - 2.1), np.cos(hue + 2.1)])
    noisy = scene // 2 + 64 + tint.astype(np.int16) + rng.normal(0, 20, scene.shape).astype(np.int16)
    buffer = io.BytesIO()
    PIL.Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return f"class{label:02d}/{index:05d}.jpg", buffer.getvalue()


def make_images(root: Path, count: int, classes: int, width: int, height: int, workers: int) -> int:
    """`count` JPEGs in `classes` class folders under `root`, made by `workers` processes; total bytes."""
    for label in range(classes):
        (root / f"class{label:02d}").mkdir(parents=True, exist_ok=True)
    total = 0
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = [(i, classes, width, height) for i in range(count)]
        for name, data in pool.map(_photo_job, jobs, chunksize=32):
            (root / name).write_bytes(data)
            total += len(data)
    return total


def _photo_job(job: tuple[int, int, int, int]) -> tuple[str, bytes]:
    return _photo(*job)


# --- one training run --------------------------------------------------------------------------


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy, so the log is read after the run."""

    def __init__(self, terminal: TextIO) -> None:
        self.terminal, self.copy = terminal, io.StringIO()

    def write(self, text: str) -> int:
        self.terminal.write(text)
        self.copy.write(text)
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()

    def isatty(self) -> bool:
        return False  # no progress bar in a log


def _setting(args: list[str], key: str, default: str) -> str:
    """The last `--set key=value` (or `--set=key=value`) of a CLI argument list."""
    value = default
    for i, arg in enumerate(args):
        item = arg.split("=", 1)[1] if arg.startswith("--set=") else args[i + 1] if arg == "--set" else None
        if item is not None and item.partition("=")[0] == key:
            value = item.partition("=")[2]
    if key == "max_steps" and "--max-steps" in args:
        value = args[args.index("--max-steps") + 1]
    return value


def throughput(lines: list[tuple[int, float, float, float]], batch: int, skip: int) -> tuple[float, int]:
    """Examples/s over the log windows after the first `skip` lines: all their examples over all their
    time (a line's examples/sec covers the steps since the previous line). Returns (rate, steps)."""
    previous = lines[skip - 1][0] if 0 < skip <= len(lines) else -1
    steps, seconds = 0, 0.0
    for step, _, rate, _ in lines[skip:]:
        steps += step - previous
        seconds += (step - previous) * batch / rate
        previous = step
    return (steps * batch / seconds if seconds > 0 else math.nan), steps


def run(name: str, results: Path, skip_logs: int, cli_args: list[str]) -> int:
    """Train with `inception3 CLI_ARGS` in this process; write results/NAME.json; 0 when all checks pass."""
    import torch

    from inception3.cli import main
    from inception3.train.precision import resolve_precision

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    tee = _Tee(sys.stdout)
    start = time.perf_counter()
    with contextlib.redirect_stdout(tee):
        code = main(cli_args)
    seconds = time.perf_counter() - start
    log = tee.copy.getvalue()
    parsed = [(int(s), float(loss), float(rate), float(sec)) for s, loss, rate, sec in LOG_LINE.findall(log)]
    batch = int(_setting(cli_args, "batch_size", "32"))
    max_steps = int(_setting(cli_args, "max_steps", "0"))
    rate, measured = throughput(parsed, batch, skip_logs)
    device = torch.device("cuda" if cuda else "cpu")
    precision = resolve_precision(_setting(cli_args, "precision", "auto"), device)
    record = {
        "name": name,
        "exit_code": code,
        "seconds": round(seconds, 1),
        "batch": batch,
        "max_steps": max_steps,
        "last_logged_step": parsed[-1][0] if parsed else None,
        "measured_steps": measured,
        "examples_per_sec": rate,
        "final_loss": parsed[-1][1] if parsed else math.nan,
        "precision": precision,
        "channels_last": _setting(cli_args, "channels_last", "auto"),
        "compile": _setting(cli_args, "compile", "false"),
        "synthetic_data": _setting(cli_args, "synthetic_data", "false"),
        "num_workers": int(_setting(cli_args, "num_workers", "2")),
        "image_size": int(_setting(cli_args, "image_size", "299")),
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "conv_tf32": cuda and conv_uses_tf32(),
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "peak_reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
    }
    (results / f"{name}.json").write_text(json.dumps(record, indent=1))
    problems = []
    if code != 0:
        problems.append(f"inception3 exited with {code}")
    if not parsed or parsed[-1][0] != max_steps - 1:
        problems.append(f"the last log line is of step {record['last_logged_step']}, not {max_steps - 1}")
    if not all(math.isfinite(loss) for _, loss, _, _ in parsed):
        problems.append("a logged loss is not finite")
    if not measured or not math.isfinite(rate):
        problems.append(f"no log line left after skipping {skip_logs} as warm-up")
    for problem in problems:
        print(f"FAILED {name}: {problem}", file=sys.stderr)
    print(
        f"{name}: {rate:.1f} examples/s over {measured} steps, loss {record['final_loss']}, {seconds:.0f} s"
    )
    return 1 if problems else 0


# --- FLOPs -------------------------------------------------------------------------------------


def train_flops_per_image(image_size: int, num_classes: int, device: str) -> float:
    """Forward + backward FLOPs of one training image (both heads; batch 2, as batch norm needs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from inception3.model import InceptionV3

    model = InceptionV3(num_classes=num_classes, image_size=image_size).to(device).train()
    x = torch.rand(2, 3, image_size, image_size, device=device)
    with FlopCounterMode(display=False) as counter:
        logits, aux = model(x)
        (logits.float().sum() + aux.float().sum()).backward()
    return counter.get_total_flops() / 2


# --- the table ---------------------------------------------------------------------------------


def _load(results: Path, name: str) -> dict | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _pct(fraction: float | None) -> str:
    return "n/a" if fraction is None or not math.isfinite(fraction) else f"{100 * fraction:.1f} %"


def _tests(results: Path) -> str:
    path = results / "cuda-tests.xml"
    if not path.exists():
        return "CUDA tests: not run"
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    skipped = sorted(
        {s.get("message", "").removeprefix("Skipped: ") for s in suite.iter("skipped") if s.get("message")}
    )
    line = (
        f"CUDA tests (`pytest -m cuda tests/cuda`): {passed} passed, {counts['failures'] + counts['errors']} "
        f"failed, {counts['skipped']} skipped"
    )
    return line + (f" ({'; '.join(skipped)})" if skipped else "")


CONFIGS = (
    ("fp32", "fp32, NCHW"),
    ("bf16-cl", "bf16, channels_last"),
    ("bf16-cl-compile", "bf16, channels_last, compile"),
    ("fp16-cl", "fp16, channels_last"),  # run on the shards only: no synthetic twin
)


def table(results: Path) -> str:
    """The markdown of one gpu.sh run."""
    flops = _load(results, "flops") or {}
    per_image = flops.get("flops_per_image")
    first = next((r for key, _ in CONFIGS if (r := _load(results, key))), None) or {}
    env = _load(results, "environment") or {}
    device = env.get("device", first.get("device", "unknown device"))
    out = [
        f"### {device}: torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, "
        f"{env.get('date', datetime.date.today().isoformat())}",
        "",
    ]
    if first:
        skipped = first["max_steps"] - first["measured_steps"]
        out += [
            f"`inception3 train` on shards of {env.get('images', '?')} generated "
            f"{env.get('image_shape', '?')} JPEGs ({env.get('classes', '?')} classes), "
            f"batch {first['batch']} at {first['image_size']}×{first['image_size']}, "
            f"{first['max_steps']} steps of which the first "
            f"{skipped} are warm-up; {first['num_workers']} loader workers on {env.get('cpus', '?')} CPU "
            f"cores. MFU: {_num(per_image and per_image / 1e9)} GFLOPs per image (forward + backward) × "
            "examples/s over the GPU's dense peak for the arithmetic used (bf16, fp16; fp32 runs count TF32 "
            "where cuDNN uses it for convolutions).",
            "",
            "| configuration | real ex/s | synthetic ex/s | real ÷ synthetic | MFU (real) | peak GiB | "
            "loss at the end |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
    for key, label in CONFIGS:
        real, synthetic = _load(results, key), _load(results, f"{key}-synthetic")
        if real is None:
            out.append(f"| {label} | not run | | | | | |")
            continue
        rate = real["examples_per_sec"] if real["exit_code"] == 0 else math.nan
        synth = synthetic["examples_per_sec"] if synthetic and synthetic["exit_code"] == 0 else math.nan
        peak = peak_tflops(real["device"], real["precision"], real["conv_tf32"])
        mfu = per_image * rate / (peak * 1e12) if per_image and peak else None
        memory = real["peak_memory_bytes"] / 2**30 if real["peak_memory_bytes"] else None
        arithmetic = " (TF32 convolutions)" if real["precision"] == "fp32" and real["conv_tf32"] else ""
        out.append(
            f"| {label}{arithmetic} | {_num(rate)} | {_num(synth)} | {_num(rate / synth, 2)} | "
            f"{_pct(mfu)} | {_num(memory, 2)} | {_num(real['final_loss'], 2)} |"
        )
    out += _step_table(results)
    out += _decode_table(results)
    out += ["", _tests(results), ""] + _targets(results, per_image)
    phases = results / "phases.txt"  # gpu.sh's "name seconds" lines
    if phases.exists():
        timed = [line.split() for line in phases.read_text().splitlines() if line.strip()]
        out.append("Time per phase: " + ", ".join(f"{name} {seconds} s" for name, seconds in timed) + ".")
    return "\n".join(out)


def cpu_count() -> int:
    """The cores this process may run on (a container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def environment(results: Path, images: int, image_shape: str, classes: int) -> dict:
    """What the table's heading names: GPU, versions, date, CPU cores, the data."""
    import torch

    record = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only",
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "date": datetime.date.today().isoformat(),
        "cpus": cpu_count(),
        "images": images,
        "image_shape": image_shape,
        "classes": classes,
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / "environment.json").write_text(json.dumps(record))
    return record


def _verdict(value: float | None, goal: float, shown: str) -> str:
    if value is None or not math.isfinite(value):
        return "not measured"
    return f"{shown}: {'met' if value >= goal else 'NOT met'}"


def _test_passed(results: Path, name: str) -> bool | None:
    """Whether the CUDA test `name` passed; None when it did not run (or was skipped)."""
    path = results / "cuda-tests.xml"
    if not path.exists():
        return None
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.get("name") == name:
            if case.find("skipped") is not None:
                return None
            return case.find("failure") is None and case.find("error") is None
    return None


def _targets(results: Path, per_image: float | None) -> list[str]:
    """The GPU targets of docs/performance.md, each met or not by this run."""
    lines = ["Targets:"]
    step = _load(results, "train_step") or {"rows": []}
    timm = [r["inception3"] / r["baselines"]["timm"] for r in step["rows"] if "timm" in r["baselines"]]
    lines.append(
        "- ≥ 1.3× timm inception_v3 (bf16 autocast + channels_last, same batch): "
        + _verdict(timm[0] if timm else None, 1.3, f"{timm[0]:.2f}×" if timm else "")
    )
    best = None
    for key in ("bf16-cl", "bf16-cl-compile"):
        real = _load(results, key)
        if real and real["exit_code"] == 0 and per_image:
            peak = peak_tflops(real["device"], "bf16", False)
            if peak:
                mfu = per_image * real["examples_per_sec"] / (peak * 1e12)
                best = mfu if best is None else max(best, mfu)
    lines.append("- ≥ 35 % MFU at batch 128 in bf16: " + _verdict(best, 0.35, _pct(best)))
    for key, label in CONFIGS:
        if key == "fp16-cl":
            continue
        real, synthetic = _load(results, key), _load(results, f"{key}-synthetic")
        ok = real and synthetic and real["exit_code"] == synthetic["exit_code"] == 0
        ratio = real["examples_per_sec"] / synthetic["examples_per_sec"] if ok else None
        lines.append(
            f"- real ≥ 95 % of synthetic, {label}: " + _verdict(ratio, 0.95, _pct(ratio) if ratio else "")
        )
    synced = _test_passed(results, "test_the_trainer_does_not_sync_in_steps_that_do_not_log")
    lines.append(
        "- no device→host sync in a step that does not log: "
        + ("not measured" if synced is None else "met" if synced else "NOT met")
    )
    return lines


def _decode_table(results: Path) -> list[str]:
    """gpu.sh's decode phase: real photographs decoded by the CPU workers and by nvJPEG, against
    synthetic data in the same configuration."""
    runs = [(label, _load(results, key)) for key, label in DECODE_RUNS]
    if not any(run for _, run in runs):
        return []
    synthetic = next((run for _, run in runs if run and run["synthetic_data"] == "true"), None)
    base = synthetic["examples_per_sec"] if synthetic and synthetic["exit_code"] == 0 else math.nan
    first = next(run for _, run in runs if run)
    out = [
        "",
        f"Input on real photographs (benchmarks/photos.py: ImageNet-like crops of scikit-image's photos, "
        f"~0.2 megapixels), {first['precision']}, channels_last {first['channels_last']}, batch "
        f"{first['batch']}, {first['num_workers']} loader workers: where the JPEGs are decoded.",
        "",
        "| input | ex/s | ÷ synthetic |",
        "|---|---:|---:|",
    ]
    for label, run in runs:
        if run is None:
            out.append(f"| {label} | not run | |")
            continue
        rate = run["examples_per_sec"] if run["exit_code"] == 0 else math.nan
        out.append(f"| {label} | {_num(rate)} | {_num(rate / base, 2)} |")
    return out


DECODE_RUNS = (
    ("decode-cpu", "photos, decode=cpu (workers decode; GPU crops and resizes)"),
    ("decode-gpu", "photos, decode=gpu (workers read; nvJPEG decodes; GPU crops and resizes)"),
    ("decode-synthetic", "synthetic data (no input pipeline)"),
)


def _step_table(results: Path) -> list[str]:
    step = _load(results, "train_step")
    if not step:
        return []
    out = [
        "",
        f"Training step alone (`benchmarks/train_step.py`): the same random batch of {step['batch']} at "
        f"{step['size']}×{step['size']}, models timed in turn step by step, median of {step['steps']} steps.",
        "",
        "| variant | model | ex/s | inception3 ÷ it | MFU |",
        "|---|---|---:|---:|---:|",
    ]
    for row in step["rows"]:
        ours = row["inception3"]
        mfu = row.get("mfu")
        out.append(f"| {row['variant']} | inception3 | {_num(ours)} | 1.00× | {_pct(mfu)} |")
        for name, rate in row["baselines"].items():
            out.append(f"| | {name} inception_v3 | {_num(rate)} | {_num(ours / rate, 2)}× | |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    images = commands.add_parser("images", help="class folders of photo-like JPEGs")
    images.add_argument("root", type=Path)
    images.add_argument("--count", type=int, default=2000)
    images.add_argument("--classes", type=int, default=10)
    images.add_argument("--width", type=int, default=500)
    images.add_argument("--height", type=int, default=375)
    images.add_argument("--workers", type=int, default=cpu_count())
    images.add_argument(
        "--photos", action="store_true", help="real photographs (benchmarks/photos.py) instead of generated"
    )
    train = commands.add_parser("run", help="one training run through the CLI, measured")
    train.add_argument("--name", required=True)
    train.add_argument("--results", type=Path, required=True)
    train.add_argument("--skip-logs", type=int, default=2, help="log lines left out as warm-up")
    train.add_argument("cli", nargs=argparse.REMAINDER, help="-- then the inception3 arguments")
    flops = commands.add_parser("flops", help="training FLOPs per image")
    flops.add_argument("--results", type=Path, required=True)
    flops.add_argument("--image-size", type=int, default=299)
    flops.add_argument("--classes", type=int, default=10)
    env = commands.add_parser("environment", help="record the GPU, versions, date and data described")
    env.add_argument("--results", type=Path, required=True)
    env.add_argument("--images", type=int, default=0)
    env.add_argument("--image-shape", default="?")
    env.add_argument("--classes", type=int, default=0)
    env.add_argument("--workers", action="store_true", help="print the loader workers to use and exit")
    show = commands.add_parser("table", help="the markdown table of a results folder")
    show.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()

    if args.command == "images":
        start = time.perf_counter()
        if args.photos:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from photos import make_photos

            total = make_photos(args.root, args.count, args.classes)
        else:
            total = make_images(args.root, args.count, args.classes, args.width, args.height, args.workers)
        print(
            f"{args.count} JPEGs, {total / args.count / 1024:.0f} KiB each on average, "
            f"in {time.perf_counter() - start:.1f} s"
        )
        return 0
    if args.command == "run":
        args.results.mkdir(parents=True, exist_ok=True)
        cli = args.cli[1:] if args.cli[:1] == ["--"] else args.cli
        return run(args.name, args.results, args.skip_logs, cli)
    if args.command == "flops":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        per_image = train_flops_per_image(args.image_size, args.classes, device)
        record = {"flops_per_image": per_image, "image_size": args.image_size, "device": device}
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "flops.json").write_text(json.dumps(record))
        print(f"{per_image / 1e9:.2f} GFLOPs per training image at {args.image_size}×{args.image_size}")
        return 0
    if args.command == "environment":
        if args.workers:  # min(16, cores): 16 covers a GPU's appetite; more only add memory
            print(min(16, cpu_count()))
            return 0
        print(json.dumps(environment(args.results, args.images, args.image_shape, args.classes)))
        return 0
    print(table(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
