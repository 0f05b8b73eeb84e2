"""The full report from a real MLflow store: one tiny training run with a measured FVD and a two-point sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from omegaconf import DictConfig, open_dict
from PIL import Image
from tiny_config import TINY_WITH_FVD

from stylegan_v import prepare, report, train
from stylegan_v.data import stats as data_stats
from stylegan_v.reports.paper import PaperNumbers

REPO = Path(__file__).resolve().parents[2]

# The shared tiny config with a 2-video FVD snapshot, one tick long, no artifact uploads.
TINY = [*TINY_WITH_FVD, "training.total_kimg=0.008", "tracking.artifacts=false"]
# the linear point is the one paper_numbers.csv names for the period-scaling ablation
SWEEP_POINTS = ("model.motion.period_scheme=exponential", "model.motion.period_scheme=linear")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """Trains one run, then submits a real two-point sweep (``-m +sweep=period_scaling cluster=local``, the points
    one after another in that process) into the same sqlite MLflow store; prepares and measures the dataset."""
    from hydra import compose, initialize_config_dir

    from stylegan_v.configs import register_configs

    register_configs()
    tmp = tmp_path_factory.mktemp("report_store")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    base = [*TINY, f"paths.data_dir={tmp / 'data'}", f"paths.runs_dir={tmp / 'runs'}",
            f"paths.cache_dir={REPO / '.cache' / 'stylegan_v'}", f"tracking.tracking_uri={uri}"]

    def cfg_of(*extra: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            return compose("config", overrides=[*base, *extra])

    single = cfg_of()
    prepare.run(single)
    data_stats.run(single)
    results = [train.run(single)]
    swept = ",".join(point.partition("=")[2] for point in SWEEP_POINTS)
    done = subprocess.run([sys.executable, "-m", "stylegan_v.train", "-m", *base, "+sweep=period_scaling",
                           f"model.motion.period_scheme={swept}", "cluster=local"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    (sweep_dir,) = (tmp / "runs" / "sweeps" / "period_scaling").iterdir()
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    client = mlflow.MlflowClient(uri)
    children = client.search_runs([client.get_run(sweep["parent_run_id"]).info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{sweep['parent_run_id']}'")
    for point in sweep["points"]:  # in SWEEP_POINTS order
        (child,) = [c for c in children if c.data.tags["sweep.point"] == point["point"]]
        assert child.info.status == "FINISHED"
        results.append({"status": "finished", "mlflow_run_id": child.info.run_id, "point": point,
                        "run_dir": str(tmp / "runs" / child.info.run_name)})
    assert results[0]["status"] == "finished", results[0]
    return {"tmp": tmp, "uri": uri, "cfg": single, "results": results, "parent": sweep["parent_run_id"],
            "sweep_dir": sweep_dir}


def _build(store: dict, out: Path) -> dict:
    cfg = store["cfg"].copy()
    with open_dict(cfg):
        cfg.report = {"out_dir": str(out), "fig9_frames": 128}
    return report.run(cfg)


def _measured_fvds(store: dict) -> dict[str, float]:
    client = mlflow.MlflowClient(store["uri"])
    return {r["mlflow_run_id"]: client.get_run(r["mlflow_run_id"]).data.metrics["metrics/fvd256_16f"]
            for r in store["results"]}


def test_full_report_from_a_real_store(store, tmp_path) -> None:
    out = tmp_path / "reports"
    result = _build(store, out)
    assert result["num_runs"] == 3, "the sweep parent is not a training run"
    tables = out / "tables"
    for key in ("table4", "table5", "table6", "table7", "figure9_cycles", "runs", "ablation_period_scaling",
                "ablation_omega_min", "ablation_kernel_size", "ablation_num_frames", "ablation_failed_experiments",
                "ablation_lstm_motion", "appendix_c_lstm",
                "ablation_baselines"):
        for suffix in ("md", "tex", "csv"):
            assert (tables / f"{key}.{suffix}").stat().st_size > 0, f"{key}.{suffix}"

    # the paper's numbers, every one of Tables 4-7, are in the Markdown, LaTeX and CSV files
    paper = PaperNumbers()
    for cell in paper.cells:
        if cell.table in ("table4", "table5", "table6", "table7"):
            for suffix in ("md", "csv"):
                assert cell.value in (tables / f"{cell.table}.{suffix}").read_text(), (cell, suffix)
            assert cell.value in (tables / f"{cell.table}.tex").read_text(), cell
    assert "76.82 ± 1.57" in (tables / "table4.md").read_text()
    assert "23.94 ± 0.73" in (tables / "table5.md").read_text()

    # our measured cells: the FVD of each run as MLflow has it, formatted as the tables print it
    from stylegan_v.reports.tables import fmt_number

    fvds = _measured_fvds(store)
    client = mlflow.MlflowClient(store["uri"])
    single = client.get_run(store["results"][0]["mlflow_run_id"]).data.metrics
    assert 0 < single["floor/fvd256_16f"] != single["metrics/fvd256_16f"], "each snapshot logs the FVD floor too"
    record = [json.loads(line) for line in (Path(store["results"][0]["run_dir"]) / "metric-fvd256_16f.jsonl")
              .read_text().splitlines()][-1]
    assert record["floor"] == pytest.approx(single["floor/fvd256_16f"])
    runs_md = (tables / "runs.md").read_text()
    for run_id, value in fvds.items():
        assert run_id[:8] in runs_md and f"fvd256_16f = {fmt_number(value)}" in runs_md
    single_fvd = fmt_number(fvds[store["results"][0]["mlflow_run_id"]])
    assert f"| StyleGAN-V (ours) | 47.41 | {single_fvd}" in (tables / "table6.md").read_text()
    # the cost cell: measured device-days beside the projection made before launch, both as MLflow has them
    assert single["cost/projected_device_days"] > 0
    cost = (f"0 (CPU: {fmt_number(single['cost/device_days'], 3)} device-days; "
            f"projected {fmt_number(single['cost/projected_device_days'], 3)}) |")
    assert cost in (tables / "table6.md").read_text()
    assert "| Proper computation | 76.82 ± 1.57 | 61.95 ± 0.92 | — (not run on faceforensics)" in \
        (tables / "table4.md").read_text()
    assert single_fvd in (tables / "table4.md").read_text(), "Table 4 proper row from the run's metric record"
    sweep_md = (tables / "ablation_period_scaling.md").read_text()
    for point, res in zip(SWEEP_POINTS, store["results"][1:]):
        row = next(line for line in sweep_md.splitlines() if line.startswith(f"| {point} |"))
        assert fmt_number(fvds[res["mlflow_run_id"]]) in row and res["mlflow_run_id"][:8] in row
    assert store["parent"][:8] in sweep_md
    assert "— (sweep not run" in (tables / "ablation_kernel_size.md").read_text()
    # every ablation paper row whose point ran sits in that run's row, matched by the overrides it names
    from stylegan_v.reports.points import matches

    checked = 0
    for ptable in (t for t in paper.tables() if t.startswith("ablation:")):
        md = (tables / f"ablation_{ptable.removeprefix('ablation:')}.md").read_text().splitlines()
        for prow in paper.rows(ptable):
            wanted = paper.sweep_point(ptable, prow)
            for res in store["results"][1:]:
                if matches(wanted, res["point"]["overrides"]):
                    line = next(line for line in md if res["mlflow_run_id"][:8] in line)
                    assert f"| {prow} — " in line and fmt_number(fvds[res["mlflow_run_id"]]) in line, line
                    assert sum(prow in other for other in md) == 1, f"{prow}: paper row printed twice"
                    checked += 1
    assert checked == 1, "the sweep's linear point is the period-scaling row's"
    assert "has no run" not in sweep_md and "no point of the submitted" not in sweep_md
    table7 = (tables / "table7.md").read_text()
    assert "| moving_mnist_smoke |" in table7 and "| 12 |" in table7, "our dataset's statistics row (12 videos)"
    assert "| 64 | 64 |" in (tables / "figure9_cycles.md").read_text(), "Figure 9a: LCM of 4..64 is 64"

    figures = out / "figures"
    expected = {"figure9", "figure10", "training_curves"} | {f"samples_{Path(r['run_dir']).name}"
                                                            for r in store["results"]}
    assert set(result["figures"]) == expected
    for stem in expected:
        for suffix in ("png", "pdf"):
            path = figures / f"{stem}.{suffix}"
            assert path.stat().st_size > 1000, path
        with Image.open(figures / f"{stem}.png") as img:
            img.verify()
        with Image.open(figures / f"{stem}.png") as img:
            assert img.width > 100 and img.height > 100
        assert (figures / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    # the FVD panel draws each run's floor (held-out real clips) as a dashed line; the loss panels draw none
    from stylegan_v.reports import figures as report_figures
    from stylegan_v.reports.runs import load_runs

    runs = load_runs(store["uri"], store["cfg"].tracking.experiment).runs
    curves = report_figures.training_curves(runs)
    floors = {ax.get_title(): [line for line in ax.get_lines() if str(line.get_label()).startswith("floor")]
              for ax in curves.axes}
    assert not floors["loss/G"] and not floors["loss/D"]
    with_floor = [r for r in runs if r.last("floor/fvd256_16f") is not None]
    assert with_floor and len(floors["metrics/fvd256_16f"]) == len(with_floor)
    assert sorted(line.get_ydata()[0] for line in floors["metrics/fvd256_16f"]) == \
        pytest.approx(sorted(r.last("floor/fvd256_16f")[1] for r in with_floor))
    readme = (out / "README.md").read_text()
    assert "Generated by" in readme and "figures/figure9.png" in readme and "tables/table6.md" in readme

    # determinism: the same store and statistics give the same bytes, figures and README included (the reference
    # report is committed); compare_reports is how the committed one is checked against a rebuild
    from stylegan_v.reports.reference import compare_reports, report_files

    again = tmp_path / "again"
    _build(store, again)
    files = report_files(out)
    assert {"README.md", "tables/table6.md", "figures/figure9.png", "figures/figure9.pdf"} <= set(files)
    for name, path in files.items():
        assert path.read_bytes() == (again / name).read_bytes(), name
    assert compare_reports(out, again) == []
    table6 = again / "tables" / "table6.md"
    run_id = store["results"][0]["mlflow_run_id"]
    table6.write_text(table6.read_text().replace(single_fvd, "1.234", 1))
    (diff,) = compare_reports(out, again)
    assert diff.startswith("tables/table6.md: line ") and f"| {single_fvd}" in diff and "| 1.234" in diff, diff
    table6.write_text((out / "tables" / "table6.md").read_text().replace(run_id[:8], "0badc0de"))
    assert run_id[:8] in (out / "tables" / "table6.md").read_text() and compare_reports(out, again) == [], \
        "another run id is not a difference"
    (again / "figures" / "figure9.png").write_bytes(b"\x89PNG other")
    (again / "tables" / "extra.md").write_text("x")
    assert compare_reports(out, again) == [f"tables/extra.md: only in {again}", "figures/figure9.png: figure bytes differ"]


def test_table5_real_videos_cell_reads_the_evaluate_record(store, compose, tmp_path, monkeypatch) -> None:
    """``evaluate metrics.fake=<data_dir>/<dataset>`` scores the real videos themselves; Table 5's "Real videos"
    cell reads its record (here first without C3D weights: an "unavailable" record, then a measured one)."""
    from stylegan_v import evaluate
    from stylegan_v.reports.paper_tables import table5
    from stylegan_v.reports.runs import load_runs

    monkeypatch.delenv("STYLEGAN_V_C3D_WEIGHTS", raising=False)
    data_dir = store["tmp"] / "data"
    dataset = store["cfg"].dataset.name
    (tmp_path / "weights").mkdir()  # an empty weights cache: C3D is absent
    cfg = compose(*TINY, f"paths.data_dir={data_dir}", f"paths.cache_dir={tmp_path}",
                  f"metrics.fake={data_dir / dataset}", "metrics.names=[isv2048_ucf]")
    assert evaluate.run(cfg)["isv2048_ucf"]["status"] == "unavailable"
    runs = load_runs(store["uri"], "stylegan-v")

    def real_cell(data: Path | None) -> str:
        table = table5(PaperNumbers(), runs, dataset, data)
        return next(row for row in table.rows if row[0] == "Real videos")[2]

    assert real_cell(data_dir).startswith("— (weights missing") and "c3d_ucf101.pth" in real_cell(data_dir)
    assert "not measured: python -m stylegan_v.evaluate" in real_cell(tmp_path), "no record under another data dir"
    measured = {"isv2048_ucf": {"metric": "isv2048_ucf", "kind": "isv", "status": "ok", "value": 96.5, "std": 0.41,
                                "reduced": True, "num_fake": 12, "splits": 10}}
    evaluate.write_results(data_dir / f"eval-{dataset}", measured, {"fake": str(data_dir / dataset), "seed": 0})
    assert real_cell(data_dir) == "96.50 ± 0.410 †"
    other = {"isv2048_ucf": {**measured["isv2048_ucf"], "value": 12.0}}
    evaluate.write_results(data_dir / f"eval-{dataset}", other, {"fake": str(data_dir / "other"), "seed": 0})
    assert real_cell(data_dir) == "96.50 ± 0.410 †", "a record of another video set is not the real videos'"


def test_report_with_no_runs_reads_dashes(tmp_path, compose) -> None:
    cfg = compose(f"paths.data_dir={tmp_path / 'nodata'}", f"tracking.tracking_uri=sqlite:///{tmp_path / 'none.db'}")
    with open_dict(cfg):
        cfg.report = {"out_dir": str(tmp_path / "reports"), "fig9_frames": 64}
    result = report.run(cfg)
    assert result["num_runs"] == 0 and "no MLflow store" in result["runs_reason"]
    assert not (tmp_path / "none.db").exists(), "reading must not create a store"
    table6 = (tmp_path / "reports" / "tables" / "table6.md").read_text()
    assert "| StyleGAN-V (ours) | 47.41 | — (not run" in table6
    table7 = (tmp_path / "reports" / "tables" / "table7.md").read_text()
    assert "| FaceForensics [54] | 4.04 | — (dataset absent" in table7
    with Image.open(tmp_path / "reports" / "figures" / "figure10.png") as img:
        img.verify()
