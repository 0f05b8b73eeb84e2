"""Table 6 and appendix C's LSTM comparison from sweeps, in a real MLflow store.

The runs are logged straight into a sqlite store with the tags, params and metrics a sweep's points log (and a
``sweep.json`` written as the sweep callback writes it), without training: what is under test is how the report
picks each row's run by config. Real sweeps feeding the report are run in test_report_build.py (period_scaling)
and tests/sweeps/test_sweep_slurm.py (baselines).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from stylegan_v.reports.paper import PaperNumbers
from stylegan_v.reports.paper_tables import lstm_comparison, table6
from stylegan_v.reports.runs import load_runs
from stylegan_v.reports.tables import fmt_number

DATASET = "moving_mnist_smoke"


class Store:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.uri = f"sqlite:///{tmp / 'mlflow.db'}"
        self.client = mlflow.MlflowClient(self.uri)
        self.experiment = self.client.create_experiment("stylegan-v")

    def run(self, name: str, params: dict, metrics: dict, tags: dict | None = None) -> str:
        run = self.client.create_run(self.experiment, run_name=name, tags=tags or {})
        for key, value in params.items():
            self.client.log_param(run.info.run_id, key, value)
        for key, value in metrics.items():
            self.client.log_metric(run.info.run_id, key, value, step=8)
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    def sweep(self, name: str, stamp: str, points: list[tuple[str, dict, dict | None]]) -> dict[str, str]:
        """A submitted sweep: sweep.json with every point, a parent run, a child run for each point with metrics
        (None: the point never ran). Returns {option: child run id}."""
        sweep_dir = self.tmp / "runs" / "sweeps" / name / f"smoke-{stamp}"
        sweep_dir.mkdir(parents=True)
        parent = self.run(f"sweep-{name}-{sweep_dir.name}", {"sweep.dir": str(sweep_dir), "sweep.name": name},
                          {}, {"sweep.name": name, "sweep.role": "parent"})
        entries, children = [], {}
        for num, (option, params, metrics) in enumerate(points):
            label = f"{name}={option}"
            entries.append({"num": num, "point": label,
                            "overrides": [f"+sweep/{name}={option}", "experiment=smoke", f"+sweep={name}"]})
            if metrics is not None:
                children[option] = self.run(f"smoke-{name}-{option}-{stamp}", {"dataset.name": DATASET, **params},
                                            metrics, {"sweep.name": name, "sweep.point": label,
                                                      "mlflow.parentRunId": parent})
        (sweep_dir / "sweep.json").write_text(json.dumps({"name": name, "parent_run_id": parent, "points": entries}))
        return children


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path)


SG2 = {"model.name": "stylegan_v", "model.motion.kind": "none", "dataset.resolution": "32"}
SGV = {"model.name": "stylegan_v", "model.motion.kind": "acyclic", "dataset.resolution": "32"}
MOCO = {"model.name": "mocogan_sg2", "model.motion.kind": "lstm", "dataset.resolution": "32"}
G3AN = {"model.name": "g3an", "dataset.resolution": "64"}


def _row(table, label: str) -> list[str]:
    return next(row for row in table.rows if row[0] == label)


def test_table6_rows_come_from_one_baselines_sweep_matched_by_config(store: Store) -> None:
    store.run("smoke-headline", {"dataset.name": DATASET, **SGV}, {"metrics/fvd256_16f": 999.0})
    store.sweep("baselines", "20260101-000000", [("stylegan_v", SGV, {"metrics/fvd256_16f": 888.0})])  # older
    ids = store.sweep("baselines", "20260102-000000", [
        ("stylegan_v", SGV, {"metrics/fvd256_16f": 401.5, "metrics/fid2048_16f": 55.5}),
        ("stylegan2", SG2, {"metrics/fid2048_16f": 44.25}),
        ("mocogan_sg2", MOCO, {"metrics/fvd256_16f": 512.0}),
        ("g3an_cpu", G3AN, {"metrics/fvd256_16f": 777.0})])
    table = table6(PaperNumbers(), load_runs(store.uri, "stylegan-v"), "faceforensics")
    assert "ours (moving_mnist_smoke)" in table.title
    sgv = _row(table, "StyleGAN-V (ours)")
    assert sgv[2] == fmt_number(401.5) and sgv[4] == fmt_number(55.5), "the newest sweep's point, not the headline run"
    sg2 = _row(table, "StyleGAN2 [29]")
    assert sg2[1] == "N/A" and sg2[2] == "N/A (image generator)" and sg2[4] == fmt_number(44.25)
    assert _row(table, "MoCoGAN+SG2 (ours)")[2] == fmt_number(512.0)
    assert _row(table, "G3AN (our implementation)")[2] == fmt_number(777.0)
    notes = " ".join(table.notes)
    assert "G3AN (our implementation): trained at 64²" in notes and "one `+sweep=baselines` submission" in notes
    assert "999" not in " ".join(sgv) and len(ids) == 4


def test_table6_says_which_model_the_sweep_lacks(store: Store) -> None:
    store.sweep("baselines", "20260102-000000", [("stylegan_v", SGV, {"metrics/fvd256_16f": 401.5}),
                                                 ("g3an", G3AN, None)])
    table = table6(PaperNumbers(), load_runs(store.uri, "stylegan-v"), "faceforensics")
    assert _row(table, "G3AN (our implementation)")[2].startswith("— (no point of the baselines sweep is g3an")
    assert "model.motion.kind=none" in _row(table, "StyleGAN2 [29]")[2]


def test_lstm_comparison_puts_fvd128_beside_the_papers(store: Store) -> None:
    lstm = {"model.name": "stylegan_v", "model.motion.kind": "lstm"}
    store.sweep("lstm_motion", "20260103-000000", [
        ("acyclic", SGV, {"metrics/fvd2048_128f": 210.5, "metrics/fvd2048_16f": 90.25}),
        ("lstm", lstm, {"metrics/fvd2048_128f": 180.0, "metrics/fvd2048_16f": 120.0}),
        ("lstm_d1", {**lstm, "model.motion.code_distance": "1"}, None)])
    table = lstm_comparison(PaperNumbers(), load_runs(store.uri, "stylegan-v"))
    paper = PaperNumbers()
    by_point = {tuple(paper.sweep_point("ablation:lstm_motion", row[0])): row for row in table.rows}
    ours = by_point[("+sweep/lstm_motion=acyclic",)]
    assert ours[2] == "197.0" and ours[3] == fmt_number(210.5) and ours[4] == fmt_number(90.25)
    lstm_row = by_point[("+sweep/lstm_motion=lstm",)]
    assert lstm_row[2] == "196.1" and lstm_row[3] == fmt_number(180.0)
    not_run = by_point[("+sweep/lstm_motion=lstm_d1",)]
    assert not_run[2] == "165.8" and "point 2 of sweep smoke-20260103-000000 has no run" in not_run[3]
    assert len(table.rows) == 3


def test_lstm_comparison_without_the_sweep(store: Store) -> None:
    table = lstm_comparison(PaperNumbers(), load_runs(store.uri, "stylegan-v"))
    assert [row[2] for row in table.rows] == ["196.1", "165.8", "197.0"]
    assert all("sweep not run" in row[3] for row in table.rows)
