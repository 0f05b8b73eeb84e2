"""Cost accounting in GPU-days, accumulated across the job segments (requeues) of one training run.

Definitions (the figures the reports print):
- A **segment** is one job run of the training: from the loop's start (or resume) to its end, preemption or
  timeout. Its *devices* are the devices of the whole job (all nodes): GPUs on a GPU job, ranks (processes)
  on a CPU job.
- ``gpu_days = Σ_segments wall_seconds × GPUs / 86 400``; CPU segments add 0.
- ``device_days = Σ_segments wall_seconds × devices / 86 400``, devices = GPUs for a GPU segment and CPU ranks
  for a CPU segment. For a GPU run it equals ``gpu_days``; for a CPU run it is the comparable figure.

:class:`CostMeter` measures this from inside the job; its ``state_dict`` lives in the training checkpoint,
so the totals survive requeues. Caveat: the time between a segment's last checkpoint and a *hard* kill
(no signal, so no final checkpoint) is lost to the meter but not to Slurm; :func:`sacct_cost` gives Slurm's
own figure for the same jobs, and the two can be compared.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stylegan_v.sacct import SacctError, sacct_rows

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0
DEVICE_KINDS = ("gpu", "cpu")


@dataclass
class Segment:
    device_kind: str  # "gpu" or "cpu"
    devices: int  # GPUs of the whole job, or CPU ranks of the whole job
    start_unix: float  # wall-clock start of the segment (time.time())
    seconds: float | None = None  # wall time; None while this segment is the running one
    job_id: str | None = None  # Slurm job id (SLURM_JOB_ID), None outside Slurm
    host: str = ""

    def __post_init__(self) -> None:
        if self.device_kind not in DEVICE_KINDS:
            raise ValueError(f"device_kind must be one of {list(DEVICE_KINDS)}, got {self.device_kind!r}")
        if self.devices < 1:
            raise ValueError(f"devices must be >= 1, got {self.devices}")


def _days(segments: Sequence[Segment], now: float) -> dict[str, float]:
    gpu = device = wall = 0.0
    for seg in segments:
        seconds = seg.seconds if seg.seconds is not None else max(0.0, now - seg.start_unix)
        wall += seconds
        device += seconds * seg.devices
        if seg.device_kind == "gpu":
            gpu += seconds * seg.devices
        elif seg.device_kind != "cpu":
            raise ValueError(f"device_kind must be one of {list(DEVICE_KINDS)}, got {seg.device_kind!r}")
    return {"gpu_days": gpu / SECONDS_PER_DAY, "device_days": device / SECONDS_PER_DAY,
            "wall_days": wall / SECONDS_PER_DAY}


class CostMeter:
    """Wall time × devices over the segments of one run; see the module docstring for the definitions."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []  # finished segments, then at most one running one (seconds=None)

    def start_segment(self, devices: int, device_kind: str, job_id: str | None = None, host: str | None = None,
                      now: float | None = None) -> None:
        """Call once per job segment, after :meth:`load_state_dict` on resume. ``devices``: the job's GPUs
        (``world_size`` when one rank drives one GPU) or, for ``device_kind="cpu"``, its ranks."""
        if self.running is not None:
            raise RuntimeError("a segment is already running; a CostMeter measures one job segment at a time")
        self.segments.append(Segment(device_kind, int(devices), time.time() if now is None else now,
                                     job_id=job_id, host=host if host is not None else socket.gethostname()))

    @property
    def running(self) -> Segment | None:
        return self.segments[-1] if self.segments and self.segments[-1].seconds is None else None

    def totals(self, now: float | None = None) -> dict[str, float]:
        """``{"gpu_days", "device_days", "wall_days"}`` including the running segment up to ``now``."""
        return _days(self.segments, time.time() if now is None else now)

    def job_ids(self) -> list[str]:
        """Distinct Slurm job ids of all segments, in order (for :func:`sacct_cost`)."""
        ids: list[str] = []
        for seg in self.segments:
            if seg.job_id and seg.job_id not in ids:
                ids.append(seg.job_id)
        return ids

    def state_dict(self, now: float | None = None) -> dict[str, Any]:
        """For the checkpoint: the running segment is stored as finished at ``now`` (the checkpoint's time),
        so a job that resumes from this checkpoint counts the segment up to here and starts a new one."""
        now = time.time() if now is None else now
        segments = []
        for seg in self.segments:
            entry = asdict(seg)
            if entry["seconds"] is None:
                entry["seconds"] = max(0.0, now - seg.start_unix)
            segments.append(entry)
        return {"version": 1, "segments": segments}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != 1:
            raise ValueError(f"unknown CostMeter state version {state.get('version')!r} (expected 1)")
        if self.running is not None:
            raise RuntimeError("load_state_dict must come before start_segment")
        self.segments = [Segment(**entry) for entry in state["segments"]]
        if any(seg.seconds is None for seg in self.segments):
            raise ValueError("a stored segment has no wall time")


