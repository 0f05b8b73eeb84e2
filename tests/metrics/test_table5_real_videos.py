"""Table 5's "Real videos" cell: ``evaluate +metrics/table5=real_videos`` scores the prepared dataset itself with
the video Inception Score and writes the record where the report reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from stylegan_v.configs import register_configs

REPO = Path(__file__).resolve().parents[2]


def _compose(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_the_option_scores_the_real_dataset_into_a_fixed_place() -> None:
    cfg = _compose("metrics=paper", "+metrics/table5=real_videos", "dataset=ucf101", "paths.data_dir=/d",
                   "paths.runs_dir=/r")
    m = cfg.metrics
    assert list(m.names) == ["isv2048_ucf"] and m.variant == "real_videos" and m.checkpoint is None
    assert (m.fake, m.output_dir) == ("/d/ucf101", "/d/eval-ucf101")


def test_real_video_is_is_computed_and_recorded(tmp_path: Path) -> None:
    """C3D with random weights (the trained ones are on no reachable registry): a record with status ok, the
    real set as the scored set, an IS above 1 (exp of the mean KL divergence between
    three different videos' class posteriors and their mean)."""
    from stylegan_v import prepare
    from stylegan_v.evaluate import run
    from stylegan_v.metrics.c3d import C3D
    from stylegan_v.metrics.records import read_records

    torch.manual_seed(0)
    weights = tmp_path / "c3d_random.pth"
    torch.save(C3D().state_dict(), weights)
    common = ("experiment=smoke", f"paths.data_dir={tmp_path / 'data'}", f"paths.runs_dir={tmp_path / 'runs'}",
              "dataset.num_videos=3", "dataset.video_length=16")
    prepare.run(_compose(*common))
    cfg = _compose(*common, "metrics=cpu", "+metrics/table5=real_videos", "metrics.num_videos=3", "metrics.is_splits=1",
                   f"metrics.c3d_weights={weights}", "metrics.progress=false", f"paths.cache_dir={tmp_path / 'cache'}")
    results = run(cfg)
    assert results["isv2048_ucf"]["status"] == "ok"
    (record,) = read_records(tmp_path / "data" / f"eval-{cfg.dataset.name}", "isv2048_ucf")
    assert record["variant"] == "real_videos" and record["source"] == "evaluate" and record["checkpoint"] is None
    assert record["fake"] == str(tmp_path / "data" / cfg.dataset.name) and record["num_fake"] == 3
    assert record["value"] == pytest.approx(results["isv2048_ucf"]["value"]) and record["value"] > 1.0
    from stylegan_v.reports.paper_tables import real_videos_cell
    from stylegan_v.reports.tables import fmt_mean_std

    cell, note = real_videos_cell(tmp_path / "data", cfg.dataset.name)  # the report's reader finds it
    assert cell.startswith(fmt_mean_std(record["value"], record.get("std"))) and note is not None, cell
