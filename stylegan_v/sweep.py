"""``python -m stylegan_v.sweep status|collect <sweep dir>``: follow a submitted sweep and gather its table.

A sweep dir is what ``python -m stylegan_v.train -m +sweep=<name> ...`` printed (by default
``runs/sweeps/<name>/<experiment>-<time>``). ``status`` shows every point's state from Slurm accounting
(``sacct``; points of a ``cluster=local`` sweep are read from their run dirs); ``collect`` writes each
point's final scores and cost into ``results.csv`` and ``results.md`` in the sweep dir, prints the
Markdown table, and closes the sweep's MLflow parent run once every point has ended.

Plain argparse, not Hydra: the only input is a folder the sweep already wrote.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stylegan_v.launch.sweep import POINT_FILE, SUBMITIT_DIR, SWEEP_FILE

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED"}  # PREEMPTED without requeue; a requeued element shows REQUEUED/PENDING
COST_KEYS = ("cost/gpu_days", "cost/device_days", "cost/sacct_gpu_days", "cost/sacct_device_days")
_ARRAY_RANGE = re.compile(r"^(?P<job>\d+)_\[(?P<spec>[^\]]+)\]$")


def load_sweep(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / SWEEP_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {sweep_dir} is not a sweep dir (python -m stylegan_v.train "
                                "-m +sweep=<name> ... prints it)")
    return json.loads(path.read_text())


def point_record(sweep_dir: Path, num: int) -> dict[str, Any] | None:
    path = sweep_dir / str(num) / POINT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def submitted_job_ids(sweep_dir: Path) -> dict[int, str]:
    """Job number -> Slurm id (``<array>_<task>``, or ``<job>`` for a one-point sweep) from submitit's folders.

    Array task i is point i (hydra-submitit-launcher maps the points in job-number order)."""
    ids: dict[int, str] = {}
    for pickle in (sweep_dir / SUBMITIT_DIR).glob("*/*_submitted.pkl"):
        job_id = pickle.parent.name
        _, _, task = job_id.partition("_")
        ids[int(task) if task.isdigit() else 0] = job_id
    return ids


def _expand_tasks(job: str, spec: str) -> list[str]:
    """``0-3%2,7`` -> task ids (sacct lists a pending array as ``<job>_[0-3%2]``)."""
    tasks = []
    for part in spec.split("%")[0].split(","):
        low, _, high = part.partition("-")
        tasks.extend(str(t) for t in range(int(low), int(high or low) + 1))
    return [f"{job}_{t}" for t in tasks]


def sacct_states(job_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Latest accounting record of each job id: ``{id: {state, elapsed, nodes}}``; {} without sacct."""
    arrays = sorted({j.partition("_")[0] for j in job_ids})
    if not arrays:
        return {}
    try:
        out = subprocess.run(["sacct", "-j", ",".join(arrays), "-X", "-n", "-P", "-o", "JobID,State,Elapsed,NodeList"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    states: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 4:
            continue
        job_id, state, elapsed, nodes = fields[:4]
        record = {"state": state.split()[0], "elapsed": elapsed, "nodes": nodes}
        match = _ARRAY_RANGE.match(job_id)
        for one in _expand_tasks(match["job"], match["spec"]) if match else [job_id]:
            states[one] = record  # later lines (newer segments) win
    return states


def _local_state(point: dict[str, Any] | None) -> str:
    if point is None:
        return "NOT_STARTED"
    run_dir = Path(point["run_dir"])
    return "COMPLETED" if any(run_dir.glob("metric-*.jsonl")) else "RUNNING_OR_FAILED"


def status_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    sweep = load_sweep(sweep_dir)
    job_ids = submitted_job_ids(sweep_dir)
    states = sacct_states(list(job_ids.values()))
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


def _last_ok_metric(path: Path) -> dict[str, Any] | None:
    """The newest successful record of a ``metric-<name>.jsonl`` (the final checkpoint's score)."""
    last = None
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if record.get("status") == "ok":
            last = record
    return last


def _last_costs(run_dir: Path) -> dict[str, float]:
    costs: dict[str, float] = {}
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return costs
    for line in path.read_text().splitlines():
        try:
            metrics = json.loads(line).get("metrics", {})
        except json.JSONDecodeError:
            continue
        costs.update({k: float(v) for k, v in metrics.items() if k in COST_KEYS})
    return costs


def collect_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per point: its swept values, state, final metric values (with their kimg), cost, MLflow run."""
    rows = []
    for status in status_rows(sweep_dir):
        row: dict[str, Any] = {"point": status["point"], "state": status["state"], "job_id": status["job_id"]}
        run_dir = Path(status["run_dir"]) if status["run_dir"] else None
        if run_dir is not None and run_dir.exists():
            for path in sorted(run_dir.glob("metric-*.jsonl")):
                record = _last_ok_metric(path)
                if record is not None:
                    name = path.stem.removeprefix("metric-")
                    row[name] = record["value"]
                    row[f"{name}.kimg"] = record.get("kimg")
                    row[f"{name}.reduced"] = record.get("reduced")
            row.update(_last_costs(run_dir))
            run_file = run_dir / "mlflow_run.json"
            row["mlflow_run_id"] = json.loads(run_file.read_text()).get("run_id") if run_file.exists() else ""
            row["run_dir"] = str(run_dir)
        rows.append(row)
    return rows


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return columns


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    columns = _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)).replace("|", "\\|") for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def close_parent(sweep_dir: Path, rows: list[dict[str, Any]]) -> str | None:
    """End the parent run once every point has ended (FINISHED, or FAILED if a point did not complete)."""
    if not all(row["state"] in FINAL_STATES or row["state"] == "COMPLETED" for row in rows):
        return None
    run_id = load_sweep(sweep_dir).get("parent_run_id")
    run_file = sweep_dir / "mlflow_run.json"
    if not run_id or not run_file.exists():
        return None
    from mlflow import MlflowClient

    client = MlflowClient(json.loads(run_file.read_text())["tracking_uri"])
    status = "FINISHED" if all(row["state"] == "COMPLETED" for row in rows) else "FAILED"
    if client.get_run(run_id).info.status != status:
        client.set_terminated(run_id, status=status)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_v.sweep", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="state of every point (Slurm accounting)")
    status.add_argument("sweep_dir", type=Path)
    collect = sub.add_parser("collect", help="final scores and cost of every point -> results.csv/.md")
    collect.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "status":
        rows = status_rows(args.sweep_dir)
        sys.stdout.write(to_markdown([{k: r[k] for k in ("num", "point", "job_id", "state", "elapsed", "nodes")}
                                      for r in rows]))
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    elif args.command == "collect":
        rows = collect_rows(args.sweep_dir)
        (args.sweep_dir / "results.csv").write_text(to_csv(rows))
        markdown = to_markdown(rows)
        (args.sweep_dir / "results.md").write_text(markdown)
        sys.stdout.write(markdown)
        closed = close_parent(args.sweep_dir, rows)
        if closed:
            print(f"parent MLflow run closed as {closed}")
    else:
        raise ValueError(f"unknown command {args.command!r}; valid: status, collect")
    return 0


if __name__ == "__main__":
    sys.exit(main())
