"""RunTracker against a real `mlflow server`: online logging, an unreachable server, a server that dies
mid-run, and the offline file replayed exactly once."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stylegan_v.tracking import RunTracker, TrackingConfig
from stylegan_v.tracking.records import JOURNAL_FILE, RUN_FILE, SYNC_OFFSET_FILE

PARAMS = {"model": {"name": "stylegan_v"}, "seed": 3}
# An offline call appends one fsynced line; allow for a loaded 2-core CI machine.
OFFLINE_CALL_BOUND_S = 0.5


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _history(uri: str, run_id: str, key: str) -> dict[int, float]:
    points = _client(uri).get_metric_history(run_id, key)
    steps = [m.step for m in points]
    assert len(steps) == len(set(steps)), f"duplicate steps in {key}: {sorted(steps)}"
    return {m.step: m.value for m in points}


def test_online_metrics_tags_and_artifact(tmp_path: Path, mlflow_server) -> None:
    cfg = TrackingConfig(tracking_uri=mlflow_server.uri, experiment="srv-online")
    grid = tmp_path / "samples-000001.png"
    grid.write_bytes(b"\x89PNG fake grid")
    tracker = RunTracker.open(tmp_path / "run", cfg, "online", PARAMS, {"git_commit": "abc123"})
    assert tracker.online
    for kimg in range(3):
        tracker.log_metrics({"loss/D": 0.5 * kimg}, step=kimg)
    tracker.log_artifact(grid, "samples")
    tracker.close("FINISHED")
    run = _client(mlflow_server.uri).get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["git_commit"] == "abc123"
    assert _history(mlflow_server.uri, tracker.run_id, "loss/D") == {0: 0.0, 1: 0.5, 2: 1.0}
    assert [a.path for a in _client(mlflow_server.uri).list_artifacts(tracker.run_id, "samples")] == \
        ["samples/samples-000001.png"]


def test_same_store_under_a_new_address_continues_the_run(tmp_path: Path, sqlite_uri: str, mlflow_server) -> None:
    """The session server serves the session SQLite file: a run begun on the file continues via the server."""
    run_dir = tmp_path / "run"
    local = RunTracker.open(run_dir, TrackingConfig(tracking_uri=sqlite_uri, experiment="srv-move"), "move", PARAMS)
    local.log_metrics({"loss/G": 0.0}, step=0)
    local.close("REQUEUED")
    remote = RunTracker.open(run_dir, TrackingConfig(tracking_uri=mlflow_server.uri, experiment="srv-move"), "move",
                             PARAMS)
    remote.log_metrics({"loss/G": 1.0}, step=1)
    remote.close("FINISHED")
    assert remote.run_id == local.run_id
    assert json.loads((run_dir / RUN_FILE).read_text())["tracking_uri"] == mlflow_server.uri
    assert _history(mlflow_server.uri, local.run_id, "loss/G") == {0: 0.0, 1: 1.0}


def _timed_training_calls(tracker, steps: range) -> float:
    """The calls a training tick makes; returns the slowest one in seconds."""
    slowest = 0.0
    for kimg in steps:
        for call in (lambda: tracker.log_metrics({"loss/G": float(kimg), "kimg": float(kimg)}, step=kimg),
                     lambda: tracker.set_tags({"last_kimg": kimg})):
            t0 = time.perf_counter()
            call()
            slowest = max(slowest, time.perf_counter() - t0)
    return slowest


def test_unreachable_server_then_sync_exactly_once(tmp_path: Path, mlflow_server, closed_port_uri: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    dead_uri = closed_port_uri
    cfg = TrackingConfig(tracking_uri=dead_uri, experiment="srv-offline", request_timeout_s=2)
    run_dir = tmp_path / "run"
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"grid")
    caplog.set_level(logging.WARNING, logger="stylegan_v.tracking")
    t0 = time.perf_counter()
    tracker = RunTracker.open(run_dir, cfg, "offline", PARAMS, {"git_commit": "abc"})
    open_s = time.perf_counter() - t0
    assert not tracker.online and tracker.run_id is None
    assert open_s < cfg.request_timeout_s + 1.0, open_s  # a refused connection costs one probe at most
    slowest = _timed_training_calls(tracker, range(0, 10))
    assert slowest < OFFLINE_CALL_BOUND_S, slowest
    print(f"closed port: open {open_s:.3f} s, slowest offline call {slowest * 1e3:.1f} ms")
    tracker.log_artifact(grid, "samples")
    tracker.close("REQUEUED")
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1  # warned once
    ops = [json.loads(line)["op"] for line in (run_dir / JOURNAL_FILE).read_text().splitlines()]
    assert ops[0] == "open" and ops.count("metrics") == 10 and ops[-1] == "close" and "artifact" in ops
    assert not (run_dir / RUN_FILE).exists()

    # Later, from a login node: replay into the real server (the run is created there).
    sync_cmd = [sys.executable, "-m", "stylegan_v.tracking.sync", str(run_dir), "--tracking-uri", mlflow_server.uri]
    first = subprocess.run(sync_cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"{len(ops)} records synced" in first.stdout
    run_id = json.loads((run_dir / RUN_FILE).read_text())["run_id"]
    assert _history(mlflow_server.uri, run_id, "loss/G") == {k: float(k) for k in range(10)}
    run = _client(mlflow_server.uri).get_run(run_id)
    assert run.data.params["model.name"] == "stylegan_v" and run.data.tags["last_kimg"] == "9"
    assert run.info.status == "SCHEDULED"  # the segment ended as REQUEUED
    assert [a.path for a in _client(mlflow_server.uri).list_artifacts(run_id, "samples")] == ["samples/grid.png"]

    second = subprocess.run(sync_cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "0 records synced" in second.stdout, second.stdout + second.stderr
    assert len(_client(mlflow_server.uri).get_metric_history(run_id, "loss/G")) == 10  # nothing added

    # The next segment (server reachable now) continues the synced run, without duplicate steps.
    online_cfg = TrackingConfig(tracking_uri=mlflow_server.uri, experiment="srv-offline")
    resumed = RunTracker.open(run_dir, online_cfg, "offline", PARAMS, {"git_commit": "abc"})
    assert resumed.run_id == run_id
    _timed_training_calls(resumed, range(8, 12))
    resumed.close("FINISHED")
    assert _history(mlflow_server.uri, run_id, "loss/G") == {k: float(k) for k in range(12)}
    assert len(_client(mlflow_server.uri).search_runs([run.info.experiment_id])) == 1


def test_silent_server_is_bounded_by_the_request_timeout(tmp_path: Path) -> None:
    """A host that accepts the connection but never answers (a hung server) costs one timeout, once."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        cfg = TrackingConfig(tracking_uri=uri, request_timeout_s=1)
        t0 = time.perf_counter()
        tracker = RunTracker.open(tmp_path / "run", cfg, "silent", PARAMS)
        open_s = time.perf_counter() - t0
        slowest = _timed_training_calls(tracker, range(5))
    assert not tracker.online
    print(f"silent server: open {open_s:.3f} s, slowest offline call {slowest * 1e3:.1f} ms")
    assert 0.9 < open_s < 3.0, open_s
    assert slowest < OFFLINE_CALL_BOUND_S, slowest


