"""A failure the user can fix, as one line: what went wrong and what to do.

:func:`user_error` maps an exception to that line and an exit status, or to None for anything else (a bug,
whose traceback is what helps). :func:`report_errors` wraps an entry point's task with it; ``--verbose``
(``HYDRA_FULL_ERROR=1``) keeps the traceback. :func:`tracking_failure` says why MLflow could not take a record.

Nothing heavy is imported here: an exception class of torch, MLflow, SQLite or submitit is looked up only when
its module is already loaded (an error of that class cannot exist otherwise), and so are the package's own.
"""

from __future__ import annotations

import errno
import functools
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

FAILURE = 1  # exit status of a command that failed for a reason the line names
CONFIG_ERROR = 2  # a config value refused while the task runs: the usage error of the command line

# A write that found no room: errno -> (what happened, what to do first)
_NO_ROOM = {
    errno.ENOSPC: ("no space left on the device", "free space there (or point paths.runs_dir / paths.data_dir "
                                                  "at another filesystem)"),
    errno.EDQUOT: ("disk quota exceeded", "free space in your quota (or point paths.runs_dir / paths.data_dir "
                                          "at another filesystem)"),
    errno.EFBIG: ("file too large", "raise the file size limit (`ulimit -f`) or point paths.runs_dir / "
                                    "paths.data_dir at another filesystem"),
}
_AFTER_NO_ROOM = ("then run the same command again: files are written whole, so the earlier ones are intact "
                  "and a training resumes from its last complete checkpoint")
# Errors of ours whose message is already one line naming the cause: (module, class, what to do, exit status)
_OURS = (
    ("stylegan_v.checks", "ConfigError", "", CONFIG_ERROR),
    ("stylegan_v.files", "LockBusy", "wait for it to end, or cancel it (`scancel <job id>`, or end that pid), "
                                     "then run the same command again", FAILURE),
    ("stylegan_v.launch.submit", "SubmissionRefused", "check cluster.partition, account, qos, constraint and "
                                                      "additional_parameters (`sinfo -o '%P %f'` lists the "
                                                      "partitions and node features)", FAILURE),
    ("stylegan_v.training.checkpoint", "CheckpointError", "", FAILURE),
    ("stylegan_v.tracking.records", "RunNotInStoreError", "", FAILURE),
    ("stylegan_v.tracking.records", "TrackingAuthError", "", FAILURE),
    ("stylegan_v.tracking.records", "TrackingUnreachable", "", FAILURE),
)
_DAMAGED_STORE = ("file is not a database", "database disk image is malformed")  # SQLite's words for it
_AFTER_DAMAGED_STORE = ("restore it from a backup, or point tracking.tracking_uri (or MLFLOW_TRACKING_URI) at "
                        "another store; every metric is also in the run directories' metrics.jsonl")
_TRACE_LINE = re.compile(r"(?P<name>[A-Za-z_][\w.]*): (?P<message>.*)")  # a traceback's last line
_ERRNO = re.compile(r"\[Errno (?P<errno>\d+)\] (?P<strerror>[^:]+)(?:: '(?P<filename>.*)')?")


def user_error(err: BaseException) -> tuple[str, int] | None:
    """``(one line, exit status)`` for an error the user can fix; None for anything else."""
    for current in _chain(err):
        if isinstance(current, OSError) and current.errno in _NO_ROOM:
            return _no_room(current.errno, current.filename), FAILURE
        for module, name, advice, status in _OURS:
            cls = _loaded(module, name)
            if cls is not None and isinstance(current, cls):
                return _join(_first_line(current), advice), status
        damaged = _damaged_store(current)
        if damaged is not None:
            return f"the MLflow store is damaged ({damaged}): {_AFTER_DAMAGED_STORE}", FAILURE
    uncompleted = _loaded("submitit.core.utils", "UncompletedJobError")
    if uncompleted is not None and isinstance(err, uncompleted):
        return _job_failure(str(err)), FAILURE
    return None


def report_errors(task: Callable[[Any], Any], show_traceback: Callable[[], bool]) -> Callable[[Any], Any]:
    """``task`` with an error the user can fix printed as ``error: <line>`` on stderr and the process ended
    with its exit status, unless ``show_traceback()``. A point of a multirun keeps its exception: the launcher
    reports it with the point."""
    @functools.wraps(task)
    def run(cfg: Any) -> Any:
        try:
            return task(cfg)
        except Exception as err:
            found = None if show_traceback() or _in_multirun() else user_error(err)
            if found is None:
                raise
            line, status = found
            print(f"error: {line}", file=sys.stderr)
            raise SystemExit(status) from None
    return run


def tracking_failure(err: BaseException) -> str:
    """Why MLflow could not take a record, as the words that follow "MLflow at <uri>"."""
    for current in _chain(err):
        damaged = _damaged_store(current)
        if damaged is not None:
            return f"holds a damaged store ({damaged}): {_AFTER_DAMAGED_STORE}"
    if any(_is_connection_failure(current) for current in _chain(err)):
        return f"is unreachable ({type(err).__name__}: {_first_line(err)})"
    return f"failed ({type(err).__name__}: {_first_line(err)})"


# ---------------------------------------------------------------------------------------------- internals


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err``, then what it was raised from or while handling, and so on."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _loaded(module: str, name: str) -> type | None:
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _join(message: str, advice: str) -> str:
    return f"{message}: {advice}" if advice else message


def _no_room(code: int, filename: Any) -> str:
    what, first = _NO_ROOM[code]
    where = f" while writing {filename}" if filename else ""
    return f"{what}{where}: {first}, {_AFTER_NO_ROOM}"


def _damaged_store(err: BaseException) -> str | None:
    """SQLite's own words when ``err`` says the MLflow store's database file is damaged, else None."""
    sqlite_error = _loaded("sqlite3", "DatabaseError")
    mlflow_error = _loaded("mlflow.exceptions", "MlflowException")
    if not (type(err) is sqlite_error or (mlflow_error is not None and isinstance(err, mlflow_error))):
        return None  # sqlite3's subclasses (a locked or read-only database) are not damage
    text = str(err)
    return next((words for words in _DAMAGED_STORE if words in text), None)


def _is_connection_failure(err: BaseException) -> bool:
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    requests_error = _loaded("requests.exceptions", "ConnectionError")
    return requests_error is not None and isinstance(err, requests_error)


def _job_failure(text: str) -> str:
    """submitit's report of a job that failed or never completed: the job's own last error line, with what to
    do when it is one of the errors above, and where the job's log is."""
    log = re.search(r"^\s+- (\S+\.err)$", text, re.MULTILINE)
    where = f" (the job's log: {log.group(1)})" if log else ""
    trace = text.split("-" * 22)
    if len(trace) < 3:  # not a failure inside the job (cancelled, timed out, no output): submitit's first line
        return f"the job did not complete: {text.strip().splitlines()[0]}{where}"
    last = [line.strip() for line in trace[1].splitlines() if line.strip()][-1]
    parsed = _TRACE_LINE.fullmatch(last)
    if parsed is not None:
        name, message = parsed["name"].rpartition(".")[2], parsed["message"]
        number = _ERRNO.match(message)
        if number is not None and int(number["errno"]) in _NO_ROOM:
            return f"the job failed: {_no_room(int(number['errno']), number['filename'])}{where}"
        for _, ours, advice, _status in _OURS:
            if name == ours:
                return f"the job failed: {_join(message, advice)}{where}"
    return f"the job failed: {last}{where}"


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
