"""`make cluster-up` / `make cluster-down` on the real daemons."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from stylegan_v.devtools.local_cluster import (
    NODES,
    SLURMDBD_CONF,
    Layout,
    Ports,
    _pid_alive,
    _write_if_changed,
    check_reusable,
    controller_setting,
    render_slurm_conf,
)

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


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_a_controller_whose_state_folder_is_gone_is_named_not_reused(tmp_path) -> None:
    state = controller_setting("StateSaveLocation")
    assert state is not None and Path(state).is_dir(), "the running controller's own setting, read back"
    check_reusable(Path(state))
    with pytest.raises(RuntimeError, match=f"keeps its state in {tmp_path / 'gone'}, which no longer exists"):
        check_reusable(tmp_path / "gone")


def _running(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())  # a zombie has an empty command line
    except OSError:
        return False


def _cluster(command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stylegan_v.devtools.local_cluster", command], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster", "cluster_to_itself")  # no other worker's job may be running
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
    assert not layout.pid_files()

    up = _cluster("up")
    assert up.returncode == 0, up.stderr
    sinfo = subprocess.run(["sinfo", "-N", "-h", "-o", "%N %T"], capture_output=True, text=True).stdout
    assert sorted(sinfo.split()) == sorted(["n1", "idle", "n2", "idle"])


def test_config_files_of_a_real_cluster_are_never_overwritten(tmp_path) -> None:
    foreign = tmp_path / "slurm.conf"
    foreign.write_text("# site configuration\nClusterName=production\n")
    with pytest.raises(RuntimeError, match="was not written by this tool"):
        _write_if_changed(foreign, "# Written by `python -m stylegan_v.devtools.local_cluster up`\n", 0o644)
    assert "production" in foreign.read_text()
    ours = tmp_path / "ours.conf"
    assert _write_if_changed(ours, "# Written by `python -m stylegan_v.devtools.local_cluster up` (x)\nA=1\n", 0o600)
    assert _write_if_changed(ours, "# Written by `python -m stylegan_v.devtools.local_cluster up` (x)\nA=2\n", 0o600)
    assert stat.S_IMODE(ours.stat().st_mode) == 0o600


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_the_cluster_database_is_no_way_to_root() -> None:
    """An unprivileged local user cannot log into the accounting database as root; the server does not run as
    root and cannot write files outside an empty private folder; the slurm account's password is private."""
    layout, ports = Layout(REPO / ".cluster"), Ports.from_env()
    pid = _pid_alive(layout.pid_file("mariadb"), "mariadbd")
    if pid is None:
        pytest.skip("the running cluster was started from another checkout")
    as_nobody = subprocess.run(["runuser", "-u", "nobody", "--", "mariadb", "--no-defaults", "-h", "127.0.0.1",
                                "-P", str(ports.mariadb), "-uroot", "-e", "SELECT 1"],
                               capture_output=True, text=True, timeout=30)
    assert as_nobody.returncode != 0 and "Access denied for user 'root'" in as_nobody.stderr
    uid = next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("Uid:"))
    assert int(uid) != 0, "mariadbd runs as an unprivileged account"
    socket_root = subprocess.run(["mariadb", "--no-defaults", "-S", str(layout.mysql_socket), "-uroot", "-N", "-e",
                                  "SELECT @@secure_file_priv"], capture_output=True, text=True, timeout=30)
    assert socket_root.stdout.strip().rstrip("/") == str(layout.mysql_files)
    assert not os.listdir(layout.mysql_files)
    for secret in (layout.db_password, SLURMDBD_CONF):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert layout.db_password.read_text().strip() in SLURMDBD_CONF.read_text()
    assert "slurm-local" not in SLURMDBD_CONF.read_text(), "no password fixed in the source"
