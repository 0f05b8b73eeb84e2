"""States of submitted jobs: Slurm accounting per job id, and the ids submitit recorded for a sweep."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stylegan_v.sacct import SacctError, expand_array_id, sacct_rows

# States after which a job does nothing more (PREEMPTED without requeue; a requeued one shows REQUEUED/PENDING).
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
                          "DEADLINE", "PREEMPTED"})
SUBMITIT_DIR = ".submitit"  # a sweep's hydra.launcher.submitit_folder is <sweep dir>/.submitit/%j


def job_states(job_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Latest accounting record of each job id: ``{id: {state, elapsed, nodes}}``; {} when sacct cannot answer."""
    arrays = sorted({j.partition("_")[0] for j in job_ids})
    try:
        rows = sacct_rows(arrays, ("JobID", "State", "Elapsed", "NodeList"))
    except SacctError:
        return {}
    states: dict[str, dict[str, str]] = {}
    for job_id, state, elapsed, nodes in rows:
        for one in expand_array_id(job_id):
            states[one] = {"state": state.split()[0], "elapsed": elapsed, "nodes": nodes}  # newer lines win
    return states


def submitted_job_ids(sweep_dir: Path) -> dict[int, str]:
    """Job number -> Slurm id (``<array>_<task>``, or ``<job>`` for a one-point sweep) from submitit's folders.

    Array task i is point i (hydra-submitit-launcher maps the points in job-number order)."""
    ids: dict[int, str] = {}
    for pickle in (sweep_dir / SUBMITIT_DIR).glob("*/*_submitted.pkl"):
        job_id = pickle.parent.name
        _, _, task = job_id.partition("_")
        ids[int(task) if task.isdigit() else 0] = job_id
    return ids
