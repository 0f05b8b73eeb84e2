"""The file layer: whole-file writes are atomic under concurrent writers, records are appended whole."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import stat
from pathlib import Path

from stylegan_v.files import append_jsonl, atomic_write_bytes, atomic_write_json, read_jsonl

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
