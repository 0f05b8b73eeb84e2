"""The run directory's tracking files and how one tracking record is applied to an MLflow run.

Every call of the training-side tracker becomes a *record* (a JSON-able dict with an ``op``), appended to
the journal ``mlflow_journal.jsonl`` before it is sent: online it is then applied to MLflow at once, and
marked sent once MLflow has acknowledged it; offline (or killed while the request was in flight) it waits
there for the next segment or ``python -m stylegan_v.tracking.sync``, which apply it through the same
:func:`apply_record`. Applying a record twice changes nothing (metrics at or below the last logged step of
their key are dropped, params and tags are idempotent, an artifact overwrites itself), so a replay that is
interrupted and re-run, or that meets a record MLflow took just before a kill, is safe.

Files in a run directory (all written by rank 0 only):
- ``mlflow_run.json``: ``{"run_id", "experiment_id", "tracking_uri"}``, written atomically when the run is
  created; a requeued or resumed job reopens this run instead of creating another.
- ``mlflow_journal.jsonl``: every record, append-only; ``mlflow_journal.synced`` holds the byte offset up to
  which MLflow has acknowledged them; ``mlflow_journal.lock`` lets one process at a time send records (the
  job, a reopening job, a manual sync).
- ``metrics.jsonl``: every metric point, append-only, independent of MLflow (written after the journal).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stylegan_v.files import atomic_write_json, iter_jsonl

log = logging.getLogger(__name__)

RUN_FILE = "mlflow_run.json"
JOURNAL_FILE = "mlflow_journal.jsonl"
SYNC_OFFSET_FILE = "mlflow_journal.synced"
SYNC_LOCK_FILE = "mlflow_journal.lock"
# Before every record was journaled, only the records of an offline segment were kept, under these names.
LEGACY_FILES = (("mlflow_offline.synced", SYNC_OFFSET_FILE), ("mlflow_offline.jsonl", JOURNAL_FILE))
METRICS_FILE = "metrics.jsonl"

# MLflow 3.x stores params up to 6000 characters, but servers of MLflow < 2.x reject more than 500; a
# cluster's tracking server may be old, so values are cut at 500 (the full config is in the run directory).
PARAM_VALUE_LIMIT = 500
TAG_VALUE_LIMIT = 5000  # same reasoning: MLflow < 2.x accepted 5000-character tags, 3.x accepts 8000
KEY_LIMIT = 250  # MLflow's limit on a param/metric/tag key
BATCH_LIMIT = 100  # MLflow's log_batch accepts at most 100 params+tags per request (1000 metrics)
TRUNCATED = "...[truncated]"
_KEY_BAD_CHARS = re.compile(r"[^A-Za-z0-9_\-. /]")  # MLflow keys allow alphanumerics, _ - . space /

# Tags whose value is a comma-joined list that grows by one entry per job segment.
TAG_SLURM_JOB_IDS = "slurm.job_ids"
TAG_HOSTS = "hosts"
TAG_PARAMS_CHANGED = "stylegan_v.params_changed_on_resume"
PARENT_TAG = "mlflow.parentRunId"  # the tag MLflow's UI uses to nest a child run under its parent

CLOSE_STATUSES = ("FINISHED", "FAILED", "KILLED", "REQUEUED")


class TrackingAuthError(PermissionError):
    """The tracking server refused the credentials (HTTP 401/403): a configuration error, not an outage, so it
    is raised at open instead of training silently offline."""


def is_auth_failure(error: BaseException) -> bool:
    """MLflow's way of saying 401/403: an error code, or the status in the message of a non-JSON answer."""
    if getattr(error, "error_code", None) in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return True
    return re.search(r"error code (401|403)\b", str(error)) is not None


class TrackingUnreachable(ConnectionError):
    """A sync found the tracking server unreachable; the message names it and where the records wait."""


class RunNotInStoreError(ValueError):
    """``mlflow_run.json`` names a run the configured store does not hold: a configuration error (the store
    changed between segments), not an outage, so it is raised instead of going offline."""


