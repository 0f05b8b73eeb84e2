"""A tiny prepared Moving MNIST and a tiny-model config for training tests (CPU, seconds per step)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig

from stylegan_v import prepare

TINY = [
    "experiment=smoke", "dataset.num_videos=12", "dataset.resolution=32", "dataset.digit_size=14",
    "model.synthesis.channel_max=32", "model.discriminator.channel_max=32", "model.discriminator.cmap_dim=32",
    "model.mapping.z_dim=32", "model.mapping.w_dim=32", "model.motion.noise_dim=32", "model.motion.code_dim=32",
    "model.motion.embed_dim=32", "training.batch_size=2", "training.kimg_per_tick=0.004",
    "training.snapshot_ticks=100", "training.sample_grid=[1,2]",
]


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
