"""Sweeps on the real local Slurm cluster, driven through the real command line.

- ``+sweep=period_scaling experiment=smoke cluster=slurm``: all four points as ONE job array with the memory
  of ``cluster.mem_gb``, each ending with a (reduced) FVD and its cost in an MLflow child run under the sweep's
  parent run.
- ``cluster.wait=false``: the command returns once the array is queued; a USR2 sent to one element makes
  it checkpoint and requeue through the launcher, and the requeued element resumes (slow).
- ``cluster=local``: the same sweep runs its points one after another in this process (slow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_config import TINY_WITH_FVD

REPO = Path(__file__).resolve().parents[2]
# The shared tiny model with a 2-video FVD.
TINY = TINY_WITH_FVD
SLURM = ["cluster=slurm", "cluster.timeout_min=15", "cluster.signal_delay_s=60"]


def _cache_dir() -> str:
    """The project cache (I3D weights are fetched once); never the repo's runs/, data/ or mlflow.db."""
    return os.environ.get("STYLEGAN_V_CACHE_DIR", str(REPO / ".cache" / "stylegan_v"))


def _train(tmp_path: Path, *overrides: str, timeout: float) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stylegan_v.train", "-m", *TINY, f"paths.data_dir={tmp_path / 'data'}",
               f"paths.runs_dir={tmp_path / 'runs'}", f"paths.cache_dir={_cache_dir()}",
               f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", *overrides]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _sweep_dir(tmp_path: Path, name: str) -> Path:
    (found,) = (tmp_path / "runs" / "sweeps" / name).iterdir()
    return found


