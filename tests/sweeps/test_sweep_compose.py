"""Every sweep file composes with every experiment, and each point differs from the default exactly in the
swept keys (no run: Hydra composition only)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from stylegan_v.configs import register_configs
from stylegan_v.launch.sweep import SWEEP_GROUP_PREFIX, expand_points, point_label, register_resolvers, varying_keys

REPO = Path(__file__).resolve().parents[2]
SWEEPS = sorted(p.stem for p in (REPO / "sweeps").glob("*.yaml") if not p.stem.startswith("_"))
EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
EXPECTED_SWEEPS = {"period_scaling", "omega_min", "omega_max", "kernel_size", "motion_distance", "num_frames",
                   "failed_experiments", "baselines", "augmentation", "paper_text", "lstm_motion"}
IGNORED = ("sweep", "hydra")  # the sweep's own bookkeeping; everything else must be the swept keys


@pytest.fixture(scope="module", autouse=True)
def _hydra_initialized():
    """One Hydra initialisation for the module: composing ~300 points must stay well under a minute."""
    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        yield


def _compose(*overrides: str, hydra: bool = False):
    return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def _plain(cfg) -> dict[str, Any]:
    tree = OmegaConf.to_container(cfg, resolve=False)
    return {k: v for k, v in _flat({k: v for k, v in tree.items() if k not in IGNORED}).items()}


def _declared(override: str) -> tuple[set[str], dict[str, Any]]:
    """Key prefixes a point may change, and the leaf values it must have, from one swept override."""
    key, _, value = override.partition("=")
    key = key.lstrip("+~")
    if not key.startswith(SWEEP_GROUP_PREFIX):
        return {key}, {key: yaml.safe_load(value)}
    text = (REPO / "sweeps" / key.removeprefix(SWEEP_GROUP_PREFIX) / f"{value}.yaml").read_text()
    body = yaml.safe_load(text) or {}
    prefixes = set(_flat({k: v for k, v in body.items() if k != "defaults"}))
    for entry in body.get("defaults", []):
        if isinstance(entry, dict):  # `override /model: g3an` swaps the whole model group
            prefixes |= {k.split()[-1].lstrip("/").split("@")[0] for k in entry}
    return prefixes, {k: v for k, v in _flat({k: v for k, v in body.items() if k != "defaults"}).items()}


def _sweep_wide(sweep: str) -> dict[str, Any]:
    """Leaf values a sweep file sets for all its points alike (e.g. the metrics every point scores)."""
    body = yaml.safe_load((REPO / "sweeps" / f"{sweep}.yaml").read_text()) or {}
    return _flat({k: v for k, v in body.items() if k not in ("defaults", *IGNORED)})


def test_every_issue_sweep_exists() -> None:
    assert EXPECTED_SWEEPS <= set(SWEEPS), f"missing sweeps: {EXPECTED_SWEEPS - set(SWEEPS)}"


_BASES: dict[str, dict[str, Any]] = {}
_MASTERS: dict[str, Any] = {}


def _base(experiment: str) -> dict[str, Any]:
    if experiment not in _BASES:
        _BASES[experiment] = _plain(_compose(f"experiment={experiment}"))
    return _BASES[experiment]


def _check_points(sweep: str, experiment: str, every_point: bool) -> None:
    """Compose the sweep's points (all, or the first and the last) and compare each with the default."""
    base = _base(experiment)
    master = _compose(f"+sweep={sweep}", f"experiment={experiment}", hydra=True)
    swept = [k.lstrip("+~") for k in master.hydra.sweeper.params.keys()]
    points = expand_points(master)
    assert len(points) >= 2, f"{sweep}: a sweep needs at least two points"
    chosen = points if every_point else [points[0], points[-1]]
    labels = set()
    for overrides in chosen:
        point_overrides = [o for o in overrides if o.partition("=")[0].lstrip("+~") in swept]
        assert len(point_overrides) == len(swept)
        cfg = _compose(*overrides, hydra=True)
        HydraConfig.instance().set_config(cfg)
        labels.add(cfg.sweep.point)
        assert cfg.sweep.name == sweep
        OmegaConf.to_object(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))  # range checks pass
        point = _plain(cfg)
        values: dict[str, Any] = _sweep_wide(sweep)
        prefixes: set[str] = set(values)
        for override in point_overrides:
            p, v = _declared(override)
            prefixes |= p
            values.update(v)
        changed = {k for k in set(base) | set(point) if base.get(k) != point.get(k)}
        stray = {k for k in changed if not any(k == p or k.startswith(p + ".") for p in prefixes)}
        assert not stray, f"{sweep} {point_overrides} also changes {sorted(stray)}"
        for key, value in values.items():
            assert point[key] == value, f"{sweep} {point_overrides}: {key}={point[key]!r}, expected {value!r}"
    assert len(labels) == len(chosen), "every point has its own label"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("sweep", SWEEPS)
