"""Join the process group of whatever started this process: Slurm/submitit, torchrun, or nothing.

One script serves one device and many (nanoGPT's rule): ``with distributed() as env:`` works the same
under ``srun`` on two nodes, under ``torchrun --nproc-per-node 4``, under submitit's local executor, and as
a plain ``python`` process (world size 1, no process group). NCCL when CUDA is present, gloo otherwise,
and always a timeout, so a dead peer ends the job instead of hanging it.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class DistributedEnv:
    """Who this process is among the job's ranks."""

    rank: int  # global rank, 0 .. world_size - 1
    local_rank: int  # rank on this node; selects the GPU
    world_size: int  # number of ranks over all nodes
    source: str  # what started us: "torchrun", "submitit", or "single"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def _in_submitit_job() -> bool:
    """A submitit task on Slurm (``srun`` sets ``SLURM_STEP_ID``) or on its local executor."""
    return "SUBMITIT_LOCAL_JOB_ID" in os.environ or (
        "SLURM_JOB_ID" in os.environ and "SLURM_STEP_ID" in os.environ
    )


# Rendezvous ports below Linux's default ephemeral range (32768-60999). submitit picks one in 20000-60000, where
# an outgoing connection on the first node may already hold it: the rendezvous then fails with EADDRINUSE.
MASTER_PORT_BASE, MASTER_PORT_SPAN = 20000, 12000


def job_master_port() -> int:
    """This job's rendezvous port, the same on every rank: derived from the Slurm (or submitit local) job id."""
    job_id = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID") or "0"
    digits = "".join(ch for ch in job_id if ch.isdigit()) or "0"
    return MASTER_PORT_BASE + int(digits) % MASTER_PORT_SPAN


def detect() -> DistributedEnv:
    """Read (and, for submitit/Slurm, export) the ``env://`` variables: RANK, WORLD_SIZE, MASTER_ADDR/PORT.

    torchrun exports them itself. Under Slurm we derive them with submitit's ``TorchDistributedEnvironment``
    (MASTER_ADDR = the first node's name, MASTER_PORT from the job id, so every rank agrees without talking).
    A MASTER_PORT the user exported is kept; otherwise the port is ours, outside the ephemeral range.
    """
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return DistributedEnv(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                              world_size=int(os.environ["WORLD_SIZE"]), source="torchrun")
    if _in_submitit_job():
        from submitit.helpers import TorchDistributedEnvironment

        env = TorchDistributedEnvironment()
        if "MASTER_PORT" not in os.environ:
            env.master_port = job_master_port()
        else:
            del os.environ["MASTER_PORT"]  # export() refuses to overwrite; the value was read into env above
        env.export(set_cuda_visible_devices=False)
        return DistributedEnv(rank=env.rank, local_rank=env.local_rank, world_size=env.world_size,
                              source="submitit")
    return DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


@contextmanager
def distributed(timeout_s: float = DEFAULT_TIMEOUT_S, backend: str | None = None) -> Iterator[DistributedEnv]:
    """Initialise the process group for the duration of the block and tear it down afterwards.

    ``timeout_s`` bounds the rendezvous and every collective: with gloo a missing peer raises after it;
    with NCCL, async error handling turns the stuck collective into an exception (set below).
    """
    env = detect()
    if not env.is_distributed:
        yield env
        return
    backend = backend or default_backend()
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl' or 'gloo', got {backend!r}")
    if backend == "nccl":
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")  # make NCCL honour the timeout
        torch.cuda.set_device(env.local_rank)
    dist.init_process_group(backend=backend, init_method="env://", rank=env.rank, world_size=env.world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))
    assert dist.get_rank() == env.rank, (dist.get_rank(), env.rank)
    assert dist.get_world_size() == env.world_size, (dist.get_world_size(), env.world_size)
    log.info("rank %d/%d joined (%s, %s, master %s:%s)", env.rank, env.world_size, backend, env.source,
             os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT"))
    try:
        yield env
    finally:
        dist.destroy_process_group()
