"""Cost accounting: segments add up across a checkpoint round trip; Slurm's figure from a real job."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from stylegan_v.tracking import RunTracker, TrackingConfig
from stylegan_v.tracking.cost import SECONDS_PER_DAY, CostMeter, cost_metrics, gpus_in_tres, parse_tres, sacct_cost


def test_two_segments_add_up_across_a_requeue() -> None:
    first = CostMeter()
    first.start_segment(devices=8, device_kind="gpu", job_id="100", host="gpu-a", now=1000.0)
    state = first.state_dict(now=1000.0 + 3600.0)  # checkpoint written at preemption, 1 h in
    second = CostMeter()  # the requeued job: a fresh process
    second.load_state_dict(state)
    second.start_segment(devices=8, device_kind="gpu", job_id="100", host="gpu-b", now=5000.0)
    totals = second.totals(now=5000.0 + 2 * 3600.0)  # 2 h into segment 2
    assert totals["gpu_days"] == pytest.approx(8 * 3 * 3600.0 / SECONDS_PER_DAY)  # = 1.0 GPU-day
    assert totals["gpu_days"] == pytest.approx(1.0)
    assert totals["device_days"] == pytest.approx(totals["gpu_days"])
    assert totals["wall_days"] == pytest.approx(3 / 24)
    assert second.job_ids() == ["100"]  # requeued jobs keep their id
    # A second checkpoint in segment 2 stores segment 2 so far, not twice.
    again = CostMeter()
    again.load_state_dict(second.state_dict(now=5000.0 + 3600.0))
    assert again.totals()["gpu_days"] == pytest.approx(8 * 2 * 3600.0 / SECONDS_PER_DAY)


def test_mlflow_run_holds_cost_of_both_segments(tmp_path: Path, sqlite_uri: str) -> None:
    """The loop's pattern: cost state in the checkpoint, cost metrics per tick, one run across a requeue."""
    from mlflow import MlflowClient

    cfg = TrackingConfig(tracking_uri=sqlite_uri, experiment="t-cost")
    checkpoint: dict = {}
    for segment, (start, kimg_range) in enumerate(((0.0, range(0, 4)), (10_000.0, range(3, 7)))):
        meter = CostMeter()
        if checkpoint:
            meter.load_state_dict(checkpoint["cost"])
        meter.start_segment(devices=4, device_kind="gpu", job_id=str(500 + segment), now=start)
        tracker = RunTracker.open(tmp_path / "run", cfg, "cost", {"a": 1})
        for kimg in kimg_range:
            tracker.log_metrics(cost_metrics(meter, with_sacct=False, now=start + 600.0 * (kimg + 1 - kimg_range[0])),
                                step=kimg)
        checkpoint["cost"] = meter.state_dict(now=start + 600.0 * len(kimg_range))
        tracker.close("REQUEUED" if segment == 0 else "FINISHED")
    history = MlflowClient(sqlite_uri).get_metric_history(tracker.run_id, "cost/gpu_days")
    assert sorted(m.step for m in history) == list(range(7))
    final = max(history, key=lambda m: m.step).value
    assert final == pytest.approx(4 * (4 * 600.0 + 4 * 600.0) / SECONDS_PER_DAY)  # both segments, 4 GPUs


def test_cpu_run_counts_ranks_as_devices() -> None:
    meter = CostMeter()
    meter.start_segment(devices=2, device_kind="cpu", now=0.0)
    totals = meter.totals(now=43_200.0)
    assert totals["gpu_days"] == 0.0 and totals["device_days"] == pytest.approx(1.0)


def test_misuse_is_refused() -> None:
    meter = CostMeter()
    with pytest.raises(ValueError, match="device_kind"):
        meter.start_segment(devices=1, device_kind="tpu")
    meter.start_segment(devices=1, device_kind="cpu")
    with pytest.raises(RuntimeError):
        meter.start_segment(devices=1, device_kind="cpu")
    with pytest.raises(RuntimeError):
        meter.load_state_dict({"version": 1, "segments": []})
    with pytest.raises(ValueError, match="version"):
        CostMeter().load_state_dict({"version": 99})


