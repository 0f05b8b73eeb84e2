"""Against the real local Slurm cluster (two slurmd daemons n1, n2 + slurmdbd accounting), not a mock.

`make test` brings the cluster up first (`make cluster-up`); without it these tests skip locally and fail
in CI (see the `slurm_cluster` fixture).
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from submitit.core.utils import UncompletedJobError

from stylegan_v.errors import user_error
from stylegan_v.launch.config import SlurmClusterConfig
from stylegan_v.launch.probe import allreduce, sleep, where
from stylegan_v.launch.submit import SubmissionRefused, submit

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def _cluster(tmp_path, **overrides) -> SlurmClusterConfig:
    return SlurmClusterConfig(log_dir=str(tmp_path), timeout_min=10, signal_delay_s=30, **overrides)


def _sacct(job_id: str, timeout_s: float = 60) -> tuple[str, str]:
    """(State, Elapsed) of the job's allocation, once accounting has a final state for it."""
    deadline = time.monotonic() + timeout_s
    state, elapsed = "", ""
    while time.monotonic() < deadline:
        out = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,Elapsed"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        if out:
            state, elapsed = out.splitlines()[0].split("|")
            if state not in ("PENDING", "RUNNING", "REQUEUED"):
                return state, elapsed
        time.sleep(1)
    raise AssertionError(f"sacct gave no final state for job {job_id} (last: {state!r})")


def _squeue_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                          timeout=30).stdout.strip()


def test_function_result_comes_back_and_sacct_records_it(tmp_path) -> None:
    job = submit(where, cluster=_cluster(tmp_path), name="where")
    result = job.result()
    assert result["job_id"] == job.job_id
    assert result["node"] in ("n1", "n2")
    state, elapsed = _sacct(job.job_id)
    assert state == "COMPLETED"
    assert re.fullmatch(r"(\d+-)?\d{2}:\d{2}:\d{2}", elapsed), elapsed


def test_two_node_gloo_allreduce_spans_n1_and_n2(tmp_path) -> None:
    job = submit(allreduce, cluster=_cluster(tmp_path, nodes=2, tasks_per_node=1), name="allreduce")
    results = sorted(job.results(), key=lambda r: r["rank"])
    assert [r["node"] for r in results] == ["n1", "n2"]
    assert all(r["sum"] == 3.0 and r["world_size"] == 2 and r["backend"] == "gloo" for r in results)
    assert _sacct(job.job_id)[0] == "COMPLETED"


def test_scancel_makes_the_waiting_side_raise_quickly(tmp_path) -> None:
    job = submit(sleep, 600, cluster=_cluster(tmp_path), name="sleeper")
    deadline = time.monotonic() + 60
    while _squeue_state(job.job_id) != "RUNNING":
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.5)
    subprocess.run(["scancel", job.job_id], check=True, timeout=30)
    start = time.monotonic()
    with pytest.raises(UncompletedJobError, match="CANCELLED"):
        job.result()
    assert time.monotonic() - start < 120
    assert _sacct(job.job_id)[0].startswith("CANCELLED")


def test_unknown_partition_fails_before_queueing(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"cluster\.partition is not a partition.*valid: debug, got 'nope'"):
        submit(where, cluster=_cluster(tmp_path, partition="nope"))
    with pytest.raises(ValueError, match=r"cluster\.nodes exceeds the 2 node\(s\) of partition 'debug'.*got 3"):
        submit(where, cluster=_cluster(tmp_path, nodes=3))  # would stay PENDING for ever
    assert not any(tmp_path.iterdir()), "nothing may be written for a rejected submission"


def test_a_job_sbatch_refuses_is_one_line_with_sbatchs_reason(tmp_path, capfd) -> None:
    """A node feature the cluster does not have: sbatch refuses at submission. Its reason, one line, once."""
    with pytest.raises(SubmissionRefused) as refused:
        submit(where, cluster=_cluster(tmp_path, constraint="no_such_feature"), name="refused")
    assert str(refused.value) == "sbatch refused the job: Batch job submission failed: Invalid feature specification"
    assert capfd.readouterr().err == "", "submitit's own echo of sbatch's stderr is held back"
    line, status = user_error(refused.value)
    assert status == 1 and line.startswith(f"{refused.value}: check cluster.partition, account, qos, constraint")


def test_plain_sbatch_two_nodes(tmp_path) -> None:
    """The README's check: `sbatch -N2 -n2 --wrap 'srun hostname'` completes and sacct says COMPLETED."""
    out = subprocess.run(["sbatch", "--parsable", "-N2", "-n2", "-o", str(tmp_path / "%j.out"),
                          "--wrap", "srun bash -c 'echo $SLURMD_NODENAME'"],
                         check=True, capture_output=True, text=True, timeout=30)
    job_id = out.stdout.strip().split(";")[0]
    assert _sacct(job_id)[0] == "COMPLETED"
    assert sorted((tmp_path / f"{job_id}.out").read_text().split()) == ["n1", "n2"]
