"""The tracking journal: a point counts as logged only once it is journaled, so a job killed at any moment loses
nothing from MLflow (after a resume and a sync every step is there exactly once); a damaged store is named as
such; the journal of an older version is taken over."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stylegan_v.tracking import RunTracker, TrackingConfig
from stylegan_v.tracking.records import JOURNAL_FILE, METRICS_FILE, RUN_FILE, SYNC_OFFSET_FILE

# A training job as the loop drives the tracker: one tick per step (the value says which segment logged it), a
# checkpoint every 4 steps, and a resume after the last checkpoint re-trains the steps since then.
TRAINER = """
import json, sys, time
from pathlib import Path
from stylegan_v.tracking import RunTracker, TrackingConfig
run_dir, uri, last, segment = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
checkpoint = run_dir / "checkpoint.json"
start = json.loads(checkpoint.read_text())["step"] + 1 if checkpoint.exists() else 0
cfg = TrackingConfig(tracking_uri=uri, experiment="journal-kill", request_timeout_s=300)  # a request may hang long
tracker = RunTracker.open(run_dir, cfg, "kill", {"a": 1})
for step in range(start, last + 1):
    tracker.log_metrics({"loss/G": step + segment / 10, "progress/kimg": step / 1000}, step=step)
    if step % 4 == 3:
        checkpoint.write_text(json.dumps({"step": step}))
    time.sleep(0.05)