def test_tres_parsing() -> None:
    assert gpus_in_tres(parse_tres("billing=16,cpu=16,gres/gpu=4,mem=64G,node=2")) == 4
    assert gpus_in_tres(parse_tres("cpu=4,gres/gpu:a100=2,node=1")) == 2
    assert gpus_in_tres(parse_tres("cpu=4,gres/gpu=2,gres/gpu:a100=2,node=1")) == 2  # not counted twice
    assert gpus_in_tres(parse_tres("billing=2,cpu=2,node=2")) == 0
    assert sacct_cost([]) == {"gpu_days": 0.0, "device_days": 0.0, "wall_days": 0.0, "jobs": []}


def _sbatch(*args: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip().split(";")[0]


def _states(job_id: str) -> list[str]:
    out = subprocess.run(["sacct", "-X", "-D", "-n", "-P", "-o", "State", "-j", job_id],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.split()


def _wait(job_id: str, done, timeout_s: float = 90.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = _states(job_id)
        if done(states):
            return states
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id}: states {_states(job_id)}")


@pytest.mark.slurm
def test_sacct_cost_of_a_real_job(slurm_cluster: None, tmp_path: Path) -> None:
    # The job stamps its own start and end, as the training job's CostMeter would see them.
    job_id = _sbatch("--job-name=trk_cost", "--nodes=2", "--ntasks-per-node=1", f"--chdir={tmp_path}", "--wrap",
                     "date +%s.%N > start; srun sleep 3; date +%s.%N > end")
    _wait(job_id, lambda s: s[-1:] == ["COMPLETED"], timeout_s=300)
    meter = CostMeter()  # what a 2-node x 1-rank CPU job records
    meter.start_segment(devices=2, device_kind="cpu", job_id=job_id, now=float((tmp_path / "start").read_text()))
    meter_days = meter.totals(now=float((tmp_path / "end").read_text()))["device_days"]
    cost = sacct_cost([job_id])
    assert len(cost["jobs"]) == 1 and cost["jobs"][0]["state"] == "COMPLETED"
    job = cost["jobs"][0]
    assert job["devices"] == 2 and job["gpus"] == 0  # node=2 from AllocTRES
    assert 3 <= job["seconds"] <= 60
    assert cost["gpu_days"] == 0.0
    assert cost["device_days"] == pytest.approx(job["seconds"] * 2 / SECONDS_PER_DAY)
    print(f"job {job_id}: sacct {cost['device_days'] * SECONDS_PER_DAY:.1f} device-s, "
          f"meter {meter_days * SECONDS_PER_DAY:.1f} device-s")
    # Same figure from both sides, up to Slurm's whole-second rounding and the job's start-up (seconds).
    assert meter_days <= cost["device_days"] + 2 * 1.0 / SECONDS_PER_DAY
    assert (cost["device_days"] - meter_days) * SECONDS_PER_DAY < 2 * 5.0
    metrics = cost_metrics(meter)  # what the loop logs: both figures side by side
    assert metrics["cost/sacct_device_days"] == pytest.approx(cost["device_days"])
    assert metrics["cost/gpu_days"] == 0.0 and metrics["cost/device_days"] > 0
    print(f"job {job_id}: sacct {cost['device_days'] * SECONDS_PER_DAY:.1f} device-s, "
          f"meter {meter_days * SECONDS_PER_DAY:.1f} device-s")


@pytest.mark.slurm
def test_sacct_cost_counts_every_requeued_run(slurm_cluster: None) -> None:
    """A requeued job keeps its id; both runs must be counted (sacct -D)."""
    job_id = _sbatch("--job-name=trk_requeue", "--requeue", "--wrap", "sleep 30")
    try:
        _wait(job_id, lambda s: s[-1:] == ["RUNNING"], timeout_s=300)  # the cluster may be busy with others' jobs
        time.sleep(3)
        subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=30)
        _wait(job_id, lambda s: "REQUEUED" in s and len(s) >= 2)
        cost = sacct_cost([job_id])
        states = [j["state"] for j in cost["jobs"]]
        assert states[0] == "REQUEUED" and len(states) == 2, states  # first run + the requeued instance
        assert cost["jobs"][0]["seconds"] >= 3 and cost["jobs"][0]["job_id"] == job_id
        assert cost["device_days"] * SECONDS_PER_DAY >= 3
    finally:
        subprocess.run(["scancel", job_id], timeout=30)