def clean_key(key: str) -> str:
    """An MLflow-valid key: unsupported characters become ``_``, cut at 250 characters."""
    return _KEY_BAD_CHARS.sub("_", str(key))[:KEY_LIMIT]


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - len(TRUNCATED)] + TRUNCATED


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"a.b.c": "value"}`` with MLflow-valid keys and values cut at 500 characters.

    Lists and tuples become their JSON text (one param, not one per element, so ``channels=[..]`` stays
    readable); ``None`` becomes ``"None"``.
    """
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
            continue
        if isinstance(value, (list, tuple)):
            text = json.dumps(list(value), default=str)
        else:
            text = str(value)
        flat[clean_key(name)] = truncate(text, PARAM_VALUE_LIMIT)
    return flat


def clean_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {clean_key(k): truncate(str(v), TAG_VALUE_LIMIT) for k, v in tags.items() if v is not None}


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------------------------- files


def read_run_file(run_dir: str | os.PathLike[str]) -> dict[str, str] | None:
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    for key in ("run_id", "experiment_id", "tracking_uri"):
        if not isinstance(payload.get(key), str):
            raise ValueError(f"{path} lacks {key!r}; delete it only if the MLflow run it named is gone")
    return payload


def run_id_of(run_dir: str | os.PathLike[str]) -> str | None:
    """The MLflow run id persisted in a run directory (e.g. a sweep's parent run), or None."""
    payload = read_run_file(run_dir)
    return None if payload is None else payload["run_id"]


def last_steps_from_jsonl(path: Path) -> dict[str, int]:
    """Highest step per metric key in ``metrics.jsonl``; a resumed tracker drops points at or below it."""
    last: dict[str, int] = {}
    for _, record in iter_jsonl(path):
        step = int(record["step"])
        for key in record["metrics"]:
            last[key] = max(step, last.get(key, step))
    return last


# ------------------------------------------------------------------------------------ applying records


class RunContext:
    """What applying records needs: the client, the run, and the last logged step per metric key."""

    def __init__(self, client: Any, run_dir: Path, tracking_uri: str) -> None:
        self.client = client
        self.run_dir = run_dir
        self.tracking_uri = tracking_uri
        payload = read_run_file(run_dir)
        self.run_id: str | None = None if payload is None else payload["run_id"]
        self._last_step: dict[str, int | None] = {}  # None: the server has no point of this key
        self._complete = False  # True once every key the run holds is in _last_step (no more look-ups)

    def last_step(self, key: str) -> int | None:
        """Server-side highest step of ``key`` (one request per key, then cached)."""
        if key not in self._last_step and not self._complete:
            assert self.run_id is not None
            history = self.client.get_metric_history(self.run_id, key)
            self._last_step[key] = max((m.step for m in history), default=None)
        return self._last_step.get(key)

    def server_last_steps(self) -> dict[str, int]:
        """Highest step of every metric the run already holds (read once when a tracker reopens a run)."""
        assert self.run_id is not None
        run = self.client.get_run(self.run_id)
        steps = {key: self.last_step(key) for key in run.data.metrics}
        self._complete = True
        return {key: step for key, step in steps.items() if step is not None}

    def mark_new_run(self) -> None:
        self._last_step, self._complete = {}, True  # a run just created holds no metric

    def note_logged(self, key: str, step: int) -> None:
        previous = self._last_step.get(key)
        self._last_step[key] = step if previous is None else max(previous, step)


def apply_record(ctx: RunContext, record: Mapping[str, Any]) -> None:
    """Apply one record to MLflow. The run's status is left to the ``close`` records (a live job sets its
    run RUNNING itself), so a replay of an old segment does not mark a run RUNNING."""
    op = record["op"]
    if op == "open":
        _apply_open(ctx, record)
        return
    if ctx.run_id is None:
        raise RuntimeError(f"{ctx.run_dir}: a {op!r} record precedes the run's creation (no 'open' record and no "
                           f"{RUN_FILE}); the offline file is not from this tracker")
    client = ctx.client
    if op == "metrics":
        _apply_metrics(ctx, record)
    elif op == "tags":
        _log_batch(client, ctx.run_id, tags=record["tags"])
    elif op == "append_tags":
        current = client.get_run(ctx.run_id).data.tags
        merged = {key: join_list_tag(current.get(key), value) for key, value in record["tags"].items()}
        _log_batch(client, ctx.run_id, tags=merged)
    elif op == "input":
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(name=record["name"], digest=record["digest"], source_type="local", source=record["source"])
        client.log_inputs(ctx.run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])
    elif op == "artifact":
        path = Path(record["path"])
        if not path.exists():
            log.warning("artifact %s no longer exists; not uploaded", path)
            return
        if path.is_dir():
            client.log_artifacts(ctx.run_id, str(path), record.get("artifact_path"))
        else:
            client.log_artifact(ctx.run_id, str(path), record.get("artifact_path"))
    elif op == "close":
        status = record["status"]
        if status == "REQUEUED":
            # The job will come back: SCHEDULED (no end time) says "waiting to resume" in the UI; the next
            # segment's open sets it RUNNING again.
            client.update_run(ctx.run_id, status="SCHEDULED")
        elif status in ("FINISHED", "FAILED", "KILLED"):
            client.set_terminated(ctx.run_id, status=status, end_time=record["time"])
        else:
            raise ValueError(f"close status must be one of {list(CLOSE_STATUSES)}, got {status!r}")
    else:
        raise ValueError(f"unknown tracking record op {op!r}; valid: open, metrics, tags, append_tags, input, "
                         "artifact, close")


