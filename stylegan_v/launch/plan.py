"""Projected cost of a launch before it queues: per point, its Slurm request, wall time and GPU-days.

GPU-days = steps x measured step time x GPUs / 86 400, with steps = ``training.total_kimg`` x 1000 frames over
(batch x frames per video), the way kimg counts frames. A step time is only ever measured, never guessed: it
comes from a small JSON cache under ``paths.cache_dir`` keyed by what decides a step's cost (model, dataset
resolution, frames per video, videos per rank) and the device class. On a cache miss it is measured here
(:mod:`stylegan_v.launch.step_time`) when this machine is of the target class; otherwise (a GPU class seen
from a CPU login node) the plan says that no measurement exists for that class, and gives no number.
A GPU class is measured by running the same ``--plan`` command on a machine with that GPU (the cache is
shared through ``paths.cache_dir``), or recorded by :func:`remember`.

``cluster.max_gpu_days`` (per submission: a run, or all points of a sweep) refuses a launch whose projected
total exceeds it, or that cannot be projected, before anything queues: one line on stderr, exit status 2.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stylegan_v.files import atomic_write_json

CACHE_FILE = "step_times.json"
# On a CPU the step is timed on at most this many videos and scaled linearly to a rank's batch: CPU time grows
# in proportion to the batch, and a paper-scale batch at 256² would need tens of GB on the login node.
CPU_PROBE_VIDEOS = 2
SECONDS_PER_DAY = 86_400.0
USAGE_ERROR = 2


def step_key(typed: Any, device: str) -> str:
    """Hash of what a step's time depends on and the device class it ran on."""
    settings = {
        "model": asdict(typed.model),
        "resolution": int(typed.dataset.resolution),
        "num_frames": int(typed.dataset.sampling.num_frames),
        "batch_per_rank": batch_per_rank(typed),
        "device": device,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_path(typed: Any) -> Path:
    return Path(str(typed.paths.cache_dir)) / CACHE_FILE


def read_cache(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def cached_step_time(path: Path, key: str) -> float | None:
    entry = read_cache(path).get(key)
    return None if entry is None else float(entry["step_s"])


def record_step_time(path: Path, key: str, step_s: float, device: str) -> None:
    """Store a measured step time (atomically: a reader never sees half a file)."""
    cache = read_cache(path)
    cache[key] = {"step_s": float(step_s), "device": device}
    atomic_write_json(path, cache, indent=2)


def remember(typed: Any, device: str, step_s: float) -> None:
    """Record a step time measured on ``device`` for this config (e.g. by a benchmark run on that class)."""
    record_step_time(cache_path(typed), step_key(typed, device), step_s, device)


def ranks_of(typed: Any) -> int:
    cluster = typed.cluster
    if cluster.kind == "slurm":
        return int(cluster.nodes) * int(cluster.tasks_per_node)
    return max(int(cluster.processes), 1)


def gpus_of(typed: Any) -> int:
    cluster = typed.cluster
    return int(cluster.nodes) * int(cluster.gpus_per_node) if cluster.kind == "slurm" else 0


def batch_per_rank(typed: Any) -> int:
    return max(int(typed.training.batch_size) // ranks_of(typed), 1)


def steps_of(typed: Any) -> int:
    """Optimiser steps for ``training.total_kimg``: kimg counts frames shown to D (batch x frames per video)."""
    frames_per_step = int(typed.training.batch_size) * int(typed.dataset.sampling.num_frames)
    return -(-int(round(float(typed.training.total_kimg) * 1000)) // frames_per_step)


@dataclass(frozen=True)
class Projection:
    steps: int
    step_s: float | None  # None: no measurement for the device class
    gpus: int
    ranks: int
    device: str  # the device class the step time belongs to
    source: str  # "cache", "measured here", or why there is no number

    @property
    def wall_s(self) -> float | None:
        return None if self.step_s is None else self.steps * self.step_s

    @property
    def gpu_days(self) -> float | None:
        return None if self.wall_s is None else self.wall_s * self.gpus / SECONDS_PER_DAY

    @property
    def device_days(self) -> float | None:
        """Wall time x ranks: the comparable figure for a CPU job (0 GPU-days)."""
        return None if self.wall_s is None else self.wall_s * max(self.gpus, self.ranks) / SECONDS_PER_DAY


def target_kind(typed: Any) -> str:
    if gpus_of(typed) > 0 or str(typed.training.device) == "cuda":
        return "cuda"
    return "cpu"


def here_device(kind: str) -> str | None:
    """This machine's device class of ``kind``; None when it has none (no GPU here)."""
    from stylegan_v.launch import step_time

    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            return None
    return step_time.device_name(kind)


def project(typed: Any, measure: bool = True) -> Projection:
    """The point's projection: the cached step time of its device class, measured here on a miss when this
    machine is of that class."""
    from stylegan_v.launch import step_time

    kind = target_kind(typed)
    here = here_device(kind)
    wanted = getattr(typed.cluster, "device_class", None) or here
    base = dict(steps=steps_of(typed), gpus=gpus_of(typed), ranks=ranks_of(typed))
    if wanted is None:
        return Projection(step_s=None, device="unknown GPU", source=(
            "no measured step time: the jobs use GPUs but cluster.device_class names no GPU model "
            "and there is no GPU here"), **base)
    path, key = cache_path(typed), step_key(typed, wanted)
    cached = cached_step_time(path, key)
    if cached is not None:
        return Projection(step_s=cached, device=wanted, source="cache", **base)
    if measure and wanted == here:
        batch = batch_per_rank(typed)
        probe = batch if kind == "cuda" else min(batch, CPU_PROBE_VIDEOS)
        seconds = step_time.measure(typed, probe, kind) * batch / probe
        record_step_time(path, key, seconds, wanted)
        source = "measured here" if probe == batch else f"measured here on {probe} videos, scaled to {batch}"
        return Projection(step_s=seconds, device=wanted, source=source, **base)
    return Projection(step_s=None, device=wanted, source=(
        f"no measured step time for {wanted!r} with this model config (run the same command with --plan "
        "on a machine with that device to measure it into the cache)"), **base)


def request_of(typed: Any) -> dict[str, Any]:
    """What the launcher would ask for: sbatch parameters for Slurm, the process count for a local run."""
    if typed.cluster.kind == "slurm":
        from stylegan_v.launch.submit import slurm_parameters

        return slurm_parameters(typed.cluster)
    return {"local processes": max(int(typed.cluster.processes), 1), "timeout_min": typed.cluster.timeout_min}


def _days(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _wall(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds / 3600:.3g} h" if seconds >= 3600 else f"{seconds:.3g} s"


def total(projections: list[Projection], field: str) -> float | None:
    values = [getattr(p, field) for p in projections]
    return None if any(v is None for v in values) else sum(values)


def format_plan(points: list[tuple[str, Any]], projections: list[Projection]) -> str:
    lines = []
    for num, ((label, typed), p) in enumerate(zip(points, projections, strict=True)):
        name = f"point {num + 1}/{len(points)}" + (f" ({label})" if label else "")
        lines.append(f"{name}: {typed.training.total_kimg:g} kimg = {p.steps} steps on {p.device}")
        lines.append(f"  request: {json.dumps(request_of(typed), sort_keys=True, default=str)}")
        step = "n/a" if p.step_s is None else f"{p.step_s:.4g} s"
        lines.append(f"  step {step} ({p.source}); wall {_wall(p.wall_s)}; GPU-days {_days(p.gpu_days)}; "
                     f"device-days {_days(p.device_days)}")
    lines.append(f"total: {len(points)} point(s); wall {_wall(total(projections, 'wall_s'))}; "
                 f"GPU-days {_days(total(projections, 'gpu_days'))}; "
                 f"device-days {_days(total(projections, 'device_days'))}")
    return "\n".join(lines)


def refusal(points: list[tuple[str, Any]], projections: list[Projection]) -> str | None:
    """The refusal line when ``cluster.max_gpu_days`` caps this submission and its projection is above the
    cap (or unknown); None otherwise."""
    caps = [c for _, typed in points if (c := getattr(typed.cluster, "max_gpu_days", None)) is not None]
    if not caps:
        return None
    cap = min(caps)
    projected = total(projections, "gpu_days")
    if projected is None:
        missing = next(p for p in projections if p.gpu_days is None)
        return f"cluster.max_gpu_days={cap:g} but the cost cannot be projected: {missing.source}; nothing was queued"
    if projected > cap:
        return (f"cluster.max_gpu_days: projected {projected:.4g} GPU-days exceeds the cap of {cap:g}; "
                "nothing was queued")
    return None


def before_launch(points: list[tuple[str, Any]], plan: bool) -> None:
    """``--plan``: print the plan. Otherwise, only when a cap is set: project and refuse above it."""
    capped = any(getattr(typed.cluster, "max_gpu_days", None) is not None for _, typed in points)
    if not plan and not capped:
        return
    projections = [project(typed) for _, typed in points]
    if plan:
        print(format_plan(points, projections))
    line = refusal(points, projections)
    if line is not None:
        print(f"error: {line}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)
