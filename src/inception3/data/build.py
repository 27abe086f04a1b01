"""Image folders -> sharded TFRecord files of tf.train.Example, plus `dataset.json`.

As the original `build_image_data.py`: classes are the labels file's lines or the sorted
sub-folder names, the file list is shuffled with a fixed seed and cut into contiguous shards.
Unlike it: labels are stored with a recorded offset (0-based by default), every image is checked
and converted to RGB JPEG where needed, unreadable files are skipped and reported rather than
killing the build, each shard appears atomically, and re-running an interrupted build keeps the
shards already complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inception3.config import BUILD_SHUFFLE_SEED, BuildConfig
from inception3.data.boxes import read_bounding_boxes
from inception3.data.build_folder import STATE_DIR, is_built_already, locked, remove_partial_writes
from inception3.data.meta import (
    DATASET_JSON,
    RECORD_LABELS,
    folder_classes,
    read_dataset_json,
    shard_name,
    write_dataset_json,
)
from inception3.data.shard_writer import ShardResult, ShardTask, write_shards
from inception3.errors import Inception3Error
from inception3.files import atomic_write, printable, require_directory, write_text_atomic

RECORDS_PER_SHARD = 1024  # default shard size when no shard count is given (ImageNet's are ~1,250)
SHOWN_FILES = 5  # converted or skipped files named in the summary; dataset.json lists every one


@dataclass
class BuildReport:
    """The outcome of a build: records per split, converted and skipped files, reused shards."""

    output_dir: Path
    records: dict[str, int]
    shards: dict[str, int]
    converted: list[tuple[str, str]]
    skipped: list[tuple[str, str]]
    reused_shards: int
    seconds: float

    def summary(self) -> str:
        """What `inception3 build` prints: counts, then the first few converted and skipped files
        (dataset.json lists them all: an ordinary greyscale set converts thousands)."""
        splits = ", ".join(
            f"{n} {split} records in {self.shards[split]} shards" for split, n in self.records.items()
        )
        lines = [
            f"wrote {splits} to {printable(self.output_dir)} in {self.seconds:.1f} s"
            + (f" ({self.reused_shards} shards kept from an earlier run)" if self.reused_shards else "")
        ]
        where = printable(self.output_dir / DATASET_JSON)
        if self.converted:
            lines.append(
                f"converted {len(self.converted)} images to RGB JPEG{_all_in(self.converted, where)}:"
            )
            lines += [f"  {printable(file)} (was {what})" for file, what in self.converted[:SHOWN_FILES]]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable images{_all_in(self.skipped, where)}:")
            lines += [f"  {printable(file)}: {printable(why)}" for file, why in self.skipped[:SHOWN_FILES]]
        return "\n".join(lines)


def _all_in(files: list, where: str) -> str:
    return f" (the first {SHOWN_FILES}; {where} lists all)" if len(files) > SHOWN_FILES else ""


def _list_files(
    image_dir: Path, class_names: tuple[str, ...], label_offset: int
) -> list[tuple[str, int, str]]:
    require_directory(image_dir, "directory of class folders", "pass the folder holding one folder per class")
    files = []
    for label, name in enumerate(class_names):
        folder = image_dir / name
        if not folder.is_dir():
            raise Inception3Error(
                f"{folder}: class '{name}' has no folder; fix the labels file or the folders"
            )
        # Anything that is not a folder is a candidate, broken links included, so that a file which
        # cannot be read is listed in the report instead of silently left out.
        files += [
            (str(p), label + label_offset, name)
            for p in sorted(folder.iterdir())
            if not p.is_dir() and not p.name.startswith(".")
        ]
    return files


def _plan(
    train_dir: Path,
    validation_dir: Path | None,
    validation_fraction: float | None,
    class_names: tuple[str, ...],
    label_offset: int,
) -> dict[str, list[tuple[str, int, str]]]:
    """Files per split, shuffled with the original's fixed seed."""
    files = _list_files(train_dir, class_names, label_offset)
    if not files:
        raise Inception3Error(f"{train_dir}: the class folders hold no files")
    random.Random(BUILD_SHUFFLE_SEED).shuffle(files)
    splits = {"train": files}
    if validation_dir is not None:
        validation = _list_files(Path(validation_dir), class_names, label_offset)
        random.Random(BUILD_SHUFFLE_SEED).shuffle(validation)
        splits["validation"] = validation
    elif validation_fraction:
        if not 0.0 < validation_fraction < 1.0:
            raise Inception3Error(f"--validation-fraction {validation_fraction} must be between 0 and 1")
        held_out = max(1, round(len(files) * validation_fraction))
        splits = {"train": files[held_out:], "validation": files[:held_out]}
    return splits


