"""The rendezvous port every rank of a Slurm job derives: the same on each rank, never in the ephemeral range.

The Slurm tests run it on the local cluster; here the environment ``srun`` sets is written by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest

from stylegan_v.launch.distributed import detect, job_master_port


@pytest.mark.parametrize("job_id", ["22", "123456789", "4242_3"])
def test_port_is_outside_the_ephemeral_range_and_fixed_by_the_job(monkeypatch, job_id: str) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", job_id)
    port = job_master_port()
    assert 1024 <= port < 32768  # Linux's default ephemeral ports start at 32768: an outgoing socket may hold one
    assert job_master_port() == port
    monkeypatch.setenv("SLURM_JOB_ID", str(int(job_id.replace("_", "")) + 1))
    assert job_master_port() != port  # consecutive jobs on one node do not share a port


@contextmanager
def _srun_task(job_id: str, **extra: str) -> Iterator[None]:
    """The variables ``srun`` gives task 0 of a two-node step (the rest of submitit's reading is real).

    ``detect()`` exports RANK, WORLD_SIZE and MASTER_* into ``os.environ``, as a task needs; ``patch.dict``
    restores the whole environment afterwards, or every command a later test in this worker starts would
    inherit them and wait for a peer that never comes.
    """
    with mock.patch.dict(os.environ):
        for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                    "SUBMITIT_LOCAL_JOB_ID"):
            os.environ.pop(var, None)
        os.environ.update({"SLURM_JOB_ID": job_id, "SLURM_STEP_ID": "0", "SLURM_NTASKS": "2",
                           "SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "node[1-2]",
                           "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SUBMITIT_EXECUTOR": "slurm", **extra})
        yield


def test_slurm_task_exports_the_job_port() -> None:
    before = dict(os.environ)
    with _srun_task("4242"):
        env = detect()
        assert (env.rank, env.world_size, env.source) == (0, 2, "submitit")
        assert os.environ["MASTER_ADDR"] == "node1"
        assert os.environ["MASTER_PORT"] == str(job_master_port())
    assert dict(os.environ) == before


def test_a_port_the_user_exported_is_kept() -> None:
    with _srun_task("4242", MASTER_PORT="29511"):
        detect()
        assert os.environ["MASTER_PORT"] == "29511"
