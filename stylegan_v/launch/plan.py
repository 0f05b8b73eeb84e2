"""Projected cost of a run before it queues: GPU-days and wall time from a measured step time.

A step time is only ever measured, never guessed: it comes from a small JSON cache under the project cache dir,
keyed by the settings that decide a step's cost (model, resolution, batch, frames per video) and the device
name. A projection for a device class with no measurement in the cache says so instead of inventing a number.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stylegan_v.files import atomic_write_json

CACHE_FILE = "step_times.json"
SECONDS_PER_DAY = 86_400.0


def step_key(cfg: DictConfig, device: str) -> str:
    """Hash of what a step's time depends on (model, dataset resolution, batch, frames per video) and the device."""
    sampling = OmegaConf.select(cfg, "dataset.sampling", default=None)
    settings = {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "resolution": OmegaConf.select(cfg, "dataset.resolution", default=None),
        "batch_size": OmegaConf.select(cfg, "training.batch_size", default=None),
        "num_frames": OmegaConf.select(sampling, "num_frames", default=None) if sampling is not None else None,
        "device": device,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_path(cfg: DictConfig) -> Path:
    return Path(str(cfg.paths.cache_dir)) / CACHE_FILE


def read_cache(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def cached_step_time(path: Path, key: str) -> float | None:
    entry = read_cache(path).get(key)
    return None if entry is None else float(entry["step_s"])


def record_step_time(path: Path, key: str, step_s: float, device: str) -> None:
    """Store a measured step time (atomically: readers never see half a file)."""
    cache = read_cache(path)
    cache[key] = {"step_s": float(step_s), "device": device}
    atomic_write_json(path, cache, indent=2)


@dataclass(frozen=True)
class Projection:
    steps: int
    step_s: float | None  # None: no measurement for this device class
    gpus: int

    @property
    def wall_s(self) -> float | None:
        return None if self.step_s is None else self.steps * self.step_s

    @property
    def gpu_days(self) -> float | None:
        wall = self.wall_s
        return None if wall is None else wall * max(self.gpus, 1) / SECONDS_PER_DAY


def steps_of(cfg: DictConfig) -> int:
    """Optimiser steps for ``training.total_kimg``: kimg counts frames shown to D (batch x frames per video)."""
    batch = int(cfg.training.batch_size)
    frames = OmegaConf.select(cfg, "dataset.sampling.num_frames", default=None) or 3
    return int(-(-float(cfg.training.total_kimg) * 1000 // (batch * int(frames))))


def gpus_of(cfg: DictConfig) -> int:
    cluster = cfg.cluster
    gpus = int(OmegaConf.select(cluster, "gpus_per_node", default=0) or 0)
    return gpus * int(OmegaConf.select(cluster, "nodes", default=1) or 1)


def project(cfg: DictConfig, device: str) -> Projection:
    return Projection(steps_of(cfg), cached_step_time(cache_path(cfg), step_key(cfg, device)), gpus_of(cfg))


def over_cap(total_gpu_days: float, cap: float | None) -> str | None:
    """The refusal line when a submission's projected total exceeds ``cluster.max_gpu_days``; None otherwise."""
    if cap is None or total_gpu_days <= cap:
        return None
    return (f"cluster.max_gpu_days: projected {total_gpu_days:.3g} GPU-days exceeds the cap of {cap:g}; "
            "nothing was queued")
