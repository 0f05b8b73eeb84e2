"""A failure the user can fix is one line with the cause and what to do: the mapping on real errors (a held
lock, a disk error raised through torch.save, a failed submitit job, a refused connection), and the wrapper
every entry point's task runs in."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from stylegan_v.checks import ConfigError
from stylegan_v.errors import report_errors, tracking_failure, user_error
from stylegan_v.files import LockBusy, exclusive_lock
from stylegan_v.launch.config import LocalClusterConfig
from stylegan_v.launch.submit import rank0_result, submit

AFTER_NO_ROOM = ("then run the same command again: files are written whole, so the earlier ones are intact and a "
                 "training resumes from its last complete checkpoint")


def _lock_busy(tmp_path) -> LockBusy:
    with exclusive_lock(tmp_path / ".lock", f"run directory {tmp_path}", wait=False):
        with pytest.raises(LockBusy) as busy:
            with exclusive_lock(tmp_path / ".lock", f"run directory {tmp_path}", wait=False):
                pass
    return busy.value


def test_a_run_directory_in_use_says_who_holds_it_and_what_to_do(tmp_path) -> None:
    line, status = user_error(_lock_busy(tmp_path))
    assert status == 1
    assert line.startswith(f"run directory {tmp_path} is in use by pid {os.getpid()} on ")
    assert line.endswith("wait for it to end, or cancel it (`scancel <job id>`, or end that pid), then run the "
                         "same command again")


def test_a_config_value_refused_while_the_task_runs_is_a_usage_error() -> None:
    assert user_error(ConfigError("cluster.nodes exceeds the 2 node(s) of partition 'debug', got 3")) == (
        "cluster.nodes exceeds the 2 node(s) of partition 'debug', got 3", 2)


CHECKPOINT_PAST_THE_LIMIT = """
import resource, sys, torch
from stylegan_v.errors import user_error
from stylegan_v.training import checkpoint
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # Python ignores SIGXFSZ: writes fail with EFBIG
try:
    checkpoint.write(sys.argv[1], {"G": {"w": torch.zeros(100_000)}, "config": {}})
except Exception as err:
    print(type(err).__name__, user_error(err))
"""


def test_a_disk_error_inside_torch_save_names_the_file(tmp_path) -> None:
    """torch.save reports a failed write as `unexpected pos ...`, the OS error only in its context: the line
    names the error and the checkpoint (a file size limit makes the kernel refuse the write, without root)."""
    path = tmp_path / "checkpoint-000000001.pt"
    out = subprocess.run([sys.executable, "-c", CHECKPOINT_PAST_THE_LIMIT, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        f"OSError ('file too large while writing {path}: raise the file size limit (`ulimit -f`) or point "
        f"paths.runs_dir / paths.data_dir at another filesystem, {AFTER_NO_ROOM}', 1)")
    assert list(tmp_path.iterdir()) == [], "neither the checkpoint nor its temporary file"


def test_a_failed_job_is_its_own_last_error_line_and_where_its_log_is(tmp_path) -> None:
    """What submitit hands back from a job that failed in another process: the remote traceback as text."""
    def fill_the_disk() -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/x/checkpoints/checkpoint-000000002.pt")

    def divide() -> float:
        return 1 / 0

    cluster = LocalClusterConfig(processes=1, log_dir=str(tmp_path))
    jobs = {name: submit(fn, cluster=cluster, name=name) for name, fn in (("full", fill_the_disk), ("bug", divide))}
    lines = {}
    for name, job in jobs.items():
        with pytest.raises(Exception) as failed:
            rank0_result(job)
        lines[name] = user_error(failed.value)
    log = f"(the job's log: {jobs['full'].paths.stderr})"
    assert lines["full"] == (f"the job failed: no space left on the device while writing "
                             f"/runs/x/checkpoints/checkpoint-000000002.pt: free space there (or point "
                             f"paths.runs_dir / paths.data_dir at another filesystem), {AFTER_NO_ROOM} {log}", 1)
    assert lines["bug"] == (f"the job failed: ZeroDivisionError: division by zero "
                            f"(the job's log: {jobs['bug'].paths.stderr})", 1)


def test_anything_else_keeps_its_traceback() -> None:
    assert user_error(ZeroDivisionError("division by zero")) is None
    assert user_error(KeyError("G_ema")) is None


def test_an_unreachable_server_is_named_as_such() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionRefusedError) as refused:
        socket.create_connection(("127.0.0.1", port), timeout=5)
    assert tracking_failure(refused.value).startswith("is unreachable (ConnectionRefusedError: ")
    assert tracking_failure(ValueError("bad value")) == "failed (ValueError: bad value)"


def test_the_wrapper_prints_one_line_or_keeps_the_traceback(tmp_path, capsys) -> None:
    busy = _lock_busy(tmp_path)

    def task(cfg: object) -> None:
        raise busy

    with pytest.raises(SystemExit) as ended:
        report_errors(task, show_traceback=lambda: False)(None)
    assert ended.value.code == 1
    assert capsys.readouterr().err == f"error: {user_error(busy)[0]}\n"
    with pytest.raises(LockBusy):
        report_errors(task, show_traceback=lambda: True)(None)  # --verbose
    with pytest.raises(ZeroDivisionError):
        report_errors(lambda cfg: 1 / 0, show_traceback=lambda: False)(None)
    assert capsys.readouterr().err == ""