def test_server_lost_mid_run_next_segment_replays(tmp_path: Path, mlflow_server, cuttable_link) -> None:
    uri = cuttable_link.uri  # the job reaches the real server through a link the test can cut
    cfg = TrackingConfig(tracking_uri=uri, experiment="srv-lost", request_timeout_s=2)
    run_dir = tmp_path / "run"
    tracker = RunTracker.open(run_dir, cfg, "lost", PARAMS)
    run_id = tracker.run_id
    _timed_training_calls(tracker, range(0, 3))
    assert tracker.online
    cuttable_link.cut()  # the tracking server becomes unreachable mid-run
    t0 = time.perf_counter()
    tracker.log_metrics({"loss/G": 3.0, "kimg": 3.0}, step=3)  # fails once, goes offline
    first_failure_s = time.perf_counter() - t0
    slowest = _timed_training_calls(tracker, range(4, 6))
    tracker.close("REQUEUED")
    assert not tracker.online
    print(f"link cut: first failing call {first_failure_s:.3f} s, slowest offline call {slowest * 1e3:.1f} ms")
    assert first_failure_s < cfg.request_timeout_s + 1.0, first_failure_s
    assert slowest < OFFLINE_CALL_BOUND_S, slowest
    assert _history(mlflow_server.uri, run_id, "loss/G") == {0: 0.0, 1: 1.0, 2: 2.0}  # nothing got through

    cuttable_link.up()  # reachable again when the requeued job starts
    resumed = RunTracker.open(run_dir, cfg, "lost", PARAMS)  # replays the offline records first
    assert resumed.run_id == run_id and resumed.online
    assert (run_dir / SYNC_OFFSET_FILE).read_text().strip() == str((run_dir / JOURNAL_FILE).stat().st_size)
    _timed_training_calls(resumed, range(4, 8))  # resumed from the kimg-3 checkpoint: 4, 5 again
    resumed.close("FINISHED")
    assert _history(mlflow_server.uri, run_id, "loss/G") == {k: float(k) for k in range(8)}
    assert _client(mlflow_server.uri).get_run(run_id).info.status == "FINISHED"
