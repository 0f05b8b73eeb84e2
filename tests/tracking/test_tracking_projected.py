"""The launch's projected cost reaches the run's MLflow record (a real local SQLite store) beside the
measured cost, from the run dir's projection file that ``train`` writes before submitting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_config import TINY

from stylegan_v.configs import validate
from stylegan_v.tracking import RunTracker, TrackingConfig
from stylegan_v.tracking.cost import PROJECTED_FILE
from stylegan_v.train import record_projection


def test_projected_gpu_days_in_mlflow(compose, sqlite_uri: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    typed = validate(compose(*TINY, f"paths.cache_dir={tmp_path / 'cache'}"))
    run_dir = tmp_path / "run"
    record_projection(typed, run_dir)  # measures one tiny step here (cache miss), as a launch does
    assert (run_dir / PROJECTED_FILE).exists()
    tracker = RunTracker.open(run_dir, TrackingConfig(tracking_uri=sqlite_uri, experiment="t-projected"), "p", {})
    tracker.close()
    metrics = MlflowClient(tracking_uri=sqlite_uri).get_run(tracker.run_id).data.metrics
    assert metrics["cost/projected_gpu_days"] == 0.0  # a CPU run: no GPUs
    record = json.loads((run_dir / PROJECTED_FILE).read_text())
    assert record["steps"] == 20 and record["step_s"] > 0
    assert metrics["cost/projected_device_days"] == pytest.approx(20 * record["step_s"] / 86_400, rel=1e-12)
