"""Training on the real local Slurm cluster: two nodes over gloo, requeue + resume, a dead rank ends the job."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from stylegan_v import train
from stylegan_v.training import checkpoint
from stylegan_v.training.job import run_dir_of

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

SLURM = ("cluster=slurm", "cluster.nodes=2", "cluster.tasks_per_node=1", "cluster.timeout_min=15",
         "cluster.signal_delay_s=60", "training.dist_timeout_s=60")


def _sacct_states(job_id: str) -> list[str]:
    """States of every segment of the job (-D lists the requeued ones too), oldest first."""
    out = subprocess.run(["sacct", "-j", job_id, "-X", "-D", "-n", "-P", "-o", "State"], capture_output=True,
                         text=True, timeout=30).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def _rank_pids(job_id: str, rank: int) -> list[int]:
    """PIDs of the Python processes of one rank of a job (all 'nodes' share this host)."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            env = dict(item.split("=", 1) for item in environ.read_bytes().decode(errors="replace").split("\0")
                       if "=" in item)
            cmdline = (environ.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if (env.get("SLURM_JOB_ID") == job_id and env.get("SLURM_PROCID") == str(rank)
                and b"submitit" in cmdline and b"python" in cmdline):
            pids.append(int(environ.parent.name))
    return pids


def _rank0_log(cfg, job_id: str) -> str:
    """What rank 0 of the job has logged so far (every segment of a requeued job)."""
    return "".join(p.read_text(errors="replace") for p in Path(cfg.cluster.log_dir).rglob(f"{job_id}_0_log.err"))


def _mlflow_runs(cfg):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(cfg.tracking.tracking_uri)
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    return client, client.search_runs([experiment.experiment_id])


def test_two_node_smoke_trains_and_checkpoints(tiny_cfg) -> None:
    cfg = tiny_cfg(*SLURM, "training.max_steps=4")
    result = train.run(cfg)
    assert result["status"] == "finished" and result["step"] == 4
    path, state = checkpoint.load_latest(run_dir_of(cfg))
    assert state["progress"]["step"] == 4 and len(state["rng"]) == 2, "RNG states of both ranks are saved"
    _wait_for(lambda: _sacct_states(result["job_id"]) == ["COMPLETED"], 60, "sacct to record COMPLETED")
    client, runs = _mlflow_runs(cfg)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    metrics, tags = runs[0].data.metrics, runs[0].data.tags
    assert metrics["cost/gpu_days"] == 0 and metrics["cost/device_days"] > 0, "a CPU run costs device-days"
    assert metrics["cost/sacct_device_days"] > 0, "Slurm's own figure is logged beside ours"
    assert tags["slurm.job_ids"] == result["job_id"] and len(tags["mlflow.source.git.commit"]) == 40


def test_usr2_checkpoints_requeues_and_resumes(tiny_cfg) -> None:
    """USR2 mid-run checkpoints and requeues; the next segment resumes into the same MLflow run and cost meter;
    scancel then ends it with a checkpoint. The run is far too long to finish here (1000 kimg), so each
    signal lands while it trains, on a fast machine or a slow one; the test ends it."""
    cfg = tiny_cfg(*SLURM, "training.total_kimg=1000", "training.snapshot_ticks=20", "cluster.wait=false")
    queued = train.run(cfg)
    job_id, run_dir = queued["job_id"], Path(queued["run_dir"])

    def after_resume() -> str:
        return _rank0_log(cfg, job_id).partition("resumed from")[2]

    _wait_for(lambda: "tick 1 " in _rank0_log(cfg, job_id), 240, "the first tick")
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
    # The second segment resumes and trains past its first snapshot (a checkpoint, then Slurm's cost figure:
    # scancel's SIGTERM reaches every process of the job, the sacct it runs too, so the next tick is awaited).
    _wait_for(lambda: "tick " in after_resume().partition(" checkpoint /")[2], 420,
              "the requeued segment to resume and pass a snapshot")
    assert _sacct_states(job_id)[0] == "REQUEUED"
    resumed_step = int(after_resume().partition("(step ")[2].partition(")")[0])
    subprocess.run(["scancel", job_id], check=True, timeout=30)  # SIGTERM: checkpoint and stop, no requeue
    # Slurm records CANCELLED at once; the ranks then have KillWait (5 s) to checkpoint and close their run.
    _wait_for(lambda: not _rank_pids(job_id, 0) and not _rank_pids(job_id, 1), 120, "the job's processes to end")
    assert _sacct_states(job_id)[-1].startswith("CANCELLED")

    _, state = checkpoint.load_latest(run_dir)
    assert state["progress"]["step"] > resumed_step > 0, "the second segment trains on from the first's checkpoint"
    segments = state["progress"]["extra"]["cost"]["segments"]
    assert [seg["job_id"] for seg in segments] == [job_id, job_id], "the cost meter spans both job segments"
    client, runs = _mlflow_runs(cfg)
    assert len(runs) == 1, "the requeued segment continues the same MLflow run"
    run = runs[0]
    assert run.info.status == "KILLED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss/G")]
    assert steps == sorted(set(steps)), f"metric steps repeat or go back: {steps}"
    frames_per_step = cfg.training.batch_size * cfg.dataset.sampling.num_frames
    assert resumed_step * frames_per_step < steps[-1] <= state["progress"]["step"] * frames_per_step, \
        "the second segment's ticks are logged"
    assert run.data.metrics["cost/sacct_device_days"] > 0


def test_killing_one_rank_ends_the_job(tiny_cfg) -> None:
    cfg = tiny_cfg(*SLURM, "training.total_kimg=1000", "cluster.wait=false", "training.dist_timeout_s=30")
    job_id = train.run(cfg)["job_id"]
    _wait_for(lambda: "tick 1 " in _rank0_log(cfg, job_id), 240, "the training loop")
    rank1 = _rank_pids(job_id, 1)
    assert rank1, "rank 1 trains beside rank 0"
    killed_at = time.monotonic()
    for pid in rank1:
        os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: bool(_sacct_states(job_id)) and _sacct_states(job_id)[-1] not in ("RUNNING", "PENDING"),
              150, "the job to end")
    assert time.monotonic() - killed_at < 120
    assert _sacct_states(job_id)[-1] in ("FAILED", "CANCELLED", "NODE_FAIL")
