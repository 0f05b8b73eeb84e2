"""`make cluster-up` / `make cluster-down` on the real daemons."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stylegan_v.launch.local_cluster import NODES, Layout, Ports, _pid_alive, render_slurm_conf

REPO = Path(__file__).resolve().parents[2]
DAEMONS = {"slurmd-n1": "slurmd", "slurmd-n2": "slurmd", "slurmctld": "slurmctld", "slurmdbd": "slurmdbd",
           "mariadb": "mariadbd", "munged": "munged"}


def test_slurm_conf_declares_two_nodes_on_localhost(tmp_path) -> None:
    ports = Ports.from_env()
    conf = render_slurm_conf(Layout(tmp_path), ports)
    for name, port in zip(NODES, ports.slurmd):
        assert f"NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port}" in conf
    assert "SchedulerParameters=bf_interval=1,sched_interval=1" in conf
    assert "AccountingStorageType=accounting_storage/slurmdbd" in conf
    assert f"StateSaveLocation={tmp_path}/state" in conf


def _running(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())  # a zombie has an empty command line
    except OSError:
        return False


def _cluster(command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stylegan_v.launch.local_cluster", command], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_down_stops_what_up_started_and_up_is_idempotent() -> None:
    layout = Layout(REPO / ".cluster")
    started = {name: _pid_alive(layout.pid_file(name), proc) for name, proc in DAEMONS.items()}
    if not all(pid for name, pid in started.items() if name != "munged"):
        pytest.skip("the running cluster was started from another checkout")
    assert _cluster("up").returncode == 0  # idempotent: already up

    down = _cluster("down")
    assert down.returncode == 0, down.stderr
    for name, pid in started.items():
        assert pid is None or not _running(pid), f"{name} (pid {pid}) survived cluster-down"
    assert not list(layout.run.glob("*.pid"))

    up = _cluster("up")
    assert up.returncode == 0, up.stderr
    sinfo = subprocess.run(["sinfo", "-N", "-h", "-o", "%N %T"], capture_output=True, text=True).stdout
    assert sorted(sinfo.split()) == sorted(["n1", "idle", "n2", "idle"])
