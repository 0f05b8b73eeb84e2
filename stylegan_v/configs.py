"""One place that registers every structured config with Hydra's ConfigStore.

Each room (``launch``, ``data``, ``models``, ``metrics``, ...) owns a ``config.py`` with its dataclasses
and a ``register(cs)`` function; this module only lists the rooms. Entry points call
:func:`register_configs` before ``@hydra.main`` composes, so a bad value fails at compose time on the
login node, naming the key, before anything is queued.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

# Rooms whose ``config.register(cs)`` contributes group schemas. Add one line per room.
ROOM_CONFIG_MODULES: tuple[str, ...] = (
    "stylegan_v.launch.config",
    "stylegan_v.models.config",
    "stylegan_v.data.config",
    "stylegan_v.tracking.config",
    "stylegan_v.metrics.config",
    "stylegan_v.training.config",
    "stylegan_v.reports.config",
)


@dataclass
class PathsConfig:
    data_dir: str = "data"  # prepared datasets, one folder (or zip) per dataset
    runs_dir: str = "runs"  # training runs; each run directory is derived from the config, never a timestamp
    cache_dir: str = ".cache/stylegan_v"  # converted weights, real-data feature statistics


@dataclass
class RootConfig:
    """Keys shared by every entry point; the groups (cluster, dataset, model, ...) bring their own schemas."""

    seed: int = 0  # global seed; per-rank seeds are derived from it
    experiment_name: str = "default"  # names the run directory and the MLflow run (set by experiment/*.yaml)
    paths: PathsConfig = field(default_factory=PathsConfig)
    # Groups: each option brings its own schema (see the rooms' config.py); `Any` here, typed there.
    cluster: Any = MISSING
    dataset: Any = None
    model: Any = None
    metrics: Any = None
    training: Any = None
    tracking: Any = None
    sweep: Any = None  # set by a sweep file (sweeps/): {name, point, parent_run_id}; None for single runs


def register_configs() -> ConfigStore:
    """Register the root schema and every room's group schemas (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="root_schema", node=RootConfig)
    for module_name in ROOM_CONFIG_MODULES:
        importlib.import_module(module_name).register(cs)
    return cs


def validate(cfg: DictConfig) -> Any:
    """Build the typed config tree, running every schema's range checks (``__post_init__``).

    Hydra checks types while it composes; ranges are checked here, which every entry point calls
    before it does or queues anything. Returns the tree of dataclass instances.
    """
    return OmegaConf.to_object(cfg)
