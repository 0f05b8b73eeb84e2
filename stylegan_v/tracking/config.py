"""Typed ``tracking`` config: where MLflow runs go and how long a training step may wait for the server.

Ranges are checked in ``__post_init__`` (called by :func:`stylegan_v.configs.validate`), so a bad value
fails on the login node with the key named, before a job is queued.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from stylegan_v.checks import section

# MLflow's own default store when neither the config nor MLFLOW_TRACKING_URI names one: a SQLite file in
# the current working directory, which is the project root for every entry point.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
STEP_UNITS = ("kimg", "img")  # what the integer MLflow `step` of a metric counts (see TrackingConfig.step_unit)


_require = section("tracking")


def resolve_tracking_uri(uri: str | None) -> str:
    """The store to use: an explicit URI, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the cwd."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


@dataclass
class TrackingConfig:
    """MLflow tracking of one training run (rank 0 only) plus the offline fallback."""

    enabled: bool = True  # False: no MLflow at all; metrics.jsonl in the run directory is still written
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI if set, else sqlite:///mlflow.db in the cwd
    experiment: str = "stylegan-v"  # MLflow experiment name; created on first use
    log_every_ticks: int = 1  # the loop sends tick metrics to MLflow every N ticks (snapshots always)
    artifacts: bool = True  # upload sample grids / mp4s per snapshot; False keeps them only in the run dir
    # What the integer `step` of every metric counts: "kimg" = int(cur_nimg // 1000) (the paper's x-axis);
    # "img" = cur_nimg, for tiny runs whose ticks are shorter than 1 kimg (equal steps would be dropped
    # as duplicates, see RunTracker.log_metrics).
    step_unit: str = "kimg"
    # An unreachable server must not stall training: each HTTP request waits at most this long ...
    request_timeout_s: int = 5
    # ... and is retried at most this often (MLflow's own defaults, 120 s x 7 retries with back-off,
    # would stall a tick for many minutes). After the first failure the tracker goes offline for the segment.
    request_max_retries: int = 0
    # CPU/GPU utilisation and memory of every node, sampled by MLflow's own system-metrics monitor into the
    # run as system/* metrics (GPU figures need the `gpu` extra: nvidia-ml-py). Off by default: one more
    # thread and HTTP traffic per node.
    system_metrics: bool = False
    system_metrics_interval_s: float = 10.0

    def __post_init__(self) -> None:
        _require(self.tracking_uri is None or (isinstance(self.tracking_uri, str) and self.tracking_uri.strip() != ""),
                 "tracking_uri", "must be null or a non-empty URI", self.tracking_uri)
        _require(isinstance(self.experiment, str) and self.experiment.strip() != "" and len(self.experiment) <= 250,
                 "experiment", "must be a non-empty name of at most 250 characters", self.experiment)
        _require(self.log_every_ticks >= 1, "log_every_ticks", "must be >= 1", self.log_every_ticks)
        _require(self.step_unit in STEP_UNITS, "step_unit", f"must be one of {list(STEP_UNITS)}", self.step_unit)
        _require(1 <= self.request_timeout_s <= 600, "request_timeout_s", "must be in [1, 600] seconds",
                 self.request_timeout_s)
        _require(0 <= self.request_max_retries <= 10, "request_max_retries", "must be in [0, 10]",
                 self.request_max_retries)
        _require(self.system_metrics_interval_s >= 1, "system_metrics_interval_s", "must be >= 1 second",
                 self.system_metrics_interval_s)

    def resolved_uri(self) -> str:
        return resolve_tracking_uri(self.tracking_uri)

    def step_for(self, nimg: int) -> int:
        """The MLflow step for a training progress of ``nimg`` frames shown to D (see ``step_unit``)."""
        if nimg < 0:
            raise ValueError(f"nimg must be >= 0, got {nimg}")
        if self.step_unit == "kimg":
            return int(nimg) // 1000
        elif self.step_unit == "img":
            return int(nimg)
        else:
            raise ValueError(f"tracking.step_unit must be one of {list(STEP_UNITS)}, got {self.step_unit!r}")


def register(cs: ConfigStore) -> None:
    cs.store(group="tracking", name="base_mlflow", node=TrackingConfig)
