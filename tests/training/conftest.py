"""A tiny prepared Moving MNIST and a tiny-model config for training tests (CPU, seconds per step)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig
from tiny_config import TINY

from stylegan_v import prepare


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def tiny_cfg(compose, tiny_data, tmp_path):
    """Compose the tiny config (extra overrides allowed) with data prepared once per session."""

    def _cfg(*overrides: str) -> DictConfig:
        cfg = compose(*TINY, f"paths.data_dir={tiny_data}", f"paths.runs_dir={tmp_path / 'runs'}",
                      f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", *overrides)
        if not (tiny_data / cfg.dataset.name / "dataset.json").exists():
            prepare.run(cfg)
        return cfg

    return _cfg
