"""A real two-node Slurm cluster with accounting, on localhost.

``python -m stylegan_v.devtools.local_cluster up|down|status`` (``make cluster-up`` / ``make cluster-down``).

Why: every cluster feature of this project (multi-node DDP, job arrays, requeue, ``sacct`` cost figures) is
tested against real Slurm daemons rather than mocks. ``up`` installs Debian's ``slurm-wlm``, ``slurmdbd``,
``munge`` and ``mariadb-server`` when missing, then starts, in order: munged, MariaDB (127.0.0.1 only, its
data under the project, hardened as below), slurmdbd, slurmctld and two ``slurmd -N n1`` / ``-N n2`` daemons that share this
host on their own ports. The configuration goes to ``/etc/slurm`` so a plain ``sinfo``/``sbatch``/``sacct``
in any shell finds it; state, logs and PID files go to ``.cluster/`` (git-ignored). ``n1``/``n2`` are added
to ``/etc/hosts`` because ``MASTER_ADDR`` is the first node's name and an unresolvable name makes
``init_process_group`` hang. ``down`` cancels jobs and stops, by PID and in reverse order, only the daemons
whose PID files it wrote.

Every step checks before it acts, so ``up`` twice is a no-op and a cluster started from another checkout
is reused as it is.

The daemons run as root (slurmd must), so nothing they expose may be a way to root: MariaDB runs as the
unprivileged ``mysql`` account, its ``root`` logs in through the Unix socket only (OS root only, no TCP),
``secure_file_priv`` pins file import/export to an empty private folder, and the ``slurm`` account's
password is generated at first start into a 0600 file (``.cluster/db-password``). ``/etc/slurm`` files are
written only when absent or written by this tool, never over a real cluster's configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from stylegan_v.files import atomic_write_text

log = logging.getLogger("stylegan_v.local_cluster")

SLURM_CONF = Path("/etc/slurm/slurm.conf")
SLURMDBD_CONF = Path("/etc/slurm/slurmdbd.conf")
HOSTS_FILE = Path("/etc/hosts")
APT_PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
REQUIRED_BINARIES = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "sinfo", "sacct")

CLUSTER_NAME = "localcluster"
PARTITION = "debug"
NODES = ("n1", "n2")
CPUS_PER_NODE = 2  # the CI machine has 2 cores; two nodes x 2 CPUs lets 4 one-CPU jobs run at once
MEMORY_MB_PER_NODE = 8000
DB_USER, DB_NAME = "slurm", "slurm_acct_db"  # the account exists for 127.0.0.1 only
DB_OS_USER = "mysql"  # MariaDB runs as this unprivileged account (created by Debian's mariadb-server)
# First line of every file this tool writes to /etc/slurm (earlier versions lived in stylegan_v.launch).
OWN_MARKERS = ("stylegan_v.devtools.local_cluster up", "stylegan_v.launch.local_cluster up")


@dataclass(frozen=True)
class Ports:
    """TCP ports of the daemons; override the base with ``STYLEGAN_V_CLUSTER_PORT_BASE`` if taken."""

    mariadb: int
    slurmdbd: int
    slurmctld: int
    slurmd: tuple[int, ...]

    @classmethod
    def from_env(cls) -> Ports:
        base = int(os.environ.get("STYLEGAN_V_CLUSTER_PORT_BASE", "17000"))
        return cls(mariadb=base + 6, slurmdbd=base + 19, slurmctld=base + 17,
                   slurmd=tuple(base + 1 + i for i in range(len(NODES))))


@dataclass(frozen=True)
class Layout:
    """Where the cluster keeps its state, logs and PID files (one ignored project folder)."""

    root: Path

    @property
    def run(self) -> Path: return self.root / "run"
    @property
    def log(self) -> Path: return self.root / "log"
    @property
    def state(self) -> Path: return self.root / "state"
    @property
    def spool(self) -> Path: return self.root / "spool"
    @property
    def mysql(self) -> Path: return self.root / "mysql"
    @property
    def mysql_run(self) -> Path: return self.root / "mysql-run"  # socket and PID file, owned by mysql
    @property
    def mysql_files(self) -> Path: return self.root / "mysql-files"  # secure_file_priv: empty, private
    @property
    def mysql_socket(self) -> Path: return self.mysql_run / "mysqld.sock"
    @property
    def db_password(self) -> Path: return self.root / "db-password"  # the slurm DB account's, mode 0600
    @property
    def hardened_marker(self) -> Path: return self.mysql / ".stylegan_v-hardened"

    def pid_file(self, daemon: str) -> Path:
        return (self.mysql_run if daemon == "mariadb" else self.run) / f"{daemon}.pid"

    def pid_files(self) -> list[Path]:
        return sorted(self.run.glob("*.pid")) + sorted(self.mysql_run.glob("*.pid"))

    def make(self) -> None:
        for folder in (self.run, self.log, self.state, *(self.spool / n for n in NODES)):
            folder.mkdir(parents=True, exist_ok=True)


# --------------------------------------------------------------------------------------------- helpers


def _run(cmd: list[str], check: bool = True, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, timeout=timeout, capture_output=True, text=True, **kwargs)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait(what: str, ready, timeout: float, log_file: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.25)
    tail = ""
    if log_file is not None and log_file.exists():
        tail = "\n  last log lines:\n    " + "\n    ".join(log_file.read_text(errors="replace").splitlines()[-8:])
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s{tail}")


def _pid_alive(pid_file: Path, name: str) -> int | None:
    """PID in ``pid_file`` if that process is alive and really is ``name`` (guards against PID reuse)."""
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    return pid if name in cmdline else None


def _stop_pid(pid_file: Path, name: str, timeout: float = 20) -> bool:
    pid = _pid_alive(pid_file, name)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid_file, name) is not None:
        time.sleep(0.2)
    if _pid_alive(pid_file, name) is not None:
        log.warning("%s (pid %d) ignored SIGTERM; sending SIGKILL", name, pid)
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


# ------------------------------------------------------------------------------------ configuration


def render_slurm_conf(layout: Layout, ports: Ports) -> str:
    nodes = "\n".join(
        f"NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} "
        f"CPUs={CPUS_PER_NODE} RealMemory={MEMORY_MB_PER_NODE} State=UNKNOWN"
        for name, port in zip(NODES, ports.slurmd)
    )
    return f"""# Written by `python -m stylegan_v.devtools.local_cluster up` ({layout.root}). Do not edit.
