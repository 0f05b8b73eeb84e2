"""Cost projection: the step-time cache (miss measures here, hit reads), `train --plan` and
`cluster.max_gpu_days` through the real CLI, with the real local Slurm cluster showing that nothing queues.

No GPU here: a GPU class's step time is written into the cache as a measurement on that class would write it
(the one faked part, said where it is done)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_config import TINY

from stylegan_v.configs import validate
from stylegan_v.launch import plan

REPO = Path(__file__).resolve().parents[2]
GPU = "Test GPU class"


def _typed(compose, tmp_path: Path, *extra: str):
    return validate(compose(*TINY, f"paths.cache_dir={tmp_path / 'cache'}", *extra))


def test_cache_miss_measures_then_hit_reads(compose, tmp_path: Path) -> None:
    typed = _typed(compose, tmp_path)
    first = plan.project(typed)
    assert first.source == "measured here" and first.step_s > 0
    assert plan.cache_path(typed).exists()
    second = plan.project(typed, measure=False)
    assert second.source == "cache" and second.step_s == first.step_s
    assert second.steps == 20  # 0.12 kimg = 120 frames / (2 videos x 3 frames)
    other = _typed(compose, tmp_path, "training.batch_size=4")
    assert plan.step_key(other, "cpu") != plan.step_key(typed, "cpu")
    assert plan.project(other, measure=False).step_s is None  # another batch: no measurement yet


def test_cpu_measures_a_large_batch_on_two_videos_scaled(compose, tmp_path: Path, monkeypatch) -> None:
    """A paper-scale batch is never built on the login node: the step is timed on 2 videos (real, timed here)
    and scaled linearly to the rank's batch."""
    from stylegan_v.launch import step_time

    timed = []
    real_measure = step_time.measure
    monkeypatch.setattr(step_time, "measure", lambda typed, batch, kind: timed.append(batch) or real_measure(typed, batch, kind))
    p = plan.project(_typed(compose, tmp_path, "training.batch_size=64"))
    assert timed == [plan.CPU_PROBE_VIDEOS] and "scaled to 64" in p.source
    assert p.step_s == pytest.approx(plan.cached_step_time(plan.cache_path(_typed(compose, tmp_path)),
                                                           plan.step_key(_typed(compose, tmp_path, "training.batch_size=64"), p.device)))


def test_gpu_class_without_measurement_gives_no_number(compose, tmp_path: Path) -> None:
    typed = _typed(compose, tmp_path, "cluster=slurm", "cluster.gpus_per_node=2", f"cluster.device_class={GPU}")
    p = plan.project(typed)
    assert p.gpu_days is None and GPU in p.source
    plan.remember(typed, GPU, 3.0)  # fake: stands for a step measured on that GPU class
    p = plan.project(typed)
    assert p.source == "cache" and p.gpu_days == pytest.approx(20 * 3.0 * 2 / 86_400, rel=1e-12)


def _train(tmp_path: Path, *args: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "stylegan_v.train", *flags, *TINY, f"paths.cache_dir={tmp_path / 'cache'}",
           f"paths.runs_dir={tmp_path / 'runs'}", f"paths.data_dir={tmp_path / 'data'}",
           f"hydra.run.dir={tmp_path / 'out'}", f"hydra.sweep.dir={tmp_path / 'multi'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)


def _jobs_submitted_from(folder: Path) -> int:
    """Slurm jobs whose submission ran in ``folder`` (other tests queue jobs on the same cluster meanwhile)."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-S", "now-1days", "-o", "WorkDir"], capture_output=True,
                         text=True, timeout=30, check=True)
    return sum(Path(line).resolve().is_relative_to(folder.resolve()) for line in out.stdout.splitlines() if line.strip())


@pytest.mark.slurm
def test_plan_and_cap_queue_nothing(slurm_cluster: None, compose, tmp_path: Path) -> None:
    gpu = ["cluster=slurm", "cluster.gpus_per_node=1", f"cluster.device_class='{GPU}'"]
    plan.remember(_typed(compose, tmp_path, *gpu), GPU, 600.0)  # fake GPU measurement, as above
    before = _jobs_submitted_from(tmp_path)
    shown = _train(tmp_path, "training.total_kimg=0.12,0.24", *gpu, flags=("-m", "--plan"))
    assert shown.returncode == 0, shown.stderr
    assert "point 1/2" in shown.stdout and "point 2/2" in shown.stdout and '"gpus_per_node": 1' in shown.stdout
    assert "n/a" not in shown.stdout  # total kimg is not part of the key: both points use the cached step
    assert "GPU-days 0.2778" in shown.stdout  # (20 + 40 steps) x 600 s x 1 GPU
    refused = _train(tmp_path, *gpu, "cluster.max_gpu_days=0.1")  # 20 steps x 600 s = 0.139 GPU-days
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: cluster.max_gpu_days: projected 0.1389 GPU-days exceeds the cap of 0.1; nothing was queued"]
    assert _jobs_submitted_from(tmp_path) == before == 0
    assert not (tmp_path / "runs").exists()