tracker.close("FINISHED")
"""


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _steps(path: Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def _unacknowledged(run_dir: Path) -> int:
    synced = run_dir / SYNC_OFFSET_FILE
    return (run_dir / JOURNAL_FILE).stat().st_size - (int(synced.read_text()) if synced.exists() else 0)


def _stalled_step(metrics: Path, quiet_s: float, timeout_s: float) -> int:
    """The last logged step once no tick has followed it for ``quiet_s`` (ticks come every 0.05 s): the job is
    then inside that tick's request to the stopped server."""
    deadline = time.monotonic() + timeout_s
    last, since = _steps(metrics)[-1], time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, "the job never stalled on the stopped server"
        time.sleep(0.05)
        if _steps(metrics)[-1] != last:
            last, since = _steps(metrics)[-1], time.monotonic()
    return last


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_kill_while_mlflow_holds_a_request_loses_no_point(tmp_path: Path, mlflow_server) -> None:
    """The server stops (SIGSTOP) while the job logs, so a tick's request hangs; the job is killed (SIGKILL)
    right then. That tick is in metrics.jsonl, which the resumed job reads as logged: it must reach MLflow from
    the journal, once."""
    run_dir = tmp_path / "run"
    trainer = [sys.executable, "-c", TRAINER, str(run_dir), mlflow_server.uri]
    first = subprocess.Popen([*trainer, "100000", "1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: (run_dir / METRICS_FILE).exists() and len(_steps(run_dir / METRICS_FILE)) >= 6, 120,
              "six ticks logged online")
        os.killpg(mlflow_server.proc.pid, signal.SIGSTOP)
        try:
            in_flight = _stalled_step(run_dir / METRICS_FILE, quiet_s=1.5, timeout_s=60)
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert _unacknowledged(run_dir) > 0, "the tick in flight is journaled and not marked sent"
            first.kill()
            first.wait(30)
        finally:
            os.killpg(mlflow_server.proc.pid, signal.SIGCONT)
    finally:
        if first.poll() is None:
            first.kill()
    checkpointed = json.loads((run_dir / "checkpoint.json").read_text())["step"]
    assert checkpointed < in_flight, "the resumed job must re-train the killed tick for the test to mean anything"
    last = in_flight + 5
    second = subprocess.run([*trainer, str(last), "2"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    sync = subprocess.run([sys.executable, "-m", "stylegan_v.tracking.sync", str(run_dir)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert sync.returncode == 0 and "0 records synced" in sync.stdout, sync.stdout + sync.stderr

    run_id = json.loads((run_dir / RUN_FILE).read_text())["run_id"]
    history = _client(mlflow_server.uri).get_metric_history(run_id, "loss/G")
    assert sorted(m.step for m in history) == list(range(last + 1)), "every step exactly once"
    values = {m.step: m.value for m in history}
    assert values[in_flight] == in_flight + 0.1, "the killed tick came from the first segment's journal"
    assert all(values[s] == s + 0.2 for s in range(in_flight + 1, last + 1))
    assert _steps(run_dir / METRICS_FILE) == list(range(last + 1))
    assert _unacknowledged(run_dir) == 0
    assert _client(mlflow_server.uri).get_run(run_id).info.status == "FINISHED"


def test_a_damaged_store_is_named_and_the_records_wait_for_a_good_one(tmp_path: Path, sqlite_uri: str,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    damaged = tmp_path / "mlflow.db"
    damaged.write_bytes(b"\x13" * 8192)  # not an SQLite file any more
    uri = f"sqlite:///{damaged}"
    run_dir = tmp_path / "run"
    caplog.set_level(logging.WARNING, logger="stylegan_v.tracking")
    tracker = RunTracker.open(run_dir, TrackingConfig(tracking_uri=uri, experiment="journal-damaged"), "damaged",
                              {"a": 1})
    assert not tracker.online
    for step in range(3):
        tracker.log_metrics({"loss/G": float(step)}, step=step)
    tracker.close("FINISHED")  # SQLite is not probed: the close tries a replay, which fails on the damage
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"MLflow at {uri} holds a damaged store (file is not a database): restore it")
    assert "the tracking records of" in warnings[1] and "damaged store (file is not a database)" in warnings[1]
    assert "reachable again" not in " ".join(warnings)

    sync = [sys.executable, "-m", "stylegan_v.tracking.sync", str(run_dir)]
    refused = subprocess.run(sync, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "error: the MLflow store is damaged (file is not a database): restore it from a backup, or point "
        "tracking.tracking_uri (or MLFLOW_TRACKING_URI) at another store; every metric is also in the run "
        "directories' metrics.jsonl"]
    verbose = subprocess.run([*sync, "--verbose"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 1 and "Traceback (most recent call last)" in verbose.stderr
    assert "file is not a database" in verbose.stderr

    moved = subprocess.run([*sync, "--tracking-uri", sqlite_uri], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert moved.returncode == 0 and "6 records synced" in moved.stdout, moved.stdout + moved.stderr
    run_id = json.loads((run_dir / RUN_FILE).read_text())["run_id"]
    assert sorted(m.step for m in _client(sqlite_uri).get_metric_history(run_id, "loss/G")) == [0, 1, 2]


def test_the_offline_file_of_an_older_version_is_taken_over(tmp_path: Path, sqlite_uri: str) -> None:
    """Before every record was journaled, an offline segment kept its records in mlflow_offline.jsonl (same
    records) with its offset in mlflow_offline.synced: a run requeued across the upgrade sends them."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    records = [{"op": "open", "time": 1, "run_name": "old", "experiment": "journal-legacy", "params": {"a": "1"},
                "tags": {}, "parent_run_id": None, "tracking_uri": sqlite_uri},
               *({"op": "metrics", "time": 2, "step": s, "metrics": {"loss/G": float(s)}} for s in range(4))]
    lines = [json.dumps(r) + "\n" for r in records]
    (run_dir / "mlflow_offline.jsonl").write_text("".join(lines))
    (run_dir / "mlflow_offline.synced").write_text("0\n")
    tracker = RunTracker.open(run_dir, TrackingConfig(tracking_uri=sqlite_uri, experiment="journal-legacy"), "old",
                              {"a": 1})
    assert tracker.online
    tracker.log_metrics({"loss/G": 4.0}, step=4)
    tracker.close("FINISHED")
    assert not (run_dir / "mlflow_offline.jsonl").exists() and not (run_dir / "mlflow_offline.synced").exists()
    assert (run_dir / JOURNAL_FILE).read_text().startswith("".join(lines))
    history = _client(sqlite_uri).get_metric_history(tracker.run_id, "loss/G")
    assert sorted(m.step for m in history) == [0, 1, 2, 3, 4]


def test_the_run_id_survives_going_offline(tmp_path: Path, cuttable_link) -> None:
    """What finished_runs.jsonl records: a run opened online keeps its MLflow id after the server is lost."""
    tracker = RunTracker.open(tmp_path / "run", TrackingConfig(tracking_uri=cuttable_link.uri, request_timeout_s=2),
                              "offline-id", {"a": 1})
    run_id = tracker.run_id
    assert tracker.online and run_id is not None
    cuttable_link.cut()
    tracker.log_metrics({"loss/G": 0.0}, step=0)
    tracker.close("FINISHED")
    assert not tracker.online and tracker.run_id == run_id
