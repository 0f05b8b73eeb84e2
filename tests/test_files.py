"""The file layer: whole-file writes are atomic under concurrent writers, records are appended whole (also on a
full disk), and the temporary files of killed writes are removed by their owner, nothing else."""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing as mp
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stylegan_v.files import append_jsonl, atomic_write_bytes, atomic_write_json, read_jsonl, remove_stale_temps

SIZE = 1 << 20  # 1 MiB per write: large enough that a non-atomic write would be seen half-done


def _writer(path: str, byte: int, rounds: int) -> None:
    for _ in range(rounds):
        atomic_write_bytes(path, bytes([byte]) * SIZE)


def _reader(path: str, rounds: int, seen: mp.Queue) -> None:
    bad = 0
    for _ in range(rounds):
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            continue
        if len(data) != SIZE or len(set(data)) != 1:
            bad += 1
    seen.put(bad)


def test_two_processes_writing_one_file_never_leave_it_torn_or_mixed(tmp_path) -> None:
    target = tmp_path / "shared.bin"
    ctx = mp.get_context("fork")
    seen: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(target), b, 40)) for b in (0x41, 0x42)]
    procs.append(ctx.Process(target=_reader, args=(str(target), 400, seen)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert seen.get(timeout=5) == 0  # every read saw one writer's whole file
    data = target.read_bytes()
    assert len(data) == SIZE and len(set(data)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]  # no temporary file left behind


def _appender(path: str, tag: int, rounds: int) -> None:
    for i in range(rounds):
        append_jsonl(path, {"tag": tag, "i": i, "pad": "x" * 5000})


def test_concurrent_appenders_never_interleave_inside_a_record(tmp_path) -> None:
    path = tmp_path / "records.jsonl"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_appender, args=(str(path), tag, 200)) for tag in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    records = read_jsonl(path)
    assert len(records) == 600
    for tag in range(3):
        assert [r["i"] for r in records if r["tag"] == tag] == list(range(200))


def test_reader_skips_a_cut_last_line_and_writes_keep_the_usual_permissions(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as f:
        f.write('{"a": 2')  # a writer killed mid-line
    assert read_jsonl(path) == [{"a": 1}]
    out = atomic_write_json(tmp_path / "x.json", {"b": 2})
    assert json.loads(out.read_text()) == {"b": 2}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    secret = atomic_write_bytes(tmp_path / "secret", b"pw", mode=0o600)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


# ------------------------------------------------------------------------------- a full disk, a killed write


@contextlib.contextmanager
def tiny_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``where`` (root only: a full disk cannot be made otherwise)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_an_append_on_a_full_filesystem_is_cut_back_and_raises(tmp_path, monkeypatch) -> None:
    """A real full disk (16 KiB tmpfs): the kernel stores part of the line (a short write), then refuses."""
    returns: list[tuple[int, int]] = []
    real_write = os.write

    def observed(fd: int, data: bytes) -> int:  # the real write, only watched: did a short write happen?
        n = real_write(fd, data)
        returns.append((len(data), n))
        return n

    with tiny_filesystem(tmp_path / "disk", "16k") as disk:
        path = disk / "records.jsonl"
        monkeypatch.setattr(os, "write", observed)
        written = 0
        with pytest.raises(OSError) as error:
            while True:
                append_jsonl(path, {"i": written, "pad": "x" * 3000})
                written += 1
        monkeypatch.undo()
        assert error.value.errno == errno.ENOSPC and error.value.filename == str(path)
        assert any(n < asked for asked, n in returns), "the kernel never wrote short: the test proves nothing"
        data = path.read_bytes()
        assert data.endswith(b"\n") and data.count(b"\n") == written  # only whole lines, nothing of the last
        assert [r["i"] for r in read_jsonl(path)] == list(range(written))
        with pytest.raises(OSError):  # still full: the next append fails whole too
            append_jsonl(path, {"i": written, "pad": "x" * 3000})
        assert path.read_bytes() == data
        path.write_bytes(data[: data.index(b"\n") + 1])  # free space: keep the first record
        append_jsonl(path, {"i": "after"})
        assert [r["i"] for r in read_jsonl(path)] == [0, "after"]


def _short_writes(limit: int | None, fail_after: int | None) -> tuple[Callable[[int, bytes], int], list[int]]:
    """``os.write`` as a full or slow device does it, on the real file: at most ``limit`` bytes per call, and
    ENOSPC once ``fail_after`` bytes are stored (a full disk cannot be produced portably without root)."""
    real_write, stored = os.write, [0]

    def write(fd: int, data: bytes) -> int:
        room = len(data) if fail_after is None else fail_after - stored[0]
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, bytes(data[: min(len(data), room, limit or len(data))]))
        stored[0] += n
        return n

    return write, stored


def test_short_writes_are_completed(tmp_path, monkeypatch) -> None:
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"i": 0})
    write, stored = _short_writes(limit=7, fail_after=None)
    monkeypatch.setattr(os, "write", write)
    end = append_jsonl(path, {"i": 1, "pad": "y" * 100})
    monkeypatch.undo()
    assert stored[0] > 100 and end == path.stat().st_size
    assert read_jsonl(path) == [{"i": 0}, {"i": 1, "pad": "y" * 100}]


