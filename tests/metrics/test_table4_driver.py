"""Table 4 from one command: ``evaluate -m '+metrics/table4=glob(*)' metrics.checkpoint=<a>,<b>`` scores each
checkpoint under each protocol row of appendix C, against the checkpoint's own training data."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from stylegan_v.configs import register_configs, validate
from stylegan_v.metrics.registry import get_metric, protocol_for
from stylegan_v.reports.paper import PaperNumbers
from stylegan_v.reports.paper_tables import table4_variant

REPO = Path(__file__).resolve().parents[2]
VARIANTS = sorted(p.stem for p in (REPO / "conf" / "metrics" / "table4").glob("*.yaml"))
SWITCHES = ("real_selection", "fake_jpeg_quality", "pre_resize", "subsample")
# option -> (the paper's row in paper_numbers.csv, the switches it changes against `proper`)
ROWS = {
    "proper": ("Proper computation", {}),
    "resized_128": ("When resized to 128^2", {"pre_resize": 128}),
    "jpg_png": ("With jpg/png discrepancy", {"fake_jpeg_quality": 75}),
    "all_clips": ("When using all clips per video", {"real_selection": "all"}),
    "first_frames": ("When using only first frames", {"real_selection": "first"}),
    "subsample_8": ("When using subsampling of s = 8", {"subsample": 8}),
    "still": ("Still real images", {"real_selection": "still"}),
}


def _metrics(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return validate(compose("config", overrides=list(overrides))).metrics


def test_every_table4_row_has_one_option() -> None:
    assert set(VARIANTS) == set(ROWS)
    assert sorted(row for row, _ in ROWS.values()) == sorted(PaperNumbers().rows("table4"))


@pytest.mark.parametrize("base", ["paper", "cpu"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_each_option_differs_from_the_protocol_as_its_row_says(variant: str, base: str) -> None:
    """On either metrics group: FVD_16 only, the variant named, and exactly the row's switches changed against
    `proper`, which is the official protocol itself; the report reads the record's protocol as that row."""
    proper = _metrics(f"metrics={base}", "+metrics/table4=proper")
    typed = _metrics(f"metrics={base}", f"+metrics/table4={variant}")
    row, changed = ROWS[variant]
    assert typed.names == ["fvd2048_16f"] and typed.variant == variant
    assert {k: getattr(typed, k) for k in SWITCHES if getattr(typed, k) != getattr(proper, k)} == changed
    assert {k: getattr(proper, k) for k in SWITCHES} == {"real_selection": "random_offset", "fake_jpeg_quality": None,
                                                         "pre_resize": None, "subsample": None}
    others = {k: v for k, v in asdict(typed).items() if k not in (*SWITCHES, "variant")}
    assert others == {k: v for k, v in asdict(proper).items() if k not in (*SWITCHES, "variant")}
    assert table4_variant(asdict(protocol_for(get_metric("fvd2048_16f"), typed, seed=0))) == row


def test_a_variant_name_is_a_plain_name() -> None:
    with pytest.raises(ValueError, match=r"metrics\.variant"):
        _metrics("metrics.variant=../x")


def _tiny_checkpoint(tmp_path: Path) -> tuple[Path, str]:
    """A StyleGAN-V of the smoke size after one step, trained on 2 Moving MNIST videos of 128 frames (a video
    gives a 16-frame clip at s = 8 from 16 x 8 frames, as the official metric dataset requires); returns (run
    dir, dataset name)."""
    from stylegan_v import prepare
    from stylegan_v.launch.distributed import DistributedEnv
    from stylegan_v.training.loop import Trainer

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[
            "experiment=smoke", f"paths.data_dir={tmp_path / 'data'}", f"paths.runs_dir={tmp_path / 'runs'}",
            "dataset.name=table4_mnist", "dataset.num_videos=2", "dataset.video_length=128", "training.batch_size=2",
            "training.num_workers=0", "training.max_steps=1", "training.sample_grid=[1,2]", "training.metrics=[]"])
    prepare.run(cfg)
    run_dir = tmp_path / "run"
    assert Trainer(cfg, run_dir, DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")).run() == "finished"
    return run_dir, "table4_mnist"


@pytest.mark.slow  # seven evaluations with the real I3D on CPU (about a minute and a half on 2 cores)
def test_one_command_fills_every_row_for_a_checkpoint(tmp_path: Path, i3d, cache_dir: Path) -> None:
    """The documented command at N = 2: one record per row in the run directory, scored against the data the
    checkpoint was trained on (no metrics.real and no dataset given), each read by the report as its row."""
    run_dir, dataset = _tiny_checkpoint(tmp_path)
    command = [sys.executable, "-m", "stylegan_v.evaluate", "-m", "metrics=cpu", "+metrics/table4=glob(*)",
               f"metrics.checkpoint={run_dir}", "metrics.names=[fvd256_16f]", "metrics.num_videos=2",
               "metrics.progress=false", f"paths.data_dir={tmp_path / 'data'}", f"paths.cache_dir={cache_dir}",
               f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    from stylegan_v.metrics.records import read_records

    records = read_records(run_dir, "fvd256_16f", recursive=True)
    assert sorted(r["variant"] for r in records) == VARIANTS
    for record in records:
        assert record["path"] == f"eval-{record['variant']}/metric-fvd256_16f.jsonl"
        assert record["status"] == "ok" and record["value"] > 0 and record["reduced"]
        assert record["real"].endswith(f"data/{dataset}")
        assert table4_variant(record["protocol"]) == ROWS[record["variant"]][0]
        assert json.loads((run_dir / f"eval-{record['variant']}" / "metrics.json").read_text())["variant"] == \
            record["variant"]
    by_variant = {r["variant"]: r for r in records}
    assert by_variant["all_clips"]["num_real"] > by_variant["proper"]["num_real"] == 2  # 8 clips per video
