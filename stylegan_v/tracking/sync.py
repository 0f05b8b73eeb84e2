"""Replay a run directory's offline tracking records into MLflow: ``python -m stylegan_v.tracking.sync RUN_DIR``.

Creates the MLflow run if the job never reached the server (and writes ``mlflow_run.json``, so the job's
next segment continues that run). Idempotent: a second sync applies nothing (byte offset in
``mlflow_offline.synced``), and re-applied records change nothing (see :mod:`stylegan_v.tracking.records`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stylegan_v.tracking.config import TrackingConfig

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_v.tracking.sync", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, nargs="+", help="training run directories to sync")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store; default: the run's own (mlflow_run.json), else $MLFLOW_TRACKING_URI")
    parser.add_argument("--timeout-s", type=int, default=30, help="HTTP timeout per request (a sync may wait)")
    args = parser.parse_args(argv)
    from stylegan_v.tracking.replay import sync  # MLflow: after the arguments are checked

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = TrackingConfig(request_timeout_s=args.timeout_s, request_max_retries=3)
    for run_dir in args.run_dir:
        applied = sync(run_dir, args.tracking_uri, cfg)
        print(f"{run_dir}: {applied} records synced")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
