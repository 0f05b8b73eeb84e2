"""A sweep with a site config (`conf/local/default.yaml`) on the real local Slurm cluster: the array's job
script holds the site's `setup` lines, they run first in each point, and the submitting shell's Slurm variables
(as under `salloc`) do not reach the points. Queued with `cluster.wait=false` and cancelled once the setup ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_config import TINY

REPO = Path(__file__).resolve().parents[2]
SITE_YAML = """# @package _global_
site:
  slurm:
    setup:
      - export SITE_PROBE=from-site
      - echo "site setup ran:$SITE_PROBE:$SLURM_OUTER_PROBE."
"""
SETUP = ["export SITE_PROBE=from-site", 'echo "site setup ran:$SITE_PROBE:$SLURM_OUTER_PROBE."']


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_sweep_array_script_runs_the_site_setup_lines(tmp_path) -> None:
    if (REPO / "conf" / "local" / "default.yaml").exists():
        pytest.skip("this checkout has its own conf/local/default.yaml, which shadows the test's")
    (tmp_path / "site" / "local").mkdir(parents=True)
    (tmp_path / "site" / "local" / "default.yaml").write_text(SITE_YAML)
    cache = os.environ.get("STYLEGAN_V_CACHE_DIR", str(REPO / ".cache" / "stylegan_v"))
    command = [sys.executable, "-m", "stylegan_v.train", *TINY, "+sweep=augmentation", "cluster=slurm",
               "cluster.timeout_min=15", "cluster.signal_delay_s=60", "cluster.wait=false", "training.max_steps=1",
               f"hydra.searchpath=[file://{tmp_path / 'site'}]", f"paths.data_dir={tmp_path / 'data'}",
               f"paths.runs_dir={tmp_path / 'runs'}", f"paths.cache_dir={cache}",
               f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", "-m"]
    env = {**os.environ, "SLURM_OUTER_PROBE": "leaked"}  # as if submitted from inside an allocation
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    (sweep_dir,) = (tmp_path / "runs" / "sweeps" / "augmentation").iterdir()
    job_ids = json.loads((sweep_dir / "queued.json").read_text())["job_ids"]
    (array,) = {j.partition("_")[0] for j in job_ids}
    try:
        script = (sweep_dir / ".submitit" / array / f"{array}_submission.sh").read_text()
        assert "#SBATCH --array=0-1" in script
        header, _, body = script.partition("# setup\n")
        assert body.startswith("\n".join(SETUP) + "\n") and "#SBATCH" not in body, script
        log = sweep_dir / ".submitit" / f"{array}_0" / f"{array}_0_0_log.out"
        _wait_for(lambda: log.exists() and "site setup ran" in log.read_text(errors="replace"), 120,
                  "the first point to run its setup lines")
        assert "site setup ran:from-site:." in log.read_text(errors="replace"), "no SLURM_OUTER_PROBE in the point"
    finally:
        subprocess.run(["scancel", array], check=False, timeout=30)
