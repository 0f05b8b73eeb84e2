"""Paper rows to sweep points by config: every ablation row of paper_numbers.csv names a point its sweep file
defines (expanded by Hydra's own basic sweeper, as a submission would be), and the matcher's rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from stylegan_v.cli import CONF_DIR
from stylegan_v.reports.paper import PaperNumbers
from stylegan_v.reports.paper_tables import ABLATION_FAMILIES
from stylegan_v.reports.points import label_overrides, matches, parse_overrides, values_equal

SWEEPS = CONF_DIR / "sweep"
PAPER = PaperNumbers()
ABLATION_ROWS = [(t.removeprefix("ablation:"), row) for t in PAPER.tables() if t.startswith("ablation:")
                 for row in PAPER.rows(t)]


def sweep_points(family: str) -> list[list[str]]:
    """The override lists of the sweep file's points, as Hydra's basic sweeper expands ``hydra.sweeper.params``
    (what launch/sweep.py's ``expand_points`` writes to sweep.json, less the command line)."""
    path = SWEEPS / f"{family}.yaml"
    if not path.is_file():
        pytest.fail(f"paper rows name the sweep `{family}` but sweeps/{family}.yaml does not exist")
    params = yaml.safe_load(path.read_text())["hydra"]["sweeper"]["params"]
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return [list(point) for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]


def test_every_ablation_family_is_a_sweep_file() -> None:
    """A family the report looks up under a name no sweep has is a table that stays empty for ever."""
    absent = [name for name in ABLATION_FAMILIES if not (SWEEPS / f"{name}.yaml").is_file()]
    assert not absent, f"ablation families without sweeps/<name>.yaml: {absent}"


def test_every_ablation_family_of_the_paper_has_a_table() -> None:
    assert ABLATION_ROWS, "paper_numbers.csv has ablation rows"
    families = {family for family, _ in ABLATION_ROWS}
    assert families <= set(ABLATION_FAMILIES), families - set(ABLATION_FAMILIES)


@pytest.mark.parametrize("family,row", ABLATION_ROWS, ids=[f"{f}:{r}" for f, r in ABLATION_ROWS])
def test_each_ablation_row_names_exactly_one_point_of_its_sweep(family: str, row: str) -> None:
    wanted = PAPER.sweep_point(f"ablation:{family}", row)
    assert wanted, f"{family} / {row}: no sweep_point in paper_numbers.csv"
    points = sweep_points(family)
    hits = [p for p in points if matches(wanted, p)]
    assert len(hits) == 1, f"{family} / {row}: {wanted} matches {len(hits)} of the points {points}"
    for override in wanted:  # a group option names a file of the group
        key, _, value = override.partition("=")
        if key.lstrip("+").startswith("sweep/"):
            assert (SWEEPS / key.lstrip("+").removeprefix("sweep/") / f"{value}.yaml").is_file(), override


def test_rows_of_one_sweep_name_different_points() -> None:
    by_family: dict[str, list[tuple[str, ...]]] = {}
    for family, row in ABLATION_ROWS:
        by_family.setdefault(family, []).append(tuple(PAPER.sweep_point(f"ablation:{family}", row)))
    for family, points in by_family.items():
        assert len(set(points)) == len(points), f"{family}: two paper rows name one point {points}"


def test_matcher_rules() -> None:
    point = ["+sweep/failed_experiments=hierarchical", "experiment=smoke", "model.motion.omega_min=8.0",
             "metrics.progress=False"]
    assert matches(["+sweep/failed_experiments=hierarchical"], point)
    assert matches(["sweep/failed_experiments=hierarchical"], point), "the + only says how Hydra applies it"
    assert not matches(["+sweep/failed_experiments=lstm_ema"], point)
    assert matches(["model.motion.omega_min=8"], point) and not matches(["model.motion.omega_min=16.0"], point)
    assert matches(["metrics.progress=false"], point)
    assert not matches(["model.motion.kernel_size=11"], point), "a key the point does not set"
    assert not matches([], point), "a row naming nothing matches nothing"
    assert matches(["model.motion.omega_min=8.0", "experiment=smoke"], point)
    assert not matches(["model.motion.omega_min=8.0", "experiment=ffs_256"], point), "every override must hold"
    assert values_equal("256", "256.0") and not values_equal("lstm", "lstm_d1") and not values_equal("1", "true")


def test_label_fallback_and_override_parsing() -> None:
    assert label_overrides("failed_experiments=hierarchical") == ["failed_experiments=hierarchical"]
    assert matches(["+sweep/failed_experiments=hierarchical"], label_overrides("failed_experiments=hierarchical"))
    assert label_overrides("a.b=1,training.sample_grid=[1,2],c=x") == ["a.b=1", "training.sample_grid=[1,2]", "c=x"]
    assert parse_overrides(" model.motion.kernel_size=11  x=1 ") == ["model.motion.kernel_size=11", "x=1"]
    with pytest.raises(ValueError, match="not a Hydra override"):
        parse_overrides("kernel_size")


def test_a_paper_row_whose_point_did_not_run_says_so(tmp_path) -> None:
    """A submitted sweep defines the paper's point but no run of it reached MLflow: the row names the point and
    the sweep; a point of no paper row without a run is listed too; a sweep never submitted says so."""
    from stylegan_v.reports.paper_tables import ablation_table
    from stylegan_v.reports.points import SubmittedSweep, SweepPoint

    sweep = SubmittedSweep("kernel_size", tmp_path / "smoke-20260101-000000", "p" * 32, (
        SweepPoint(0, "model.motion.kernel_size=3", ("model.motion.kernel_size=3", "experiment=smoke")),
        SweepPoint(1, "model.motion.kernel_size=11", ("model.motion.kernel_size=11", "experiment=smoke"))))
    table = ablation_table("kernel_size", [], PAPER, {sweep.parent_run_id: sweep})
    rows = {row[0]: row for row in table.rows}
    assert set(rows) == {"model.motion.kernel_size=11", "model.motion.kernel_size=3"}
    assert rows["model.motion.kernel_size=11"][1].startswith("paper setting — kernel_size: 11")
    assert "point 1 of sweep smoke-20260101-000000 has no run" in rows["model.motion.kernel_size=11"][2]
    assert "point 0 of sweep smoke-20260101-000000 has no run" in rows["model.motion.kernel_size=3"][2]
    never = ablation_table("kernel_size", [], PAPER, {})
    assert [row[0] for row in never.rows] == ["model.motion.kernel_size=11"] and "sweep not run" in never.rows[0][2]


def test_a_run_shared_by_two_sweeps_sits_beside_both_paper_rows(tmp_path) -> None:
    """Two sweeps' points with one config share a run dir, hence one MLflow run, tagged with one sweep only: each
    sweep's point.json names the run dir, and the run sits in both tables beside each sweep's paper row."""
    import json

    from stylegan_v.reports.paper_tables import ablation_tables
    from stylegan_v.reports.runs import TAG_PARENT, RunInfo, RunStore

    run_dir = tmp_path / "runs" / "smoke-0123456789"
    run_dir.mkdir(parents=True)
    (run_dir / "mlflow_run.json").write_text(json.dumps({"run_id": "r" * 32, "experiment_id": "1",
                                                         "tracking_uri": "sqlite:///x.db"}))
    parents = []
    for name, override, parent_id in (("kernel_size", "model.motion.kernel_size=11", "k" * 32),
                                      ("num_frames", "dataset.sampling.num_frames=3", "n" * 32)):
        sweep_dir = tmp_path / "runs" / "sweeps" / name / "smoke-20260101-000000"
        (sweep_dir / "0").mkdir(parents=True)
        (sweep_dir / "sweep.json").write_text(json.dumps({"name": name, "parent_run_id": parent_id, "points": [
            {"num": 0, "point": override, "overrides": [override, "experiment=smoke"]}]}))
        (sweep_dir / "0" / "point.json").write_text(json.dumps({"num": 0, "run_dir": str(run_dir)}))
        parents.append(RunInfo(parent_id, f"sweep-{name}", "RUNNING", 0, {"sweep.dir": str(sweep_dir)},
                               {"sweep.role": "parent", "sweep.name": name}, {}))
    # trained by the kernel_size sweep, then resumed (finished) by the num_frames one, which re-tagged it
    shared = RunInfo("r" * 32, run_dir.name, "FINISHED", 1, {"model.name": "stylegan_v"},
                     {TAG_PARENT: "k" * 32, "sweep.name": "num_frames", "sweep.point": "dataset.sampling.num_frames=3"},
                     {"metrics/fvd256_16f": 123.4}, {"metrics/fvd256_16f": [(2, 123.4)]})
    tables = {t.key: t for t in ablation_tables(RunStore("sqlite:///x.db", "stylegan-v", [*parents, shared]), PAPER)}
    for key, label in (("ablation_kernel_size", "model.motion.kernel_size=11"),
                       ("ablation_num_frames", "dataset.sampling.num_frames=3")):
        (row,) = tables[key].rows
        assert row[0] == label and row[1].startswith("paper setting — ") and row[2] == "123.4", row
    (run_dir / "mlflow_run.json").unlink()  # point.json out of reach: only the sweep it is tagged with has it
    tables = {t.key: t for t in ablation_tables(RunStore("sqlite:///x.db", "stylegan-v", [*parents, shared]), PAPER)}
    assert tables["ablation_num_frames"].rows[0][1].startswith("paper setting — ")
    assert tables["ablation_num_frames"].rows[0][2] == "123.4"
    assert "has no run" in tables["ablation_kernel_size"].rows[0][2], tables["ablation_kernel_size"].rows


def test_table6_finds_the_baselines_point_whose_run_another_sweep_trained(tmp_path) -> None:
    """The baselines sweep's StyleGAN-V point has the default config: its run may be one an earlier ablation sweep
    trained and tagged. Table 6 finds it through the baselines sweep's point.json, beside its other points."""
    import json

    from stylegan_v.reports.paper_tables import table6
    from stylegan_v.reports.runs import TAG_PARENT, RunInfo, RunStore

    def run_dir(name: str, run_id: str) -> Path:
        path = tmp_path / "runs" / name
        path.mkdir(parents=True)
        (path / "mlflow_run.json").write_text(json.dumps({"run_id": run_id, "experiment_id": "1",
                                                          "tracking_uri": "sqlite:///x.db"}))
        return path

    shared, sg2 = run_dir("smoke-shared", "s" * 32), run_dir("smoke-sg2", "t" * 32)
    sweep_dir = tmp_path / "runs" / "sweeps" / "baselines" / "smoke-20260102-000000"
    points = [("stylegan_v", shared), ("stylegan2", sg2)]
    (sweep_dir / "sweep.json").parent.mkdir(parents=True)
    (sweep_dir / "sweep.json").write_text(json.dumps({"name": "baselines", "parent_run_id": "b" * 32, "points": [
        {"num": n, "point": f"baselines={o}", "overrides": [f"+sweep/baselines={o}"]} for n, (o, _) in enumerate(points)]}))
    for n, (_, path) in enumerate(points):
        (sweep_dir / str(n)).mkdir()
        (sweep_dir / str(n) / "point.json").write_text(json.dumps({"num": n, "run_dir": str(path)}))
    params = {"dataset.name": "moving_mnist_smoke", "dataset.resolution": "32", "model.name": "stylegan_v"}
    runs = [
        RunInfo("b" * 32, "sweep-baselines", "RUNNING", 0, {"sweep.dir": str(sweep_dir)},
                {"sweep.role": "parent", "sweep.name": "baselines"}, {}),
        # trained and tagged by a kernel_size sweep first; the baselines point resumed it, finished
        RunInfo("s" * 32, shared.name, "FINISHED", 1, {**params, "model.motion.kind": "acyclic"},
                {TAG_PARENT: "k" * 32, "sweep.name": "kernel_size", "sweep.point": "model.motion.kernel_size=11"},
                {"metrics/fvd256_16f": 321.5}, {"metrics/fvd256_16f": [(2, 321.5)]}),
        RunInfo("t" * 32, sg2.name, "FINISHED", 2, {**params, "model.motion.kind": "none"},
                {TAG_PARENT: "b" * 32, "sweep.name": "baselines", "sweep.point": "baselines=stylegan2"},
                {"metrics/fid2048_16f": 44.25}, {"metrics/fid2048_16f": [(2, 44.25)]}),
    ]
    table = table6(PaperNumbers(), RunStore("sqlite:///x.db", "stylegan-v", runs), "faceforensics")
    sgv = next(row for row in table.rows if row[0] == "StyleGAN-V (ours)")
    assert sgv[2] == "321.5", sgv
    assert "one `+sweep=baselines` submission" in " ".join(table.notes)