def test_a_write_failing_midway_leaves_the_file_as_it_was(tmp_path, monkeypatch) -> None:
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"i": 0})
    before = path.read_bytes()
    write, stored = _short_writes(limit=None, fail_after=20)  # 20 bytes of the line land, then the disk is full
    monkeypatch.setattr(os, "write", write)
    with pytest.raises(OSError, match=re.escape(str(path))) as error:
        append_jsonl(path, {"i": 1, "pad": "z" * 100})
    monkeypatch.undo()
    assert error.value.errno == errno.ENOSPC and stored[0] == 20
    assert path.read_bytes() == before  # the partial line was cut back
    append_jsonl(path, {"i": 2})  # the next record is not glued to a fragment
    assert read_jsonl(path) == [{"i": 0}, {"i": 2}]


FILE_SIZE_LIMIT = """
import resource, sys
from stylegan_v.files import append_jsonl, atomic_write_bytes, read_jsonl
path, big = sys.argv[1], sys.argv[2]
resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))  # Python ignores SIGXFSZ: writes fail with EFBIG
n = 0
try:
    while True:
        append_jsonl(path, {"i": n, "pad": "x" * 900})
        n += 1
except OSError as e:
    print(e.errno, e.filename == path, n, len(read_jsonl(path)))
try:
    atomic_write_bytes(big, b"b" * 20_000)
except OSError as e:
    print(e.errno, e.filename == big)
"""


def test_a_file_size_limit_cuts_the_line_back_without_root(tmp_path) -> None:
    """The kernel's own short write, on any machine: past RLIMIT_FSIZE a write stores what fits, then fails."""
    path, big = tmp_path / "r.jsonl", tmp_path / "big.bin"
    out = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT, str(path), str(big)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    appended, atomic = out.stdout.split("\n")[:2]
    code, named, count, read_back = appended.split()
    assert (int(code), named) == (errno.EFBIG, "True") and int(count) == int(read_back) == 10
    assert path.stat().st_size == 10 * len(path.read_bytes().splitlines()[0] + b"\n")
    assert atomic.split() == [str(errno.EFBIG), "True"]  # the error names the file, not torch's or our temp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]  # no temporary file, no partial target


def test_a_line_left_unterminated_by_a_killed_writer_does_not_swallow_the_next(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"i": 0})
    with open(path, "a") as f:
        f.write('{"i": 1, "cut')
    append_jsonl(path, {"i": 2})
    assert read_jsonl(path) == [{"i": 0}, {"i": 2}]


KILLED_WRITER = """
import sys, time
from stylegan_v.files import atomic_write
def write(f):
    f.write(b"half a checkpoint"); f.flush()
    print("writing", flush=True)
    time.sleep(600)
atomic_write(sys.argv[1], write)
"""


def test_only_our_stale_temporary_files_are_removed(tmp_path) -> None:
    folder = tmp_path / "checkpoints"
    target = folder / "checkpoint-000000004.pt"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "writing\n"
    writer.kill()  # SIGKILL mid-write: no handler runs, the temporary file stays
    writer.wait(30)
    (stale,) = folder.iterdir()
    assert stale.name.startswith(".checkpoint-000000004.pt.") and stale.name.endswith(".tmp")
    outside = tmp_path / "outside.tmp"
    outside.write_text("not ours")
    keep = {
        "notes.tmp": "a user's file", ".checkpoint-000000004.pt.tmp": "no random part: not a name we make",
        ".metrics.json.abcd1234.tmp": "ours, but of a target the caller does not own",
        ".checkpoint-000000009.pt.ABCD1234.tmp": "mkstemp never uses capitals",
    }
    for name, text in keep.items():
        (folder / name).write_text(text)
    (folder / ".checkpoint-000000005.pt.linkxxxx.tmp").symlink_to(outside)  # a link: never followed or removed
    (folder / ".checkpoint-000000006.pt.dirxxxxx.tmp").mkdir()
    (folder / "sub").mkdir()
    (folder / "sub" / stale.name).write_text("below the folder: not touched")
    assert remove_stale_temps(folder, "checkpoint-*.pt") == [stale]
    assert not stale.exists() and outside.read_text() == "not ours"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*keep, "sub", ".checkpoint-000000005.pt.linkxxxx.tmp",
                                                               ".checkpoint-000000006.pt.dirxxxxx.tmp"])
    assert remove_stale_temps(tmp_path / "absent", "*") == []
