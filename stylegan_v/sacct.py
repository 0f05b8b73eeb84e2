"""Slurm accounting (``sacct``) as rows of fields: the one reader behind job states (``launch.jobs``) and
Slurm's own cost figure (``tracking.cost``). Depends on nothing else in the package."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

_ARRAY_RANGE = re.compile(r"^(?P<job>\d+)_\[(?P<spec>[^\]]+)\]$")


class SacctError(RuntimeError):
    """``sacct`` is missing, timed out or failed (no accounting on this cluster, for instance)."""


def sacct_rows(job_ids: Sequence[str], fields: Sequence[str], all_runs: bool = False,
               sacct: str = "sacct", timeout_s: float = 60) -> list[list[str]]:
    """The allocation line (``-X``) of each job as its ``fields``; ``all_runs`` adds every requeued run of a
    job (``-D``), else only its latest. [] for no job ids."""
    ids = [str(j) for j in job_ids if str(j)]
    if not ids:
        return []
    cmd = [sacct, "-X", *(["-D"] if all_runs else []), "-n", "-P", "-o", ",".join(fields), "-j", ",".join(ids)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.SubprocessError) as e:
        raise SacctError(f"{' '.join(cmd)}: {e}") from e
    if out.returncode != 0:
        raise SacctError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
    rows = [line.split("|") for line in out.stdout.splitlines() if line.strip()]
    return [row[: len(fields)] for row in rows if len(row) >= len(fields)]


def expand_array_id(job_id: str) -> list[str]:
    """``123_[0-3%2,7]`` (how sacct lists pending array tasks) -> ``123_0 … 123_3, 123_7``; others unchanged."""
    match = _ARRAY_RANGE.match(job_id)
    if not match:
        return [job_id]
    tasks = []
    for part in match["spec"].split("%")[0].split(","):
        low, _, high = part.partition("-")
        tasks.extend(range(int(low), int(high or low) + 1))
    return [f"{match['job']}_{t}" for t in tasks]