def test_points_differ_from_default_exactly_in_swept_keys(sweep: str, experiment: str) -> None:
    """Every point with experiment=smoke; the first and last point with every other experiment."""
    _check_points(sweep, experiment, every_point=experiment == "smoke")


@pytest.mark.slow
@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e != "smoke"])
@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_point_of_every_experiment(sweep: str, experiment: str) -> None:
    _check_points(sweep, experiment, every_point=True)


def test_point_label_names_only_swept_values() -> None:
    overrides = ["model.motion.kernel_size=5", "+sweep=kernel_size", "experiment=smoke", "paths.runs_dir=/x"]
    assert point_label(overrides, ["model.motion.kernel_size"]) == "model.motion.kernel_size=5"
    assert point_label(["+sweep/baselines=g3an", "experiment=smoke"], ["+sweep/baselines"]) == "baselines=g3an"
    # a value swept on the command line beside the sweep file's keys is part of the label too
    points = [["k=1", "d=4", "experiment=smoke"], ["k=1", "d=8", "experiment=smoke"], ["k=2", "d=4", "experiment=smoke"]]
    assert varying_keys(points) == ["k", "d"]


def test_cluster_slurm_makes_the_sweep_one_submitit_array_with_cluster_resources() -> None:
    cfg = _compose("+sweep=period_scaling", "experiment=smoke", "cluster=slurm", "cluster.nodes=2",
                   "cluster.gpus_per_node=8", "cluster.timeout_min=90", "cluster.partition=debug",
                   "cluster.max_num_timeout=3", hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("hydra_submitit_launcher.submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.gpus_per_node, launcher.timeout_min, launcher.partition,
            launcher.max_num_timeout) == (2, 8, 90, "debug", 3)
    local = _compose("+sweep=period_scaling", "experiment=smoke", "cluster=local", hydra=True)
    assert local.hydra.launcher._target_.endswith("BasicLauncher"), "cluster=local runs points one by one here"


def test_a_sweep_file_without_multirun_is_an_error(tmp_path) -> None:
    from stylegan_v.launch.sweep import attach_point

    cfg = _compose("+sweep=period_scaling", "experiment=smoke", f"paths.runs_dir={tmp_path}", hydra=True)
    HydraConfig.instance().set_config(cfg)  # RUN mode, as `python -m stylegan_v.train +sweep=...` without -m
    with pytest.raises(ValueError, match="multirun"):
        attach_point(cfg)


def _validated_points(sweep: str, experiment: str) -> list[Any]:
    """Every point of a sweep on an experiment, validated as ``train`` validates it (cross-group rules too)."""
    from stylegan_v.configs import check_across_groups

    master = _compose(f"+sweep={sweep}", f"experiment={experiment}", hydra=True)
    typed = []
    for overrides in expand_points(master):
        cfg = _compose(*overrides, hydra=True)
        HydraConfig.instance().set_config(cfg)
        groups = OmegaConf.to_object(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))  # group checks
        point = SimpleNamespace(**groups)
        check_across_groups(point)  # and the rules spanning groups, as `validate` runs them before queueing
        typed.append(point)
    return typed


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_lstm_motion_compares_ours_with_lstm_codes_on_fvd128(experiment: str) -> None:
    """Appendix C's comparison: ours and LSTM motion codes at two anchor distances, each scoring FVD_128."""
    points = _validated_points("lstm_motion", experiment)
    ours = points[0].model.motion
    assert [(str(p.model.motion.kind), p.model.motion.distance) for p in points] == \
        [("acyclic", ours.distance), ("lstm", ours.distance), ("lstm", 1)]
    for p in points:
        assert p.training.metrics == ["fvd2048_16f", "fvd2048_128f"] and p.sweep["name"] == "lstm_motion"