def _sweep_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "stylegan_v.sweep", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _sacct(job_ids: str, *extra: str) -> list[list[str]]:
    out = subprocess.run(["sacct", "-j", job_ids, "-X", "-n", "-P", "-o", "JobID,State", *extra],
                         capture_output=True, text=True, timeout=30).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def _megabytes(req_mem: str) -> int:
    """sacct's ReqMem ("1536M", "1.50G", older Slurm "1536Mn" per node) in MB."""
    value = req_mem.rstrip("nc")
    return round(float(value[:-1]) * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[value[-1]])


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def _child_runs(tmp_path: Path, parent_run_id: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = client.get_run(parent_run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
    return client, parent, children


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_period_scaling_runs_as_one_array_with_fvd_and_cost_under_one_parent(tmp_path) -> None:
    _train(tmp_path, "+sweep=period_scaling", *SLURM, "cluster.mem_gb=1.5", "training.max_steps=2", timeout=600)
    sweep_dir = _sweep_dir(tmp_path, "period_scaling")
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert [p["point"] for p in sweep["points"]] == [
        f"model.motion.period_scheme={s}" for s in ("geometric", "linear", "exponential", "random")]

    job_ids = sorted(p.parent.name for p in (sweep_dir / ".submitit").glob("*/*_submitted.pkl"))
    arrays = {j.partition("_")[0] for j in job_ids}
    assert len(job_ids) == 4 and len(arrays) == 1, f"one job array of four elements, got {job_ids}"
    (array,) = arrays
    _wait_for(lambda: [s for _, s in _sacct(array)] == ["COMPLETED"] * 4, 60, "sacct to record the array")
    assert sorted(j for j, _ in _sacct(array)) == sorted(job_ids)
    requested = {_megabytes(row[-1]) for row in _sacct(array, "-o", "ReqMem")}  # without --mem: the node's 8000M
    assert requested == {1536}, f"cluster.mem_gb=1.5 did not reach every point: {requested} MB"

    client, parent, children = _child_runs(tmp_path, sweep["parent_run_id"])
    assert parent.data.tags["sweep.name"] == "period_scaling"
    assert len(children) == 4, "one MLflow child run per point"
    assert {c.data.tags["sweep.point"] for c in children} == {p["point"] for p in sweep["points"]}
    for child in children:
        metrics = child.data.metrics
        assert child.info.status == "FINISHED" and child.data.tags["sweep.name"] == "period_scaling"
        assert metrics["metrics/fvd256_16f"] > 0, "each point ends with an FVD (reduced protocol)"
        assert metrics["cost/device_days"] > 0 and metrics["cost/sacct_device_days"] > 0, "and with its cost"
        assert metrics["cost/projected_device_days"] > 0, "beside the cost projected before it trained"
        assert child.data.tags["slurm.job_ids"], "the point ran as a Slurm job"

    status = _sweep_cli("status", str(sweep_dir))
    assert status.count("COMPLETED") >= 4 and "4 COMPLETED" in status
    table = _sweep_cli("collect", str(sweep_dir))
    assert "parent MLflow run closed as FINISHED" in table
    lines = (sweep_dir / "results.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    assert len(rows) == 4 and all(float(r[header.index("fvd256_16f")]) > 0 for r in rows)
    assert all(float(r[header.index("cost/sacct_device_days")]) > 0 for r in rows)
    assert client.get_run(sweep["parent_run_id"]).info.status == "FINISHED"


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_walk_away_then_usr2_requeues_a_point_through_the_launcher(tmp_path) -> None:
    started = time.monotonic()
    # 150 steps (the smoke experiment's 0.12 kimg would end at step 20): USR2 goes out within a poll (1 s) of the
    # first tick, while ≥ 15 s of training are left at the fastest step seen (0.1 s), so it lands mid-run.
    done = _train(tmp_path, "+sweep=augmentation", *SLURM, "cluster.wait=false", "training.total_kimg=1000",
                  "training.max_steps=150", timeout=180)
    submit_s = time.monotonic() - started
    sweep_dir = _sweep_dir(tmp_path, "augmentation")
    queued = json.loads((sweep_dir / "queued.json").read_text())
    assert len(queued["job_ids"]) == 2 and "python -m stylegan_v.sweep status" in done.stdout
    (array,) = {j.partition("_")[0] for j in queued["job_ids"]}
    _wait_for(lambda: bool(_sacct(array)), 30, "the accounting record of the queued array")
    states = [s for _, s in _sacct(array)]
    assert any(s in ("PENDING", "RUNNING") for s in states), f"returned at queueing: {states}"
    assert "2 " in _sweep_cli("status", str(sweep_dir)).splitlines()[-1]

    first = f"{array}_0"
    logs = [sweep_dir / ".submitit" / first / f"{first}_0_log.{kind}" for kind in ("out", "err")]

    def log_text() -> str:
        return "".join(p.read_text(errors="replace") for p in logs if p.exists())

    _wait_for(lambda: "tick 1 " in log_text(), 240, "the first tick")
    subprocess.run(["scancel", "--signal=USR2", first], check=True, timeout=30)
    _wait_for(lambda: [s for _, s in _sacct(array)] == ["COMPLETED"] * 2, 480, "both points to finish")
    segments = [s for j, s in _sacct(first, "-D") if j == first]
    assert segments[0] == "REQUEUED" and segments[-1] == "COMPLETED", segments
    assert "resumed from" in log_text(), "the requeued point resumes its checkpoint"

    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    _, _, children = _child_runs(tmp_path, sweep["parent_run_id"])
    assert len(children) == 2, "the requeued point continues its own child run"
    assert all(c.data.metrics["metrics/fvd256_16f"] > 0 for c in children)
    print(f"submit-and-walk-away returned after {submit_s:.1f} s")


BASELINES = ["experiment=smoke", "+sweep=baselines", "+sweep/baselines=stylegan_v,stylegan2,mocogan_sg2,g3an_cpu",
             "dataset.num_videos=8", "training.batch_size=2", "training.max_steps=2", "training.num_workers=0",
             "training.sample_grid=[1,2]", "training.metrics=[fvd256_16f]", "metrics.num_videos=2",
             "metrics.progress=false"]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_baselines_sweep_fills_the_baseline_rows_of_table6(tmp_path) -> None:
    """StyleGAN-V, StyleGAN2 (motion off), MoCoGAN+SG2 and G3AN (each with its own recipe) as one array on the
    same data: four FINISHED child runs with FVD and cost under one parent; the report's Table 6 takes its
    baseline rows from them, marked as the reduced protocol."""
    command = [sys.executable, "-m", "stylegan_v.train", "-m", f"paths.data_dir={tmp_path / 'data'}",
               f"paths.runs_dir={tmp_path / 'runs'}", f"paths.cache_dir={_cache_dir()}",
               f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", *BASELINES, *SLURM]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    sweep = json.loads((_sweep_dir(tmp_path, "baselines") / "sweep.json").read_text())
    _, _, children = _child_runs(tmp_path, sweep["parent_run_id"])
    assert sorted((c.data.params["model.name"], c.data.params.get("model.motion.kind")) for c in children) == [
        ("g3an", None), ("mocogan_sg2", "lstm"), ("stylegan_v", "acyclic"), ("stylegan_v", "none")]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.metrics["metrics/fvd256_16f"] > 0 and child.data.metrics["cost/device_days"] > 0
    g3an = next(c for c in children if c.data.params["model.name"] == "g3an")
    assert g3an.data.params["training.recipe"] == "g3an" and "loss/D_video" in g3an.data.metrics

    out = tmp_path / "report"
    report = subprocess.run([sys.executable, "-m", "stylegan_v.report", f"paths.data_dir={tmp_path / 'data'}",
                             f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", f"report.out_dir={out}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-4000:]
    table6 = (out / "tables" / "table6.md").read_text()
    for row in ("MoCoGAN+SG2 (ours)", "G3AN (our implementation)"):
        line = next(line for line in table6.splitlines() if line.startswith(f"| {row} |"))
        ours = line.split("|")[3].strip()  # the "FVD₁₆ (ours)" cell
        assert "†" in ours and ours[0].isdigit(), line
    stylegan2 = next(line for line in table6.splitlines() if line.startswith("| StyleGAN2 [29] |"))
    assert "not run" not in stylegan2 and "N/A (image generator)" in stylegan2, stylegan2


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_a_refused_submission_marks_the_parent_run_failed(tmp_path) -> None:
    """sbatch refuses the array (no node has the feature): the command fails and the sweep's parent run
    says FAILED instead of staying RUNNING for ever."""
    command = [sys.executable, "-m", "stylegan_v.train", "-m", *TINY, f"paths.data_dir={tmp_path / 'data'}",
               f"paths.runs_dir={tmp_path / 'runs'}", f"paths.cache_dir={_cache_dir()}",
               f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", "+sweep=augmentation", *SLURM,
               "cluster.constraint=no_such_feature", "training.max_steps=2"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    sweep = json.loads((_sweep_dir(tmp_path, "augmentation") / "sweep.json").read_text())
    _, parent, children = _child_runs(tmp_path, sweep["parent_run_id"])
    assert parent.info.status == "FAILED" and not children


@pytest.mark.slow
def test_cluster_local_runs_the_points_one_after_another(tmp_path) -> None:
    _train(tmp_path, "+sweep=augmentation", "cluster=local", "training.max_steps=2", timeout=420)
    sweep_dir = _sweep_dir(tmp_path, "augmentation")
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    _, _, children = _child_runs(tmp_path, sweep["parent_run_id"])
    assert len(children) == 2 and all(c.data.metrics["metrics/fvd256_16f"] > 0 for c in children)
    ends = sorted((c.info.start_time, c.info.end_time) for c in children)
    assert ends[0][1] <= ends[1][0], "cluster=local runs the points one after another"
    assert "2 COMPLETED" in _sweep_cli("status", str(sweep_dir))


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_each_point_can_span_two_nodes(tmp_path) -> None:
    """cluster.nodes=2: every array element is a 2-rank gloo job; rank 0 of each logs the point's child run."""
    _train(tmp_path, "+sweep=augmentation", *SLURM, "cluster.nodes=2", "training.max_steps=2",
           "training.dist_timeout_s=120", timeout=480)
    sweep_dir = _sweep_dir(tmp_path, "augmentation")
    for num in (0, 1):
        (out,) = (sweep_dir / ".submitit").glob(f"*_{num}/*_{num}_0_log.out")
        assert "2 rank(s)" in out.read_text(errors="replace"), "the point trained on two ranks"
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    _, _, children = _child_runs(tmp_path, sweep["parent_run_id"])
    assert len(children) == 2, "one child run per point, not one per rank"
    assert all(c.data.metrics["metrics/fvd256_16f"] > 0 for c in children)
