"""The training runs as the report sees them: MLflow runs (params, tags, metric histories) plus their run dirs.

Everything is read once into plain dataclasses, ordered by (start time, run id), so the tables built from
them do not depend on the store's query order. An absent store or experiment is an empty list with a reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylegan_v.metrics.records import read_records
from stylegan_v.tracking.config import resolve_tracking_uri

log = logging.getLogger(__name__)

TAG_PARENT = "mlflow.parentRunId"
FLOOR_PREFIX = "floor/"  # a metric protocol's floor: held-out real clips against the real statistics
TAG_SWEEP_NAME = "sweep.name"
TAG_SWEEP_POINT = "sweep.point"
METRIC_PREFIX = "metrics/"
HISTORY_KEYS = ("loss/G", "loss/D", "loss/R1", "progress/kimg", "augment/p")


@dataclass
class RunInfo:
    run_id: str
    name: str
    status: str
    start_time: int  # ms since epoch; only used for ordering, never printed in tables
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]  # latest value per key
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # key -> [(step, value)] by step
    run_dir: Path | None = None  # the training run directory, when it is reachable from here

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    @property
    def dataset(self) -> str:
        return self.params.get("dataset.name", "?")

    @property
    def model(self) -> str:
        return self.params.get("model.name", "?")

    @property
    def sweep_name(self) -> str | None:
        return self.tags.get(TAG_SWEEP_NAME)

    @property
    def sweep_point(self) -> str | None:
        return self.tags.get(TAG_SWEEP_POINT)

    @property
    def step_unit(self) -> str:
        unit = self.params.get("tracking.step_unit", "kimg")
        return "frames shown" if unit == "img" else unit

    def metric_names(self) -> list[str]:
        return sorted(k[len(METRIC_PREFIX):] for k in self.history if k.startswith(METRIC_PREFIX))

    def best(self, key: str) -> tuple[int, float] | None:
        """(step, value) of the lowest value of ``key`` (FVD/FID: lower is better); None when never logged."""
        points = self.history.get(key)
        return min(points, key=lambda p: (p[1], p[0])) if points else None

    def last(self, key: str) -> tuple[int, float] | None:
        points = self.history.get(key)
        return points[-1] if points else None

    def metric_records(self) -> list[dict[str, Any]]:
        """Every metric record under the run dir (training snapshots and ``stylegan_v.evaluate`` alike), file by
        file; ``path`` names the file relative to the run dir."""
        return read_records(self.run_dir, recursive=True) if self.run_dir is not None else []


@dataclass
class RunStore:
    uri: str
    experiment: str
    runs: list[RunInfo]
    reason: str | None = None  # why there are no runs, when there are none

    def finished_training_runs(self) -> list[RunInfo]:
        """Runs that trained (have a model), excluding sweep parents (they only group children)."""
        parents = {r.tags.get(TAG_PARENT) for r in self.runs}
        return [r for r in self.runs if r.run_id not in parents and "model.name" in r.params]

    def sweeps(self) -> dict[str, list[RunInfo]]:
        out: dict[str, list[RunInfo]] = {}
        for run in self.finished_training_runs():
            if run.sweep_name:
                out.setdefault(run.sweep_name, []).append(run)
        return dict(sorted(out.items()))


def _store_exists(uri: str) -> bool:
    """A missing sqlite file or file store means 'no runs yet' (and must not be created by reading)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).is_file()
    if uri.startswith("file://"):
        return Path(uri[len("file://"):]).is_dir()
    if uri.startswith("file:"):
        return Path(uri[len("file:"):]).is_dir()
    if "://" not in uri:
        return Path(uri).is_dir()
    return True  # a server: ask it


def _run_dir(params: dict[str, str], name: str) -> Path | None:
    runs_dir = params.get("paths.runs_dir")
    if not runs_dir or runs_dir == "None":
        return None
    path = Path(runs_dir) / name  # relative paths are relative to the cwd, as for training (repo root)
    return path if path.is_dir() else None


def load_runs(uri: str | None, experiment: str) -> RunStore:
    uri = resolve_tracking_uri(uri)
    if not _store_exists(uri):
        return RunStore(uri, experiment, [], reason=f"no MLflow store at {uri}")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return RunStore(uri, experiment, [], reason=f"no experiment {experiment!r} in {uri}")
    runs = []
    for r in client.search_runs([exp.experiment_id], max_results=5000):
        history: dict[str, list[tuple[int, float]]] = {}
        for key in r.data.metrics:
            if key in HISTORY_KEYS or key.startswith((METRIC_PREFIX, FLOOR_PREFIX, "cost/")):
                points = client.get_metric_history(r.info.run_id, key)
                history[key] = sorted((int(m.step), float(m.value)) for m in points)
        params = dict(r.data.params)
        runs.append(RunInfo(run_id=r.info.run_id, name=r.info.run_name or r.info.run_id, status=r.info.status,
                            start_time=int(r.info.start_time or 0), params=params, tags=dict(r.data.tags),
                            metrics=dict(r.data.metrics), history=history,
                            run_dir=_run_dir(params, r.info.run_name or "")))
    runs.sort(key=lambda run: (run.start_time, run.run_id))
    return RunStore(uri, experiment, runs, reason=None if runs else f"experiment {experiment!r} has no runs")
