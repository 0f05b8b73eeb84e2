"""The `cluster` group: composes, and rejects bad values naming the key, before anything is queued."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from stylegan_v.configs import validate
from stylegan_v.launch.config import LocalClusterConfig, SlurmClusterConfig


def test_default_is_local_in_process(compose) -> None:
    cluster = validate(compose()).cluster
    assert isinstance(cluster, LocalClusterConfig)
    assert cluster.processes == 0


def test_slurm_composes_with_overrides(compose) -> None:
    cluster = validate(compose("cluster=slurm", "cluster.nodes=2", "cluster.gpus_per_node=8",
                               "cluster.partition=gpu")).cluster
    assert isinstance(cluster, SlurmClusterConfig)
    assert (cluster.nodes, cluster.gpus_per_node, cluster.partition, cluster.world_size) == (2, 8, "gpu", 2)
    assert cluster.log_dir == "runs/_submitit"  # interpolated from paths.runs_dir


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("cluster.nodes=-1", "cluster.nodes"),
        ("cluster.tasks_per_node=0", "cluster.tasks_per_node"),
        ("cluster.gpus_per_node=-2", "cluster.gpus_per_node"),
        ("cluster.partition='gpu partition'", "cluster.partition"),
        ("cluster.signal_delay_s=99999", "cluster.signal_delay_s"),
        ("cluster.mem_gb=0", "cluster.mem_gb"),
    ],
)
def test_bad_slurm_values_name_the_key(compose, override: str, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        validate(compose("cluster=slurm", override))


@pytest.mark.parametrize("override", ["cluster.nodes=two", "cluster.partition=[a,b]", "cluster.bogus_key=1"])
def test_wrong_types_and_unknown_keys_fail_at_compose(compose, override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        compose("cluster=slurm", override)


def test_unknown_cluster_option_lists_the_valid_ones(compose) -> None:
    with pytest.raises(ConfigCompositionException, match=r"(?s)Available options.*local.*slurm"):
        compose("cluster=kubernetes")


def test_local_processes_must_be_non_negative(compose) -> None:
    with pytest.raises(ValueError, match=r"cluster\.processes"):
        validate(compose("cluster.processes=-1"))
