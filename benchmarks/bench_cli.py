"""How fast every entry point answers ``--help`` and refuses a bad value, beside two baselines measured in the
same run: the interpreter's start-up (``python -c pass``) and ``python -c "import torch"``.

Neither answer needs torch, MLflow or the package's heavy modules, so both should cost about an interpreter
start-up plus Hydra composing the config, well under one torch import. Each command runs ``--repeats`` times,
the commands in turn (so that other load on a shared machine spreads over all of them); the table shows the
median wall time and its ratio to ``python -c "import torch"``.

    python benchmarks/bench_cli.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (what, command line after `python`, expected exit status)
COMMANDS: list[tuple[str, list[str], int]] = [
    ("python -c pass", ["-c", "pass"], 0),
    ('python -c "import torch"', ["-c", "import torch"], 0),
    *[(f"{name} --help", ["-m", f"stylegan_v.{name}", "--help"], 0)
      for name in ("train", "evaluate", "prepare", "generate", "report", "profile", "data.stats", "launch.probe",
                   "sweep", "convert_official", "params", "tracking.sync")],
    ("train training.batch_size=0", ["-m", "stylegan_v.train", "training.batch_size=0"], 2),
    ("evaluate metrics.batch_size=0", ["-m", "stylegan_v.evaluate", "metrics.batch_size=0"], 2),
    ("prepare dataset.resolution=0", ["-m", "stylegan_v.prepare", "dataset.resolution=0"], 2),
    ("generate fps=-1", ["-m", "stylegan_v.generate", "checkpoint=x.pt", "fps=-1"], 2),
    ("report training.batch_size=0", ["-m", "stylegan_v.report", "training.batch_size=0"], 2),
    ("profile +profile.batch_size=0", ["-m", "stylegan_v.profile", "+profile.batch_size=0"], 2),
    ("data.stats dataset.resolution=0", ["-m", "stylegan_v.data.stats", "dataset.resolution=0"], 2),
    ("launch.probe cluster.timeout_min=0", ["-m", "stylegan_v.launch.probe", "cluster.timeout_min=0"], 2),
    ("train -m training.batch_size=2,0", ["-m", "stylegan_v.train", "-m", "experiment=smoke",
                                          "training.batch_size=2,0"], 2),
]


def wall_time(args: list[str], expected: int) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    if done.returncode != expected:
        raise SystemExit(f"python {' '.join(args)} exited {done.returncode}, expected {expected}:\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {what: [] for what, _, _ in COMMANDS}
    for _ in range(args.repeats):
        for what, command, expected in COMMANDS:
            times[what].append(wall_time(command, expected))
    medians = {what: statistics.median(t) for what, t in times.items()}
    torch_s = medians['python -c "import torch"']
    print(f"{'command (python -m stylegan_v.…)':<40}{'wall s':>8}{'vs import torch':>17}")
    for what, seconds in medians.items():
        print(f"{what:<40}{seconds:>8.2f}{seconds / torch_s:>16.2f}x")
    answers = [s for what, s in medians.items() if not what.startswith("python -c")]
    print(f"slowest answer {max(answers):.2f} s = {max(answers) / torch_s:.2f}x an `import torch`, "
          f"{max(answers) / medians['python -c pass']:.1f}x the interpreter's start-up")


if __name__ == "__main__":
    main()
