"""Send a run directory's journaled tracking records to MLflow: ``python -m stylegan_v.tracking.sync RUN_DIR``.

Sends what MLflow has not acknowledged (the records of a segment that ran offline, or that was killed while a
request was in flight); creates the MLflow run if the job never reached the server (and writes
``mlflow_run.json``, so the job's next segment continues that run). Idempotent: a second sync applies nothing
(byte offset in ``mlflow_journal.synced``), and re-applied records change nothing (see
:mod:`stylegan_v.tracking.records`). A failure the user can fix (server unreachable, damaged store) is one line
on stderr and exit status 1; ``--verbose`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from stylegan_v.errors import user_error
from stylegan_v.tracking.config import TrackingConfig

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_v.tracking.sync", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, nargs="+", help="training run directories to sync")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store; default: the run's own (mlflow_run.json), else $MLFLOW_TRACKING_URI")
    parser.add_argument("--timeout-s", type=int, default=30, help="HTTP timeout per request (a sync may wait)")
    parser.add_argument("--verbose", action="store_true", help="show the traceback of a failure")
    args = parser.parse_args(argv)
    for run_dir in args.run_dir:
        if not run_dir.is_dir():
            parser.error(f"run directory {run_dir} does not exist")
    from stylegan_v.tracking.replay import sync  # MLflow: after the arguments are checked

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = TrackingConfig(request_timeout_s=args.timeout_s, request_max_retries=3)
    for run_dir in args.run_dir:
        try:
            applied = sync(run_dir, args.tracking_uri, cfg)
        except Exception as err:
            found = None if args.verbose else user_error(err)
            if found is None:
                raise
            print(f"error: {found[0]}", file=sys.stderr)
            return found[1]
        print(f"{run_dir}: {applied} records synced")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
