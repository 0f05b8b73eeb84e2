"""Shared fixtures: the real local Slurm cluster, and the composed Hydra config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _slurm_nodes_idle() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-N", "-h", "-o", "%N %T"], capture_output=True, text=True, timeout=30)
    states = dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) >= 2)
    return all(states.get(node) in ("idle", "mixed", "allocated") for node in ("n1", "n2"))


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The local two-node cluster (`make cluster-up`). `make test` starts it and sets
    STYLEGAN_V_REQUIRE_SLURM=1, so in CI a missing cluster fails the tests instead of skipping them."""
    if _slurm_nodes_idle():
        return
    message = "the local Slurm cluster is not up (run `make cluster-up`)"
    if os.environ.get("STYLEGAN_V_REQUIRE_SLURM") == "1":
        pytest.fail(message)
    pytest.skip(message)


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
