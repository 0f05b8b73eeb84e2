"""The run's curves as tables for `dvc plots`: losses per tick, each snapshot metric beside its floor."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from stylegan_v.training.curves import copy_sample_grids, write_curves


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_curves_come_from_metrics_jsonl(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    records = [
        {"step": 48, "metrics": {"loss/G": 2.0, "loss/D": 1.0, "augment/p": 0.0, "progress/kimg": 0.048}},
        {"step": 96, "metrics": {"loss/G": 1.5, "loss/D": 1.2, "loss/R1": 0.01, "progress/kimg": 0.096}},
        {"step": 96, "metrics": {"metrics/fvd256_16f": 700.0, "floor/fvd256_16f": 90.0, "cost/gpu_days": 0.0}},
        {"step": 144, "metrics": {"loss/G": 1.4, "loss/D": 1.3, "progress/kimg": 0.144}},
        {"step": 144, "metrics": {"metrics/fvd256_16f": 400.0, "floor/fvd256_16f": 90.0}},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"half-writ')
    for step in (96, 144):
        (run / "samples" / f"samples-{step:09d}.png").write_bytes(b"png")
    written = write_curves(run, tmp_path / "plots")
    assert sorted(p.relative_to(tmp_path / "plots").as_posix() for p in written) == [
        "losses.csv", "metrics/fvd256_16f.csv"]
    losses = _rows(tmp_path / "plots" / "losses.csv")
    assert [r["step"] for r in losses] == ["48", "96", "144"] and losses[1]["loss_R1"] == "0.01"
    assert losses[0]["loss_R1"] == "" and losses[2]["kimg"] == "0.144"
    fvd = _rows(tmp_path / "plots" / "metrics" / "fvd256_16f.csv")
    assert [(r["step"], r["kimg"], r["value"], r["floor"]) for r in fvd] == [
        ("96", "0.096", "700.0", "90.0"), ("144", "0.144", "400.0", "90.0")]
    grids = copy_sample_grids(run, tmp_path / "samples")
    assert [g.name for g in grids] == ["samples-000000096.png", "samples-000000144.png"]
