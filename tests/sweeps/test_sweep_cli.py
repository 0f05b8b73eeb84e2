"""``python -m stylegan_v.sweep``: parsing Slurm's array notation and gathering a finished sweep's table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stylegan_v import sweep as sweep_cli
from stylegan_v.metrics.records import write_record
from stylegan_v.reports.sweeps import collect_rows
from stylegan_v.sacct import expand_array_id


def test_pending_array_ranges_expand_to_one_id_per_task() -> None:
    assert expand_array_id("7_[0-3%2]") == ["7_0", "7_1", "7_2", "7_3"]
    assert expand_array_id("7_[1,4-5]") == ["7_1", "7_4", "7_5"]
    assert expand_array_id("7_3") == ["7_3"]


def _fake_point(sweep_dir: Path, num: int, label: str, run_dir: Path, fvd: float | None) -> None:
    (sweep_dir / str(num)).mkdir(parents=True)
    (sweep_dir / str(num) / "point.json").write_text(json.dumps({"num": num, "point": label,
                                                                 "run_dir": str(run_dir)}))
    run_dir.mkdir(parents=True)
    if fvd is None:
        return
    write_record(run_dir, {"metric": "fvd256_16f", "status": "ok", "value": fvd + 100}, "snapshot", kimg=0.1)
    write_record(run_dir, {"metric": "fvd256_16f", "status": "unavailable", "message": "no weights"}, "snapshot")
    write_record(run_dir, {"metric": "fvd256_16f", "status": "ok", "value": fvd, "reduced": True}, "snapshot", kimg=0.2)
    with open(run_dir / "metric-fvd256_16f.jsonl", "a") as f:
        f.write('{"cut')  # a writer killed mid-line
    (run_dir / "metrics.jsonl").write_text(
        json.dumps({"metrics": {"cost/device_days": 0.5, "loss/G": 1.0}, "step": 1}) + "\n"
        + json.dumps({"metrics": {"cost/device_days": 0.75, "cost/sacct_device_days": 0.8}, "step": 2}) + "\n")


def test_collect_takes_the_final_ok_score_and_the_last_cost_of_each_point(tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    points = [{"num": 0, "point": "k=1"}, {"num": 1, "point": "k=2"}, {"num": 2, "point": "k=3"}]
    (sweep_dir / "sweep.json").write_text(json.dumps({"name": "x", "cluster": "local", "points": points}))
    _fake_point(sweep_dir, 0, "k=1", tmp_path / "runs" / "a", fvd=10.0)
    _fake_point(sweep_dir, 1, "k=2", tmp_path / "runs" / "b", fvd=None)  # started, no score yet
    rows = collect_rows(sweep_dir)
    assert [r["state"] for r in rows] == ["COMPLETED", "RUNNING_OR_FAILED", "NOT_STARTED"]
    assert rows[0]["fvd256_16f"] == 10.0 and rows[0]["fvd256_16f.kimg"] == 0.2
    assert rows[0]["cost/device_days"] == 0.75 and rows[0]["cost/sacct_device_days"] == 0.8
    assert "fvd256_16f" not in rows[1]
    assert sweep_cli.main(["collect", str(sweep_dir)]) == 0
    markdown = (sweep_dir / "results.md").read_text()
    assert markdown.splitlines()[2].startswith("| point | state |") and "| k=1 | COMPLETED |" in markdown
    assert len((sweep_dir / "results.csv").read_text().splitlines()) == 4


def test_a_folder_that_is_no_sweep_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not a sweep dir"):
        sweep_cli.main(["status", str(tmp_path)])


def test_collect_reports_scores_written_by_evaluate_and_by_a_training_snapshot(tmp_path) -> None:
    """Both writers of metric records land in one table: a snapshot's FVD and a later ``evaluate`` FID."""
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "sweep.json").write_text(json.dumps({"name": "x", "cluster": "local",
                                                      "points": [{"num": 0, "point": "k=2"}]}))
    run_dir = tmp_path / "runs" / "a"
    _fake_point(sweep_dir, 0, "k=2", run_dir, fvd=None)
    write_record(run_dir, {"metric": "fvd256_16f", "status": "ok", "value": 321.0}, "snapshot", kimg=4.0)
    from stylegan_v.evaluate import write_results

    write_results(run_dir, {"fid2048_16f": {"metric": "fid2048_16f", "kind": "fid", "status": "ok", "value": 55.5}},
                  {"checkpoint": str(run_dir / "checkpoint-000000010.pt"), "seed": 0})
    (row,) = collect_rows(sweep_dir)
    assert row["fvd256_16f"] == 321.0 and row["fvd256_16f.source"] == "snapshot" and row["fvd256_16f.kimg"] == 4.0
    assert row["fid2048_16f"] == 55.5 and row["fid2048_16f.source"] == "evaluate"