def join_list_tag(current: str | None, item: str) -> str:
    """Comma-joined list tag with ``item`` added once (a replayed segment adds nothing)."""
    items = [x for x in (current or "").split(",") if x]
    for new in (x for x in item.split(",") if x):
        if new not in items:
            items.append(new)
    return truncate(",".join(items), TAG_VALUE_LIMIT)


def _apply_open(ctx: RunContext, record: Mapping[str, Any]) -> None:
    client = ctx.client
    if ctx.run_id is None:
        experiment = client.get_experiment_by_name(record["experiment"])
        experiment_id = (client.create_experiment(record["experiment"]) if experiment is None
                         else experiment.experiment_id)
        tags = dict(record["tags"])
        if record.get("parent_run_id"):
            tags[PARENT_TAG] = record["parent_run_id"]
        run = client.create_run(experiment_id, start_time=record["time"], tags=tags, run_name=record["run_name"])
        ctx.run_id = run.info.run_id
        ctx.mark_new_run()
        atomic_write_json(ctx.run_dir / RUN_FILE, {"run_id": ctx.run_id, "experiment_id": experiment_id,
                                                   "tracking_uri": ctx.tracking_uri})
        existing_params: dict[str, str] = {}
    else:
        run = _get_existing_run(ctx)
        existing_params = dict(run.data.params)
        _log_batch(client, ctx.run_id, tags=record["tags"])
    params = record["params"]
    changed = sorted(k for k, v in params.items() if k in existing_params and existing_params[k] != v)
    new = {k: v for k, v in params.items() if k not in existing_params}
    _log_batch(client, ctx.run_id, params=new)
    if changed:
        # MLflow params are immutable. The run directory (and so this run) is named by a hash of the config,
        # so a changed value is one the hash ignores (e.g. a cluster setting): keep training, say so in a tag.
        log.warning("params changed since this MLflow run was created (kept the first values): %s", changed)
        current = client.get_run(ctx.run_id).data.tags.get(TAG_PARAMS_CHANGED)
        _log_batch(client, ctx.run_id, tags={TAG_PARAMS_CHANGED: join_list_tag(current, ",".join(changed))})


def _get_existing_run(ctx: RunContext) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        run = ctx.client.get_run(ctx.run_id)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        stored = read_run_file(ctx.run_dir) or {}
        raise RunNotInStoreError(
            f"{ctx.run_dir / RUN_FILE} names MLflow run {ctx.run_id} (created on {stored.get('tracking_uri')}), "
            f"which {ctx.tracking_uri} does not hold. Point tracking.tracking_uri (or MLFLOW_TRACKING_URI) at "
            f"that store, or delete {RUN_FILE} to start a new MLflow run for this run directory.") from e
    if stored := read_run_file(ctx.run_dir):
        if stored["tracking_uri"] != ctx.tracking_uri:  # same store under another address: remember the new one
            atomic_write_json(ctx.run_dir / RUN_FILE, {**stored, "tracking_uri": ctx.tracking_uri})
    return run


def _apply_metrics(ctx: RunContext, record: Mapping[str, Any]) -> None:
    from mlflow.entities import Metric

    step = int(record["step"])
    points = []
    for key, value in record["metrics"].items():
        last = ctx.last_step(key)
        if last is not None and step <= last:
            continue  # already logged by an earlier segment or an earlier sync
        points.append(Metric(key, float(value), int(record["time"]), step))
    for i in range(0, len(points), 1000):
        ctx.client.log_batch(ctx.run_id, metrics=points[i:i + 1000], synchronous=True)
    for point in points:
        ctx.note_logged(point.key, step)


def _log_batch(client: Any, run_id: str, params: Mapping[str, str] | None = None,
               tags: Mapping[str, str] | None = None) -> None:
    from mlflow.entities import Param, RunTag

    entities: list[Any] = [Param(k, v) for k, v in (params or {}).items()]
    entities += [RunTag(k, v) for k, v in (tags or {}).items()]
    for i in range(0, len(entities), BATCH_LIMIT):
        chunk = entities[i:i + BATCH_LIMIT]
        client.log_batch(run_id, params=[e for e in chunk if isinstance(e, Param)],
                         tags=[e for e in chunk if isinstance(e, RunTag)], synchronous=True)
