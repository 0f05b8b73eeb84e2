"""Sweep points by config: a paper row's Hydra overrides against the overrides each submitted point ran with.

A paper row of an ablation names its point as overrides (column ``sweep_point`` of ``paper_numbers.csv``, e.g.
``model.motion.kernel_size=11`` or ``+sweep/failed_experiments=hierarchical``). A point matches when every one
of those overrides is among the point's own (``sweep.json`` lists each point's overrides; the sweep dir is the
``sweep.dir`` param of the sweep's MLflow parent run). Labels are never compared: they are display text.

A point's run is the one its ``<num>/point.json`` names (run dir, then that dir's MLflow run id), so that a run
shared by two sweeps belongs to both: the run dir is a hash of the config, and two sweeps that each have a point
with the default config (``kernel_size=11``, ``num_frames=3``) train it once, the second resuming the first's run,
whose ``sweep.*`` tags then name only one of them. The tags are the fallback when point.json is out of reach.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from stylegan_v.launch.sweep import POINT_FILE, SWEEP_FILE, SWEEP_GROUP_PREFIX
from stylegan_v.reports.runs import TAG_PARENT, RunInfo, RunStore
from stylegan_v.tracking.records import run_id_of

PARENT_ROLE = "parent"  # tag sweep.role of a sweep's parent run (launch/sweep.py)
SWEEP_DIR_PARAM = "sweep.dir"


def override_key(key: str) -> str:
    """``+sweep/failed_experiments`` and ``failed_experiments`` (a point label's spelling of a group option) are
    one key; ``+``/``~`` only say how Hydra applies an override, not what it sets."""
    return key.lstrip("+~").removeprefix(SWEEP_GROUP_PREFIX)


def split_override(override: str) -> tuple[str, str]:
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"not a Hydra override (key=value): {override!r}")
    return override_key(key.strip()), value.strip()


def parse_overrides(text: str) -> list[str]:
    """The ``sweep_point`` column: overrides separated by spaces, as typed on the command line."""
    overrides = text.split()
    for override in overrides:
        split_override(override)  # refuses a malformed entry here, at load time
    return overrides


def values_equal(a: str, b: str) -> bool:
    """``8`` and ``8.0``, ``false`` and ``False`` are the same value; anything else compares as text."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return a.lower() in ("true", "false") and a.lower() == b.lower()


def matches(wanted: list[str], point_overrides: list[str]) -> bool:
    """Every wanted override is set, to an equal value, by the point; an empty ``wanted`` matches nothing."""
    have = [split_override(o) for o in point_overrides if "=" in o]
    return bool(wanted) and all(any(k == key and values_equal(v, value) for k, v in have)
                                for key, value in map(split_override, wanted))


def label_overrides(label: str) -> list[str]:
    """A point label (``k=v,k2=v2``, launch/sweep.py's ``point_label``) as overrides: the fallback when the sweep
    dir is out of reach. Splits only at commas that start a new ``key=``, so list values keep theirs."""
    return [part for part in re.split(r",(?=[^,=\[\]{}]+=)", label) if "=" in part]


@dataclass(frozen=True)
class SweepPoint:
    num: int
    label: str
    overrides: tuple[str, ...]
    run_id: str | None = None  # the MLflow run of the point's run dir (point.json), once the point started


@dataclass(frozen=True)
class SubmittedSweep:
    """One submission (``python -m stylegan_v.train -m +sweep=<name> ...``): its folder and every point it defined."""

    name: str
    sweep_dir: Path
    parent_run_id: str
    points: tuple[SweepPoint, ...]

    @property
    def submitted(self) -> str:
        """The submission time in the folder name (``<experiment>-YYYYmmdd-HHMMSS``), which orders submissions
        of any experiments; the whole name when it has none."""
        stamp = re.search(r"\d{8}-\d{6}$", self.sweep_dir.name)
        return stamp.group(0) if stamp else self.sweep_dir.name

    def point_of(self, run: RunInfo) -> SweepPoint | None:
        """The run's point: the one whose point.json names the run, else the one whose label the run was tagged
        with when the run's parent is this sweep (a label is unique within a sweep)."""
        by_id = next((p for p in self.points if p.run_id == run.run_id), None)
        if by_id is not None or run.tags.get(TAG_PARENT) != self.parent_run_id:
            return by_id
        return next((p for p in self.points if p.label == run.sweep_point), None)


def _point_run_id(sweep_dir: Path, num: int) -> str | None:
    path = sweep_dir / str(num) / POINT_FILE
    if not path.is_file():
        return None
    run_dir = json.loads(path.read_text()).get("run_dir")
    return run_id_of(run_dir) if run_dir and Path(run_dir).is_dir() else None


def submitted_sweeps(store: RunStore) -> dict[str, SubmittedSweep]:
    """Every sweep whose parent run is in the store and whose ``sweep.json`` is readable here, by parent run id."""
    out = {}
    for run in store.runs:
        if run.tags.get("sweep.role") != PARENT_ROLE or not run.params.get(SWEEP_DIR_PARAM):
            continue
        path = Path(run.params[SWEEP_DIR_PARAM]) / SWEEP_FILE
        if not path.is_file():
            continue
        sweep = json.loads(path.read_text())
        points = tuple(SweepPoint(int(p["num"]), str(p["point"]), tuple(p["overrides"]),
                                  _point_run_id(path.parent, int(p["num"]))) for p in sweep["points"])
        out[run.run_id] = SubmittedSweep(str(sweep["name"]), path.parent, run.run_id, points)
    return out


def run_point(run: RunInfo, sweeps: dict[str, SubmittedSweep], name: str) -> tuple[SubmittedSweep, SweepPoint] | None:
    """The submitted sweep named ``name`` and its point that the run is (newest submission first), when the
    sweep's files are readable."""
    for sweep in sorted(sweeps.values(), key=lambda s: s.submitted, reverse=True):
        point = sweep.point_of(run) if sweep.name == name else None
        if point is not None:
            return sweep, point
    return None


def sweep_runs(store: RunStore, sweeps: dict[str, SubmittedSweep], name: str) -> list[RunInfo]:
    """The runs of sweep ``name``: those a submitted point's point.json names, and those tagged with the name."""
    return [r for r in store.finished_training_runs()
            if r.sweep_name == name or run_point(r, sweeps, name) is not None]


def run_overrides(run: RunInfo, sweeps: dict[str, SubmittedSweep], name: str) -> list[str]:
    """The overrides the run ran with as a point of sweep ``name``: from its sweep.json, else read back from its
    point label (when it is tagged with that sweep)."""
    found = run_point(run, sweeps, name)
    if found is not None:
        return list(found[1].overrides)
    return label_overrides(run.sweep_point or "") if run.sweep_name == name else []
