"""Typed ``cluster`` configs: where and how a job runs.

Hydra checks the types while it composes; the ranges are checked by ``__post_init__`` when
:func:`stylegan_v.configs.validate` builds the dataclasses, which entry points call before anything is
submitted, so a bad value fails on the login node with the key named.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from stylegan_v.checks import section

_SLURM_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SBATCH_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")  # what `#SBATCH --<option>=` accepts as a name


def single_line(text: str, allow_tab: bool = False) -> bool:
    """No control character (newline, CR, NUL, ESC, ...) and no Unicode line or paragraph separator. Every
    Slurm-bound string lands on a line of the job script: a line break there would end the ``#SBATCH``
    options and start a shell command."""
    return not any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") and not (allow_tab and ch == "\t")
                   for ch in text)


_require = section("cluster")


@dataclass
class LocalClusterConfig:
    """Run on this machine: in this process (``processes: 0``) or as N local worker processes."""

    kind: str = "local"  # fixed discriminator; `cluster=slurm` selects the other schema
    processes: int = 0  # 0: run in this process (debuggable); N >= 1: N local processes (DDP over gloo)
    timeout_min: int = 60 * 24  # wall-clock limit of a local job, minutes
    log_dir: str = "${paths.runs_dir}/_submitit"  # submitit logs; each submission gets a fresh sub-folder
    # Refuse a submission (one run, or all points of a sweep) whose projected GPU-days exceed this, before
    # anything queues; null = no cap. The projection is `--plan`'s (stylegan_v/launch/plan.py).
    max_gpu_days: float | None = None

    def __post_init__(self) -> None:
        _require(self.kind == "local", "kind", "must be 'local' for the local schema", self.kind)
        _require(self.processes >= 0, "processes", "must be >= 0 (0 = in this process)", self.processes)
        _require(self.timeout_min > 0, "timeout_min", "must be > 0", self.timeout_min)
        _require(self.max_gpu_days is None or self.max_gpu_days >= 0, "max_gpu_days", "must be null or >= 0",
                 self.max_gpu_days)


@dataclass
class SlurmClusterConfig:
    """Submit through submitit to Slurm: one job of ``nodes`` x ``tasks_per_node`` ranks."""

    kind: str = "slurm"
    partition: str | None = None  # Slurm partition; None = the cluster's default partition
    nodes: int = 1  # number of nodes; ranks = nodes * tasks_per_node
    tasks_per_node: int = 1  # one rank per GPU on GPU nodes
    gpus_per_node: int = 0  # 0 = CPU job (gloo backend); otherwise NCCL
    cpus_per_task: int = 1  # CPU cores per rank (data workers live here)
    mem_gb: float | None = None  # memory per node; None = the partition default
    timeout_min: int = 60 * 24  # wall-clock limit of one job segment; the job requeues itself after it
    signal_delay_s: int = 120  # USR2 is sent this long before the limit, so the job can checkpoint
    max_num_timeout: int = 20  # how many timeouts/preemptions are requeued before giving up
    account: str | None = None  # Slurm account, when the cluster requires one
    qos: str | None = None  # Slurm QOS
    constraint: str | None = None  # node feature constraint, e.g. "volta32gb"
    job_name: str = "stylegan_v"
    # Refuse a submission (one run, or all points of a sweep) whose projected GPU-days exceed this, before
    # anything queues; null = no cap. The projection is `--plan`'s (stylegan_v/launch/plan.py).
    max_gpu_days: float | None = None
    # The GPU model the jobs land on, as CUDA names it (e.g. "NVIDIA H200"): the device class whose measured
    # step time `--plan` looks up in the step-time cache; null = no projection for GPU jobs.
    device_class: str | None = None
    wait: bool = True  # wait for the job to end (DVC stages); false = return once queued (submit and walk away)
    log_dir: str = "${paths.runs_dir}/_submitit"  # shared filesystem; each submission gets a fresh sub-folder
    additional_parameters: dict[str, Any] = field(default_factory=dict)  # passed to sbatch verbatim
    # Shell lines at the top of every job script (single jobs and sweep arrays), before the task starts:
    # `module load ...`, `source .../activate`, `export NCCL_IB_HCA=...`; usually from the site file.
    # Shell variables as $VAR: ${...} is OmegaConf's.
    setup: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _require(self.kind == "slurm", "kind", "must be 'slurm' for the slurm schema", self.kind)
        for key in ("partition", "account", "qos"):
            value = getattr(self, key)
            _require(value is None or (isinstance(value, str) and bool(_SLURM_NAME.fullmatch(value))), key,
                     "must be null or a Slurm name (letters, digits, '_', '-', '.')", value)
        for key in ("job_name", "constraint", "log_dir"):
            value = getattr(self, key)
            _require(value is None or (isinstance(value, str) and value.strip() != "" and single_line(value)),
                     key, "must be a non-empty single line without control characters", value)
        for option, value in self.additional_parameters.items():
            _require(isinstance(option, str) and bool(_SBATCH_OPTION.fullmatch(option)), "additional_parameters",
                     "keys must be sbatch option names (letters, digits, '_', '-')", option)
            _require(single_line(str(value)), f"additional_parameters.{option}",
                     "must be a single line without control characters", value)
        for key, low in (("nodes", 1), ("tasks_per_node", 1), ("gpus_per_node", 0), ("cpus_per_task", 1),
                         ("timeout_min", 1), ("signal_delay_s", 0), ("max_num_timeout", 0)):
            _require(getattr(self, key) >= low, key, f"must be >= {low}", getattr(self, key))
        _require(self.mem_gb is None or self.mem_gb > 0, "mem_gb", "must be null or > 0", self.mem_gb)
        _require(self.max_gpu_days is None or self.max_gpu_days >= 0, "max_gpu_days", "must be null or >= 0",
                 self.max_gpu_days)
        _require(self.signal_delay_s < self.timeout_min * 60, "signal_delay_s",
                 f"must be shorter than the time limit ({self.timeout_min * 60} s)", self.signal_delay_s)
        for line in self.setup:
            _require(isinstance(line, str) and line.strip() != "" and single_line(line, allow_tab=True), "setup",
                     "must be a list of non-empty, single-line shell commands without control characters", line)
            _require(not line.lstrip().startswith("#SBATCH"), "setup",
                     "holds shell lines; pass sbatch options through additional_parameters", line)
            # The config is resolved and re-read on the way (sweep launcher, job nodes), which would turn an
            # escaped `\${VAR}` back into an OmegaConf interpolation.
            _require("${" not in line, "setup", "must write shell variables as $VAR, not ${VAR} "
                     "(OmegaConf's interpolation syntax)", line)

    @property
    def world_size(self) -> int:
        return self.nodes * self.tasks_per_node


ClusterConfig = LocalClusterConfig | SlurmClusterConfig


def register(cs: ConfigStore) -> None:
    cs.store(group="cluster", name="base_local", node=LocalClusterConfig)
    cs.store(group="cluster", name="base_slurm", node=SlurmClusterConfig)
