"""The unit that runs on each rank: join the group, train, stop cleanly, and requeue on Slurm.

``TrainJob`` is a submitit ``Checkpointable``. The job carries only the resolved config (YAML text): on a
requeue submitit pickles a *fresh* ``TrainJob`` with the same text (see :meth:`checkpoint`), which derives
the same deterministic run directory and resumes from the newest valid checkpoint there.

Signals: USR2 (Slurm's warning before the time limit, or a preemption) → checkpoint, then submitit's own
handler requeues the job (up to ``cluster.max_num_timeout``); SIGTERM/SIGINT (``scancel``, Ctrl-C) →
checkpoint and stop without a requeue. Outside the training loop USR2 goes to :class:`SubmititUsr2`: submitit's
requeue until the run is done, nothing after.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import submitit
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from stylegan_v.configs import validate
from stylegan_v.files import LockBusy, append_jsonl, atomic_write_text, exclusive_lock, read_jsonl, remove_stale_temps
from stylegan_v.launch.allocator import keep_freed_memory
from stylegan_v.launch.distributed import DistributedEnv, distributed
from stylegan_v.tracking.run import RunTracker
from stylegan_v.tracking.system_metrics import system_metrics
from stylegan_v.training import checkpoint
from stylegan_v.training.loop import Trainer
from stylegan_v.training.rundir import run_dir as derive_run_dir

log = logging.getLogger(__name__)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


RUN_LOCK = ".lock"  # in the run directory, held by rank 0 of the job training into it
FINISHED_RUNS = "finished_runs.jsonl"  # in paths.runs_dir: one line per finished run

# How a segment ends, as the MLflow run should record it.
CLOSE_STATUS = {("finished", None): "FINISHED", ("interrupted", signal.SIGUSR2): "REQUEUED",
                ("interrupted", signal.SIGTERM): "KILLED"}


def run_dir_of(cfg: DictConfig) -> Path:
    return derive_run_dir(cfg.paths.runs_dir, cfg.experiment_name, OmegaConf.to_container(cfg, resolve=True))


@contextlib.contextmanager
def lock_run_dir(run_dir: Path, env: DistributedEnv) -> Iterator[None]:
    """Rank 0 holds the run directory's lock for the whole job; every rank refuses together when another job
    holds it (two identical commands would otherwise both train into one folder and log every step twice)."""
    with contextlib.ExitStack() as stack:
        error = None
        if env.is_main:
            try:
                stack.enter_context(exclusive_lock(run_dir / RUN_LOCK, f"run directory {run_dir}", wait=False))
            except LockBusy as busy:
                error = str(busy)
        if env.is_distributed:
            box = [error]
            dist.broadcast_object_list(box, src=0)
            error = box[0]
        if error is not None:
            raise LockBusy(error)
        yield


def remove_stale_writes(run_dir: Path) -> None:
    """Remove the temporary files of this run's writes that a kill interrupted (a checkpoint's is as large as
    a checkpoint): only the files a training job writes, while it holds the run directory's lock (so none of
    them is being written). The tracker tidies its own files under its journal lock."""
    remove_stale_temps(checkpoint.checkpoint_dir(run_dir), checkpoint.GLOB)
    remove_stale_temps(run_dir / "samples", "samples-*.png")  # the loop's sample grids
    remove_stale_temps(run_dir, "config.yaml", checkpoint.BEST_FILE)


def record_finished(run_dir: Path, cfg: DictConfig, run_id: str | None) -> None:
    """Append the run to ``<runs_dir>/finished_runs.jsonl``: the file changes exactly when a run finishes, so
    the report stage of the pipeline depends on it (and re-runs when a sweep elsewhere adds a run). A finished
    run started again (``dvc repro --force``) finishes at once and is not recorded twice."""
    path = Path(cfg.paths.runs_dir) / FINISHED_RUNS
    record = {"run_dir": str(run_dir), "mlflow_run_id": run_id, "experiment": cfg.experiment_name}
    if path.exists() and record in read_jsonl(path):
        return
    append_jsonl(path, record)


class SubmititUsr2:
    """Answers USR2 in a submitit job while the training loop is not running (the loop answers it itself, with a
    checkpoint). Until the run is done, submitit's handler answers: it requeues, and the next segment resumes
    the last checkpoint. Once the run is done (its last checkpoint written), a requeue would only start a segment
    that finds the run finished, so the signal is logged and ignored until the process exits: Slurm's time-limit
    warning or a preemption can land in a finished job's last seconds (closing the tracker, writing submitit's
    result)."""

    def __init__(self, requeue: Callable[[int, Any], None]) -> None:
        self.requeue = requeue  # submitit's handler: calls TrainJob.checkpoint, requeues, exits
        self.trainer: Trainer | None = None  # set once built; before that, nothing is done

    @classmethod
    def install(cls) -> SubmititUsr2 | None:
        """Put one in front of submitit's USR2 handler and return it; None where USR2 has no Python handler
        (training in-process, outside a submitit job: the process keeps its own)."""
        current = signal.getsignal(signal.SIGUSR2)
        if not callable(current):
            return None
        guard = cls(current)
        signal.signal(signal.SIGUSR2, guard)
        return guard

    def __call__(self, signum: int, frame: Any) -> None:
        if self.trainer is not None and self.trainer.done():
            log.warning("USR2 after the run finished: not requeued (nothing is left to train)")
            return
        self.requeue(signum, frame)


class TrainJob(submitit.helpers.Checkpointable):
    """``TrainJob()(config_yaml)`` trains on this rank; returns a summary on rank 0."""

    def __call__(self, config_yaml: str) -> dict[str, Any]:
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
        usr2 = SubmititUsr2.install()
        cfg = OmegaConf.create(config_yaml)
        run_dir = run_dir_of(cfg)
        typed = validate(cfg)  # once per process; typed sections go down from here
        with distributed(timeout_s=float(cfg.training.dist_timeout_s)) as env, lock_run_dir(run_dir, env):
            if env.device.type == "cpu":
                keep_freed_memory()  # see launch/allocator.py: big CPU steps are dominated by page faults
            if env.is_main:
                run_dir.mkdir(parents=True, exist_ok=True)
                remove_stale_writes(run_dir)
                atomic_write_text(run_dir / "config.yaml", config_yaml)
            sweep = cfg.get("sweep") or {}  # set for the points of a sweep (sweeps/): name, point, parent run
            tags = {"mlflow.source.git.commit": git_commit(), "mlflow.source.name": "stylegan_v.train",
                    "experiment": cfg.experiment_name, "sweep.name": sweep.get("name"),
                    "sweep.point": sweep.get("point")}
            tracker = RunTracker.open(run_dir, typed.tracking, run_name=run_dir.name,
                                      params=OmegaConf.to_container(cfg, resolve=True),
                                      tags={k: v for k, v in tags.items() if v is not None},
                                      parent_run_id=sweep.get("parent_run_id"), is_main=env.is_main)
            tracker.log_artifact(run_dir / "config.yaml")  # the resolved config, as the job ran it
            if env.is_distributed:
                dist.barrier()  # rank 0 has written mlflow_run.json: every node's monitor can find the run
            with system_metrics(run_dir, typed.tracking, first_on_node=env.local_rank == 0):
                try:
                    trainer = Trainer(cfg, run_dir, env, tracker, typed)
                    if usr2 is not None:
                        usr2.trainer = trainer
                    tracker.set_tags({"dataset_hash": trainer.videos.content_hash,
                                      "dataset_version": str(trainer.videos.path)})
                    tracker.log_input(cfg.dataset.name, trainer.videos.content_hash, str(trainer.videos.path))
                    status = trainer.run()
                except BaseException:
                    tracker.close("FAILED")
                    raise
            tracker.close(CLOSE_STATUS[status, trainer.stop_signal])
            if env.is_main and status == "finished":
                record_finished(run_dir, cfg, tracker.run_id)
            summary = {"status": status, "run_dir": str(run_dir), "kimg": trainer.progress.kimg,
                       "step": trainer.progress.step, "rank": env.rank, "mlflow_run_id": tracker.run_id,
                       **trainer.cost.totals()}
        if status == "interrupted" and trainer.stop_signal == signal.SIGUSR2:
            self._requeue_through_submitit(usr2, env.is_main)
        return summary

    @staticmethod
    def _requeue_through_submitit(usr2: SubmititUsr2 | None, is_main: bool) -> None:
        """Hand over to submitit's USR2 handler: it pickles :meth:`checkpoint`'s submission and requeues."""
        if usr2 is None:
            log.info("stopped on USR2 outside a submitit job: not requeued; run the same command to resume")
            return
        if is_main:
            usr2.requeue(signal.SIGUSR2, None)  # requeues and exits the process

    def checkpoint(self, config_yaml: str) -> submitit.helpers.DelayedSubmission:
        # State lives in the run directory (written at the step boundary), so the requeued job starts light.
        return submitit.helpers.DelayedSubmission(TrainJob(), config_yaml)
