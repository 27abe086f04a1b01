"""`inception3 inspect`: what a shard directory holds, ours or TensorFlow-built, and what is wrong.

Reads every record of every split (or the first `limit`): records per shard, the label range and
the offset in use, class texts seen per label, bounding boxes and image sizes. With `verify`,
every checksum is checked and every image decoded, and the bad ones are listed by shard and record.
This is what to run when a model trains to 0% accuracy and the labels are suspect.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from inception3.data.decode import DECODE_ERRORS, open_image
from inception3.data.example import ImageRecord, MalformedExampleError
from inception3.data.meta import DATASET_JSON, DatasetInfo, read_dataset_json, shard_splits, split_shards
from inception3.data.records import CorruptRecordError, RecordFile
from inception3.errors import Inception3Error
from inception3.files import require_directory


@dataclass
class SplitSummary:
    """Counts and ranges over the records of one split."""

    name: str
    shards: dict[str, int] = field(default_factory=dict)  # shard -> records
    labels: Counter = field(default_factory=Counter)  # stored label -> records
    texts: dict[int, str] = field(default_factory=dict)  # stored label -> first class text seen
    boxes: int = 0
    heights: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    read: int = 0

    @property
    def records(self) -> int:
        return sum(self.shards.values())


@dataclass
class Inspection:
    """The summary of a directory; `bad` lists (shard, record index, what) found by verification."""

    data_dir: Path
    info: DatasetInfo | None  # as dataset.json records it; None for shards built elsewhere
    splits: list[SplitSummary]
    bad: list[tuple[str, int, str]]
    verified: bool

    @property
    def problems(self) -> list[str]:
        """Corrupt records and labels that cannot be right for the recorded classes."""
        found = [f"{shard}: record {index}: {what}" for shard, index, what in self.bad]
        if self.info is not None:
            found += self._count_problems()
            offset, classes = self.info.label_offset, self.info.num_classes
            for split in self.splits:
                outside = sum(n for label, n in split.labels.items() if not 0 <= label - offset < classes)
                if outside:
                    found.append(
                        f"{split.name}: {outside} records have labels outside "
                        f"{offset}..{offset + classes - 1} ({classes} classes, offset {offset})"
                    )
        return found

    def _count_problems(self) -> list[str]:
        """Shards holding another number of records than dataset.json records for them, and splits
        it records that have no shards: the counts that set the learning-rate schedule."""
        assert self.info is not None
        recorded, found = self.info.shard_sizes, []
        for split in self.splits:
            counts = recorded.get(split.name, {})
            for shard, records in split.shards.items():
                if shard not in counts:
                    found.append(f"{shard}: not among the shards {DATASET_JSON} records")
                elif records != counts[shard]:
                    found.append(f"{shard}: holds {records} records, {DATASET_JSON} records {counts[shard]}")
        seen = {split.name for split in self.splits}
        for name in sorted(set(self.info.split_sizes) - seen):
            if self.info.split_sizes[name]:
                found.append(
                    f"{name}: {DATASET_JSON} records {self.info.split_sizes[name]} records, no shards"
                )
        return found


def inspect_dataset(
    data_dir: Path, *, verify: bool = False, limit: int | None = None, progress: bool | None = None
) -> Inspection:
    """Summarise `data_dir`'s shards; `verify` checks CRCs and decodes images; `limit` caps records/split."""
    data_dir = require_directory(Path(data_dir), "directory", "pass the directory that holds the shards")
    recorded = read_dataset_json(data_dir)
    names = shard_splits(data_dir)
    if not names:
        raise Inception3Error(f"{data_dir}: no shards (files named train-00000-of-00008 ...)")
    bad: list[tuple[str, int, str]] = []
    splits = []
    for name in names:
        summary = SplitSummary(name)
        for path in split_shards(data_dir, name):
            _scan_shard(path, summary, bad, verify=verify, limit=limit, progress=progress)
        splits.append(summary)
    return Inspection(data_dir, recorded.info if recorded else None, splits, bad, verify)


def _scan_shard(
    path: Path, summary: SplitSummary, bad: list, *, verify: bool, limit: int | None, progress: bool | None
) -> None:
    try:
        file = RecordFile(path)
    except CorruptRecordError as error:
        bad.append((path.name, -1, str(error)))
        summary.shards[path.name] = 0
        return
    summary.shards[path.name] = len(file)
    disable = not sys.stderr.isatty() if progress is None else not progress
    for index in tqdm(range(len(file)), desc=path.name, unit="rec", leave=False, disable=disable):
        if limit is not None and summary.read >= limit:
            break
        summary.read += 1
        try:
            record = ImageRecord.parse(file.read(index, check_crc=verify))
            if verify:
                with open_image(record.encoded) as image:
                    image.load()
        except CorruptRecordError as error:
            bad.append((path.name, index, error.what))
            continue
        except MalformedExampleError as error:
            bad.append((path.name, index, str(error)))
            continue
        except DECODE_ERRORS as error:
            bad.append((path.name, index, f"image does not decode ({error})"))
            continue
        summary.labels[record.label] += 1
        summary.texts.setdefault(record.label, record.text or record.synset)
        summary.boxes += len(record.boxes)
        summary.heights.append(record.height)
        summary.widths.append(record.width)
    file.close()


def format_inspection(report: Inspection) -> str:
    """The human-readable summary that `inception3 inspect` prints."""
    lines = [f"{report.data_dir}"]
    if report.info is not None:
        lines.append(
            f"  {DATASET_JSON}: {report.info.num_classes} classes, "
            f"label offset {report.info.label_offset} (0-based label = stored label - offset)"
        )
    else:
        lines.append(
            f"  no {DATASET_JSON}: built elsewhere (TensorFlow's build scripts write 1-based labels)"
        )
    for split in report.splits:
        counts = sorted(split.shards.values())
        lines.append(
            f"  {split.name}: {split.records} records in {len(split.shards)} shards "
            f"({counts[0]}..{counts[-1]} per shard)"
        )
        if split.read < split.records:
            lines.append(f"    (first {split.read} records read)")
        if split.labels:
            low, high = min(split.labels), max(split.labels)
            lines.append(
                f"    stored labels {low}..{high}, {len(split.labels)} distinct; {split.boxes} bounding boxes"
            )
            lines.append("    " + _label_hint(low, report.info))
            shown = sorted(split.texts.items())[:5]
            lines.append(
                "    labels: "
                + ", ".join(f"{label}={text!r}" for label, text in shown)
                + (", ..." if len(split.texts) > 5 else "")
            )
            lines.append(f"    image height {_range(split.heights)}, width {_range(split.widths)}")
    if report.verified:
        lines.append(f"  verified: {len(report.bad)} bad records" + (":" if report.bad else ""))
    lines += [f"    {problem}" for problem in report.problems]
    return "\n".join(lines)


def _label_hint(lowest: int, info: DatasetInfo | None) -> str:
    if info is not None:
        return f"label offset in use: {info.label_offset} (from {DATASET_JSON})"
    if lowest >= 1:
        return (
            "no label 0: looks 1-based (0 = background, as TensorFlow's build scripts): use --label-offset 1"
        )
    return "label 0 present: looks 0-based: use --label-offset 0"


def _range(values: list[int]) -> str:
    if not values:
        return "unknown"
    return f"{min(values)}..{max(values)} (mean {sum(values) / len(values):.0f})"
