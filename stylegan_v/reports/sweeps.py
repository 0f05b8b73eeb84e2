"""A submitted sweep as a table: each point's state, final scores (from any writer of metric records) and cost.

A sweep dir is what ``python -m stylegan_v.train -m +sweep=<name> ...`` printed (by default
``runs/sweeps/<name>/<experiment>-<time>``): ``sweep.json`` lists the points, ``<num>/point.json`` joins a
point to its run dir and Slurm job. States come from Slurm accounting (``launch.jobs``); scores from the
run dirs' metric records (:mod:`stylegan_v.metrics.records`, written by training snapshots and by
``evaluate``); cost from the run's ``metrics.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stylegan_v.files import iter_jsonl
from stylegan_v.launch.jobs import FINAL_STATES, job_states, submitted_job_ids
from stylegan_v.launch.sweep import POINT_FILE, SWEEP_FILE, end_parent_run
from stylegan_v.metrics.records import last_ok, read_records
from stylegan_v.reports.tables import Table, fmt_number, write_table
from stylegan_v.tracking.records import METRICS_FILE, read_run_file

COST_KEYS = ("cost/gpu_days", "cost/device_days", "cost/sacct_gpu_days", "cost/sacct_device_days")
STATUS_COLUMNS = ("num", "point", "job_id", "state", "elapsed", "nodes")


def load_sweep(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / SWEEP_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {sweep_dir} is not a sweep dir (python -m stylegan_v.train "
                                "-m +sweep=<name> ... prints it)")
    return json.loads(path.read_text())


def point_record(sweep_dir: Path, num: int) -> dict[str, Any] | None:
    path = sweep_dir / str(num) / POINT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _local_state(point: dict[str, Any] | None) -> str:
    """A ``cluster=local`` point has no accounting: it is done once it wrote a metric record."""
    if point is None:
        return "NOT_STARTED"
    return "COMPLETED" if read_records(Path(point["run_dir"])) else "RUNNING_OR_FAILED"


def status_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    sweep = load_sweep(sweep_dir)
    job_ids = submitted_job_ids(sweep_dir)
    states = job_states(list(job_ids.values()))
    rows = []
    for entry in sweep["points"]:
        num = int(entry["num"])
        point = point_record(sweep_dir, num)
        job_id = job_ids.get(num)
        if job_id is not None:
            acct = states.get(job_id, {"state": "UNKNOWN", "elapsed": "", "nodes": ""})
        elif sweep.get("cluster") == "slurm":
            acct = {"state": "NOT_SUBMITTED", "elapsed": "", "nodes": ""}
        else:
            acct = {"state": _local_state(point), "elapsed": "", "nodes": ""}
        rows.append({"num": num, "point": entry["point"], "job_id": job_id or "", **acct,
                     "run_dir": point["run_dir"] if point else ""})
    return rows


def last_costs(run_dir: Path) -> dict[str, float]:
    costs: dict[str, float] = {}
    for _, record in iter_jsonl(run_dir / METRICS_FILE):
        costs.update({k: float(v) for k, v in (record.get("metrics") or {}).items() if k in COST_KEYS})
    return costs


def collect_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per point: its swept values, state, final metric values (with their kimg and source), cost,
    MLflow run."""
    rows = []
    for status in status_rows(sweep_dir):
        row: dict[str, Any] = {"point": status["point"], "state": status["state"], "job_id": status["job_id"]}
        run_dir = Path(status["run_dir"]) if status["run_dir"] else None
        if run_dir is not None and run_dir.exists():
            records = read_records(run_dir)
            for name in sorted({r["metric"] for r in records if "metric" in r}):
                record = last_ok(records, name)
                if record is not None:
                    row[name] = record["value"]
                    row[f"{name}.kimg"] = record.get("kimg")
                    row[f"{name}.source"] = record.get("source")
            row.update(last_costs(run_dir))
            run_file = read_run_file(run_dir)
            row["mlflow_run_id"] = run_file.get("run_id", "") if run_file else ""
            row["run_dir"] = str(run_dir)
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return fmt_number(value, digits=6)
    return str(value)


def as_table(rows: list[dict[str, Any]], key: str, title: str) -> Table:
    """Rows with possibly different keys as one table (columns in order of first appearance)."""
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    table = Table(key=key, title=title, header=header)
    for row in rows:
        table.add([_cell(row.get(column)) for column in header])
    return table


def write_results(sweep_dir: Path, rows: list[dict[str, Any]]) -> Table:
    """``results.md``, ``results.csv`` and ``results.tex`` in the sweep dir."""
    sweep = load_sweep(sweep_dir)
    table = as_table(rows, "results", f"Sweep {sweep.get('name', '?')} ({sweep.get('experiment', '?')})")
    write_table(table, sweep_dir)
    return table


def close_parent(sweep_dir: Path, rows: list[dict[str, Any]]) -> str | None:
    """End the parent MLflow run once every point has ended (FINISHED, or FAILED if a point did not complete)."""
    if not all(row["state"] in FINAL_STATES for row in rows) or not load_sweep(sweep_dir).get("parent_run_id"):
        return None
    if read_run_file(sweep_dir) is None:
        return None
    status = "FINISHED" if all(row["state"] == "COMPLETED" for row in rows) else "FAILED"
    end_parent_run(sweep_dir, status)
    return status
