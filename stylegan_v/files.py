"""Files every stage writes and reads: atomic whole-file writes, append-only jsonl, its tolerant reader, locks.

A preempted job can die in the middle of a write. Whole files are therefore written to a temporary sibling
with a name unique to the process and call (``.<name>.<8 random characters>.tmp``), fsynced, and renamed over
the target: a reader sees the old file or the new one, never a torn or mixed one, even when two processes
write the same target at once. A kill between the two leaves the temporary file, which the owner of the
folder removes at its next start (:func:`remove_stale_temps`). Records are appended whole or not at all (a
full disk cuts the partial line back and raises); the reader skips an unterminated last line (a writer killed
mid-line, or writing right now). The module depends on nothing else in the package.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import json
import logging
import os
import re
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


TEMP_SUFFIX = ".tmp"
# atomic_write's temporary names: "." + target name + "." + mkstemp's 8 random characters + TEMP_SUFFIX
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any], mode: int | None = None) -> Path:
    """Call ``write(file)`` on a fresh temporary sibling, fsync it, rename it over ``path``, fsync the folder.

    The file gets ``mode`` before any byte is written (so a secret is never readable by others, even briefly);
    by default the permissions a plain ``open`` would give (0666 less the umask). A failed write removes the
    temporary file and leaves ``path`` as it was; an OS error (a full disk) is raised naming ``path``, also
    when a library wrapped it in an error of its own (torch.save's ``unexpected pos``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask() if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        cause = _unnamed_os_error(err)
        if cause is not None:
            raise OSError(cause.errno, cause.strerror, str(path)) from err
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


def _unnamed_os_error(err: BaseException) -> OSError | None:
    """The OS error behind ``err`` (itself, or what it was raised from or while handling) when it names no
    file; None otherwise."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current if current.filename is None else None
        current = current.__cause__ or current.__context__
    return None


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any]) -> int:
    """Append ``record`` as one line, fsynced; returns the file's size after it (where the record ends).

    The line is written whole or not at all: appenders take turns (an exclusive ``flock``, so concurrent
    appenders never interleave), a short write is continued, and when a write or the fsync fails (a full disk)
    the file is cut back to its size before the call and the error is raised naming the file. A last line that
    a killed writer left unterminated gets its newline first, so it stays one unreadable line (skipped by the
    reader) instead of swallowing this record."""
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the close
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            line = b"\n" + line
        try:
            written = 0
            while written < len(line):
                n = os.write(fd, line[written:])  # O_APPEND: each write lands at the end, after ours
                if n <= 0:
                    raise OSError(errno.EIO, "the write stored no byte")
                written += n
            os.fsync(fd)
        except BaseException as err:
            os.ftruncate(fd, start)
            if isinstance(err, OSError) and err.filename is None:
                raise OSError(err.errno, err.strerror, str(path)) from err
            raise
        return start + len(line)
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


def remove_stale_temps(folder: str | os.PathLike[str], *targets: str) -> list[Path]:
    """Delete the temporary files that :func:`atomic_write` left in ``folder`` (not below it) for targets
    whose name matches one of the glob patterns ``targets``: writes that were killed before their rename.
    Returns what was deleted. Call it only while no writer of those targets can be active, i.e. while holding
    the lock of whoever writes them; any other file, a link or a folder is never touched."""
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if (match is None or not entry.is_file(follow_symlinks=False)
                or not any(fnmatch.fnmatchcase(match["target"], pattern) for pattern in targets)):
            continue
        size = entry.stat(follow_symlinks=False).st_size
        Path(entry.path).unlink(missing_ok=True)
        removed.append(Path(entry.path))
        log.info("removed %s (%d bytes), the temporary file of a write that was killed", entry.path, size)
    return removed


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
