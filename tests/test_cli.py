"""The command line of every entry point: one-line config errors (exit 2), help pages, nothing heavy imported
before it is needed, multiruns checked point by point, quiet progress bars, the ETA of a training tick.

The CLI tests run the real commands in subprocesses (as a user would), started together to keep them short.
Each reports which heavy libraries it had imported when it ended.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from stylegan_v.cli import command_line, one_line, user_facing
from stylegan_v.progress import progress_bar
from stylegan_v.training.config import TrainingConfig
from stylegan_v.training.loop import Progress, Trainer

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = ("train", "evaluate", "prepare", "report", "profile", "generate")
# Every other `python -m` module of the package: its --help is the project's too.
OTHER_MODULES = ("data.stats", "launch.probe", "sweep", "convert_official", "params", "tracking.sync")
# Imported only once a command does its work: --help and a refused value answer without them.
HEAVY = ("torch", "mlflow", "pandas", "matplotlib", "submitit", "scipy", "cv2", "av", "dvc")
# Runs `python -m <module> <args...>`, then names the HEAVY modules loaded, on stderr's last line.
CHILD = (
    "import atexit, runpy, sys\n"
    f"atexit.register(lambda: print('loaded:', *sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr))\n"
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n"
)
# (command line, the key its one-line error must name)
BAD_VALUES = {
    "range": (["stylegan_v.train", "training.batch_size=0"], "training.batch_size"),
    "range, generate": (["stylegan_v.generate", "checkpoint=x.pt", "fps=-1"], "fps"),
    "range, --cfg job": (["stylegan_v.train", "--cfg", "job", "training.batch_size=0"], "training.batch_size"),
    "type": (["stylegan_v.train", "training.batch_size=abc"], "training.batch_size"),
    "unknown key": (["stylegan_v.train", "training.batch_sizee=1"], "training.batch_sizee"),
    "control character": (["stylegan_v.train", "cluster=slurm", "cluster.job_name='x\nrm -rf ~'"], "cluster.job_name"),
}
TRACEBACKS = {
    "HYDRA_FULL_ERROR=1": (["stylegan_v.train", "training.batch_size=0"], {"HYDRA_FULL_ERROR": "1"}),
    "--verbose": (["stylegan_v.generate", "checkpoint=x.pt", "fps=-1", "--verbose"], {}),
}


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=cwd, env={**environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs: dict[str, subprocess.Popen]) -> dict[str, subprocess.CompletedProcess]:
    """Each command's result, stderr without the CHILD's last line, which becomes ``.loaded``."""
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        *lines, last = err.splitlines() or [""]
        assert last.startswith("loaded:"), err
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(f"{x}\n" for x in lines))
        done[name].loaded = last.split()[1:]  # type: ignore[attr-defined]
    return done


# A multirun with one bad point, from a comma list and from a sweep file: (command line, first line of stderr).
BAD_SWEEPS = {
    "comma list": (["-m", "experiment=smoke", "training.batch_size=2,0"],
                   "error: point 2/2 (training.batch_size=0): training.batch_size must be >= 1"),
    "sweep file": (["-m", "+sweep=kernel_size", "experiment=smoke", "training.batch_size=0"],
                   "error: point 1/7 (model.motion.kernel_size=3): training.batch_size must be >= 1"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    """Every command of this file, run once and concurrently (each is a Python start-up plus a compose)."""
    cwd = tmp_path_factory.mktemp("cli")  # Hydra's outputs/ of any run that got that far land here
    procs = {f"bad: {k}": _start(args, cwd) for k, (args, _) in BAD_VALUES.items()}
    procs.update({f"traceback: {k}": _start(args, cwd, env) for k, (args, env) in TRACEBACKS.items()})
    procs.update({f"help: {name}": _start([f"stylegan_v.{name}", "--help"], cwd)
                  for name in (*ENTRY_POINTS, *OTHER_MODULES)})
    procs.update({f"refused: {name}": _start([f"stylegan_v.{name}", *args], cwd)
                  for name, args in REFUSED.items()})
    mlflow_db = cwd / "sweeps" / "mlflow.db"
    procs.update({f"sweep: {k}": _start(["stylegan_v.train", *args, f"tracking.tracking_uri=sqlite:///{mlflow_db}",
                                         f"hydra.sweep.dir={cwd / 'sweeps' / k}"], cwd)
                  for k, (args, _) in BAD_SWEEPS.items()})
    return _finish(procs)


# What each module refuses without doing anything: a bad value (Hydra entry points) or bad arguments.
REFUSED = {
    "train": ["training.batch_size=0"], "evaluate": ["metrics.batch_size=0"], "prepare": ["dataset.resolution=0"],
    "report": ["training.batch_size=0"], "profile": ["+profile.batch_size=0"], "generate": ["fps=-1"],
    "data.stats": ["dataset.resolution=0"], "launch.probe": ["cluster.timeout_min=0"], "sweep": [],
    "convert_official": [], "tracking.sync": [],
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_a_bad_value_exits_2_with_one_line(runs: dict[str, subprocess.CompletedProcess], case: str) -> None:
    result, key = runs[f"bad: {case}"], BAD_VALUES[case][1]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {key}"), lines[0]
    assert result.stdout == ""  # --cfg job printed nothing: the range check came first


@pytest.mark.parametrize("name", [*ENTRY_POINTS, *OTHER_MODULES])
def test_help_and_a_refused_command_import_nothing_heavy(runs: dict[str, subprocess.CompletedProcess],
                                                         name: str) -> None:
    """torch, MLflow, pandas, ... load only once a command does its work (`make bench` times these)."""
    help_page = runs[f"help: {name}"]
    assert help_page.returncode == 0 and f"python -m stylegan_v.{name}" in help_page.stdout, help_page.stderr
    assert help_page.loaded == [], f"--help imported {help_page.loaded}"
    if name in REFUSED:
        refused = runs[f"refused: {name}"]
        assert refused.returncode == 2, (refused.stdout, refused.stderr)
        assert refused.loaded == [], f"a refused command imported {refused.loaded}"


@pytest.mark.parametrize("case", BAD_SWEEPS)
def test_a_multirun_with_one_bad_point_is_refused_before_anything_starts(
        runs: dict[str, subprocess.CompletedProcess], tmp_path_factory: pytest.TempPathFactory, case: str) -> None:
    """Every point is expanded (sweep file and comma lists) and checked: the first bad one is named, and no
    sweep folder, MLflow store (so no parent run) or job exists afterwards."""
    result, first_line = runs[f"sweep: {case}"], BAD_SWEEPS[case][1]
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.splitlines()[0]] and result.stderr.startswith(first_line), \
        result.stderr
    sweeps = Path(result.args[-1].partition("=")[2]).parent
    assert not sweeps.exists(), f"{sorted(sweeps.rglob('*'))} written by a refused sweep"
    assert result.loaded == []


@pytest.mark.parametrize("case", TRACEBACKS)
def test_full_error_keeps_the_traceback(runs: dict[str, subprocess.CompletedProcess], case: str) -> None:
    result = runs[f"traceback: {case}"]
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr


@pytest.mark.parametrize("name", [*ENTRY_POINTS, "data.stats", "launch.probe"])
def test_help_shows_description_examples_and_user_facing_groups(runs: dict[str, subprocess.CompletedProcess],
                                                                 name: str) -> None:
    result = runs[f"help: {name}"]
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"python -m stylegan_v.{name}: ")  # the description
    examples = [line for line in text.splitlines() if line.startswith(f"  python -m stylegan_v.{name}")]
    assert len(examples) == 3, text
    for word in ("base_", "_schema", "_base", "== Config ==", "powered by Hydra"):
        assert word not in text, (word, text)
    if name == "generate":  # no groups: its keys with their defaults
        assert "checkpoint: ???" in text and "num_frames: 128" in text
    else:
        assert "Groups (group=option" in text
    if name == "train":
        assert "  dataset " in text and "moving_mnist*" in text and "sweep/baselines" in text


def test_one_line_of_a_composition_error_names_the_key_and_keeps_hydras_hint() -> None:
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf.errors import ConfigKeyError

    cause = ConfigKeyError("Key 'batch_sizee' not in 'TrainingConfig'\n    full_key: training.batch_sizee")
    cause.full_key = "training.batch_sizee"
    err = ConfigCompositionException("Could not override 'training.batch_sizee'.\n"
                                     "To append to your config use +training.batch_sizee=1")
    err.__cause__ = cause
    assert one_line(err) == ("training.batch_sizee: Key 'batch_sizee' not in 'TrainingConfig'; "
                             "To append to your config use +training.batch_sizee=1")
    missing = MissingConfigException("In 'config': Could not find 'model/nope'\n\nAvailable options ...",
                                     missing_cfg_file="model/nope", options=["base_g3an", "stylegan_v", "g3an"])
    assert one_line(missing) == "model=nope: no such option; valid: g3an, stylegan_v"


def test_user_facing_options() -> None:
    assert [o for o in ("base_local", "local", "root_schema", "_base", "slurm") if user_facing(o)] == ["local", "slurm"]


def test_command_line_selects_help_and_keeps_overrides_in_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    try:
        assert command_line(["p", "-m", "a=1,2", "b=3"], "train") == ["p", "-m", "hydra/help=train", "a=1,2", "b=3"]
        assert command_line(["p", "--info"], "train") == ["p", "hydra/help=train", "--info"]
        assert command_line(["p", "hydra/help=x"], "train") == ["p", "hydra/help=x"]
        assert "HYDRA_FULL_ERROR" not in os.environ
        assert command_line(["p", "--verbose", "a=1"], "train") == ["p", "hydra/help=train", "a=1"]
        assert os.environ["HYDRA_FULL_ERROR"] == "1"
    finally:
        os.environ.pop("HYDRA_FULL_ERROR", None)  # command_line sets it for the process, not for later tests


class _Terminal:
    """A stream that says it is a terminal."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_progress_bars_draw_only_on_a_terminal() -> None:
    assert progress_bar(range(3), file=io.StringIO()).disable  # a log file or a pipe: no bar
    assert not progress_bar(range(3), file=_Terminal()).disable
    assert progress_bar(range(3), file=_Terminal(), enabled=False).disable  # the explicit switch still wins


