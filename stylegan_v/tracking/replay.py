"""Offline tracking records replayed into MLflow: what a reopening job and ``python -m stylegan_v.tracking.sync``
both run. Replaying is idempotent (a byte offset marks what was applied; applying a record twice changes
nothing, see :mod:`stylegan_v.tracking.records`), and one replayer at a time holds the run directory's lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from stylegan_v.files import atomic_write_text, exclusive_lock, iter_jsonl
from stylegan_v.tracking.config import TrackingConfig
from stylegan_v.tracking.records import (
    OFFLINE_FILE,
    SYNC_LOCK_FILE,
    SYNC_OFFSET_FILE,
    RunContext,
    apply_record,
    read_run_file,
)

log = logging.getLogger(__name__)


@contextlib.contextmanager
def http_limits(cfg: TrackingConfig) -> Iterator[None]:
    """Bound MLflow's HTTP requests for the duration of a call (restored afterwards, so nothing else in the
    process inherits them). MLflow reads these variables at request time."""
    wanted = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(cfg.request_timeout_s),
              "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(cfg.request_max_retries)}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def probe(uri: str, timeout_s: float) -> str | None:
    """None if the store looks reachable, else the reason. Only HTTP servers are probed (``GET /health``);
    local stores (sqlite, file) report their failures on first use."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as response:
            return None if response.status == 200 else f"GET /health answered {response.status}"
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        return f"{type(e).__name__}: {e}"


def sync_lock(run_dir: Path) -> contextlib.AbstractContextManager[None]:
    """One replayer at a time per run directory (the reopening job and a manual sync could race)."""
    return exclusive_lock(run_dir / SYNC_LOCK_FILE, f"the offline replay of {run_dir}", wait=True)


def replay_offline(ctx: RunContext) -> int:
    """Apply the not-yet-synced records of ``run_dir/mlflow_offline.jsonl``; returns how many were applied.

    Progress is kept as a byte offset in ``mlflow_offline.synced`` (written atomically after every record), so
    a second replay applies nothing; a record applied but not yet marked is harmless, since applying is
    idempotent (see :mod:`stylegan_v.tracking.records`). Call under :func:`sync_lock`.
    """
    offset_path = ctx.run_dir / SYNC_OFFSET_FILE
    offset = int(offset_path.read_text().split()[0]) if offset_path.exists() else 0
    applied = 0
    for end, record in iter_jsonl(ctx.run_dir / OFFLINE_FILE, offset):
        apply_record(ctx, record, live=False)
        _write_offset(offset_path, end)
        applied += 1
    return applied


def _write_offset(path: Path, offset: int) -> None:
    atomic_write_text(path, f"{offset}\n")


def pending_offline(run_dir: Path) -> bool:
    offline = run_dir / OFFLINE_FILE
    if not offline.exists():
        return False
    offset_path = run_dir / SYNC_OFFSET_FILE
    offset = int(offset_path.read_text().split()[0]) if offset_path.exists() else 0
    return offline.stat().st_size > offset


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
