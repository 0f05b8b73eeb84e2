"""Opt-in system metrics (``tracking.system_metrics=true``): MLflow's own monitor on every node of a job.

Rank 0 opens the run; once it is in the store (``mlflow_run.json`` of the run directory), the first rank of
every node starts a :class:`mlflow.system_metrics.system_metrics_monitor.SystemMetricsMonitor` tagged with the
node's name, so the UI's System metrics tab shows CPU/GPU utilisation and memory per node. GPU figures need
``nvidia-ml-py`` (the ``gpu`` extra); without it MLflow logs the CPU side only.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stylegan_v.tracking.config import TrackingConfig
from stylegan_v.tracking.records import read_run_file

log = logging.getLogger(__name__)


@contextlib.contextmanager
def system_metrics(run_dir: Path, cfg: TrackingConfig, first_on_node: bool) -> Iterator[Any]:
    """Sample this node's system metrics into the run for the duration of the block (a no-op when off, on
    other ranks of the node, or when the run is not in a store: an offline run has no id to log to)."""
    record = read_run_file(run_dir) if cfg.enabled and cfg.system_metrics and first_on_node else None
    if record is None:
        yield None
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(record["run_id"], sampling_interval=cfg.system_metrics_interval_s,
                                   node_id=socket.gethostname(), tracking_uri=record["tracking_uri"])
    monitor.start()
    try:
        yield monitor
    finally:
        monitor.finish()
