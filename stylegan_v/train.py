"""``python -m stylegan_v.train [experiment=…] [cluster=local|slurm] [overrides]``: one training run.

The config is validated here, on the login node, before anything is queued; the job then runs on
``cfg.cluster`` (this process, local DDP processes, or a multi-node Slurm job) through the launch layer.
Re-running the same command resumes the same run (its directory is derived from the config).

Sweeps (``-m +sweep=<name>``, see ``stylegan_v/launch/sweep.py``): each point runs through :func:`run`. With
``cluster=slurm`` hydra-submitit-launcher has already made the point a Slurm job (one process per rank), so
the training runs right here in that process instead of being submitted again; a USR2 then requeues the
array element through the launcher's own ``checkpoint`` and the requeued point resumes from its run dir.

torch, MLflow and the training code are imported inside :func:`run`, so ``--help`` and a refused value answer
at once.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from stylegan_v.cli import entry_point
from stylegan_v.configs import register_configs, resolved_yaml, validate

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, Any]:
    from stylegan_v import prepare
    from stylegan_v.files import exclusive_lock
    from stylegan_v.launch.config import SlurmClusterConfig
    from stylegan_v.launch.submit import check_slurm_ready, rank0_result, submit
    from stylegan_v.launch.sweep import attach_point, in_launcher_job, record_point
    from stylegan_v.tracking.cost import PROJECTED_FILE
    from stylegan_v.training.job import RUN_LOCK, TrainJob, run_dir_of

    point_dir = attach_point(cfg)  # sweep points: the parent MLflow run's id; None for single runs
    typed = validate(cfg)
    cluster = typed.cluster
    if isinstance(cluster, SlurmClusterConfig):
        check_slurm_ready(cluster)  # partition and node count against sinfo, before anything is prepared or queued
    run_dir = run_dir_of(cfg)
    if point_dir is not None and os.environ.get("SLURM_PROCID", "0") == "0":
        record_point(cfg, point_dir, run_dir)
    if in_launcher_job():  # already the Slurm job of this point (the sweep callback prepared the data)
        log.info("sweep point %s: training in this job, run directory %s", cfg.sweep.point, run_dir)
        if os.environ.get("SLURM_PROCID", "0") == "0" and not (run_dir / PROJECTED_FILE).exists():
            record_projection(typed, run_dir)  # on the point's own node: its device class measures the step
        return TrainJob()(resolved_yaml(cfg))
    with exclusive_lock(run_dir / RUN_LOCK, f"run directory {run_dir}", wait=False):
        pass  # refuse before queueing when another job trains into this folder (the job locks it again)
    prepare.ensure_prepared(cfg)
    log.info("run directory %s", run_dir)
    record_projection(typed, run_dir)
    job = submit(TrainJob(), resolved_yaml(cfg), cluster=cluster, name=f"train-{run_dir.name}")
    if isinstance(cluster, SlurmClusterConfig) and not cluster.wait:
        log.info("queued job %s; follow it with `squeue -j %s` and `sacct -j %s`", job.job_id, job.job_id,
                 job.job_id)
        return {"status": "queued", "job_id": job.job_id, "run_dir": str(run_dir)}
    result = {**rank0_result(job), "job_id": job.job_id}
    log.info("training %s: %s", result["status"], result)
    export_dir = (cfg.get("pipeline") or {}).get("export_dir")
    if export_dir and result["status"] == "finished":
        export(Path(result["run_dir"]), Path(export_dir), result)
    return result


def record_projection(typed: Any, run_dir: Path) -> None:
    """The launch's projected cost in the run dir, for MLflow (``cost/projected_gpu_days`` beside the
    measured ``cost/gpu_days``) and the reports: measured here on a cache miss when this machine is the
    target device class, otherwise the cached figure or none."""
    from stylegan_v.files import atomic_write_json
    from stylegan_v.launch.plan import project
    from stylegan_v.tracking.cost import PROJECTED_FILE

    p = project(typed)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / PROJECTED_FILE, {
        "gpu_days": p.gpu_days, "device_days": p.device_days, "wall_s": p.wall_s, "steps": p.steps,
        "step_s": p.step_s, "device": p.device, "source": p.source}, indent=2)


def export(run_dir: Path, out: Path, summary: dict[str, Any]) -> None:
    """The pipeline's view of a finished run: a small generator file (G_ema + config), the summary with the
    cost, the MLflow run id, the curves as tables and the sample grids (``dvc plots``), so ``evaluate`` and
    ``report`` depend on files DVC can hash and cache."""
    from stylegan_v.files import atomic_write_json
    from stylegan_v.tracking.records import RUN_FILE
    from stylegan_v.training import checkpoint
    from stylegan_v.training.curves import copy_sample_grids, write_curves

    _, state = checkpoint.load_latest(run_dir)
    checkpoint.write(out / "generator.pt", {"G_ema": state["G_ema"], "config": state["config"],
                                            "progress": state["progress"]})
    atomic_write_json(out / "train.json", summary, indent=2)
    write_curves(run_dir, out / "plots")
    copy_sample_grids(run_dir, out / "samples")
    if (run_dir / RUN_FILE).exists():
        shutil.copyfile(run_dir / RUN_FILE, out / RUN_FILE)  # evaluate logs to the same run


register_configs()


def _before_launch(points: list[tuple[str, Any]], plan: bool) -> None:
    from stylegan_v.launch.plan import before_launch

    before_launch(points, plan)


@entry_point("train", check=validate, before_launch=_before_launch)
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
