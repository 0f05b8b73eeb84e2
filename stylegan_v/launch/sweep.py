"""Sweeps (``python -m stylegan_v.train -m +sweep=<name> ...``): the submitting side and the point side.

A sweep file (``sweeps/<name>.yaml``) sets ``sweep.name`` and the swept values (``hydra.sweeper.params``);
Hydra's basic sweeper expands them into points and the launcher runs them: ``cluster=local`` one after
another in this process, ``cluster=slurm`` as ONE Slurm job array through hydra-submitit-launcher, where
each array element already *is* the Slurm job of that point (see :func:`in_launcher_job`).

Submitting side, :class:`SweepCallback` (``on_multirun_start``, once per sweep, before any point starts):
prepares (or checks) the dataset of every point, opens the sweep's MLflow **parent run** (its id in
``<sweep dir>/mlflow_run.json``) and writes ``<sweep dir>/sweep.json`` (name, experiment, the points in
job-number order). With ``cluster.wait=false`` it also ends the submitting process once every point is in the Slurm queue
("submit and walk away"): Hydra launchers are synchronous (they wait for every job's result) and a
launcher of our own would have to live in the ``hydra_plugins`` package, so a watcher thread exits the
process as soon as submitit has recorded the whole array.

Point side, :func:`attach_point` (from ``train.run`` in every point): reads the parent run id from the
sweep dir into ``cfg.sweep.parent_run_id`` (the point's TrainJob opens a child run under it) and writes
``<point dir>/point.json`` (point label, run dir, Slurm job id), which ``python -m stylegan_v.sweep
status|collect`` read.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from stylegan_v.files import atomic_write_json
from stylegan_v.launch.jobs import SUBMITIT_DIR

log = logging.getLogger(__name__)

SWEEP_FILE = "sweep.json"  # written by the callback: name, experiment, points (job number order), parent run
POINT_FILE = "point.json"  # written by each point into its own subfolder <sweep dir>/<job num>/
QUEUED_FILE = "queued.json"  # written when the submitting process leaves early (cluster.wait=false)
SUBMITIT_LAUNCHER_PREFIX = "hydra_plugins.hydra_submitit_launcher."
SWEEP_GROUP_PREFIX = "sweep/"  # points given as options of a group under sweeps/ (e.g. sweep/baselines=g3an)


# ----------------------------------------------------------------------------------------------- points


def _override_key(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def point_label(task_overrides: list[str], swept_keys: list[str]) -> str:
    """``k=v,k2=v2`` of the swept keys only; a group option ``sweep/baselines=g3an`` reads ``baselines=g3an``."""
    swept = {_override_key(k)[0] for k in swept_keys}
    parts = []
    for override in task_overrides:
        key, value = _override_key(override)
        if key in swept:
            parts.append(f"{key.removeprefix(SWEEP_GROUP_PREFIX)}={value}")
    return ",".join(parts)


def swept_keys(config: DictConfig, points: list[list[str]]) -> list[str]:
    """The keys that name a point: the sweep file's swept keys, then any other key whose value differs
    between points (comma lists on the command line)."""
    swept = [_override_key(k)[0] for k in (config.hydra.sweeper.get("params") or {})]
    return swept + [k for k in varying_keys(points) if k not in swept]


def varying_keys(points: list[list[str]]) -> list[str]:
    """Keys whose value differs between points: a sweep file's keys and any swept on the command line."""
    values: dict[str, set[str]] = {}
    for overrides in points:
        for override in overrides:
            key, value = _override_key(override)
            values.setdefault(key, set()).add(value)
    return [key for key, seen in values.items() if len(seen) > 1]


def _sweep_point_resolver() -> str:
    """``${sweep_point:}``: the current point's label; the one the sweep callback wrote to sweep.json (which
    also names values swept on the command line), else the sweep file's swept values of this job."""
    if not HydraConfig.initialized():
        raise ValueError("sweep.point needs Hydra's runtime config: run sweeps through "
                         "`python -m stylegan_v.train -m +sweep=<name> ...`")
    hydra_cfg = HydraConfig.get()
    sweep_file = Path(str(hydra_cfg.sweep.dir)) / SWEEP_FILE
    num = hydra_cfg.job.get("num")
    if num is not None and sweep_file.exists():
        points = json.loads(sweep_file.read_text())["points"]
        if 0 <= int(num) < len(points) and points[int(num)]["overrides"] == list(hydra_cfg.overrides.task):
            return str(points[int(num)]["point"])
    params = hydra_cfg.sweeper.get("params") or {}
    return point_label(list(hydra_cfg.overrides.task), list(params.keys()))


