"""``python -m stylegan_v.sweep``: parsing Slurm's array notation and gathering a finished sweep's table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stylegan_v import sweep as sweep_cli


def test_pending_array_ranges_expand_to_one_id_per_task() -> None:
    assert sweep_cli._expand_tasks("7", "0-3%2") == ["7_0", "7_1", "7_2", "7_3"]
    assert sweep_cli._expand_tasks("7", "1,4-5") == ["7_1", "7_4", "7_5"]


def _fake_point(sweep_dir: Path, num: int, label: str, run_dir: Path, fvd: float | None) -> None:
    (sweep_dir / str(num)).mkdir(parents=True)
    (sweep_dir / str(num) / "point.json").write_text(json.dumps({"num": num, "point": label,
                                                                 "run_dir": str(run_dir)}))
    run_dir.mkdir(parents=True)
    if fvd is None:
        return
    records = [{"status": "ok", "value": fvd + 100, "kimg": 0.1}, {"status": "failed", "value": None},
               {"status": "ok", "value": fvd, "kimg": 0.2, "reduced": True}]
    (run_dir / "metric-fvd256_16f.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"cut')
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
    rows = sweep_cli.collect_rows(sweep_dir)
    assert [r["state"] for r in rows] == ["COMPLETED", "RUNNING_OR_FAILED", "NOT_STARTED"]
    assert rows[0]["fvd256_16f"] == 10.0 and rows[0]["fvd256_16f.kimg"] == 0.2
    assert rows[0]["cost/device_days"] == 0.75 and rows[0]["cost/sacct_device_days"] == 0.8
    assert "fvd256_16f" not in rows[1]
    assert sweep_cli.main(["collect", str(sweep_dir)]) == 0
    markdown = (sweep_dir / "results.md").read_text()
    assert markdown.splitlines()[0].startswith("| point | state |") and "| k=1 | COMPLETED |" in markdown
    assert len((sweep_dir / "results.csv").read_text().splitlines()) == 4


def test_a_folder_that_is_no_sweep_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not a sweep dir"):
        sweep_cli.main(["status", str(tmp_path)])
