"""The rendezvous port every rank of a Slurm job derives: the same on each rank, never in the ephemeral range."""

from __future__ import annotations

import pytest

from stylegan_v.launch.distributed import job_master_port


@pytest.mark.parametrize("job_id", ["22", "123456789", "4242_3"])
def test_port_is_outside_the_ephemeral_range_and_fixed_by_the_job(monkeypatch, job_id: str) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", job_id)
    port = job_master_port()
    assert 1024 <= port < 32768  # Linux's default ephemeral ports start at 32768: an outgoing socket may hold one
    assert job_master_port() == port
    monkeypatch.setenv("SLURM_JOB_ID", str(int(job_id.replace("_", "")) + 1))
    assert job_master_port() != port  # consecutive jobs on one node do not share a port