ClusterName={CLUSTER_NAME}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ports.slurmctld}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire also sets how long a requeued job waits before it may start again (Slurm's default, 120 s, made
# every requeue test wait two minutes); 30 s still leaves a loaded machine ample time to launch a job step.
AuthInfo=cred_expire=30
StateSaveLocation={layout.state}
SlurmdSpoolDir={layout.spool}/%n
SlurmctldPidFile={layout.pid_file("slurmctld")}
SlurmdPidFile={layout.run}/slurmd-%n.pid
SlurmctldLogFile={layout.log}/slurmctld.log
SlurmdLogFile={layout.log}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
JobRequeue=1
MailProg=/bin/true
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={ports.slurmdbd}
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
KillWait=5
MinJobAge=300
InactiveLimit=0
MessageTimeout=10
SlurmdTimeout=30
{nodes}
PartitionName={PARTITION} Nodes={",".join(NODES)} Default=YES MaxTime=INFINITE State=UP
"""


def render_slurmdbd_conf(layout: Layout, ports: Ports, db_password: str) -> str:
    return f"""# Written by `python -m stylegan_v.devtools.local_cluster up` ({layout.root}). Do not edit.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports.slurmdbd}
SlurmUser=root
LogFile={layout.log}/slurmdbd.log
PidFile={layout.pid_file("slurmdbd")}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports.mariadb}
StorageUser={DB_USER}
StoragePass={db_password}
StorageLoc={DB_NAME}
"""


# -------------------------------------------------------------------------------------------- steps


def ensure_packages() -> None:
    missing = [b for b in REQUIRED_BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if not missing:
        return
    if os.geteuid() != 0:
        raise PermissionError(f"missing {missing}; installing {APT_PACKAGES} needs root (apt-get)")
    log.info("installing %s (missing: %s)", " ".join(APT_PACKAGES), ", ".join(missing))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES],
                   check=True, env=env)


def ensure_hosts() -> None:
    """Make n1/n2 resolve to 127.0.0.1 (torch's rendezvous connects to MASTER_ADDR=n1)."""
    unresolved = []
    for name in NODES:
        try:
            socket.gethostbyname(name)
        except OSError:
            unresolved.append(name)
    if unresolved:
        with HOSTS_FILE.open("a") as f:
            f.write(f"127.0.0.1 {' '.join(unresolved)}  # stylegan_v local Slurm cluster\n")
        log.info("added %s to %s", ", ".join(unresolved), HOSTS_FILE)


def _munge_works() -> bool:
    try:
        encoded = _run(["munge", "-n"], timeout=5).stdout
        return _run(["unmunge"], input=encoded, timeout=5, check=False).returncode == 0
    except (subprocess.SubprocessError, OSError):
        return False


def ensure_munged(layout: Layout) -> None:
    if _munge_works():
        return
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        _run(["mungekey", "--create", "--keyfile", str(key)], check=False)
        shutil.chown(key, "munge", "munge")
        key.chmod(0o600)
    for folder in (Path("/run/munge"), Path("/var/log/munge"), Path("/var/lib/munge")):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "munge", "munge")
    pid_file = layout.pid_file("munged")
    # munged refuses to write its PID file into a folder another user owns: let it write its own, then copy.
    _run(["runuser", "-u", "munge", "--", "munged"])
    _wait("munged", _munge_works, 15)
    pid_file.write_text(Path("/run/munge/munged.pid").read_text())
    log.info("munged started (pid %s)", pid_file.read_text().strip())


