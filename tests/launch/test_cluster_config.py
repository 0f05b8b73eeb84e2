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


# Every Slurm-bound string lands on a line of the job script, where a line break ends the #SBATCH options and
# starts a shell command: control characters are refused at validation, with the key named on one line.
CONTROL_CHARACTERS = {
    "job_name": {"job_name": "stylegan_v\nrm -rf $HOME"},
    "constraint, CR": {"constraint": "volta\r"},
    "constraint, NUL": {"constraint": "a100\x00"},
    "log_dir": {"log_dir": "runs/_submitit\n#SBATCH --uid=0"},
    "partition, trailing newline": {"partition": "gpu\n"},
    "account, escape": {"account": "proj\x1b[2J"},
    "qos, line separator": {"qos": "normal\u2028"},
    "setup line, CR": {"setup": ["module load cuda\recho owned"]},
    "setup line, next line": {"setup": ["module load cuda\x85echo owned"]},
    "additional_parameters value": {"additional_parameters": {"comment": "ok\nrm -rf $HOME"}},
    "additional_parameters key": {"additional_parameters": {"mail-type=ALL\nrm": "x"}},
    "additional_parameters key with a space": {"additional_parameters": {"mail type": "ALL"}},
}


@pytest.mark.parametrize("case", CONTROL_CHARACTERS)
def test_slurm_bound_strings_with_control_characters_are_refused(case: str) -> None:
    values = CONTROL_CHARACTERS[case]
    with pytest.raises(ValueError, match=rf"^cluster\.{next(iter(values))}") as error:
        SlurmClusterConfig(**values)
    assert "\n" not in str(error.value) and "\r" not in str(error.value), "the message is one line"


def test_ordinary_slurm_values_still_pass() -> None:
    cluster = SlurmClusterConfig(job_name="stylegan-v sky 256", constraint="volta32gb&ib|[rack1|rack2]",
                                 setup=["export A=1\t# a tab is shell whitespace"],
                                 additional_parameters={"mail-type": "END,FAIL", "exclusive": True, "gres": "gpu:2"})
    assert cluster.job_name == "stylegan-v sky 256"

