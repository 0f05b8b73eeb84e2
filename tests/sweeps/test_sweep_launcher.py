"""The sweep launcher's Slurm resources come from the `cluster` group, as a single `cluster=slurm` run's do
(no run: Hydra composition only; the real array's --mem is checked in test_sweep_slurm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from stylegan_v.configs import register_configs
from stylegan_v.launch.sweep import register_resolvers, sbatch_parameters

REPO = Path(__file__).resolve().parents[2]


def _launcher(*overrides: str) -> dict:
    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["cluster=slurm", *overrides], return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


@pytest.mark.parametrize(("mem_gb", "mem"), [("4", "4096M"), ("1.5", "1536M")])
def test_cluster_mem_gb_reaches_every_array_element(mem_gb: str, mem: str) -> None:
    launcher = _launcher(f"cluster.mem_gb={mem_gb}", "+cluster.additional_parameters.exclusive=user")
    assert launcher["additional_parameters"] == {"mem": mem, "exclusive": "user"}
    assert launcher["mem_gb"] is None  # the launcher's own key takes whole GB only: --mem goes as above


def test_no_mem_gb_asks_for_the_partition_default_and_an_explicit_mem_wins() -> None:
    assert _launcher()["additional_parameters"] == {}
    assert sbatch_parameters({"mem": "2G"}, 4.0) == {"mem": "2G"}  # as for single jobs: additional_parameters win
    assert sbatch_parameters(None, 0.5) == {"mem": "512M"}