def _mariadb(layout: Layout, sql: str) -> None:
    """Run SQL as the database root, which only OS root can be (Unix socket authentication)."""
    _run(["mariadb", "--no-defaults", "-S", str(layout.mysql_socket), "-uroot", "-e", sql])


def db_password(layout: Layout) -> str:
    """The slurm account's password: generated once, kept in a file only root can read."""
    if not layout.db_password.exists():
        atomic_write_text(layout.db_password, secrets.token_urlsafe(24) + "\n", mode=0o600)
    return layout.db_password.read_text().strip()


def _private_folder(folder: Path, owner: pwd.struct_passwd) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    folder.chmod(0o700)


def retire_unhardened_database(layout: Layout) -> None:
    """A database made by an earlier version of this tool (root over TCP without a password, mariadbd as OS
    root) is stopped with the whole cluster and deleted; ``up`` then starts afresh (it only holds test jobs)."""
    if (layout.mysql / "mysql").exists() and not layout.hardened_marker.exists():
        log.warning("MariaDB state in %s is not hardened: stopping the cluster and re-creating it", layout.mysql)
        down(layout)
        shutil.rmtree(layout.mysql)


def ensure_mariadb(layout: Layout, ports: Ports) -> None:
    if _port_open(ports.mariadb):
        return  # ours (an unhardened one of ours was retired before this step), or another checkout's
    owner = pwd.getpwnam(DB_OS_USER)
    for folder in (layout.mysql, layout.mysql_run, layout.mysql_files):
        _private_folder(folder, owner)
    if not (layout.mysql / "mysql").exists():
        _run(["mariadb-install-db", f"--user={DB_OS_USER}", f"--datadir={layout.mysql}", "--skip-test-db",
              "--auth-root-authentication-method=socket"], timeout=300)
    log_file = layout.log / "mariadb.log"
    log_file.touch()
    os.chown(log_file, owner.pw_uid, owner.pw_gid)
    subprocess.Popen(
        ["/usr/sbin/mariadbd", "--no-defaults", f"--user={DB_OS_USER}", f"--datadir={layout.mysql}",
         "--bind-address=127.0.0.1", f"--port={ports.mariadb}", f"--socket={layout.mysql_socket}",
         f"--pid-file={layout.pid_file('mariadb')}", f"--log-error={log_file}", "--skip-name-resolve",
         f"--secure-file-priv={layout.mysql_files}", "--local-infile=0",
         "--innodb-buffer-pool-size=128M", "--innodb-lock-wait-timeout=900"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    _wait("MariaDB", lambda: _port_open(ports.mariadb) and layout.mysql_socket.exists(), 60, log_file)
    password = db_password(layout).replace("'", "''")
    _mariadb(layout, f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{password}'; "
                     f"ALTER USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{password}'; "
                     f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1'; FLUSH PRIVILEGES;")
    layout.hardened_marker.touch()
    log.info("MariaDB started on 127.0.0.1:%d as %s", ports.mariadb, DB_OS_USER)


def _write_if_changed(path: Path, text: str, mode: int) -> bool:
    """Write a config file the cluster needs, never over one this tool did not write."""
    if path.exists():
        current = path.read_text()
        if current == text:
            return False
        if not any(marker in current.split("\n", 1)[0] for marker in OWN_MARKERS):
            raise RuntimeError(f"{path} exists and was not written by this tool (a real cluster's configuration?); "
                               "refusing to overwrite it: move it aside to run the local test cluster here")
    atomic_write_text(path, text, mode)
    return True


def _controller_up() -> bool:
    return _run(["scontrol", "ping"], check=False, timeout=15).stdout.count("UP") > 0


def controller_setting(name: str) -> str | None:
    """One line of the running controller's ``scontrol show config`` (e.g. StateSaveLocation)."""
    for line in _run(["scontrol", "show", "config"], check=False, timeout=15).stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    return None


def check_reusable(state_dir: Path) -> None:
    """A controller started from a folder since deleted still answers, but every submission fails with
    "I/O error writing script/environment to file": say so and what to do instead."""
    if not state_dir.is_dir():
        raise RuntimeError(f"the Slurm controller that answers keeps its state in {state_dir}, which no longer "
                           "exists (the folder that started it was removed?), so it cannot take jobs: stop its "
                           "daemons (slurmd, slurmctld, slurmdbd, mariadbd, munged) and run `make cluster-up` again")


def ensure_slurm(layout: Layout, ports: Ports) -> None:
    if _controller_up():
        state_dir = controller_setting("StateSaveLocation")
        if state_dir is not None:
            check_reusable(Path(state_dir))
        log.info("a Slurm controller already answers (%s); reusing it", SLURM_CONF)
    else:
        _write_if_changed(SLURMDBD_CONF, render_slurmdbd_conf(layout, ports, db_password(layout)), 0o600)
        _write_if_changed(SLURM_CONF, render_slurm_conf(layout, ports), 0o644)
        if not _port_open(ports.slurmdbd):
            _run(["slurmdbd"])
            _wait("slurmdbd", lambda: _port_open(ports.slurmdbd), 60, layout.log / "slurmdbd.log")
        clusters = _run(["sacctmgr", "-n", "-P", "list", "cluster", "format=cluster"], timeout=30).stdout.split()
        if CLUSTER_NAME not in clusters:
            _run(["sacctmgr", "-i", "add", "cluster", CLUSTER_NAME], timeout=30)
        _run(["slurmctld"])
        _wait("slurmctld", _controller_up, 60, layout.log / "slurmctld.log")
    for name in NODES:
        if not _slurmd_running(name):
            _run(["slurmd", "-N", name])
    _wait("nodes n1, n2 idle", _nodes_idle, 90, layout.log / "slurmctld.log")


def _node_states() -> dict[str, str]:
    out = _run(["sinfo", "-N", "-h", "-o", "%N %T"], check=False, timeout=15).stdout
    return dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)


def _slurmd_running(node: str) -> bool:
    """Whether a ``slurmd -N <node>`` process runs on this host, whoever started it."""
    wanted = ["slurmd", "-N", node]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if [Path(args[0]).name, *args[1:3]] == wanted:
            return True
    return False


def _nodes_idle() -> bool:
    states = _node_states()
    for name in NODES:
        state = states.get(name, "")
        if "drain" in state or state.startswith("down"):
            # A node marked down by an earlier, unclean stop comes back once its slurmd answers again.
            _run(["scontrol", "update", f"nodename={name}", "state=resume"], check=False, timeout=15)
    # A trailing "*" means "not responding": the controller still remembers a node whose slurmd is gone.
    return all(states.get(name) in ("idle", "mixed", "allocated") for name in NODES)


# --------------------------------------------------------------------------------------- commands


def up(layout: Layout, ports: Ports) -> None:
    t0 = time.monotonic()
    ensure_packages()
    layout.make()
    ensure_hosts()
    retire_unhardened_database(layout)
    ensure_munged(layout)
    ensure_mariadb(layout, ports)
    ensure_slurm(layout, ports)
    log.info("cluster up in %.1f s:\n%s", time.monotonic() - t0, _run(["sinfo", "-N"], check=False).stdout)


def down(layout: Layout) -> None:
    """Cancel jobs, then stop by PID: slurmd, slurmctld, slurmdbd, MariaDB, munged last."""
    if _pid_alive(layout.pid_file("slurmctld"), "slurmctld") is not None:
        _run(["scancel", "--full", f"--partition={PARTITION}"], check=False, timeout=30)
        _wait("job queue to drain", lambda: not _run(["squeue", "-h"], check=False, timeout=15).stdout.strip(),
              30)
    order = [(f"slurmd-{n}", "slurmd") for n in NODES] + [
        ("slurmctld", "slurmctld"), ("slurmdbd", "slurmdbd"), ("mariadb", "mariadbd"), ("munged", "munged")]
    for pid_name, process_name in order:
        for pid_file in {layout.pid_file(pid_name), layout.run / f"{pid_name}.pid"}:  # also an older layout's
            if _stop_pid(pid_file, process_name):
                log.info("stopped %s", pid_name)


def status(layout: Layout) -> int:
    print(_run(["sinfo", "-N"], check=False).stdout or "no Slurm controller answers")
    for pid_file in layout.pid_files():
        name = pid_file.stem.split("-")[0].replace("mariadb", "mariadbd")
        pid = _pid_alive(pid_file, name)
        print(f"{pid_file.stem:14s} {'running, pid ' + str(pid) if pid else 'not running'}")
    return 0 if _controller_up() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--root", type=Path, default=Path(".cluster"),
                        help="state, logs and PID files (default: .cluster in the current folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[cluster] %(message)s")
    layout, ports = Layout(args.root.resolve()), Ports.from_env()
    if args.command == "up":
        up(layout, ports)
    elif args.command == "down":
        down(layout)
    elif args.command == "status":
        return status(layout)
    else:
        raise ValueError(args.command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
