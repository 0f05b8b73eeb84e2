"""Where downloaded and derived metric files live, and content hashes for them (torch-free on purpose:
the I3D reference script imports this from a throw-away JAX environment)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV = "STYLEGAN_V_CACHE_DIR"  # overrides the default cache directory
DEFAULT_CACHE_DIR = ".cache/stylegan_v"  # same default as cfg.paths.cache_dir


def resolve_cache_dir(cache_dir: str | Path | None) -> Path:
    """Explicit argument > ``$STYLEGAN_V_CACHE_DIR`` > ``.cache/stylegan_v`` (relative to cwd, like the config)."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV, DEFAULT_CACHE_DIR)
    return Path(cache_dir)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class WeightsUnavailable(FileNotFoundError):
    """A detector's weight file is missing or cannot be fetched; the message says which file to put where."""
