"""The run directory: derived from the experiment name and a hash of the resolved config, never a timestamp.

A requeued Slurm job recomposes the same config and so lands in the same folder, where it finds its
checkpoints and its MLflow run id. Keys that say *where* or *how* a run executes (cluster, paths,
tracking, worker counts) are left out of the hash: moving a run between machines must not restart it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

# Top-level keys and dotted sub-keys that do not change the numbers a run produces.
EXCLUDED_KEYS = ("cluster", "paths", "tracking", "metrics", "sweep", "hydra", "report", "pipeline", "site",
                 "experiment_name", "training.num_workers",
                 "training.max_steps", "training.total_kimg", "training.snapshot_ticks", "training.kimg_per_tick",
                 "training.keep_checkpoints", "training.metrics", "training.best_metric", "training.sample_grid",
                 "training.dist_timeout_s", "training.allow_data_change", "dataset.num_workers",
                 "dataset.on_mismatch")


def _drop(tree: dict[str, Any], dotted: str) -> None:
    head, _, rest = dotted.partition(".")
    if head not in tree:
        return
    if rest:
        if isinstance(tree[head], dict):
            _drop(tree[head], rest)
    else:
        del tree[head]


def config_hash(resolved: dict[str, Any], length: int = 10) -> str:
    """Stable hash of the config keys that determine the result (sorted JSON, sha256)."""
    tree = json.loads(json.dumps(resolved, default=str))
    for key in EXCLUDED_KEYS:
        _drop(tree, key)
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:length]


def run_name(experiment: str, resolved: dict[str, Any]) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", experiment).strip("-") or "run"
    return f"{safe}-{config_hash(resolved)}"


def run_dir(runs_dir: str | Path, experiment: str, resolved: dict[str, Any]) -> Path:
    return Path(runs_dir) / run_name(experiment, resolved)
