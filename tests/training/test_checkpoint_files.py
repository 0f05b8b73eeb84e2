"""Checkpoint files hold tensors and plain data only, carry a checksum, and damaged ones fall back."""

from __future__ import annotations

import hashlib
import io
import pathlib

import pytest
import torch

from stylegan_v.training import checkpoint
from stylegan_v.training.checkpoint import (
    MAGIC,
    CheckpointError,
    DamagedCheckpoint,
    NoUsableCheckpoint,
    UnsafeCheckpoint,
)


class _Payload:
    """Unpickling this would create a file: what a hostile checkpoint does with weights_only=False."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


def crafted(path: pathlib.Path, target: pathlib.Path, with_header: bool) -> pathlib.Path:
    """A file that runs code when unpickled; with our header and a correct checksum when asked (an attacker
    can compute a SHA-256 as well as we can)."""
    buffer = io.BytesIO()
    torch.save({"G_ema": {}, "config": "{}", "x": _Payload(target)}, buffer)
    data = buffer.getvalue()
    if with_header:
        data = MAGIC + b"sha256:" + hashlib.sha256(data).hexdigest().encode() + b"\n" + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("with_header", [False, True])
def test_a_checkpoint_that_would_run_code_is_refused_unrun(tmp_path, with_header: bool) -> None:
    target = tmp_path / "pwned"
    path = crafted(tmp_path / "evil.pt", target, with_header)
    with pytest.raises(UnsafeCheckpoint, match="evil.pt holds objects other than tensors"):
        checkpoint.read(path)
    with pytest.raises(UnsafeCheckpoint):
        checkpoint.load_generator(path)  # generate and evaluate's generator loader go through this
    assert not target.exists()


def test_round_trip_keeps_tensors_and_config(tmp_path) -> None:
    state = {"G_ema": {"w": torch.arange(6.0)}, "config": {"model": {"name": "x", "kind": "acyclic"}},
             "rng": [{"python": (3, (1, 2, 3), None), "keys": torch.zeros(3, dtype=torch.int64)}]}
    path = checkpoint.write(tmp_path / "c.pt", state)
    back = checkpoint.read(path)
    assert torch.equal(back["G_ema"]["w"], state["G_ema"]["w"]) and back["config"] == state["config"]
    assert back["rng"][0]["python"] == (3, (1, 2, 3), None)


def test_flipped_bytes_are_caught_and_resume_falls_back(tmp_path) -> None:
    run = tmp_path / "run"
    for step in (1, 2):
        checkpoint.save(run, step, {"G_ema": {"w": torch.full((1000,), float(step))}, "config": {}})
    newest = checkpoint.list_checkpoints(run)[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.raises(DamagedCheckpoint, match="checksum mismatch"):
        checkpoint.read(newest)
    path, state = checkpoint.load_latest(run)
    assert path.name == "checkpoint-000000001.pt" and float(state["G_ema"]["w"][0]) == 1.0
    path, _ = checkpoint.load_from(run)  # evaluate/generate on the run directory fall back too
    assert path.name == "checkpoint-000000001.pt"


def test_all_damaged_is_an_error_not_an_empty_run(tmp_path) -> None:
    run = tmp_path / "run"
    checkpoint.save(run, 1, {"G_ema": {}, "config": {}})
    only = checkpoint.list_checkpoints(run)[0]
    only.write_bytes(only.read_bytes()[:200])
    with pytest.raises(NoUsableCheckpoint, match="all 1 checkpoint"):
        checkpoint.load_latest(run)
    assert checkpoint.load_latest(tmp_path / "fresh") is None  # no checkpoint at all: a new run


def test_a_wrong_file_gets_one_line_naming_it(tmp_path) -> None:
    tensors = tmp_path / "tensors.pt"
    torch.save({"weight": torch.zeros(2)}, tensors)
    with pytest.raises(CheckpointError, match=r"tensors\.pt is not a StyleGAN-V checkpoint \(no G_ema, config\)"):
        checkpoint.load_from(tensors)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes\.txt is not a StyleGAN-V checkpoint"):
        checkpoint.read(text)


def test_a_job_removes_the_temporary_files_of_killed_writes_and_nothing_else(tiny_cfg, tmp_path) -> None:
    """What a killed checkpoint write leaves (named as atomic_write names it, as large as a checkpoint) goes at
    the next start; files that are not a write of this job's, and the runs directory around it, stay."""
    from stylegan_v.configs import resolved_yaml
    from stylegan_v.training.job import TrainJob, run_dir_of

    cfg = tiny_cfg("training.max_steps=1")
    run_dir = run_dir_of(cfg)
    ours = [checkpoint.checkpoint_dir(run_dir) / ".checkpoint-000000004.pt.k2x9_q1a.tmp",
            run_dir / "samples" / ".samples-000000004.png.0abcdefg.tmp", run_dir / ".config.yaml.zz9_8y7x.tmp",
            run_dir / ".best.json.a1b2c3d4.tmp", run_dir / ".mlflow_journal.synced.q1w2e3r4.tmp"]
    others = [checkpoint.checkpoint_dir(run_dir) / "notes.tmp", run_dir / ".metrics.json.a1b2c3d4.tmp",
              checkpoint.checkpoint_dir(run_dir) / ".checkpoint-000000004.pt.tmp",
              run_dir.parent / ".checkpoint-000000004.pt.k2x9_q1a.tmp"]
    for path in [*ours, *others]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 4096)
    result = TrainJob()(resolved_yaml(cfg))
    assert result["status"] == "finished"
    assert [p for p in ours if p.exists()] == []
    assert [p for p in others if not p.exists()] == []
    assert [p.name for p in checkpoint.list_checkpoints(run_dir)] == ["checkpoint-000000001.pt"]
