"""What a training job records in MLflow beside its metrics: the standard source tags, the resolved config as
an artifact, the training data as a dataset input, opt-in system metrics, and the finished-runs index."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mlflow import MlflowClient

from stylegan_v.configs import resolved_yaml
from stylegan_v.training.job import FINISHED_RUNS, TrainJob


def test_job_logs_commit_config_dataset_and_system_metrics(tiny_cfg, tmp_path) -> None:
    cfg = tiny_cfg("training.max_steps=40", "training.num_workers=0", "tracking.system_metrics=true",  # > 2 samples
                   "tracking.system_metrics_interval_s=1")
    result = TrainJob()(resolved_yaml(cfg))
    assert result["status"] == "finished"
    client = MlflowClient(cfg.tracking.tracking_uri)
    run = client.get_run(result["mlflow_run_id"])
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert run.data.tags["mlflow.source.git.commit"] == head  # the tag the UI shows as the run's commit
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert "config.yaml" in artifacts
    local = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path / "dl"))
    assert Path(local).read_text() == (Path(result["run_dir"]) / "config.yaml").read_text()
    (dataset_input,) = run.inputs.dataset_inputs
    manifest = json.loads((Path(cfg.paths.data_dir) / cfg.dataset.name / "dataset.json").read_text())
    assert dataset_input.dataset.name == cfg.dataset.name
    assert dataset_input.dataset.digest == manifest["content_hash"][: len(dataset_input.dataset.digest)]
    assert any(k.startswith("system/") for k in run.data.metrics), sorted(run.data.metrics)
    finished = [json.loads(line) for line in (Path(cfg.paths.runs_dir) / FINISHED_RUNS).read_text().splitlines()]
    assert finished[-1]["mlflow_run_id"] == run.info.run_id
    # the same finished run started again (dvc repro --force) finishes at once and is recorded once
    again = TrainJob()(resolved_yaml(cfg))
    assert again["status"] == "finished" and again["mlflow_run_id"] == run.info.run_id \
        and again["step"] == result["step"]
    rerecorded = [json.loads(line) for line in (Path(cfg.paths.runs_dir) / FINISHED_RUNS).read_text().splitlines()]
    assert rerecorded == finished
