"""The config's one typing point: every schema registered in one list, validation, the resolved YAML jobs carry.

Each room (``launch``, ``data``, ``models``, ``metrics``, ...) owns a ``config.py`` with its dataclasses
and a ``register(cs)`` function; the stand-alone tools' schemas live in ``tool_config.py``; this module only
lists them. Entry points call :func:`register_configs` before ``@hydra.main`` composes (types are checked
while composing) and :func:`validate` before they do or queue anything (ranges within a group in each
schema's ``__post_init__``, rules spanning groups here), so a bad value fails on the login node, naming the
key. A job is handed the resolved YAML and validates it once more on the node, then passes typed sections
down.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from stylegan_v.checks import require

T = TypeVar("T")

# Modules whose ``register(cs)`` contributes schemas. Add one line per room or tool.
SCHEMA_MODULES: tuple[str, ...] = (
    "stylegan_v.launch.config",
    "stylegan_v.models.config",
    "stylegan_v.data.config",
    "stylegan_v.tracking.config",
    "stylegan_v.metrics.config",
    "stylegan_v.training.config",
    "stylegan_v.reports.config",
    "stylegan_v.tool_config",
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
    site: Any = None  # this machine's settings (conf/local/default.yaml, git-ignored); cluster/slurm.yaml reads site.slurm


def register_configs() -> ConfigStore:
    """Register the root schema and every room's group schemas (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="root_schema", node=RootConfig)
    for module_name in SCHEMA_MODULES:
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
    """Build the typed config tree, running every schema's range checks (``__post_init__``) and the rules
    that span groups (:func:`check_across_groups`).

    Hydra checks types while it composes; ranges are checked here, which every entry point calls before it
    does or queues anything. Returns the tree of dataclass instances.
    """
    typed = OmegaConf.to_object(retype(cfg))
    check_across_groups(typed)
    return typed


def world_size(cluster: Any) -> int:
    """Ranks a job on ``cluster`` runs: nodes x tasks per node on Slurm, local worker processes (or 1)."""
    if getattr(cluster, "kind", None) == "slurm":
        return int(cluster.nodes) * int(cluster.tasks_per_node)
    return max(int(getattr(cluster, "processes", 0) or 0), 1)


def check_across_groups(typed: Any) -> None:
    """Rules no single group can check, known on the login node before anything is queued."""
    training, model, dataset = getattr(typed, "training", None), getattr(typed, "model", None), getattr(typed, "dataset", None)
    if training is not None and getattr(typed, "cluster", None) is not None:
        ranks = world_size(typed.cluster)
        require(training.batch_size % ranks == 0, "training.batch_size",
                f"must be divisible by the {ranks} rank(s) of the chosen cluster", training.batch_size)
    if training is not None and training.metrics:
        from stylegan_v.metrics.options import METRICS

        unknown = [name for name in training.metrics if name not in METRICS]
        require(not unknown, "training.metrics", f"names unknown metrics {unknown}; valid: {', '.join(METRICS)}",
                list(training.metrics))
    if model is not None and training is not None:
        require((model.name == "g3an") == (training.recipe == "g3an"), "training.recipe",
                f"must be g3an exactly when model=g3an (G3AN trains with its own two discriminators and losses; "
                f"add training=g3an or the keys of sweeps/baselines/g3an.yaml), model is {model.name}",
                training.recipe)
    if model is not None and dataset is not None:
        resolution = int(dataset.resolution)
        require(resolution >= 4 and resolution & (resolution - 1) == 0, "dataset.resolution",
                f"must be a power of two >= 4 for model={model.name}", resolution)
        k = int(dataset.sampling.num_frames)
        if model.name == "g3an":  # a 16-frame generator; its video D needs >= 13 frames
            require(13 <= k <= 16, "dataset.sampling.num_frames", "must be 13..16 for model=g3an (it makes 16-frame "
                    "videos; +sweep/baselines=g3an sets 16 frames at a random stride of 2 or 3)", k)
        if model.name == "mocogan_sg2" and model.mocogan.video_d_time_paddings == 0:
            require(k >= 16, "dataset.sampling.num_frames", "must be >= 16 for model=mocogan_sg2 (MoCoGAN's 3-D video "
                    "D without time padding; +sweep/baselines=mocogan_sg2 sets 16 consecutive frames)", k)
        if model.name == "stylegan_v" and str(model.motion.kind) != "none":  # kind none is image StyleGAN2
            require(k >= 2, "dataset.sampling.num_frames",
                    "must be >= 2 for StyleGAN-V (its discriminator conditions on time differences between frames)", k)


def as_schema(schema: type[T], node: Any) -> T:
    """One group of an untyped config (a job's YAML, a sweep's composed config) as its typed dataclass."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node))  # type: ignore[return-value]


def resolved_yaml(cfg: DictConfig) -> str:
    """The config a job carries: resolved (no interpolations left to resolve on another machine)."""
    return OmegaConf.to_yaml(OmegaConf.create(OmegaConf.to_container(cfg, resolve=True)))
