"""`dvc repro` end to end in a temporary clone: prepare -> train -> evaluate -> report, then a no-op second run.

Runs the real pipeline (real DVC, real MLflow store, real I3D) on a micro configuration: the smoke
experiment's tiny model for a handful of steps and FVD on 4 clips. The same again with cluster=slurm on the
local cluster, where train and evaluate become Slurm jobs that DVC waits for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MICRO = ["experiment=smoke", "training.max_steps=4", "training.snapshot_ticks=1000", "metrics.num_videos=4",
         "training.metrics=[fvd256_16f]",
         "pipeline.datasets=[moving_mnist_smoke]", f"paths.cache_dir={REPO / '.cache' / 'stylegan_v'}"]


def _clone(tmp_path: Path, overrides: list[str]) -> Path:
    """A clean clone of the committed tree with params.yaml composed for the micro configuration."""
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "stylegan_v.params", *MICRO, *overrides,
                    f"tracking.tracking_uri=sqlite:///{clone / 'mlflow.db'}"], cwd=clone, check=True, timeout=120)
    return clone


def _dvc(clone: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900)


def _check_outputs(clone: Path) -> dict:
    train = json.loads((clone / "results/train.json").read_text())
    assert train["status"] == "finished" and train["step"] == 4 and train["device_days"] > 0
    evaluation = json.loads((clone / "results/eval/metrics.json").read_text())
    fvd = evaluation["results"]["fvd256_16f"]
    assert fvd["status"] == "ok" and fvd["value"] > 0 and fvd["reduced"] is True
    tables = sorted(p.name for p in (clone / "reports/tables").glob("*.md"))
    assert "table6.md" in tables or any("6" in t for t in tables), tables
    assert (clone / "reports/README.md").exists()
    assert any((clone / "reports/figures").glob("*.png"))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{clone / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("stylegan-v").experiment_id])
    assert len(runs) == 1
    assert runs[0].data.metrics["metrics/fvd256_16f"] == pytest.approx(fvd["value"])
    history = client.get_metric_history(runs[0].info.run_id, "metrics/fvd256_16f")
    assert history[-1].step == 4 * 4 * 3, "the evaluation lands at the checkpoint's frames shown (4 steps x 4 x 3)"
    return train


def _assert_noop(clone: Path) -> float:
    start = time.monotonic()
    again = _dvc(clone, "repro")
    elapsed = time.monotonic() - start
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Running stage" not in again.stdout, again.stdout
    return elapsed


def test_dvc_repro_end_to_end_then_nothing_to_do(tmp_path) -> None:
    clone = _clone(tmp_path, [])
    first = _dvc(clone, "repro")
    assert first.returncode == 0, (first.stdout + first.stderr)[-5000:]
    for stage in ("prepare@moving_mnist_smoke", "train", "evaluate", "report"):
        assert f"Running stage '{stage}'" in first.stdout
    _check_outputs(clone)
    plots = _dvc(clone, "plots", "show", "-o", str(tmp_path / "plots"))
    assert plots.returncode == 0, (plots.stdout + plots.stderr)[-3000:]
    html = (tmp_path / "plots" / "index.html").read_text()
    for name in ("loss_G", "loss_D", "fvd256_16f", "floor", "samples-000000004"):
        assert name in html, f"dvc plots show does not render {name}"
    elapsed = _assert_noop(clone)
    print(f"no-op dvc repro: {elapsed:.1f} s")
    # A run finishing outside the pipeline (a sweep point, a manual run) into the same runs/ and store: the
    # report stage, and only it, is out of date; a run that stops early is not "finished" and changes nothing.
    extra = subprocess.run([sys.executable, "-m", "stylegan_v.train", "experiment=smoke", "training.max_steps=1",
                            "training.metrics=[]", "experiment_name=extra",
                            f"tracking.tracking_uri=sqlite:///{clone / 'mlflow.db'}"],
                           cwd=clone, capture_output=True, text=True, timeout=300)
    assert extra.returncode == 0, extra.stderr[-3000:]
    status = _dvc(clone, "status", "--json")
    assert json.loads(status.stdout).keys() == {"report"}, status.stdout
    rerun = _dvc(clone, "repro")
    assert "Running stage 'report'" in rerun.stdout and "Running stage 'train'" not in rerun.stdout
    _assert_noop(clone)
    # An experiment: DVC recomposes params.yaml from conf/ with -S overrides (its Hydra support) and re-runs
    # exactly what the change touches: the model changed, so train onwards; the data did not.
    overrides = [*MICRO, f"tracking.tracking_uri=sqlite:///{clone / 'mlflow.db'}", "model.motion.kernel_size=5"]
    exp = _dvc(clone, "exp", "run", *(arg for o in overrides for arg in ("-S", o)))
    assert exp.returncode == 0, (exp.stdout + exp.stderr)[-5000:]
    assert "Running stage 'train'" in exp.stdout and "Running stage 'prepare@moving_mnist_smoke'" not in exp.stdout
    import yaml

    assert yaml.safe_load((clone / "params.yaml").read_text())["model"]["motion"]["kernel_size"] == 5
    shown = _dvc(clone, "exp", "show", "--no-pager", "--csv")
    assert shown.returncode == 0 and "fvd256_16f" in shown.stdout and "device_days" in shown.stdout
    changed = _dvc(clone, "exp", "show", "--no-pager", "--only-changed", "--csv")  # the README's command
    assert changed.returncode == 0 and "kernel_size" in changed.stdout, changed.stderr[-2000:]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_dvc_repro_on_the_local_slurm_cluster(tmp_path) -> None:
    clone = _clone(tmp_path, ["cluster=slurm", "cluster.timeout_min=20", "cluster.signal_delay_s=60"])
    first = _dvc(clone, "repro")
    assert first.returncode == 0, (first.stdout + first.stderr)[-5000:]
    train = _check_outputs(clone)
    state = subprocess.run(["sacct", "-j", str(train["job_id"]), "-X", "-n", "-P", "-o", "State"],
                           capture_output=True, text=True, timeout=30).stdout.split()
    assert state == ["COMPLETED"], "train ran as a Slurm job"
    _assert_noop(clone)