def sbatch_parameters(additional: DictConfig | dict[str, Any] | None, mem_gb: float | None) -> dict[str, Any]:
    """``${sbatch_parameters:${cluster.additional_parameters},${cluster.mem_gb}}`` in the sweep launcher's
    config: the extra sbatch options of every array element, with ``--mem`` from ``cluster.mem_gb`` as a single
    job gets it (hydra-submitit-launcher's own ``mem_gb`` takes whole GB only). As for single jobs, a ``mem``
    in ``cluster.additional_parameters`` wins."""
    given = OmegaConf.to_container(additional, resolve=True) if isinstance(additional, DictConfig) else additional
    memory = {} if mem_gb is None else {"mem": f"{int(float(mem_gb) * 1024)}M"}
    return {**memory, **(given or {})}


def register_resolvers() -> None:
    """Idempotent: entry points call it at import time, before Hydra composes."""
    if not OmegaConf.has_resolver("sweep_point"):
        OmegaConf.register_new_resolver("sweep_point", _sweep_point_resolver)
    if not OmegaConf.has_resolver("sbatch_parameters"):
        OmegaConf.register_new_resolver("sbatch_parameters", sbatch_parameters)


def expand_points(config: DictConfig) -> list[list[str]]:
    """The override lists of the points, in the order (= job numbers) Hydra's basic sweeper launches them.

    Uses the basic sweeper's own expansion, so the list cannot drift from what is launched; with Hydra's config
    loader, as the sweeper parses, so that ``glob(*)`` over a config group's options expands too.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # the sweeper our sweeps run on
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    target = str(config.hydra.sweeper.get("_target_", ""))
    if not target.endswith("BasicSweeper"):
        raise ValueError(f"hydra.sweeper must be Hydra's basic sweeper for a sweep file, got {target!r}")
    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    batches = BasicSweeper.split_arguments(parsed, None)
    return [list(point) for batch in batches for point in batch]


def point_configs(config: DictConfig, points: list[list[str]]) -> list[DictConfig]:
    """Each point's config composed as the launcher composes it for the point's job (Hydra's own
    ``load_sweep_config``), from the sweep's master config and the point's overrides."""
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    return [loader.load_sweep_config(config, list(overrides)) for overrides in points]


def prepare_points(points: list[DictConfig]) -> None:
    """Prepare, or check against its manifest, the dataset of every point before any point is queued: the
    check a single run makes (:func:`stylegan_v.prepare.ensure_prepared`), on the submitting side for Slurm and
    local points alike. Once per distinct dataset config, the largest resolution first, so that a point reading
    the data downsampled at load (``dataset.resize_on_load``, G3AN's 64²) finds the full-size version instead of
    preparing a small one under the same name."""
    from stylegan_v import prepare

    distinct: dict[str, DictConfig] = {}
    for point in points:
        key = json.dumps([str(point.paths.data_dir), prepare.settings_of(point)], sort_keys=True, default=str)
        distinct.setdefault(key, point)
    for point in sorted(distinct.values(), key=lambda p: -int(p.dataset.resolution)):
        prepare.ensure_prepared(point)


def uses_submitit_launcher(hydra_cfg: Any) -> bool:
    return str(hydra_cfg.launcher.get("_target_", "")).startswith(SUBMITIT_LAUNCHER_PREFIX)


def in_launcher_job() -> bool:
    """True inside a point that hydra-submitit-launcher started: this process is already the Slurm job of
    the point (one process per rank), so the training runs here instead of being submitted again."""
    if not HydraConfig.initialized():
        return False
    hydra_cfg = HydraConfig.get()
    return hydra_cfg.mode == RunMode.MULTIRUN and uses_submitit_launcher(hydra_cfg)


# ------------------------------------------------------------------------------------- submitting side


def _exit_once_queued(submitit_dir: Path, num_points: int, sweep_dir: Path, poll_s: float = 0.1) -> None:
    """Wait until submitit has recorded every point (``<job id>_submitted.pkl`` files appear once sbatch
    has answered), then end the process: the array is queued and nothing here is needed any more."""
    while True:
        found = sorted(submitit_dir.glob("*/*_submitted.pkl"))
        if len(found) >= num_points:
            break
        time.sleep(poll_s)
    job_ids = sorted({p.parent.name for p in found}, key=_job_sort_key)
    atomic_write_json(sweep_dir / QUEUED_FILE, {"job_ids": job_ids, "time": time.time()})
    print(f"queued {len(job_ids)} point(s) as Slurm job(s) {_array_ids(job_ids)}; follow them with\n"
          f"  python -m stylegan_v.sweep status {sweep_dir}\n  python -m stylegan_v.sweep collect {sweep_dir}",
          flush=True)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(0)  # the launcher would otherwise poll sacct until every point ends


def _job_sort_key(job_id: str) -> tuple[int, int]:
    head, _, task = job_id.partition("_")
    return int(head) if head.isdigit() else 0, int(task) if task.isdigit() else -1


def _array_ids(job_ids: list[str]) -> str:
    return ", ".join(sorted({j.partition("_")[0] for j in job_ids}))


def open_parent_run(config: DictConfig, sweep_dir: Path, points: list[dict[str, Any]]) -> str | None:
    """The sweep's MLflow parent run; the sweep dir plays the run dir (``mlflow_run.json`` lands there)."""
    from stylegan_v.configs import as_schema
    from stylegan_v.tracking.config import TrackingConfig
    from stylegan_v.tracking.records import run_id_of
    from stylegan_v.tracking.run import RunTracker

    tracking = as_schema(TrackingConfig, config.tracking)
    params = {"sweep.name": config.sweep.name, "experiment": config.experiment_name,
              "sweep.num_points": len(points), "sweep.dir": str(sweep_dir),
              **{f"sweep.params.{k}": v for k, v in (config.hydra.sweeper.get("params") or {}).items()}}
    tags = {"sweep.name": config.sweep.name, "experiment": config.experiment_name, "sweep.role": "parent"}
    RunTracker.open(sweep_dir, tracking, run_name=f"sweep-{config.sweep.name}-{sweep_dir.name}",
                    params=params, tags=tags)
    return run_id_of(sweep_dir)


def end_parent_run(sweep_dir: Path, status: str, only_if_running: bool = False) -> bool:
    """Give the sweep's parent MLflow run (``mlflow_run.json`` of the sweep dir) the final ``status``; False
    when there is no parent run, it already has that status, or (``only_if_running``) it has ended."""
    from stylegan_v.tracking.records import read_run_file

    record = read_run_file(sweep_dir)
    if record is None:
        return False
    from mlflow import MlflowClient

    client = MlflowClient(record["tracking_uri"])
    current = client.get_run(record["run_id"]).info.status
    if current == status or (only_if_running and current != "RUNNING"):
        return False
    client.set_terminated(record["run_id"], status=status)
    return True


def fail_parent_run(sweep_dir: Path, reason: str) -> None:
    """Mark the sweep's parent MLflow run FAILED if it is still RUNNING (never raises: this runs at exit)."""
    try:
        if end_parent_run(sweep_dir, "FAILED", only_if_running=True):
            log.error("sweep %s %s: its parent MLflow run is marked FAILED", sweep_dir, reason)
    except Exception as e:  # noqa: BLE001 - at exit, a tracking failure must not hide the original error
        log.warning("could not mark the parent MLflow run of %s FAILED: %s", sweep_dir, e)


class SweepCallback(Callback):
    """Set up a sweep once, on the submitting side, before the launcher starts any point; if the launcher then
    fails (sbatch refuses the array, a local point raises), the parent MLflow run is marked FAILED at exit
    instead of staying RUNNING. A sweep that leaves once queued (``cluster.wait=false``) exits through
    ``os._exit``, which skips that hook: its points are queued and ``sweep collect`` closes the parent."""

    def __init__(self) -> None:
        self._ended = False
        # The submitting process's Slurm variables, hidden while the sweep submits and put back at its end
        # (a plain dict: the launcher pickles its Hydra context, callbacks included, into every point).
        self._hidden_env: dict[str, str] = {}

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._ended = True
        os.environ.update(self._hidden_env)

    def _fail_unless_ended(self, sweep_dir: Path) -> None:
        if not self._ended:
            fail_parent_run(sweep_dir, "did not finish launching")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from stylegan_v.configs import as_schema
        from stylegan_v.launch.config import SlurmClusterConfig
        from stylegan_v.launch.submit import check_slurm_ready

        if config.cluster.kind == "slurm":
            check_slurm_ready(as_schema(SlurmClusterConfig, OmegaConf.to_container(config.cluster, resolve=True)))
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        expanded = expand_points(config)
        prepare_points(point_configs(config, expanded))  # once here, not by points racing each other
        swept = swept_keys(config, expanded)
        points = [{"num": num, "point": point_label(overrides, swept), "overrides": overrides}
                  for num, overrides in enumerate(expanded)]
        parent_run_id = open_parent_run(config, sweep_dir, points)
        atexit.register(self._fail_unless_ended, sweep_dir)
        if parent_run_id is None:
            log.warning("no MLflow parent run (tracking disabled or the store unreachable): points run unnested")
        atomic_write_json(sweep_dir / SWEEP_FILE, {
            "name": config.sweep.name, "experiment": config.experiment_name, "parent_run_id": parent_run_id,
            "cluster": str(config.cluster.kind), "created": time.time(), "points": points})
        log.info("sweep %s: %d point(s), parent MLflow run %s, folder %s", config.sweep.name, len(points),
                 parent_run_id, sweep_dir)
        if config.cluster.kind == "slurm" and not config.cluster.wait and uses_submitit_launcher(config.hydra):
            threading.Thread(target=_exit_once_queued, args=(sweep_dir / SUBMITIT_DIR, len(points), sweep_dir),
                             name="sweep-queued-watcher", daemon=True).start()
        if config.cluster.kind == "slurm" and uses_submitit_launcher(config.hydra):
            # Submitted from inside an allocation (`salloc`, a job), the launcher's sbatch would hand its SLURM_*
            # and rank variables to every point: hide them until the sweep ends (only the submitting side runs
            # this callback; the points' own variables are Slurm's).
            import submitit

            with submitit.helpers.clean_env():  # submitit's own list of what a nested submission must not see
                kept = set(os.environ)
            self._hidden_env = {k: os.environ.pop(k) for k in list(os.environ) if k not in kept}


# ------------------------------------------------------------------------------------------ point side


def attach_point(cfg: DictConfig) -> Path | None:
    """In a sweep point: fill ``cfg.sweep.parent_run_id`` from the sweep dir and record the point there.

    Returns the point's folder (``<sweep dir>/<job num>``), None outside a sweep. A sweep file used without
    ``-m`` is an error: its swept values would be silently ignored.
    """
    if cfg.get("sweep") is None:
        return None
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        raise ValueError(f"+sweep={cfg.sweep.name} needs Hydra's multirun flag: "
                         "python -m stylegan_v.train -m +sweep=<name> experiment=<run> [cluster=slurm]")
    hydra_cfg = HydraConfig.get()
    sweep_dir = Path(hydra_cfg.sweep.dir)
    point_dir = Path(hydra_cfg.runtime.output_dir)
    sweep_file = sweep_dir / SWEEP_FILE
    parent = json.loads(sweep_file.read_text()).get("parent_run_id") if sweep_file.exists() else None
    with open_dict(cfg):
        cfg.sweep.parent_run_id = parent
    return point_dir


def record_point(cfg: DictConfig, point_dir: Path, run_dir: Path) -> None:
    """``point.json`` (rank 0's view; every rank writes the same content): what status/collect join on."""
    job_id = os.environ.get("SLURM_ARRAY_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    slurm_id = f"{job_id}_{task}" if job_id and task else os.environ.get("SLURM_JOB_ID")
    point_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(point_dir / POINT_FILE, {
        "num": int(HydraConfig.get().job.num), "point": str(cfg.sweep.point), "run_dir": str(run_dir),
        "slurm_job_id": slurm_id, "parent_run_id": cfg.sweep.parent_run_id,
        "overrides": list(HydraConfig.get().overrides.task)})
