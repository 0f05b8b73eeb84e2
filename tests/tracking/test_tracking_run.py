"""RunTracker against a real local SQLite MLflow store: same run on resume, no duplicate steps, ranks, nesting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stylegan_v.tracking import RunTracker, TrackingConfig, flatten, run_id_of
from stylegan_v.tracking.records import (
    JOURNAL_FILE,
    METRICS_FILE,
    PARENT_TAG,
    RUN_FILE,
    SYNC_OFFSET_FILE,
    TAG_PARAMS_CHANGED,
    RunNotInStoreError,
)

PARAMS = {"model": {"motion": {"kernel_size": 11, "channels": [512, 256]}}, "seed": 0, "note": None}


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _steps(uri: str, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in _client(uri).get_metric_history(run_id, key))


def test_flatten_dotted_keys_and_limits() -> None:
    flat = flatten({"a": {"b": {"c": 1}}, "lst": [1, 2], "long": "x" * 700, "bad key!": True, "none": None})
    assert flat["a.b.c"] == "1" and flat["lst"] == "[1, 2]" and flat["none"] == "None"
    assert len(flat["long"]) == 500 and flat["long"].endswith("[truncated]")
    assert flat["bad key_"] == "True"  # '!' is not a valid MLflow key character
    assert all(isinstance(v, str) for v in flat.values())


def test_reopen_same_run_and_no_duplicate_steps(tmp_path: Path, sqlite_uri: str) -> None:
    cfg = TrackingConfig(tracking_uri=sqlite_uri, experiment="t-resume")
    run_dir = tmp_path / "run"
    first = RunTracker.open(run_dir, cfg, "resume", PARAMS, {"git_commit": "abc"})
    assert first.online and first.run_id is not None
    for kimg in range(0, 6):  # segment 1 logs kimg 0..5, its last checkpoint was at kimg 3
        first.log_metrics({"loss/G": float(kimg), "kimg": float(kimg)}, step=kimg)
    first.close("REQUEUED")
    run = _client(sqlite_uri).get_run(first.run_id)
    assert run.info.status == "SCHEDULED" and run.info.end_time is None  # resumable, not finished

    # Segment 2 resumes from the kimg-3 checkpoint and re-trains 4, 5 before reaching new ground.
    second = RunTracker.open(run_dir, cfg, "resume", PARAMS, {"git_commit": "abc"})
    assert second.run_id == first.run_id
    assert json.loads((run_dir / RUN_FILE).read_text())["run_id"] == first.run_id
    assert _client(sqlite_uri).get_run(first.run_id).info.status == "RUNNING"
    for kimg in range(4, 9):
        second.log_metrics({"loss/G": 100.0 + kimg, "kimg": float(kimg)}, step=kimg)
    second.close("FINISHED")

    history = _client(sqlite_uri).get_metric_history(first.run_id, "loss/G")
    assert sorted(m.step for m in history) == list(range(9))  # each step once
    assert {m.step: m.value for m in history}[5] == 5.0  # the first segment's value is kept
    assert {m.step: m.value for m in history}[8] == 108.0
    local = [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in local] == list(range(9))  # the jsonl record has no duplicates either
    runs = _client(sqlite_uri).search_runs([run.info.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.params["model.motion.kernel_size"] == "11"
    assert runs[0].data.tags["mlflow.runName"] == "resume"
    journal = (run_dir / JOURNAL_FILE).stat().st_size  # every record journaled, and acknowledged by MLflow
    assert (run_dir / SYNC_OFFSET_FILE).read_text().strip() == str(journal)


def test_changed_params_on_resume_are_tagged_not_fatal(tmp_path: Path, sqlite_uri: str) -> None:
    cfg = TrackingConfig(tracking_uri=sqlite_uri, experiment="t-params")
    first = RunTracker.open(tmp_path / "run", cfg, "p", {"a": 1, "b": 2})
    first.close("REQUEUED")
    second = RunTracker.open(tmp_path / "run", cfg, "p", {"a": 1, "b": 3, "c": 4})
    assert second.online
    run = _client(sqlite_uri).get_run(second.run_id)
    assert run.data.params == {"a": "1", "b": "2", "c": "4"}  # first value kept, new key added
    assert run.data.tags[TAG_PARAMS_CHANGED] == "b"
    second.close("FINISHED")


def test_list_tags_append_once(tmp_path: Path, sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = TrackingConfig(tracking_uri=sqlite_uri, experiment="t-tags")
    for job_id, nodes in (("101", "n1"), ("101", "n1"), ("102", "n1,n2")):  # 101 twice: a re-opened segment
        monkeypatch.setenv("SLURM_JOB_ID", job_id)
        monkeypatch.setenv("SLURM_JOB_NODELIST", nodes)
        tracker = RunTracker.open(tmp_path / "run", cfg, "tags", {})
        tracker.set_tags({"dataset_hash": "d" + job_id})
        tracker.close("REQUEUED")
    tags = _client(sqlite_uri).get_run(tracker.run_id).data.tags
    assert tags["slurm.job_ids"] == "101,102"
    assert tags["hosts"] == "n1,n2"
    assert tags["dataset_hash"] == "d102"


def test_parent_and_child_runs(tmp_path: Path, sqlite_uri: str) -> None:
    cfg = TrackingConfig(tracking_uri=sqlite_uri, experiment="t-sweep")
    parent = RunTracker.open(tmp_path / "sweep", cfg, "sweep-period_scaling", {"sweep": "period_scaling"})
    parent_id = run_id_of(tmp_path / "sweep")  # how a point's own Slurm job finds its parent
    assert parent_id == parent.run_id
    children = [RunTracker.open(tmp_path / "sweep" / f"point{i}", cfg, f"point{i}", {"i": i},
                                {"sweep": "period_scaling", "override": f"scheme={s}"}, parent_run_id=parent_id)
                for i, s in enumerate(("linear", "geometric"))]
    for child in children:
        child.log_metrics({"fvd": 100.0}, step=1)
        child.close("FINISHED")
    parent.close("FINISHED")
    experiment_id = _client(sqlite_uri).get_run(parent_id).info.experiment_id
    found = _client(sqlite_uri).search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'")
    assert sorted(r.info.run_name for r in found) == ["point0", "point1"]
    assert PARENT_TAG not in _client(sqlite_uri).get_run(parent_id).data.tags


def test_run_file_naming_a_foreign_run_is_an_error(tmp_path: Path, sqlite_uri: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / RUN_FILE).write_text(json.dumps({"run_id": "0" * 32, "experiment_id": "1",
                                                "tracking_uri": "http://old-server:5000"}))
    with pytest.raises(RunNotInStoreError, match="delete mlflow_run.json"):
        RunTracker.open(run_dir, TrackingConfig(tracking_uri=sqlite_uri), "foreign", {})


def test_disabled_tracking_keeps_local_record(tmp_path: Path) -> None:
    tracker = RunTracker.open(tmp_path / "run", TrackingConfig(enabled=False), "off", PARAMS)
    tracker.log_metrics({"loss": 1.0}, step=0)
    tracker.log_metrics({"loss": 2.0}, step=0)  # same step again: dropped
    tracker.close("FINISHED")
    assert tracker.run_id is None
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [METRICS_FILE]
    assert len((tmp_path / "run" / METRICS_FILE).read_text().splitlines()) == 1


def test_step_must_be_an_integer(tmp_path: Path) -> None:
    tracker = RunTracker.open(tmp_path / "run", TrackingConfig(enabled=False), "s", {})
    with pytest.raises(ValueError, match="step"):
        tracker.log_metrics({"loss": 1.0}, step=1.5)


NON_MAIN = """
import sys
from pathlib import Path
from stylegan_v.tracking import RunTracker, TrackingConfig, CostMeter
run_dir = Path(sys.argv[1])
cfg = TrackingConfig(tracking_uri=sys.argv[2])
t = RunTracker.open(run_dir, cfg, "rank1", {"a": 1}, {"t": "x"}, is_main=False)
t.log_metrics({"loss": 1.0}, step=t.step_for(5000)); t.set_tags({"a": "b"}); t.append_tags({"hosts": "h"})
t.log_artifact(run_dir / "nothing.png"); t.close("REQUEUED")
assert t.run_id is None and not t.online
assert "mlflow" not in sys.modules, "a non-main rank imported mlflow"
print("ok", sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else "absent")
"""


def test_non_main_rank_never_touches_mlflow(tmp_path: Path, sqlite_uri: str) -> None:
    # A fresh interpreter, so "mlflow was never imported" is a real check.
    out = subprocess.run([sys.executable, "-c", NON_MAIN, str(tmp_path / "run"), sqlite_uri],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok absent"  # not even the run directory was created
