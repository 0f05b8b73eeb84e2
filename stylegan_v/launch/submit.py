"""Submit a Python callable to where ``cfg.cluster`` says: this process, local processes, or Slurm.

Every entry point that queues work goes through :func:`submit`, so the three places behave alike: a job
object with ``job_id``, ``state``, ``done()`` and ``result()`` (which raises if the job failed or was
cancelled, never hangs on a dead job). Each submission gets a fresh log folder: Slurm job ids restart at
1 on a new cluster, and a reused folder would hand back a stale result file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import submitit

from stylegan_v.checks import require
from stylegan_v.launch.config import ClusterConfig, LocalClusterConfig, SlurmClusterConfig

log = logging.getLogger(__name__)
R = TypeVar("R")


class SubmissionRefused(RuntimeError):
    """sbatch refused the job (a partition, account, QOS, constraint or option the cluster does not accept);
    the message is sbatch's own reason, on one line."""


class InProcessJob(Generic[R]):
    """A job that already ran in this process (``cluster.processes: 0``): the simplest place to debug.

    submitit's own DebugExecutor would drop into pdb on an exception, which blocks non-interactive runs.
    """

    def __init__(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> None:
        self.job_id = f"inprocess-{uuid.uuid4().hex[:8]}"
        self._result: R | None = None
        self._error: BaseException | None = None
        try:
            self._result = fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - kept and re-raised by result(), like a remote job's failure
            self._error = error

    @property
    def state(self) -> str:
        return "FAILED" if self._error is not None else "COMPLETED"

    def done(self, force_check: bool = False) -> bool:
        return True

    def result(self) -> R:
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def results(self) -> list[R]:
        return [self.result()]


def rank0_result(job: submitit.Job[R] | InProcessJob[R]) -> R:
    """Wait for the job and return rank 0's value (a multi-task submitit job has one result per rank)."""
    return job.results()[0]


def submission_folder(log_dir: str | Path, name: str) -> Path:
    """A new folder per submission: ``<log_dir>/<name>/<UTC time>-<random>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return Path(log_dir) / name / f"{stamp}-{uuid.uuid4().hex[:8]}"


def slurm_partitions() -> tuple[dict[str, int], str | None]:
    """Nodes per partition the Slurm controller knows, and the default partition (sinfo marks it ``*``)."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %P"], check=True, capture_output=True, text=True,
                         timeout=30).stdout
    nodes: dict[str, set[str]] = {}
    default = None
    for line in out.splitlines():
        if len(line.split()) < 2:
            continue
        node, partition = line.split()[:2]
        if partition.endswith("*"):
            partition = default = partition.rstrip("*")
        nodes.setdefault(partition, set()).add(node)
    return {p: len(n) for p, n in nodes.items()}, default


def check_slurm_ready(cluster: SlurmClusterConfig) -> None:
    """Fail before queueing when Slurm is absent, the partition does not exist, or it has fewer nodes than the
    job asks for (such a job would stay PENDING for ever)."""
    if shutil.which("sbatch") is None:
        raise RuntimeError("cluster=slurm but `sbatch` is not on PATH; run on a Slurm login node "
                           "(or `make cluster-up` for the local test cluster)")
    sizes, default = slurm_partitions()
    partition = cluster.partition or default
    require(cluster.partition is None or cluster.partition in sizes, "cluster.partition",
            f"is not a partition of this cluster; valid: {', '.join(sorted(sizes))}", cluster.partition)
    if partition in sizes:
        require(cluster.nodes <= sizes[partition], "cluster.nodes",
                f"exceeds the {sizes[partition]} node(s) of partition {partition!r} (the job would never start)",
                cluster.nodes)


def slurm_parameters(cluster: SlurmClusterConfig) -> dict[str, Any]:
    """The sbatch request of one job (submitit's SlurmExecutor parameters); ``--plan`` prints it."""
    params: dict[str, Any] = dict(
        job_name=cluster.job_name, nodes=cluster.nodes, ntasks_per_node=cluster.tasks_per_node,
        cpus_per_task=cluster.cpus_per_task, time=cluster.timeout_min, signal_delay_s=cluster.signal_delay_s,
        additional_parameters=dict(cluster.additional_parameters),
    )
    optional = dict(partition=cluster.partition, account=cluster.account, qos=cluster.qos,
                    constraint=cluster.constraint, gpus_per_node=cluster.gpus_per_node or None,
                    mem=f"{int(cluster.mem_gb * 1024)}M" if cluster.mem_gb else None,
                    setup=list(cluster.setup) or None)
    params.update({k: v for k, v in optional.items() if v is not None})
    return params


def make_executor(cluster: ClusterConfig, folder: Path) -> submitit.Executor:
    if isinstance(cluster, SlurmClusterConfig):
        check_slurm_ready(cluster)
        executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=cluster.max_num_timeout)
        params = slurm_parameters(cluster)
        executor.update_parameters(**params)
        return executor
    if isinstance(cluster, LocalClusterConfig):
        executor = submitit.LocalExecutor(folder=folder / "%j")
        executor.update_parameters(tasks_per_node=max(cluster.processes, 1), nodes=1,
                                   timeout_min=cluster.timeout_min)
        return executor
    raise TypeError(f"unknown cluster config {type(cluster).__name__}")


def submit(fn: Callable[..., R], *args: Any, cluster: ClusterConfig, name: str = "job",
           **kwargs: Any) -> submitit.Job[R] | InProcessJob[R]:
    """Run ``fn(*args, **kwargs)`` on ``cluster``; returns at once for Slurm and local processes.

    ``fn`` must be importable by the worker (a module-level function or a picklable callable object);
    with several ranks it runs once per rank: :func:`rank0_result` waits and returns rank 0's value,
    ``job.results()`` all of them.
    """
    if isinstance(cluster, LocalClusterConfig) and cluster.processes == 0:
        return InProcessJob(fn, *args, **kwargs)
    folder = submission_folder(cluster.log_dir, name)
    executor = make_executor(cluster, folder)
    # Submitted from inside an allocation (`dvc repro` under salloc, a job queueing another), sbatch and
    # local workers would inherit its SLURM_* and rank variables and take its node list, task count or
    # rank for their own: hide them while submitting.
    with submitit.helpers.clean_env(), sbatch_refusals():
        job = executor.submit(fn, *args, **kwargs)
    log.info("submitted %s as job %s (%s, logs in %s)", name, job.job_id, cluster.kind, folder)
    return job


@contextlib.contextmanager
def sbatch_refusals() -> Iterator[None]:
    """Turn sbatch refusing a submission into :class:`SubmissionRefused` with sbatch's reason. submitit prints
    sbatch's stderr itself before raising; that echo is held back (the reason is in the error), and given back
    in every other case."""
    echo = io.StringIO()
    refused = None
    try:
        with contextlib.redirect_stderr(echo):
            yield
    except submitit.core.utils.FailedJobError as err:
        call = err.__cause__
        if isinstance(call, subprocess.CalledProcessError) and Path(str(call.cmd[0])).name == "sbatch":
            lines = [line.strip().removeprefix("sbatch: error: ") for line in str(call.stderr or "").splitlines()]
            reason = "; ".join(line for line in lines if line) or f"exit status {call.returncode}"
            refused = SubmissionRefused(f"sbatch refused the job: {reason}")
            raise refused from err
        raise
    finally:
        if refused is None:
            sys.stderr.write(echo.getvalue())
