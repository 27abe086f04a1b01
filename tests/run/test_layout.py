"""The run directory's evaluation records: plain split names, never through a link, never half a line."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from inception3.errors import Inception3Error
from inception3.run import layout


def test_a_split_that_is_not_a_plain_name_has_no_results_file(tmp_path: Path) -> None:
    for split in ("../../escaped", "/etc/x", "a/b", ".hidden", ""):
        with pytest.raises(Inception3Error, match="not a plain name"):
            layout.append_result(tmp_path, split, {"step": 1})
    assert list(tmp_path.rglob("*")) == []
    assert layout.results_path(tmp_path, "validation-2.b") == tmp_path / "eval" / "validation-2.b.jsonl"


def test_a_full_disk_while_appending_leaves_no_half_line(tmp_path: Path, monkeypatch) -> None:
    layout.append_result(tmp_path, "validation", {"step": 1, "top1": 0.5})
    path = layout.results_path(tmp_path, "validation")
    before = path.read_bytes()
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        layout.append_result(tmp_path, "validation", {"step": 2, "top1": 0.6})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == before
    layout.append_result(tmp_path, "validation", {"step": 2, "top1": 0.6})
    assert [r["step"] for r in layout.read_results(tmp_path, "validation")] == [1, 2]


def test_records_are_never_appended_through_a_link_out_of_the_run(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text("")
    (tmp_path / "run" / "eval").mkdir(parents=True)
    layout.results_path(tmp_path / "run", "validation").symlink_to(elsewhere)
    with pytest.raises(Inception3Error, match="a link to .*elsewhere.jsonl, outside"):
        layout.append_result(tmp_path / "run", "validation", {"step": 1})
    assert elsewhere.read_text() == ""
