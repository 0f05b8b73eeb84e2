"""Metric records: one layout, written by training snapshots and ``evaluate``, read by reports and sweeps.

A record is one flat JSON object per metric and evaluation, appended to ``metric-<name>.jsonl`` next to the
run (append-only, so a history of every evaluation stays):

    {"metric": "fvd256_16f", "kind": "fvd", "status": "ok", "value": 431.2, "std": 0.0, "reduced": true,
     "protocol": {...every switch that changes the number...}, "time": "2026-...Z", "source": "snapshot",
     "kimg": 80.0, "checkpoint": "checkpoint-000002500.pt", "floor": 128.0, ...}

``status`` is "ok" (with a ``value``) or "unavailable" (with a ``message``: e.g. detector weights absent).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stylegan_v.files import append_jsonl, iter_jsonl

FILE_PATTERN = "metric-{name}.jsonl"
SOURCES = ("snapshot", "evaluate")  # who wrote the record: a training snapshot, or python -m stylegan_v.evaluate


def record_path(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / FILE_PATTERN.format(name=name)


def write_record(out_dir: str | Path, record: dict[str, Any], source: str, **context: Any) -> dict[str, Any]:
    """Append ``record`` (a metric result with at least ``metric`` and ``status``) with its ``source`` and
    context (kimg, checkpoint, ...) to ``metric-<metric>.jsonl`` in ``out_dir``; returns what was written."""
    if source not in SOURCES:
        raise ValueError(f"unknown metric record source {source!r}; valid: {', '.join(SOURCES)}")
    if "metric" not in record or record.get("status") not in ("ok", "unavailable"):
        raise ValueError(f"a metric record needs 'metric' and status ok|unavailable, got {sorted(record)}")
    line = {**record, **context, "source": source,
            "time": context.get("time") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    append_jsonl(record_path(out_dir, record["metric"]), line)
    return line


def read_records(folder: str | Path, name: str | None = None, recursive: bool = False) -> list[dict[str, Any]]:
    """Records of ``metric-<name>.jsonl`` (every metric when ``name`` is None) under ``folder``, file by file in
    name order and in file order within a file; ``path`` says which file each came from."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = FILE_PATTERN.format(name=name or "*")
    out = []
    for path in sorted(folder.rglob(pattern) if recursive else folder.glob(pattern)):
        out.extend({**record, "path": str(path.relative_to(folder))} for _, record in iter_jsonl(path))
    return out


def last_ok(records: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The newest successful record of metric ``name`` (the latest checkpoint's score)."""
    ok = [r for r in records if r.get("metric") == name and r.get("status") == "ok"]
    return ok[-1] if ok else None
