"""Replay a run directory's offline tracking records into MLflow: ``python -m stylegan_v.tracking.sync RUN_DIR``.

Creates the MLflow run if the job never reached the server (and writes ``mlflow_run.json``, so the job's
next segment continues that run). Idempotent: a second sync applies nothing (byte offset in
``mlflow_offline.synced``), and re-applied records change nothing (see :mod:`stylegan_v.tracking.records`).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from stylegan_v.tracking.config import TrackingConfig
from stylegan_v.tracking.records import OFFLINE_FILE, RunContext, iter_jsonl, read_run_file
from stylegan_v.tracking.run import http_limits, replay_offline, sync_lock

log = logging.getLogger(__name__)


def resolve_uri(run_dir: Path, uri: str | None) -> str:
    """Explicit URI, else the one the run was created on, else the one the offline job meant to use."""
    if uri:
        return uri
    payload = read_run_file(run_dir)
    if payload is not None:
        return payload["tracking_uri"]
    for _, record in iter_jsonl(run_dir / OFFLINE_FILE):
        if record["op"] == "open":
            return record["tracking_uri"]
    return TrackingConfig().resolved_uri()


def sync(run_dir: str | os.PathLike[str], uri: str | None = None, cfg: TrackingConfig | None = None) -> int:
    """Apply the pending offline records of ``run_dir``; returns how many were applied (0 when in sync)."""
    from mlflow import MlflowClient

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    cfg = cfg or TrackingConfig()
    tracking_uri = resolve_uri(run_dir, uri)
    with http_limits(cfg), sync_lock(run_dir):
        ctx = RunContext(MlflowClient(tracking_uri=tracking_uri), run_dir, tracking_uri)
        applied = replay_offline(ctx)
    log.info("%s: %d records applied to run %s at %s", run_dir, applied, ctx.run_id, tracking_uri)
    return applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_v.tracking.sync", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, nargs="+", help="training run directories to sync")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store; default: the run's own (mlflow_run.json), else $MLFLOW_TRACKING_URI")
    parser.add_argument("--timeout-s", type=int, default=30, help="HTTP timeout per request (a sync may wait)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = TrackingConfig(request_timeout_s=args.timeout_s, request_max_retries=3)
    for run_dir in args.run_dir:
        applied = sync(run_dir, args.tracking_uri, cfg)
        print(f"{run_dir}: {applied} records synced")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
