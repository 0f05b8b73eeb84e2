"""One place that registers every structured config with Hydra's ConfigStore.

Each room (``launch``, ``data``, ``models``, ``metrics``, ...) owns a ``config.py`` with its dataclasses
and a ``register(cs)`` function; this module only lists the rooms. Entry points call
:func:`register_configs` before ``@hydra.main`` composes, so a bad value fails at compose time on the
login node, naming the key, before anything is queued.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
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
    report: Any = None
    pipeline: Any = None  # the DVC pipeline's own keys (conf/pipeline.yaml): datasets to prepare, export dir


def register_configs() -> ConfigStore:
    """Register the root schema and every room's group schemas (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="root_schema", node=RootConfig)
    for module_name in ROOM_CONFIG_MODULES:
        importlib.import_module(module_name).register(cs)
    return cs


def retype(cfg: DictConfig) -> DictConfig:
    """Re-apply the schemas to an already composed, untyped config (DVC's ``params.yaml``).

    The group options a composed config came from are read back from it (``model.name``, ``cluster.kind``;
    every other group has one schema), their typed defaults are composed, and the config is merged on top,
    so types and ranges are checked exactly as for a config composed from ``conf/``.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if OmegaConf.get_type(cfg) is not dict:
        return cfg  # already typed
    register_configs()
    config_dir = Path(__file__).resolve().parents[1] / "conf"
    overrides = [f"model={cfg.model.name}", f"cluster={cfg.cluster.kind}"]
    # Inside a running Hydra app the global instance is taken: compose in a fresh one, then put it back.
    global_hydra = GlobalHydra.instance()
    running = global_hydra.hydra
    global_hydra.clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            typed = compose("config", overrides=overrides)
    finally:
        global_hydra.clear()
        global_hydra.hydra = running
    return OmegaConf.merge(typed, cfg)


def validate(cfg: DictConfig) -> Any:
    """Build the typed config tree, running every schema's range checks (``__post_init__``).

    Hydra checks types while it composes; ranges are checked here, which every entry point calls
    before it does or queues anything. Returns the tree of dataclass instances.
    """
    return OmegaConf.to_object(retype(cfg))
