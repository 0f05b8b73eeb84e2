"""Check a cluster before spending GPU-days on it: every rank joins the process group and all-reduces.

``python -m stylegan_v.launch.probe cluster=slurm cluster.nodes=2`` submits one job through the same
launch layer training uses and prints, per rank, the node it ran on and the all-reduced sum
(``world_size * (world_size + 1) / 2`` when the collective works). The functions are also the jobs the
launch tests submit.
"""

from __future__ import annotations

import json
import os
import socket
import time

from omegaconf import DictConfig

from stylegan_v.cli import entry_point
from stylegan_v.configs import register_configs, validate


def where() -> dict[str, str]:
    """Where this task runs: Slurm node name (n1/n2 on the local cluster), host and PID."""
    return {"node": os.environ.get("SLURMD_NODENAME", socket.gethostname()), "host": socket.gethostname(),
            "pid": str(os.getpid()), "job_id": os.environ.get("SLURM_JOB_ID", "")}


def allreduce(timeout_s: float = 120.0) -> dict[str, object]:
    """Join the group, all-reduce ``rank + 1``, and report; the sum proves every rank took part."""
    import torch
    import torch.distributed as dist

    from stylegan_v.launch.distributed import distributed

    with distributed(timeout_s=timeout_s) as env:
        value = torch.tensor([float(env.rank + 1)])
        if env.is_distributed:
            dist.all_reduce(value)
        return {"rank": env.rank, "world_size": env.world_size, "sum": value.item(), "source": env.source,
                "backend": dist.get_backend() if env.is_distributed else "none", **where()}


def sleep(seconds: float) -> float:
    """A job that just waits (cancellation and accounting tests)."""
    time.sleep(seconds)
    return seconds


register_configs()


@entry_point("probe", check=validate)
def main(cfg: DictConfig) -> None:
    from stylegan_v.launch.submit import submit

    cluster = validate(cfg).cluster
    job = submit(allreduce, cluster=cluster, name="probe")
    for result in job.results():
        print(json.dumps(result))


if __name__ == "__main__":
    main()
