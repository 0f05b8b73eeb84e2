"""The distributed helpers with real gloo process groups on this machine (no GPU here: NCCL is not run)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time

from stylegan_v.launch.config import LocalClusterConfig
from stylegan_v.launch.distributed import detect, distributed
from stylegan_v.launch.probe import allreduce
from stylegan_v.launch.submit import InProcessJob, submit


def test_single_process_needs_no_process_group(monkeypatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "SUBMITIT_LOCAL_JOB_ID", "SLURM_JOB_ID", "SLURM_STEP_ID"):
        monkeypatch.delenv(var, raising=False)
    with distributed() as env:
        assert (env.rank, env.world_size, env.source, env.is_main) == (0, 1, "single", True)


def test_torchrun_variables_are_read(monkeypatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    env = detect()
    assert (env.rank, env.local_rank, env.world_size, env.source) == (3, 1, 4, "torchrun")


def test_in_process_job_returns_and_reraises() -> None:
    job = submit(allreduce, cluster=LocalClusterConfig(processes=0))
    assert isinstance(job, InProcessJob) and job.result()["sum"] == 1.0
    failing = submit(int, "not a number", cluster=LocalClusterConfig(processes=0))
    assert failing.state == "FAILED"
    try:
        failing.result()
    except ValueError:
        pass
    else:
        raise AssertionError("the job's exception must surface from result()")


def test_two_local_processes_allreduce(tmp_path) -> None:
    job = submit(allreduce, cluster=LocalClusterConfig(processes=2, log_dir=str(tmp_path)), name="t")
    results = sorted(job.results(), key=lambda r: r["rank"])
    assert [r["rank"] for r in results] == [0, 1]
    assert all(r["sum"] == 3.0 and r["world_size"] == 2 and r["backend"] == "gloo" for r in results)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_missing_peer_raises_after_the_timeout_instead_of_hanging() -> None:
    """Rank 0 of a world of 2 whose rank 1 never comes: init must fail after `timeout_s`, not hang."""
    code = textwrap.dedent("""
        from stylegan_v.launch.distributed import distributed
        with distributed(timeout_s=5):
            pass
    """)
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    assert "timeout" in proc.stderr.lower() or "timed out" in proc.stderr.lower(), proc.stderr[-2000:]
    assert elapsed < 60, f"took {elapsed:.0f} s to give up on a missing peer"
