"""Journaled tracking records sent to MLflow: what a reopening job and ``python -m stylegan_v.tracking.sync``
both run (and the live job record by record). Replaying is idempotent (a byte offset marks what MLflow has
acknowledged; applying a record twice changes nothing, see :mod:`stylegan_v.tracking.records`), and one
process at a time sends, holding the run directory's journal lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from stylegan_v.files import atomic_write_text, exclusive_lock, iter_jsonl, remove_stale_temps
from stylegan_v.tracking.config import TrackingConfig
from stylegan_v.tracking.records import (
    JOURNAL_FILE,
    LEGACY_FILES,
    RUN_FILE,
    SYNC_LOCK_FILE,
    SYNC_OFFSET_FILE,
    RunContext,
    TrackingUnreachable,
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
    """One sender at a time per run directory (the job, a reopening job and a manual sync could race)."""
    return exclusive_lock(run_dir / SYNC_LOCK_FILE, f"the MLflow journal of {run_dir}", wait=True)


def tidy(run_dir: Path) -> None:
    """Before a segment or a sync uses the journal: take over the files of an older version (which journaled
    offline records only) and remove the temporary files of tracking writes that were killed. Call under
    :func:`sync_lock`."""
    if not (run_dir / JOURNAL_FILE).exists():
        for old, new in LEGACY_FILES:  # the offset first: a kill in between leaves both readable again
            if (run_dir / old).exists():
                os.replace(run_dir / old, run_dir / new)
    remove_stale_temps(run_dir, RUN_FILE, SYNC_OFFSET_FILE)


def synced_offset(run_dir: Path) -> int:
    """Bytes of the journal that MLflow has acknowledged."""
    path = run_dir / SYNC_OFFSET_FILE
    return int(path.read_text().split()[0]) if path.exists() else 0


def mark_synced(run_dir: Path, offset: int) -> None:
    atomic_write_text(run_dir / SYNC_OFFSET_FILE, f"{offset}\n")


def replay(ctx: RunContext) -> int:
    """Apply the journaled records MLflow has not acknowledged yet, in order; returns how many were applied.

    Progress is kept as a byte offset in ``mlflow_journal.synced`` (written atomically after every record), so
    a second replay applies nothing; a record applied but not yet marked is harmless, since applying is
    idempotent (see :mod:`stylegan_v.tracking.records`). Call under :func:`sync_lock`.
    """
    applied = 0
    for end, record in iter_jsonl(ctx.run_dir / JOURNAL_FILE, synced_offset(ctx.run_dir)):
        apply_record(ctx, record)
        mark_synced(ctx.run_dir, end)
        applied += 1
    return applied


def resolve_uri(run_dir: Path, uri: str | None) -> str:
    """Explicit URI, else the one the run was created on, else the one the offline job meant to use."""
    if uri:
        return uri
    payload = read_run_file(run_dir)
    if payload is not None:
        return payload["tracking_uri"]
    for _, record in iter_jsonl(run_dir / JOURNAL_FILE):
        if record["op"] == "open":
            return record["tracking_uri"]
    return TrackingConfig().resolved_uri()


def sync(run_dir: str | os.PathLike[str], uri: str | None = None, cfg: TrackingConfig | None = None) -> int:
    """Apply the journaled records of ``run_dir`` that MLflow has not acknowledged; returns how many were
    applied (0 when in sync). :class:`TrackingUnreachable` when the server does not answer."""
    from mlflow import MlflowClient

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    cfg = cfg or TrackingConfig()
    with http_limits(cfg), sync_lock(run_dir):
        tidy(run_dir)
        tracking_uri = resolve_uri(run_dir, uri)
        reason = probe(tracking_uri, cfg.request_timeout_s)
        if reason is not None:
            raise TrackingUnreachable(f"MLflow at {tracking_uri} is unreachable ({reason}); the records of "
                                      f"{run_dir} wait in {JOURNAL_FILE}: run the sync again once it answers")
        ctx = RunContext(MlflowClient(tracking_uri=tracking_uri), run_dir, tracking_uri)
        applied = replay(ctx)
    log.info("%s: %d records applied to run %s at %s", run_dir, applied, ctx.run_id, tracking_uri)
    return applied
