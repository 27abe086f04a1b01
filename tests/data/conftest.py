"""Shard directories built from small image folders, shared by the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from imagefolders import make_folder

from inception3.config import BuildConfig
from inception3.data.build import build_dataset


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A dataset of 12 flat images: 9 train records in 3 shards, 3 validation records in 2 shards."""
    root = tmp_path_factory.mktemp("built")
    make_folder(root / "images")
    build_dataset(
        BuildConfig(
            root / "images",
            root / "shards",
            validation_fraction=0.25,
            train_shards=3,
            validation_shards=2,
            workers=1,
            progress=False,
        )
    )
    return root / "shards"