# ------------------------------------------------------------------------------------------- Slurm


def parse_tres(tres: str) -> dict[str, str]:
    """``"billing=2,cpu=2,gres/gpu=1,mem=1000M,node=1"`` -> ``{"billing": "2", "cpu": "2", ...}``."""
    out: dict[str, str] = {}
    for item in filter(None, tres.split(",")):
        key, _, value = item.partition("=")
        out[key] = value
    return out


def gpus_in_tres(tres: Mapping[str, str]) -> int:
    """GPU count of an AllocTRES: ``gres/gpu`` (typed entries ``gres/gpu:a100`` are counted only when the
    untyped total is absent, since Slurm reports both for typed GPUs)."""
    if "gres/gpu" in tres:
        return int(tres["gres/gpu"])
    return sum(int(v) for k, v in tres.items() if k.startswith("gres/gpu:"))


def sacct_cost(job_ids: Sequence[str], sacct: str = "sacct") -> dict[str, Any]:
    """Slurm's own cost figure for these jobs, to compare with :meth:`CostMeter.totals`.

    Reads the allocation line of every job (``-X``) *including every requeued run of it* (``-D``: a job
    requeued by submitit keeps its id, and without ``-D`` sacct shows only the last run) and returns
    ``{"gpu_days", "device_days", "wall_days", "jobs": [...]}`` with ``ElapsedRaw`` as the wall time.
    Devices: ``gres/gpu`` of AllocTRES for GPU jobs. For CPU jobs the **node count** (``node=`` of AllocTRES)
    stands for the ranks, because our CPU jobs run one rank per node (gloo over Slurm) and Slurm's ``cpu=``
    counts cores for data workers and rounds up to whole cores/sockets, so it would not match the meter's
    rank count; a CPU job with several tasks per node is therefore under-counted by that factor.
    Pending jobs contribute 0 (ElapsedRaw 0); running jobs their time so far.
    """
    rows = sacct_rows(job_ids, ("JobIDRaw", "ElapsedRaw", "AllocTRES", "State"), all_runs=True, sacct=sacct)
    jobs = []
    gpu = device = wall = 0.0
    for job_id, elapsed, alloc, state in rows:
        tres = parse_tres(alloc)
        gpus = gpus_in_tres(tres)
        devices = gpus if gpus > 0 else int(tres.get("node", "1") or 1)
        seconds = float(elapsed or 0)
        wall += seconds
        device += seconds * devices
        gpu += seconds * gpus
        jobs.append({"job_id": job_id, "seconds": seconds, "gpus": gpus, "devices": devices, "state": state,
                     "alloc_tres": alloc})
    return {"gpu_days": gpu / SECONDS_PER_DAY, "device_days": device / SECONDS_PER_DAY,
            "wall_days": wall / SECONDS_PER_DAY, "jobs": jobs}


def cost_metrics(meter: CostMeter, with_sacct: bool = True, now: float | None = None) -> dict[str, float]:
    """The cost figures as MLflow metrics: ``cost/gpu_days``, ``cost/device_days`` from the meter and, when
    the segments ran under Slurm and ``sacct`` answers, ``cost/sacct_gpu_days``, ``cost/sacct_device_days``.
    A failing ``sacct`` (no accounting, no Slurm) only leaves the sacct figures out: cost must not stop
    training."""
    totals = meter.totals(now)
    metrics = {"cost/gpu_days": totals["gpu_days"], "cost/device_days": totals["device_days"]}
    job_ids = meter.job_ids()
    if with_sacct and job_ids and shutil.which("sacct") is not None:
        try:
            slurm = sacct_cost(job_ids)
        except (SacctError, ValueError) as e:
            log.warning("sacct cost figure unavailable: %s", e)
        else:
            metrics["cost/sacct_gpu_days"] = slurm["gpu_days"]
            metrics["cost/sacct_device_days"] = slurm["device_days"]
    return metrics


PROJECTED_FILE = "projected_cost.json"  # in the run dir: the launch's projection (``--plan``'s figures)


def projected_cost_metrics(run_dir: Path) -> dict[str, float]:
    """``cost/projected_gpu_days`` and ``cost/projected_device_days`` from the run dir's projection, to sit
    beside the measured ``cost/gpu_days``; empty when the launch could not project (no measured step time)."""
    path = Path(run_dir) / PROJECTED_FILE
    if not path.exists():
        return {}
    record = json.loads(path.read_text())
    return {f"cost/projected_{key}": float(record[key]) for key in ("gpu_days", "device_days")
            if record.get(key) is not None}
