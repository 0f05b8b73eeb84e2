"""Checkpoints: atomic writes, the newest *valid* one on resume, and pruning that keeps the best.

A preempted job can die in the middle of ``torch.save``; writing to a temporary name and renaming means a
checkpoint file is either complete or absent, and a damaged newest file (copied, truncated by a full disk)
makes :func:`load_latest` fall back to the previous one instead of failing the run.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

PATTERN = "checkpoint-{step:09d}.pt"
GLOB = "checkpoint-*.pt"
BEST_FILE = "best.json"


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary sibling, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def save(run_dir: Path, step: int, state: dict[str, Any]) -> Path:
    path = checkpoint_dir(run_dir) / PATTERN.format(step=step)
    atomic_write_bytes(path, lambda f: torch.save(state, f))
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Oldest first (the step is zero-padded in the name)."""
    return sorted(checkpoint_dir(run_dir).glob(GLOB))


def load(path: Path) -> dict[str, Any]:
    # Our own files: they hold the resolved config and RNG states next to the tensors.
    return torch.load(path, map_location="cpu", weights_only=False)


def load_latest(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; damaged ones are reported and skipped."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load(path)
        except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
            log.warning("checkpoint %s is damaged (%s: %s); trying the previous one", path.name,
                        type(error).__name__, error)
    return None


def best(run_dir: Path) -> dict[str, Any] | None:
    """``{"path", "metric", "value", "kimg"}`` of the best checkpoint so far, if any."""
    path = run_dir / BEST_FILE
    return json.loads(path.read_text()) if path.exists() else None


def update_best(run_dir: Path, checkpoint: Path, metric: str, value: float, kimg: float) -> bool:
    """Record ``checkpoint`` as the best if ``value`` is lower (FVD/FID: lower is better)."""
    current = best(run_dir)
    if current is not None and current["metric"] == metric and current["value"] <= value:
        return False
    record = {"path": checkpoint.name, "metric": metric, "value": value, "kimg": kimg}
    atomic_write_text(run_dir / BEST_FILE, json.dumps(record, indent=2) + "\n")
    return True


def prune(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints, never the best one; returns what was deleted."""
    protected = {(best(run_dir) or {}).get("path")}
    candidates = [p for p in list_checkpoints(run_dir)[:-keep] if p.name not in protected]
    for path in candidates:
        path.unlink(missing_ok=True)
    return candidates


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (its best checkpoint if recorded, else the newest)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        record = best(path)
        if record is not None and (checkpoint_dir(path) / record["path"]).exists():
            return checkpoint_dir(path) / record["path"]
        found = list_checkpoints(path)
        if found:
            return found[-1]
    raise FileNotFoundError(f"no checkpoint at {path} (give a checkpoint-*.pt file or a run directory)")


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """G_ema of a checkpoint, in eval mode, and the resolved config it was trained with."""
    from stylegan_v.models.registry import build_models  # here, so that reading files needs no model code

    state = load(resolve(path))
    cfg = state["config"]
    G, _ = build_models(cfg["model"], int(cfg["dataset"]["resolution"]), int(cfg["dataset"]["sampling"]["num_frames"]))
    G.load_state_dict(state["G_ema"])
    return G.eval().requires_grad_(False).to(device), cfg
