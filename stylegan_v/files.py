"""Files every stage writes and reads: atomic whole-file writes, append-only jsonl, its tolerant reader, locks.

A preempted job can die in the middle of a write. Whole files are therefore written to a temporary sibling
with a name unique to the process and call, fsynced, and renamed over the target: a reader sees the old file
or the new one, never a torn or mixed one, even when two processes write the same target at once. Records are
appended one whole line per write; the reader skips an unterminated last line (a writer killed mid-line, or
writing right now). The module depends on nothing else in the package.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` can only be read by setting it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any], mode: int | None = None) -> Path:
    """Call ``write(file)`` on a fresh temporary sibling, fsync it, rename it over ``path``, fsync the folder.

    The file gets ``mode`` before any byte is written (so a secret is never readable by others, even briefly);
    by default the permissions a plain ``open`` would give (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask() if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> Path:
    return atomic_write(path, lambda f: f.write(data), mode)


def atomic_write_text(path: str | os.PathLike[str], text: str, mode: int | None = None) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode()), mode)


def atomic_write_json(path: str | os.PathLike[str], payload: Any, indent: int = 1) -> Path:
    return atomic_write_text(path, json.dumps(payload, indent=indent, sort_keys=True, default=str) + "\n")


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """One whole line per write (O_APPEND), flushed and fsynced: concurrent appenders never interleave inside
    a line, and a reader never sees half a record except after a crash."""
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def iter_jsonl(path: str | os.PathLike[str], offset: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Complete records from byte ``offset`` on, as ``(end offset, record)``; an unterminated tail is left for
    later and an unreadable line is skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        f.seek(offset)
        position = offset
        for raw in f:
            if not raw.endswith(b"\n"):
                return
            position += len(raw)
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                log.warning("%s: skipping an unreadable line ending at byte %d", path, position)
                continue
            if isinstance(record, dict):
                yield position, record


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete record of a jsonl file ([] when it does not exist)."""
    return [record for _, record in iter_jsonl(path)]


class LockBusy(RuntimeError):
    """Another process holds the lock; the message names it (pid, host, Slurm job, since when)."""


def _owner() -> dict[str, Any]:
    job = os.environ.get("SLURM_JOB_ID")
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job_id": job,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def describe_owner(path: str | os.PathLike[str]) -> str:
    try:
        owner = json.loads(Path(path).read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        owner = {}
    job = f"Slurm job {owner['slurm_job_id']}, " if owner.get("slurm_job_id") else ""
    return f"{job}pid {owner.get('pid', '?')} on {owner.get('host', '?')} since {owner.get('since', '?')}"


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], what: str, wait: bool, poll_s: float = 2.0,
                   report_every_s: float = 60.0) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the block; the file records who holds it.

    The kernel drops the lock when its holder exits, however it exits (SIGKILL included), so a lock is never
    stale. ``wait=False`` raises :class:`LockBusy` at once naming the holder; ``wait=True`` waits, saying so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        reported = -float("inf")
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = describe_owner(path)
                if not wait:
                    raise LockBusy(f"{what} is in use by {holder} (lock {path})") from None
                if time.monotonic() - reported >= report_every_s:
                    log.info("waiting for %s: in use by %s", what, holder)
                    reported = time.monotonic()
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_owner()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
