"""The MLflow UI exactly as the README tells a new user to open it, on a store holding a finished tiny sweep:
the sweep's parent run and its children are there, found through the server's REST API."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _readme_ui_command() -> list[str]:
    text = (REPO / "README.md").read_text()
    (command,) = set(re.findall(r"`(\.venv/bin/mlflow ui [^`]+)`", text))
    return shlex.split(command)


def _get(url: str, payload: dict | None = None) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_readme_mlflow_ui_command_shows_the_sweep(tmp_path) -> None:
    (tmp_path / ".venv").symlink_to(REPO / ".venv")  # the command is relative to a checkout
    sweep = subprocess.run([sys.executable, "-m", "stylegan_v.train", "-m", "+sweep=augmentation", "experiment=smoke",
                            "cluster=local", "training.max_steps=1", "training.metrics=[]", "dataset.num_videos=8",
                            "tracking.tracking_uri=sqlite:///mlflow.db"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    command = _readme_ui_command()
    port = int(command[command.index("--port") + 1])
    server = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow ui did not come up"
                time.sleep(0.5)
        experiment = _get(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=stylegan-v")
        runs = _get(f"{base}/api/2.0/mlflow/runs/search",
                    {"experiment_ids": [experiment["experiment"]["experiment_id"]], "max_results": 100})["runs"]
        tags = {r["info"]["run_id"]: {t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs}
        parents = [rid for rid, t in tags.items() if t.get("sweep.role") == "parent"]
        assert len(parents) == 1
        children = [rid for rid, t in tags.items() if t.get("mlflow.parentRunId") == parents[0]]
        assert len(children) == 2
        statuses = {r["info"]["run_id"]: r["info"]["status"] for r in runs}
        assert all(statuses[c] == "FINISHED" for c in children)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
