"""A run trains on the data its config describes, keeps the version it opened, and records which it was."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_config import TINY

from stylegan_v import prepare
from stylegan_v.checks import ConfigError
from stylegan_v.data import moving_mnist
from stylegan_v.data.build import DatasetMismatch
from stylegan_v.data.sources import mnist_csv
from stylegan_v.data.video_dataset import VideoDataset
from stylegan_v.files import read_jsonl
from stylegan_v.launch.distributed import DistributedEnv
from stylegan_v.tracking.config import TrackingConfig
from stylegan_v.tracking.run import NullTracker
from stylegan_v.training import checkpoint
from stylegan_v.training.loop import DATA_RECORD, Trainer

SINGLE = DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")
REPO = Path(__file__).resolve().parents[2]


class _PrepareAtFirstTick(NullTracker):
    """No tracking; at the first tick's metrics (the run is training, its loader workers are reading) it runs
    the real ``python -m stylegan_v.prepare`` with ``command``, once."""

    def __init__(self, command: list[str]) -> None:
        super().__init__(TrackingConfig())
        self.command = command
        self.result: subprocess.CompletedProcess | None = None

    def log_metrics(self, metrics, step: int) -> None:
        if self.result is None:
            self.result = subprocess.run(self.command, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_preparing_other_settings_during_training_does_not_reach_it(compose, tmp_path: Path) -> None:
    data = tmp_path / "data"
    base = [*TINY, f"paths.data_dir={data}", f"paths.runs_dir={tmp_path / 'runs'}", "training.num_workers=1"]
    cfg = compose(*base, "training.max_steps=6")
    first = prepare.run(cfg)
    other = ["dataset.jpeg_quality=20", "dataset.seed=3"]  # what a colleague prepares under the same name
    tracker = _PrepareAtFirstTick([sys.executable, "-m", "stylegan_v.prepare", *base, *other,
                                   f"hydra.run.dir={tmp_path / 'hydra'}"])
    run_dir = tmp_path / "run"
    trainer = Trainer(cfg, run_dir, SINGLE, tracker)
    assert trainer.run() == "finished" and trainer.progress.step == 6
    assert tracker.result is not None and tracker.result.returncode == 0, tracker.result.stderr[-3000:]
    now = VideoDataset(data / cfg.dataset.name)
    assert now.content_hash != first["content_hash"] and now.manifest["jpeg_quality"] == 20, "published meanwhile"
    # The run read its own version to the end, and says so: in the run directory and in its checkpoints.
    (record,) = read_jsonl(run_dir / DATA_RECORD)
    assert record["event"] == "start" and record["step"] == 0
    assert record["content_hash"] == first["content_hash"] and record["version"] == str(Path(first["version"]).resolve())
    _, state = checkpoint.load_latest(run_dir)
    assert state["progress"]["extra"]["dataset"]["content_hash"] == first["content_hash"]
    # A new job on this config (a resume, on the node) finds the other settings published: refused, naming them.
    more = compose(*base, "training.max_steps=8")
    with pytest.raises(DatasetMismatch, match=r"dataset\.jpeg_quality prepared 20, configured 95; "
                                              r"dataset\.seed prepared 3, configured 0\."):
        Trainer(more, run_dir, SINGLE)
    # With dataset.on_mismatch=prepare its own version is published again (still there: nothing was decoded).
    resumed = Trainer(compose(*base, "training.max_steps=8", "dataset.on_mismatch=prepare"), run_dir, SINGLE)
    assert resumed.videos.content_hash == first["content_hash"] and resumed.run() == "finished"
    assert [r["event"] for r in read_jsonl(run_dir / DATA_RECORD)] == ["start", "resume"]


def test_a_resume_on_changed_data_is_refused_unless_allowed(compose, tmp_path: Path) -> None:
    """Same settings, other pixels (the raw download changed and the dataset was prepared again from scratch)."""
    source = tmp_path / "mnist.csv.gz"
    shutil.copy(mnist_csv(), source)
    data = tmp_path / "data"
    base = [*TINY, f"paths.data_dir={data}", f"dataset.source={source}", "training.num_workers=0"]
    before = prepare.run(compose(*base))
    run_dir = tmp_path / "run"
    assert Trainer(compose(*base, "training.max_steps=2"), run_dir, SINGLE).run() == "finished"

    with gzip.open(source, "rt") as f:
        rows = f.readlines()
    with gzip.open(source, "wt") as f:
        f.writelines(reversed(rows))  # other digits, same file name: same config
    moving_mnist.load_digits.cache_clear()  # this process read the old file once
    name = before["path"].rsplit("/", 1)[1]
    (data / name).unlink()  # prepared again from scratch
    shutil.rmtree(data / f".{name}.versions")
    after = prepare.run(compose(*base))
    assert after["config_hash"] == before["config_hash"] and after["content_hash"] != before["content_hash"]

    with pytest.raises(ConfigError) as refused:
        Trainer(compose(*base, "training.max_steps=4"), run_dir, SINGLE)
    message = str(refused.value)
    assert message.startswith("training.allow_data_change must be true to resume") and "\n" not in message
    assert before["content_hash"][:12] in message and after["content_hash"][:12] in message
    trainer = Trainer(compose(*base, "training.max_steps=4", "training.allow_data_change=true"), run_dir, SINGLE)
    assert trainer.progress.step == 2 and trainer.run() == "finished"
    records = read_jsonl(run_dir / DATA_RECORD)
    assert [(r["event"], r["step"], r["content_hash"]) for r in records] == [
        ("start", 0, before["content_hash"]), ("resume", 2, after["content_hash"])]
    assert records[-1]["previous_content_hash"] == before["content_hash"]
    _, state = checkpoint.load_latest(run_dir)
    assert state["progress"]["extra"]["dataset"]["content_hash"] == after["content_hash"]
    assert json.loads((run_dir / DATA_RECORD).read_text().splitlines()[0])["config_hash"] == before["config_hash"]
