"""Cost projection: cache hit and miss, step count and GPU-days arithmetic, the cap's refusal."""

from pathlib import Path

from omegaconf import OmegaConf

from stylegan_v.launch import plan


def _cfg(tmp_path: Path, gpus: int = 1):
    return OmegaConf.create({
        "paths": {"cache_dir": str(tmp_path)},
        "model": {"name": "tiny", "fmaps": 0.5},
        "dataset": {"resolution": 64, "sampling": {"num_frames": 3}},
        "training": {"batch_size": 4, "total_kimg": 1.2},
        "cluster": {"gpus_per_node": gpus, "nodes": 2},
    })


def test_miss_then_hit(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert plan.project(cfg, "NVIDIA H100").step_s is None  # no measurement: no number
    plan.record_step_time(plan.cache_path(cfg), plan.step_key(cfg, "NVIDIA H100"), 0.5, "NVIDIA H100")
    p = plan.project(cfg, "NVIDIA H100")
    assert p.steps == 100  # 1200 frames / (4 videos x 3 frames)
    assert p.step_s == 0.5
    assert p.gpu_days == 100 * 0.5 * 2 / 86_400
    assert plan.project(cfg, "cpu").step_s is None  # keyed by device


def test_key_follows_batch(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    other = _cfg(tmp_path)
    other.training.batch_size = 8
    assert plan.step_key(cfg, "cpu") != plan.step_key(other, "cpu")
    assert plan.step_key(cfg, "cpu") == plan.step_key(_cfg(tmp_path), "cpu")


def test_cap() -> None:
    assert plan.over_cap(9.0, None) is None
    assert plan.over_cap(8.0, 8.0) is None
    assert "exceeds the cap of 8" in plan.over_cap(9.0, 8.0)
