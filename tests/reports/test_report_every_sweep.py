"""Every ablation sweep that a paper row names, run for real at smoke scale into one MLflow store: the report puts
each paper row beside the measured value of the point it names, and says so for a row whose point did not run.

The sweeps and points are derived here from ``sweeps/*.yaml`` and ``paper_numbers.csv``: a new sweep with paper rows
is picked up without editing this file. Each sweep is submitted as a user would (``python -m stylegan_v.train -m
+sweep=<name> ... cluster=local``), restricted on the command line to 2 of its points, one of them a paper row's.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict
from tiny_config import TINY_WITH_FVD

from stylegan_v import prepare, report
from stylegan_v.metrics.registry import get_metric
from stylegan_v.reports.paper import PaperNumbers
from stylegan_v.reports.points import matches, split_override
from stylegan_v.reports.tables import DASH, fmt_number

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SWEEPS = REPO / "sweeps"
PAPER = PaperNumbers()
# the shared tiny config with a 2-video FVD snapshot, one tick long, no artifact uploads (as test_report_build.py)
TINY = [*TINY_WITH_FVD, "training.total_kimg=0.008", "tracking.artifacts=false"]
POINTS_PER_SWEEP = 2


def sweep_file(name: str) -> dict:
    return yaml.safe_load((SWEEPS / f"{name}.yaml").read_text())


def paper_rows(name: str) -> dict[str, list[str]]:
    """The paper rows of sweep ``name`` that name a point, with the overrides each names."""
    table = f"ablation:{name}"
    rows = {row: PAPER.sweep_point(table, row) for row in PAPER.rows(table)}
    return {row: wanted for row, wanted in rows.items() if wanted}


def expand(name: str) -> list[list[str]]:
    """The sweep file's points as Hydra's basic sweeper expands ``hydra.sweeper.params``."""
    params = sweep_file(name)["hydra"]["sweeper"]["params"]
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return [list(point) for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]


@dataclasses.dataclass(frozen=True)
class Plan:
    name: str
    points: list[list[str]]  # the points that run, each as its swept overrides
    restriction: list[str]  # the command-line overrides that select them

    def ran(self, wanted: list[str]) -> bool:
        return any(matches(wanted, point) for point in self.points)


def plan(name: str) -> Plan:
    """At most 2 points: the first a paper row names, then the first no paper row names (else the next named one)."""
    points, wanted = expand(name), list(paper_rows(name).values())
    named = [p for p in points if any(matches(w, p) for w in wanted)]
    unnamed = [p for p in points if p not in named]
    assert named, f"sweeps/{name}.yaml defines no point that its paper rows name"
    chosen = [named[0], *(unnamed or named[1:])][:POINTS_PER_SWEEP]
    chosen = [p for p in points if p in chosen]  # the sweep file's order
    restriction = []
    for key in sweep_file(name)["hydra"]["sweeper"]["params"]:
        values = list(dict.fromkeys(o.partition("=")[2] for p in chosen for o in p
                                    if split_override(o)[0] == split_override(f"{key}=x")[0]))
        restriction.append(f"{key}={','.join(values)}")
    return Plan(name, chosen, restriction)


def swept_names() -> list[str]:
    """Every sweep file with a paper row that names a point (``_base.yaml`` is shared config, not a sweep)."""
    return [p.stem for p in sorted(SWEEPS.glob("*.yaml")) if not p.stem.startswith("_") and paper_rows(p.stem)]


def frames_needed(metrics: list[str]) -> int:
    return max(get_metric(m).num_frames * get_metric(m).subsample for m in metrics)


def own_metrics(name: str) -> list[str] | None:
    """``training.metrics`` as the sweep file sets them (the comparison it is for), else None."""
    return (sweep_file(name).get("training") or {}).get("metrics")


def tiny_for(name: str) -> list[str]:
    """The tiny config, less its metric list where the sweep file sets its own."""
    return [o for o in TINY if not (own_metrics(name) and o.startswith("training.metrics="))]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """Prepares one tiny dataset whose videos are long enough for every sweep's metrics, then submits each sweep,
    one after another, into one sqlite MLflow store and one runs dir."""
    from hydra import compose, initialize_config_dir

    from stylegan_v.configs import register_configs

    register_configs()
    tmp = tmp_path_factory.mktemp("every_sweep")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    names = swept_names()
    metrics = [m for n in names for m in (own_metrics(n) or [])] + ["fvd256_16f"]
    paths = [f"paths.data_dir={tmp / 'data'}", f"paths.runs_dir={tmp / 'runs'}",
             f"paths.cache_dir={REPO / '.cache' / 'stylegan_v'}", f"tracking.tracking_uri={uri}"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*TINY, *paths])
    length = max(int(cfg.dataset.video_length), frames_needed(metrics))
    paths.append(f"dataset.video_length={length}")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*TINY, *paths])
    prepare.run(cfg)
    plans = {}
    for name in names:
        plans[name] = plan(name)
        command = [sys.executable, "-m", "stylegan_v.train", "-m", *tiny_for(name), *paths, f"+sweep={name}",
                   *plans[name].restriction, "cluster=local"]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(command)}\n{done.stderr[-4000:]}"
    return {"tmp": tmp, "uri": uri, "cfg": cfg, "plans": plans}


def submitted(store: dict, name: str) -> dict:
    (sweep_dir,) = (store["tmp"] / "runs" / "sweeps" / name).iterdir()
    return json.loads((sweep_dir / "sweep.json").read_text()) | {"dir": sweep_dir}


def point_run(store: dict, name: str, wanted: list[str]) -> mlflow.entities.Run:
    """The MLflow run of the submitted point that ``wanted`` names, found through the run directory the point
    wrote (``<sweep dir>/<num>/point.json``) and that directory's MLflow run id, not through the report."""
    sweep = submitted(store, name)
    (point,) = [p for p in sweep["points"] if matches(wanted, p["overrides"])]
    run_dir = Path(json.loads((sweep["dir"] / str(point["num"]) / "point.json").read_text())["run_dir"])
    run_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    return mlflow.MlflowClient(store["uri"]).get_run(run_id)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def built(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("every_sweep_report")
    cfg = store["cfg"].copy()
    with open_dict(cfg):
        cfg.report = {"out_dir": str(out), "fig9_frames": 64}
    report.run(cfg)
    return out / "tables"


def _is_number(cell: str) -> bool:
    return bool(re.match(r"-?[0-9]", cell.strip()))


def test_every_sweep_with_paper_rows_ran_two_points_with_a_paper_point(store) -> None:
    assert set(store["plans"]) >= {"kernel_size", "failed_experiments"}, "the derivation finds the paper's sweeps"
    named = {t.removeprefix("ablation:") for t in PAPER.tables() if t.startswith("ablation:")
             and any(PAPER.sweep_point(t, row) for row in PAPER.rows(t))}
    assert named == set(store["plans"]), f"paper rows name sweeps without a sweeps/<name>.yaml: {named - set(store['plans'])}"
    for name, p in store["plans"].items():
        sweep = submitted(store, name)
        assert len(sweep["points"]) == min(POINTS_PER_SWEEP, len(expand(name))), (name, sweep["points"])
        assert any(p.ran(w) for w in paper_rows(name).values()), f"{name}: no paper row's point ran"


def test_each_paper_row_sits_beside_its_points_measured_value(store, built) -> None:
    """For a row whose point ran: one table row holds the paper's text and, in each metric column, the value
    MLflow has for that point's run, formatted as the tables print it. For the others: a dash saying why."""
    checked, not_run = 0, 0
    for name, p in store["plans"].items():
        rows = read_csv(built / f"ablation_{name}.csv")
        for prow, wanted in paper_rows(name).items():
            beside = [r for r in rows if r["Paper"].startswith(f"{prow} — ") or f"; {prow} — " in r["Paper"]]
            assert len(beside) == 1, f"{name} / {prow}: printed in {len(beside)} rows of {rows}"
            (line,) = beside
            if not p.ran(wanted):
                ours = [v for k, v in line.items() if k not in ("Point", "Paper")]
                assert ours[0].startswith(f"{DASH} ("), (name, prow, line)
                assert not any(_is_number(c) for c in ours), (name, prow, line)
                not_run += 1
                continue
            run = point_run(store, name, wanted)
            measured = {k.removeprefix("metrics/"): v for k, v in run.data.metrics.items() if k.startswith("metrics/")}
            assert measured, f"{name} / {prow}: run {run.info.run_id} has no metric in MLflow"
            assert line["run"].startswith(run.info.run_id[:8]), (name, prow, line)
            for metric, value in measured.items():
                assert line[f"{metric} (ours)"].startswith(fmt_number(value)), (name, prow, metric, value, line)
            checked += 1
    assert checked >= len(store["plans"]), "each sweep ran at least one paper row's point"
    assert not_run >= 1, "some paper row's point was left out of the 2 that ran"


def test_appendix_c_lstm_rows_hold_the_fvd128_of_their_point(store, built) -> None:
    """The LSTM comparison's own table: the paper's FVD₁₂₈ beside the FVD₁₂₈ MLflow has for the named point."""
    name = "lstm_motion"
    if name not in store["plans"]:
        pytest.skip("no lstm_motion paper rows")
    rows = {r["Method"]: r for r in read_csv(built / "appendix_c_lstm.csv")}
    for prow, wanted in paper_rows(name).items():
        line = rows[prow]
        assert line["FVD₁₂₈ (paper)"] == PAPER.text(f"ablation:{name}", prow, "FVD128")
        if not store["plans"][name].ran(wanted):
            assert line["FVD₁₂₈ (ours)"].startswith(f"{DASH} ("), line
            continue
        run = point_run(store, name, wanted)
        # a point whose run an earlier sweep finished (same config) still ends with the FVD128 its sweep asks for
        value = run.data.metrics.get("metrics/fvd2048_128f")
        assert value is not None, (f"{prow}: the run of {wanted} ({run.info.run_name}) has no FVD128 in MLflow; "
                                   f"its metrics: {sorted(k for k in run.data.metrics if k.startswith('metrics/'))}")
        assert line["FVD₁₂₈ (ours)"].startswith(fmt_number(value)), (prow, value, line)


def test_a_paper_row_naming_a_point_that_did_not_run_reads_not_run(store) -> None:
    """The same store, with one ran row re-pointed at a point of its sweep that did not run: that row now says so,
    and the run it sat beside carries no paper text (the check above could fail)."""
    from stylegan_v.reports.paper_tables import ablation_tables
    from stylegan_v.reports.runs import load_runs

    name = next(n for n, p in store["plans"].items() if len(expand(n)) > len(p.points))
    prow, wanted = next((r, w) for r, w in paper_rows(name).items() if store["plans"][name].ran(w))
    other = next(pt for pt in expand(name) if pt not in store["plans"][name].points)
    table = f"ablation:{name}"
    moved = [dataclasses.replace(c, sweep_point=" ".join(other)) if (c.table, c.row) == (table, prow) else c
             for c in PAPER.cells]
    runs = load_runs(store["uri"], store["cfg"].tracking.experiment)
    for paper, expect_run in ((PAPER, True), (PaperNumbers(moved), False)):
        (t,) = [t for t in ablation_tables(runs, paper) if t.key == f"ablation_{name}"]
        (line,) = [r for r in t.rows if r[1].startswith(f"{prow} — ")]
        measured = [cell for head, cell in zip(t.header, line) if head.endswith(" (ours)")]
        assert any(_is_number(cell) for cell in measured) == expect_run, (paper is PAPER, line)
        if not expect_run:
            assert line[0] == " ".join(other) and all(cell.startswith(DASH) for cell in measured), line
            run_id = point_run(store, name, wanted).info.run_id[:8]
            (was,) = [r for r in t.rows if r[-1].startswith(run_id)]
            assert was[1] == DASH, was
