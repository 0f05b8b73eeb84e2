"""The site config (`conf/local/default.yaml`, git-ignored): picked up when present, fine when absent, and its
`setup` lines reach the job script; a submission from inside an allocation does not hand its Slurm variables on.

Tests never write into the repository's conf/: they put a `local/default.yaml` in a temporary folder and add it
to Hydra's search path (`hydra.searchpath=[file://...]`), where Hydra finds the `local` group's option.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from stylegan_v.configs import validate
from stylegan_v.launch.config import LocalClusterConfig, SlurmClusterConfig
from stylegan_v.launch.submit import submit

REPO = Path(__file__).resolve().parents[2]
SETUP = ['export SITE_PROBE="setup-ran:$SLURM_OUTER_PROBE:$RANK"', "echo site setup done"]
SITE = {"site": {"slurm": {"partition": "debug", "account": "proj_a", "qos": "normal", "setup": SETUP}},
        "tracking": {"tracking_uri": "http://mlflow.site.example:5000"}}


def _site_dir(tmp_path: Path, body: dict | None = None, text: str | None = None) -> str:
    """A search-path folder holding local/default.yaml; returns the override that adds it."""
    (tmp_path / "site" / "local").mkdir(parents=True)
    content = text if text is not None else "# @package _global_\n" + yaml.safe_dump(body)
    (tmp_path / "site" / "local" / "default.yaml").write_text(content)
    return f"hydra.searchpath=[file://{tmp_path / 'site'}]"


@pytest.fixture(autouse=True)
def _no_site_file_in_the_checkout() -> None:
    if (REPO / "conf" / "local" / "default.yaml").exists():
        pytest.skip("this checkout has its own conf/local/default.yaml, which shadows the test's")


def test_absent_site_file_leaves_the_defaults(compose) -> None:
    cfg = compose("cluster=slurm")
    assert cfg.site is None and cfg.tracking.tracking_uri is None
    cluster = validate(cfg).cluster
    assert (cluster.partition, cluster.account, cluster.qos, cluster.constraint, cluster.setup) == (
        None, None, None, None, [])


def test_present_site_file_sets_slurm_keys_and_tracking(compose, tmp_path) -> None:
    searchpath = _site_dir(tmp_path, SITE)
    cfg = compose(searchpath, "cluster=slurm")
    cluster = validate(cfg).cluster
    assert isinstance(cluster, SlurmClusterConfig)
    assert (cluster.partition, cluster.account, cluster.qos, cluster.setup) == ("debug", "proj_a", "normal", SETUP)
    assert cfg.tracking.tracking_uri == "http://mlflow.site.example:5000"


def test_site_file_survives_an_experiment_but_not_the_command_line(compose, tmp_path) -> None:
    searchpath = _site_dir(tmp_path, SITE)
    cluster = validate(compose(searchpath, "cluster=slurm", "experiment=smoke")).cluster
    assert (cluster.partition, cluster.setup) == ("debug", SETUP), "an experiment does not erase site settings"
    cfg = compose(searchpath, "cluster=slurm", "cluster.partition=other", "cluster.setup=[hostname]",
                  "tracking.tracking_uri=sqlite:///x.db")
    assert (cfg.cluster.partition, list(cfg.cluster.setup), cfg.tracking.tracking_uri) == (
        "other", ["hostname"], "sqlite:///x.db")


def test_cluster_local_composes_with_a_site_file(compose, tmp_path) -> None:
    cfg = compose(_site_dir(tmp_path, SITE))
    assert isinstance(validate(cfg).cluster, LocalClusterConfig), "site.slurm keys do not touch cluster=local"
    assert cfg.tracking.tracking_uri == "http://mlflow.site.example:5000"


def test_committed_example_composes_and_validates(compose, tmp_path) -> None:
    searchpath = _site_dir(tmp_path, text=(REPO / "conf" / "local" / "example.yaml").read_text())
    cluster = validate(compose(searchpath, "cluster=slurm")).cluster
    assert cluster.partition == "gpu" and cluster.setup[0] == "module load cuda/12.1"
    assert any("$HOME" in line for line in cluster.setup), "shell variables pass through untouched"


def test_sweep_launcher_gets_the_setup_lines(compose, tmp_path) -> None:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from stylegan_v.configs import register_configs
    from stylegan_v.launch.sweep import register_resolvers

    register_configs()
    register_resolvers()
    searchpath = _site_dir(tmp_path, SITE)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose("config", overrides=[searchpath, "+sweep=augmentation", "experiment=smoke",
                                                 "cluster=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (list(launcher.setup), launcher.partition, launcher.account, launcher.qos) == (
        SETUP, "debug", "proj_a", "normal")


@pytest.mark.parametrize(
    "line", ["", "module load a\nmodule load b", "#SBATCH --exclusive", "source ${HOME}/env/bin/activate"],
)
def test_bad_setup_lines_name_the_key(line: str) -> None:
    with pytest.raises(ValueError, match=r"cluster\.setup"):
        SlurmClusterConfig(setup=[line])


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_setup_lines_are_in_the_job_script_and_run_without_the_outer_allocation(tmp_path, monkeypatch) -> None:
    """A submission as from inside `salloc`: the script holds the setup lines, they ran before the task, and
    neither the outer allocation's SLURM_* variables nor its rank reached the job."""
    monkeypatch.setenv("SLURM_OUTER_PROBE", "leaked")
    monkeypatch.setenv("RANK", "7")
    cluster = SlurmClusterConfig(log_dir=str(tmp_path), timeout_min=10, signal_delay_s=30, setup=SETUP)
    job = submit(os.getenv, "SITE_PROBE", cluster=cluster, name="site")  # os.getenv runs on the node
    assert job.result() == "setup-ran::", "the setup ran, and saw neither variable"
    script = job.paths.submission_file.read_text()
    header, _, body = script.partition("# setup\n")
    assert body.startswith("\n".join(SETUP) + "\n"), script
    assert "#SBATCH" in header and "#SBATCH" not in body and body.index(SETUP[-1]) < body.index("srun")
    assert os.environ["SLURM_OUTER_PROBE"] == "leaked" and os.environ["RANK"] == "7", "restored after submitting"


def test_site_file_is_git_ignored_and_the_example_is_not() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    import subprocess

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, timeout=30).returncode == 0

    assert ignored("conf/local/default.yaml") and not ignored("conf/local/example.yaml")
