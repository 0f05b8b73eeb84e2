"""One MLflow run per training run directory, surviving requeues, resumes and tracking-server outages.

Usage by the training loop (rank 0 gets a live tracker, other ranks a no-op one with the same API)::

    tracker = RunTracker.open(run_dir, cfg.tracking, run_name=name, params=flatten(resolved_cfg),
                              tags={"git_commit": sha, "dataset_hash": h}, is_main=rank == 0)
    tracker.log_metrics({"loss/G": 1.2, "kimg": 4.0}, step=tracker.step_for(cur_nimg))
    tracker.log_artifact(run_dir / "samples-000004.png", "samples")
    tracker.close("REQUEUED")   # preempted: the next segment reopens the same run
    tracker.close("FINISHED")   # done

Guarantees:
- **Same run on resume**: the run id is persisted in ``run_dir/mlflow_run.json``; reopening sets the run
  RUNNING again and never creates a second run.
- **Nothing lost**: every record is appended (fsynced) to ``mlflow_journal.jsonl`` before it is sent, and a
  metric point reaches ``metrics.jsonl`` only after that, so whatever counts as logged is in the journal. It
  is marked sent once MLflow acknowledges it; a record not acknowledged (the server down, or the job killed
  while the request was in flight) is replayed by the next segment's ``open`` or by
  ``python -m stylegan_v.tracking.sync run_dir``.
- **No duplicate steps**: on open the tracker reads the last step of every metric key from ``metrics.jsonl``
  and drops incoming points whose step is at or below it, so the steps a resumed job re-trains after its last
  checkpoint are logged once; MLflow itself drops a point at or below the last step it holds of that key, so a
  record replayed after MLflow took it (a kill between its answer and the mark) is not logged twice either.
- **Training never waits on MLflow for long**: HTTP requests are bounded by ``tracking.request_timeout_s``
  with ``tracking.request_max_retries`` retries; the first failure switches the tracker offline for the rest
  of the segment (one warning naming the cause), and every later call is a local file append.
- **Wrong store** is an error, not an outage: if ``mlflow_run.json`` names a run the configured store does not
  hold, ``open`` raises :class:`RunNotInStoreError` (the same store under a new address is fine).
- **Params** are logged once. A changed value on resume is not an error (MLflow params are immutable and the
  run directory is named by the config hash, so such a key is one the hash ignores): the first value is kept,
  a warning is logged and the key is added to the tag ``stylegan_v.params_changed_on_resume``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stylegan_v.errors import tracking_failure
from stylegan_v.files import append_jsonl
from stylegan_v.tracking.config import TrackingConfig
from stylegan_v.tracking.cost import projected_cost_metrics
from stylegan_v.tracking.records import (
    CLOSE_STATUSES,
    JOURNAL_FILE,
    METRICS_FILE,
    TAG_HOSTS,
    TAG_SLURM_JOB_IDS,
    RunContext,
    RunNotInStoreError,
    TrackingAuthError,
    apply_record,
    clean_key,
    clean_tags,
    flatten,
    is_auth_failure,
    last_steps_from_jsonl,
    now_ms,
    run_id_of,
)
from stylegan_v.tracking.replay import http_limits, mark_synced, probe, replay, sync, sync_lock, tidy

log = logging.getLogger(__name__)

__all__ = ["NullTracker", "RunTracker", "flatten"]


class NullTracker:
    """The tracker of non-zero ranks: same API, touches neither MLflow nor the disk."""

    run_id: str | None = None
    online = False

    def __init__(self, cfg: TrackingConfig) -> None:
        self.cfg = cfg

    def step_for(self, nimg: int) -> int:
        return self.cfg.step_for(nimg)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        pass

    def append_tags(self, tags: Mapping[str, Any]) -> None:
        pass

    def log_input(self, name: str, digest: str, source: str) -> None:
        pass

    def close(self, status: str = "FINISHED") -> None:
        if status not in CLOSE_STATUSES:
            raise ValueError(f"close status must be one of {list(CLOSE_STATUSES)}, got {status!r}")

    def __enter__(self) -> NullTracker:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.close("FINISHED" if exc_type is None else "FAILED")


class RunTracker(NullTracker):
    """Rank 0's tracker of one training run directory (see the module docstring for the guarantees)."""

    def __init__(self, run_dir: Path, cfg: TrackingConfig) -> None:
        super().__init__(cfg)
        self.run_dir = run_dir
        self.tracking_uri = cfg.resolved_uri()
        self._ctx: RunContext | None = None  # set while online
        self._offline_reason: str | None = None  # why this segment stopped sending to MLflow (warned once)
        self._closed = False
        self._last_step: dict[str, int] = {}

    # ------------------------------------------------------------------------------------- opening

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str], cfg: TrackingConfig, run_name: str,
             params: Mapping[str, Any], tags: Mapping[str, Any] | None = None,
             parent_run_id: str | None = None, is_main: bool = True) -> NullTracker:
        """Open (or reopen) the MLflow run of ``run_dir``. ``params``: the resolved config, nested or already
        flattened (it is flattened here); ``parent_run_id``: a sweep's parent run (the child gets the tag
        ``mlflow.parentRunId``). Non-main ranks get a :class:`NullTracker`. The current Slurm job id and
        node list (or host name) are appended to the list tags ``slurm.job_ids`` and ``hosts``."""
        if not is_main:
            return NullTracker(cfg)
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        tracker = cls(run_dir, cfg)
        tracker._last_step = last_steps_from_jsonl(run_dir / METRICS_FILE)
        if cfg.enabled:
            with sync_lock(run_dir):
                tidy(run_dir)
            tracker._journal({"op": "open", "time": now_ms(), "run_name": run_name, "experiment": cfg.experiment,
                              "params": flatten(params), "tags": clean_tags(tags or {}),
                              "parent_run_id": parent_run_id, "tracking_uri": tracker.tracking_uri})
            tracker._connect()
            segment = {TAG_SLURM_JOB_IDS: os.environ.get("SLURM_JOB_ID"),
                       TAG_HOSTS: os.environ.get("SLURM_JOB_NODELIST") or socket.gethostname()}
            tracker.append_tags({k: v for k, v in segment.items() if v})
            projected = projected_cost_metrics(run_dir)
            if projected:  # a fixed figure, not a curve: to MLflow only, not to metrics.jsonl (the run's curves)
                record = {"op": "metrics", "time": now_ms(), "step": 0, "metrics": projected}
                tracker._send(record, tracker._journal(record))
        return tracker

    def _connect(self) -> None:
        """Send what the journal holds beyond the acknowledged offset (earlier segments' records, then this
        segment's opening) and mark the run RUNNING; offline on any failure but a configuration error."""
        reason = probe(self.tracking_uri, self.cfg.request_timeout_s)
        if reason is not None:
            self._go_offline(f"is unreachable ({reason})")
            return
        try:
            with http_limits(self.cfg):
                from mlflow import MlflowClient

                ctx = RunContext(MlflowClient(tracking_uri=self.tracking_uri), self.run_dir, self.tracking_uri)
                with sync_lock(self.run_dir):
                    applied = replay(ctx)
                if applied > 1:
                    log.info("sent %d journaled tracking records of %s to MLflow", applied - 1, self.run_dir)
                if ctx.run_id is None:
                    raise RuntimeError(f"{self.run_dir / JOURNAL_FILE} holds no opening record")
                ctx.client.update_run(ctx.run_id, status="RUNNING")
                ctx.server_last_steps()  # one look-up per key now, instead of one per key's first point
        except RunNotInStoreError:
            raise  # a configuration error, not an outage: fail before training starts
        except Exception as e:  # noqa: BLE001 - any tracking failure must leave training running
            if is_auth_failure(e):  # wrong or missing credentials: also a configuration error
                user = os.environ.get("MLFLOW_TRACKING_USERNAME")
                raise TrackingAuthError(
                    f"MLflow at {self.tracking_uri} refused the credentials "
                    f"({'user ' + repr(user) if user else 'none given'}): set MLFLOW_TRACKING_USERNAME and "
                    "MLFLOW_TRACKING_PASSWORD to an account of the server's basic-auth app") from None
            self._go_offline(tracking_failure(e))
            return
        self._ctx = ctx

    @property
    def run_id(self) -> str | None:  # type: ignore[override]
        """The MLflow run, also after the tracker went offline (None while no segment has reached MLflow)."""
        return self._ctx.run_id if self._ctx is not None else run_id_of(self.run_dir)

    @property
    def online(self) -> bool:  # type: ignore[override]
        return self._ctx is not None

    # -------------------------------------------------------------------------------------- logging

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log ``metrics`` at integer ``step`` (see ``tracking.step_unit``: kimg by default, use
        :meth:`step_for`). Points whose step is at or below the last logged step of their key are dropped:
        after a resume, the re-trained stretch since the last checkpoint is not logged twice."""
        if isinstance(step, bool) or int(step) != step or step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
        step = int(step)
        fresh = {clean_key(k): float(v) for k, v in metrics.items()
                 if step > self._last_step.get(clean_key(k), -1)}
        if len(fresh) < len(metrics):
            log.debug("dropped %d metric points at step %d (already logged)", len(metrics) - len(fresh), step)
        if not fresh:
            return
        record = {"op": "metrics", "time": now_ms(), "step": step, "metrics": fresh}
        # Journal, then metrics.jsonl (what a resumed segment reads as logged), then the network round trip.
        end = self._journal(record) if self.cfg.enabled else None
        append_jsonl(self.run_dir / METRICS_FILE, {k: record[k] for k in ("time", "step", "metrics")})
        for key in fresh:
            self._last_step[key] = step
        if end is not None:
            self._send(record, end)

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Upload a file or folder (e.g. a sample grid, an mp4) to the run; skipped if ``tracking.artifacts``
        is false. Offline, the path is recorded and uploaded by the sync, if the file still exists then."""
        if self.cfg.enabled and self.cfg.artifacts:
            self._emit({"op": "artifact", "time": now_ms(), "path": str(Path(path).resolve()),
                        "artifact_path": artifact_path})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.cfg.enabled and tags:
            self._emit({"op": "tags", "time": now_ms(), "tags": clean_tags(tags)})

    def append_tags(self, tags: Mapping[str, Any]) -> None:
        """Add an item to comma-joined list tags (job ids, hosts): each item appears once however often a
        segment is replayed."""
        if self.cfg.enabled and tags:
            self._emit({"op": "append_tags", "time": now_ms(), "tags": clean_tags(tags)})

    def log_input(self, name: str, digest: str, source: str) -> None:
        """The training data as an MLflow dataset input (name, content hash as digest, where it lives): the
        UI's Datasets column, and runs on the same pixels share one digest."""
        if self.cfg.enabled:  # MLflow keeps at most 36 characters of a digest
            self._emit({"op": "input", "time": now_ms(), "name": name, "digest": digest[:32], "source": source})

    def close(self, status: str = "FINISHED") -> None:
        """End this job segment. ``FINISHED``/``FAILED``/``KILLED`` end the run; ``REQUEUED`` (preemption or
        timeout with a requeue coming) leaves it resumable: status SCHEDULED, no end time, and the next
        segment's open sets it RUNNING again. Offline, a last reconnect-and-replay is tried."""
        super().close(status)
        if self._closed or not self.cfg.enabled:
            self._closed = True
            return
        self._closed = True
        self._emit({"op": "close", "time": now_ms(), "status": status})
        if (self._ctx is None and self._offline_reason is not None
                and probe(self.tracking_uri, self.cfg.request_timeout_s) is None):
            try:
                sync(self.run_dir, self.tracking_uri, self.cfg)
            except Exception as e:  # noqa: BLE001 - the records stay in the journal for a later sync
                log.warning("the tracking records of %s are still not in MLflow: MLflow at %s %s; once that is "
                            "fixed, run `python -m stylegan_v.tracking.sync %s` (the next segment of this run "
                            "also sends them)", self.run_dir, self.tracking_uri, tracking_failure(e), self.run_dir)

    # ----------------------------------------------------------------------------------- internals

    def _journal(self, record: dict[str, Any]) -> int:
        """Append ``record`` to the journal (whole, fsynced); returns where it ends."""
        return append_jsonl(self.run_dir / JOURNAL_FILE, record)

    def _emit(self, record: dict[str, Any]) -> None:
        self._send(record, self._journal(record))

    def _send(self, record: dict[str, Any], end: int) -> None:
        """Apply a journaled record to MLflow while online, and mark the journal sent up to ``end`` once MLflow
        has acknowledged it. Offline, it waits in the journal."""
        if self._ctx is None:
            return
        try:
            with http_limits(self.cfg), sync_lock(self.run_dir):
                apply_record(self._ctx, record)
        except Exception as e:  # noqa: BLE001 - any tracking failure must leave training running
            self._go_offline(tracking_failure(e))
            return
        mark_synced(self.run_dir, end)  # a disk error here is not MLflow's: it stops the job like any other

    def _go_offline(self, reason: str) -> None:
        self._ctx = None
        if self._offline_reason is None:
            self._offline_reason = reason
            log.warning("MLflow at %s %s; training goes on and the tracking records wait in %s: the next "
                        "segment of this run sends them, or run `python -m stylegan_v.tracking.sync %s`",
                        self.tracking_uri, reason, self.run_dir / JOURNAL_FILE, self.run_dir)
