"""Wall time to submit a 30-point sweep to the local Slurm cluster, returning once it is queued.

Ours: ONE command, ``python -m stylegan_v.train -m +sweep=omega_min model.motion.code_distance=1,2,4,8,16
cluster=slurm cluster.wait=false`` (6 x 5 = 30 points -> one job array), timed until the command returns.
Baseline, on the same machine in the same run: the same 30 points submitted one by one as 30 ordinary
single runs (``train.run`` with ``cluster.wait=false`` in one Python process, so no interpreter start-ups
are counted against the baseline: each point composes, validates and calls sbatch once). Ours pays one
interpreter start-up and opens the sweep's MLflow parent run (a fresh SQLite store here); both are printed.

Every job is submitted held (``sbatch --hold``) so nothing trains, and is cancelled afterwards (scancel).
Everything is written to a temporary folder (data, runs, MLflow store).

    .venv/bin/python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OMEGA_MIN = ["8.0", "16.0", "32.0", "64.0", "128.0", "256.0"]  # as in sweeps/omega_min.yaml
CODE_DISTANCE = ["1", "2", "4", "8", "16"]
SMALL = ["experiment=smoke", "dataset.num_videos=12", "dataset.resolution=32", "dataset.digit_size=14"]


def common(tmp: Path) -> list[str]:
    return [*SMALL, f"paths.data_dir={tmp / 'data'}", f"paths.runs_dir={tmp / 'runs'}",
            f"tracking.tracking_uri=sqlite:///{tmp / 'mlflow.db'}", "cluster=slurm", "cluster.wait=false",
            "+cluster.additional_parameters.hold=true"]


def scancel(job_ids: list[str]) -> None:
    arrays = sorted({j.partition("_")[0] for j in job_ids})
    if arrays:
        subprocess.run(["scancel", *arrays], check=False, timeout=60)


def ours(tmp: Path) -> tuple[float, list[str]]:
    command = [sys.executable, "-m", "stylegan_v.train", "-m", "+sweep=omega_min",
               f"model.motion.code_distance={','.join(CODE_DISTANCE)}", *common(tmp)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    (sweep_dir,) = (tmp / "runs" / "sweeps" / "omega_min").iterdir()
    job_ids = json.loads((sweep_dir / "queued.json").read_text())["job_ids"]
    return seconds, job_ids


def startup() -> float:
    """What any one command pays before it composes: the interpreter and the entry point's imports."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import stylegan_v.train"], cwd=REPO, check=True, timeout=300,
                   capture_output=True)
    return time.perf_counter() - start


def baseline(tmp: Path) -> tuple[float, list[str]]:
    from hydra import compose, initialize_config_dir

    from stylegan_v import train  # registers the configs

    job_ids = []
    start = time.perf_counter()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        for omega_min, distance in itertools.product(OMEGA_MIN, CODE_DISTANCE):
            cfg = compose("config", overrides=[*common(tmp), f"model.motion.omega_min={omega_min}",
                                               f"model.motion.code_distance={distance}"])
            job_ids.append(train.run(cfg)["job_id"])
    return time.perf_counter() - start, job_ids


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as name:
        tmp = Path(name)
        jobs: list[str] = []
        try:
            from hydra import compose, initialize_config_dir

            from stylegan_v import prepare  # prepare the tiny data outside the timed regions

            with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
                prepare.run(compose("config", overrides=common(tmp)))
            t_ours, ids = ours(tmp)
            jobs += ids
            scancel(ids)
            t_base, ids = baseline(tmp)
            jobs += ids
            scancel(ids)
            t_start = startup()
        finally:
            scancel(jobs)
    n = len(OMEGA_MIN) * len(CODE_DISTANCE)
    print(f"{'submission of a ' + str(n) + '-point sweep':<48}{'wall s':>9}{'s/point':>9}{'Slurm jobs':>12}")
    print(f"{'ours: one command -> one job array':<48}{t_ours:>9.2f}{t_ours / n:>9.3f}{1:>12}")
    print(f"{'baseline: 30 single submissions, one process':<48}{t_base:>9.2f}{t_base / n:>9.3f}{n:>12}")
    print(f"{'separately: interpreter + imports, one command':<48}{t_start:>9.2f}")
    print(f"ratio ours / baseline: {t_ours / t_base:.2f} (a loop of 30 commands would also pay 30 x "
          f"{t_start:.1f} s of start-up: {t_base + 30 * t_start:.0f} s)")


if __name__ == "__main__":
    main()
