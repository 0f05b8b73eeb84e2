"""Shared fixtures (the real local Slurm cluster, the composed Hydra config) and the parallel run's rules.

`make test` runs the suite on every core with pytest-xdist (``-n auto --dist loadgroup``). What a test must do
to stay correct there:

- A test runs on the worker of its file's other tests (its file is its ``xdist_group``), so module-scoped
  fixtures run once; session-scoped ones run once per worker. Files that share an expensive session fixture
  form one group (SHARED_FOLDERS; the tracking tests share one MLflow server), and a test may name its own:
  ``@pytest.mark.xdist_group("name")``.
- Write under ``tmp_path`` / ``tmp_path_factory`` (each worker has its own), never into the repository;
  pass ``hydra.run.dir``/``paths.*`` of a tmp folder to commands that write.
- Listen on a port found free at run time (``mlflow_helpers.free_port``), never a fixed one.
- Slurm jobs share the one local cluster: wait for *your* job ids (``sacct -j``), never for an empty queue.
  Every `slurm` test holds the cluster shared for its duration; one that stops or restarts the cluster asks
  for the ``cluster_to_itself`` fixture and waits until no other Slurm test runs (a file lock).
- Shared downloads (the I3D weights under ``.cache/stylegan_v``) are fetched before the run (`make test`
  depends on `make weights`); files derived from them are written atomically.
- Numbers: a tolerance comes from the computation (``numerics.py``), not from this machine.

Each worker gets ``cores / workers`` threads (``OMP_NUM_THREADS``, inherited by every process it starts:
commands, local jobs, Slurm jobs), so the workers do not oversubscribe the cores.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Held shared by every running Slurm test, exclusively by one that restarts the cluster: across the workers of
# a parallel run (and other test runs on this machine, which share the one local cluster).
CLUSTER_LOCK = Path(tempfile.gettempdir()) / "stylegan_v-local-cluster.lock"


def pytest_configure(config: pytest.Config) -> None:
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch at import, here and in every child
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)


# Folders whose files share session fixtures worth starting once: one group each.
SHARED_FOLDERS = ("tests/tracking/",)  # one `mlflow server` and one migrated SQLite store (tracking/conftest.py)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, a test without an ``xdist_group`` mark joins its file's group (or its folder's,
    for SHARED_FOLDERS)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            path = item.nodeid.split("::")[0]
            group = next((folder for folder in SHARED_FOLDERS if path.startswith(folder)), path)
            item.add_marker(pytest.mark.xdist_group(group))


USABLE_STATES = ("idle", "mixed", "allocated", "completing")


def _slurm_nodes_idle(wait_s: float = 90.0) -> bool:
    """Both nodes answer and take jobs. Polled for up to ``wait_s``: on a loaded machine a node can miss a
    heartbeat and read "not responding" for a while, and a job that just ended leaves it completing."""
    if shutil.which("sinfo") is None:
        return False
    deadline = time.monotonic() + wait_s
    while True:
        try:
            out = subprocess.run(["sinfo", "-N", "-h", "-o", "%N %T"], capture_output=True, text=True, timeout=30)
            states = dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) >= 2)
            if all(states.get(node) in USABLE_STATES for node in ("n1", "n2")):
                return True
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(2)


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The local two-node cluster (`make cluster-up`). `make test` starts it and sets
    STYLEGAN_V_REQUIRE_SLURM=1, so in CI a missing cluster fails the tests instead of skipping them."""
    required = os.environ.get("STYLEGAN_V_REQUIRE_SLURM") == "1"
    if _slurm_nodes_idle(wait_s=90.0 if required else 0.0):
        return
    message = "the local Slurm cluster is not up (run `make cluster-up`)"
    if required:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _cluster_lock(request: pytest.FixtureRequest) -> Iterator[None]:
    """A `slurm` test holds the local cluster shared; one that asks for ``cluster_to_itself`` holds it alone."""
    if request.node.get_closest_marker("slurm") is None:
        yield
        return
    with open(CLUSTER_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if "cluster_to_itself" in request.fixturenames else fcntl.LOCK_SH)
        yield


# What a launcher exports for a rank. A command inherits them from the test worker and would then wait at the
# rendezvous for peers that never come (a local train, a Slurm job submitted with the worker's environment).
RENDEZVOUS_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _rendezvous_variables_left_alone() -> Iterator[None]:
    """A test that joins a job in-process (``detect()`` exports the variables) restores the worker's environment."""
    before = {name: os.environ.get(name) for name in RENDEZVOUS_VARIABLES}
    yield
    after = {name: os.environ.get(name) for name in RENDEZVOUS_VARIABLES}
    changed = {name: value for name, value in after.items() if value != before[name]}
    assert not changed, f"the test left {changed} in the worker's environment; restore it"


@pytest.fixture
def cluster_to_itself() -> None:
    """For a test that stops or restarts the local cluster: no other Slurm test runs meanwhile."""


@pytest.fixture
def compose():
    """Compose the project's Hydra config with overrides, exactly as the entry points do."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from stylegan_v.configs import register_configs

    register_configs()

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            return hydra_compose("config", overrides=list(overrides))

    return _compose