def build_shards(config: BuildConfig | None = None, /, **options: Any) -> BuildReport:
    """Convert class folders of images into TFRecord shards plus dataset.json (`build_dataset`).

    Give a BuildConfig, or its fields as keywords (`train_dir=`, `output_dir=`,
    `validation_fraction=0.1`, ...), or both: the keywords replace the config's fields. Values
    outside their range are an Inception3Error naming the field as `inception3 build`'s option.
    """
    if config is None:
        return build_dataset(BuildConfig(**options))
    return build_dataset(dataclasses.replace(config, **options))


def build_dataset(cfg: BuildConfig) -> BuildReport:
    """Convert class folders into shards and `dataset.json` in `cfg.output_dir`; see the module doc.

    Shard counts default to one shard per `RECORDS_PER_SHARD` files; workers to all cores.
    """
    start = time.monotonic()
    # Absolute paths: a re-run may spell them differently and must still find its own unfinished build.
    train_dir, output_dir = Path(cfg.train_dir).resolve(), Path(cfg.output_dir)
    validation_dir = Path(cfg.validation_dir).resolve() if cfg.validation_dir is not None else None
    validation_fraction, label_offset = cfg.validation_fraction, cfg.label_offset
    if validation_dir is not None and validation_fraction is not None:
        raise Inception3Error("give either --validation-dir or --validation-fraction, not both")
    if label_offset not in (0, 1):
        raise Inception3Error(f"label offset {label_offset} must be 0 (0-based) or 1 (TensorFlow's 1-based)")
    require_directory(train_dir, "directory of class folders", "pass the folder holding one folder per class")
    if (output_dir.exists() or output_dir.is_symlink()) and not output_dir.is_dir():
        require_directory(output_dir, "directory", "give --output-dir a new or empty directory")
    class_names = folder_classes(train_dir, cfg.labels_file)
    splits = _plan(train_dir, validation_dir, validation_fraction, class_names, label_offset)
    boxes = read_bounding_boxes(cfg.bounding_boxes) if cfg.bounding_boxes is not None else {}
    wanted = {"train": cfg.train_shards, "validation": cfg.validation_shards}
    shard_counts = {}
    for split, files in splits.items():
        count = wanted[split] or max(1, math.ceil(len(files) / RECORDS_PER_SHARD))
        if count < 1:
            raise Inception3Error(f"--{split}-shards {count} must be at least 1")
        shard_counts[split] = count

    fingerprint = hashlib.sha256(
        json.dumps([splits, shard_counts, sorted(boxes.items())], sort_keys=True).encode()
    ).hexdigest()
    names = {split: [shard_name(split, i, n) for i in range(n)] for split, n in shard_counts.items()}
    output_dir.mkdir(parents=True, exist_ok=True)
    with locked(output_dir):  # from here on the folder is this build's alone
        state_dir = output_dir / STATE_DIR
        complete = is_built_already(output_dir, state_dir, fingerprint)
        written = {DATASET_JSON, *(RECORD_LABELS.format(split=split) for split in splits)}
        remove_partial_writes(output_dir, written.union(*names.values()))
        if complete:
            shutil.rmtree(state_dir, ignore_errors=True)  # left by a build killed while it cleaned up
            return _completed_report(output_dir, time.monotonic() - start)
        state_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(state_dir / "plan.json", json.dumps({"fingerprint": fingerprint}))

        tasks, results = [], {}
        for split, files in splits.items():
            n = shard_counts[split]
            bounds = [round(i * len(files) / n) for i in range(n + 1)]
            for i, name in enumerate(names[split]):
                state_path = state_dir / f"{name}.json"
                if (output_dir / name).exists() and state_path.exists():
                    results[name] = ShardResult(**json.loads(state_path.read_text()))
                    continue
                chunk = tuple(files[bounds[i] : bounds[i + 1]])
                stems = [Path(f).stem for f, _, _ in chunk]
                tasks.append(
                    ShardTask(
                        path=output_dir / name,
                        state_path=state_path,
                        files=chunk,
                        boxes={stem: boxes[stem] for stem in stems if stem in boxes},
                    )
                )
        reused = len(results)
        for result in write_shards(tasks, cfg.workers or len(os.sched_getaffinity(0)), cfg.progress):
            results[result.name] = result

        report = _record_build(
            output_dir,
            class_names,
            label_offset,
            names,
            results,
            splits,
            {
                "fingerprint": fingerprint,
                "train_dir": printable(train_dir),
                "validation_dir": printable(validation_dir) if validation_dir is not None else None,
                "validation_fraction": validation_fraction,
                "labels_file": printable(cfg.labels_file) if cfg.labels_file is not None else None,
                "bounding_boxes": printable(cfg.bounding_boxes) if cfg.bounding_boxes is not None else None,
                "shuffle_seed": BUILD_SHUFFLE_SEED,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        shutil.rmtree(state_dir)
        report.reused_shards = reused
        report.seconds = time.monotonic() - start
        return report


def _record_build(
    output_dir: Path,
    class_names: tuple[str, ...],
    label_offset: int,
    names: dict[str, list[str]],
    results: dict[str, ShardResult],
    files: dict[str, list[tuple[str, int, str]]],
    build: dict,
) -> BuildReport:
    """Record the finished build in dataset.json, with every converted and skipped file, and each
    split's records per class (its planned `files` less those skipped: class balance's counts)."""
    meta_splits, converted, skipped = {}, [], []
    for split, split_names in names.items():
        shard_results = [results[name] for name in split_names]
        left_out = {str(s[0]) for r in shard_results for s in r.skipped}
        class_counts = [0] * len(class_names)
        for file, label, _ in files[split]:
            if file not in left_out:
                class_counts[label - label_offset] += 1
        meta_splits[split] = {
            "shards": {r.name: r.records for r in shard_results},
            "class_counts": class_counts,
            "bounding_boxes": sum(r.boxes for r in shard_results),
            "image_height": _stats([h for r in shard_results for h in r.heights]),
            "image_width": _stats([w for r in shard_results for w in r.widths]),
        }
        converted += [tuple(c) for r in shard_results for c in r.converted]
        skipped += [tuple(s) for r in shard_results for s in r.skipped]
        # The shards hold the split's files in plan order, less those skipped: so do the labels.
        labels = np.array(
            [label - label_offset for file, label, _ in files[split] if file not in left_out], dtype=np.int32
        )
        with atomic_write(output_dir / RECORD_LABELS.format(split=split)) as f:
            np.save(f, labels, allow_pickle=False)
        meta_splits[split]["record_labels_sha256"] = hashlib.sha256(labels.tobytes()).hexdigest()
    # dataset.json is UTF-8 text: a file name that is not UTF-8 is listed with its bytes as \xNN
    build["converted"] = [{"file": printable(f), "was": what} for f, what in converted]
    build["skipped"] = [{"file": printable(f), "reason": printable(why)} for f, why in skipped]
    write_dataset_json(output_dir, class_names, label_offset, meta_splits, build)
    return BuildReport(
        output_dir,
        {s: sum(m["shards"].values()) for s, m in meta_splits.items()},
        {s: len(n) for s, n in names.items()},
        converted,
        skipped,
        0,
        0.0,
    )


def _completed_report(output_dir: Path, seconds: float) -> BuildReport:
    """The report of a build found complete: every shard kept, nothing converted again."""
    info, build = read_dataset_json(output_dir)
    converted = [(c["file"], c["was"]) for c in build["converted"]]
    skipped = [(c["file"], c["reason"]) for c in build["skipped"]]
    shards = {split: len(sizes) for split, sizes in info.shard_sizes.items()}
    return BuildReport(
        output_dir, dict(info.split_sizes), shards, converted, skipped, sum(shards.values()), seconds
    )


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "max": 0, "mean": 0.0}
    return {"min": min(values), "max": max(values), "mean": round(sum(values) / len(values), 1)}