def test_a_tick_logs_its_eta(caplog: pytest.LogCaptureFixture) -> None:
    """9 kimg left at this tick's 100 s/kimg: 900 s, logged as h:mm:ss and kept for MLflow."""
    trainer = SimpleNamespace(
        env=SimpleNamespace(is_distributed=False, is_main=True), progress=Progress(step=10, nimg=1000, tick=1),
        tcfg=TrainingConfig(total_kimg=10.0), num_frames=3, augment=None, device=torch.device("cpu"),
        tracker=SimpleNamespace(cfg=SimpleNamespace(log_every_ticks=2)))
    with caplog.at_level(logging.INFO, logger="stylegan_v.training.loop"):
        Trainer._log_tick(trainer, {}, start_nimg=0, start_time=time.monotonic() - 100.0)  # type: ignore[arg-type]
    assert "eta 0:15:00" in caplog.text


# ------------------------------------------------------------------- failures once the task runs: one line too


def test_a_run_directory_in_use_is_one_line_and_verbose_keeps_the_traceback(compose, tmp_path: Path) -> None:
    """A second identical command while the first still trains (here: this test holds its lock)."""
    from tiny_config import TINY

    from stylegan_v.files import exclusive_lock
    from stylegan_v.training.job import RUN_LOCK, run_dir_of

    args = ["stylegan_v.train", *TINY, f"paths.runs_dir={tmp_path / 'runs'}", f"paths.data_dir={tmp_path / 'data'}"]
    run_dir = run_dir_of(compose(*args[1:]))
    with exclusive_lock(run_dir / RUN_LOCK, f"run directory {run_dir}", wait=False):
        done = _finish({"plain": _start(args, tmp_path), "verbose": _start([*args, "--verbose"], tmp_path)})
    assert done["plain"].returncode == 1
    assert done["plain"].stderr.splitlines() == [
        f"error: run directory {run_dir} is in use by pid {os.getpid()} on {os.uname().nodename} since "
        f"{done['plain'].stderr.split(' since ')[1].split(' ')[0]} (lock {run_dir / RUN_LOCK}): wait for it to end, "
        f"or cancel it (`scancel <job id>`, or end that pid), then run the same command again"]
    assert done["verbose"].returncode == 1
    assert "Traceback (most recent call last)" in done["verbose"].stderr
    assert "stylegan_v.files.LockBusy: run directory" in done["verbose"].stderr
    assert not (tmp_path / "data").exists(), "refused before anything was prepared"


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_is_one_line_and_loses_nothing(compose, tmp_path: Path) -> None:
    """The run directory on a real 1 MiB filesystem: the first checkpoint (≈ 6 MB) does not fit."""
    from mlflow import MlflowClient
    from omegaconf import OmegaConf
    from test_files import tiny_filesystem
    from tiny_config import TINY

    from stylegan_v import prepare
    from stylegan_v.files import read_jsonl
    from stylegan_v.training.job import run_dir_of

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # migrated now: MLflow's own log lines stay out of it
    with tiny_filesystem(tmp_path / "disk", "1m") as disk:
        args = [*TINY, f"paths.runs_dir={disk}", f"paths.data_dir={tmp_path / 'data'}",
                f"tracking.tracking_uri={uri}", "training.max_steps=1"]
        cfg = compose(*args)
        prepare.run(cfg)
        run_dir = run_dir_of(cfg)
        done = _finish({"train": _start(["stylegan_v.train", *args], tmp_path)})["train"]
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines() == [
            f"error: no space left on the device while writing {run_dir}/checkpoints/checkpoint-000000001.pt: "
            "free space there (or point paths.runs_dir / paths.data_dir at another filesystem), then run the same "
            "command again: files are written whole, so the earlier ones are intact and a training resumes from "
            "its last complete checkpoint"]
        assert list((run_dir / "checkpoints").iterdir()) == [], "no partial checkpoint, no temporary file"
        assert len(read_jsonl(run_dir / "metrics.jsonl")) == 1  # the one tick before the checkpoint
        assert read_jsonl(run_dir / "mlflow_journal.jsonl")[-1]["status"] == "FAILED"
        assert OmegaConf.load(run_dir / "config.yaml").training.max_steps == 1  # whole, as written before
