"""Checkpoints and resume: N steps equal N/2 + resume + N/2 bit for bit on the CPU; damaged files are skipped."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import torch

from stylegan_v.launch.distributed import DistributedEnv
from stylegan_v.training import checkpoint
from stylegan_v.training.job import SubmititUsr2, run_dir_of
from stylegan_v.training.loop import Trainer

SINGLE = DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")


def _train(cfg, run_dir, steps: int) -> Trainer:
    cfg.training.max_steps = steps
    trainer = Trainer(cfg, run_dir, SINGLE)
    assert trainer.run() == "finished"
    return trainer


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """Bit for bit on any CPU: both runs execute the same operations on the same shapes in the same order in
    one process (same kernels, same thread count), and a checkpoint stores every tensor and RNG state exactly,
    so every rounding is the same."""
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), f"{name} differs"


def test_resume_is_bit_identical(tiny_cfg, tmp_path) -> None:
    # r1_interval=2 puts a lazy-R1 step on both sides of the split; ADA starts at p = 0.3 and adapts every
    # 2 steps, so augmentation draws random numbers and p carries across the split.
    overrides = ("training.r1_interval=2", "training.augment.interval=2", "training.augment.p=0.3",
                 "training.augment.speed_kimg=1", "training.num_workers=1")
    straight = _train(tiny_cfg(*overrides), tmp_path / "straight", 6)
    _train(tiny_cfg(*overrides), tmp_path / "split", 3)
    # step 3 is between two ADA adjustments (every 2 steps): the signs gathered since step 2 go into the checkpoint
    # (without them the resumed adjustment at step 4 sees fewer signs, and whether p then moves differently
    # depends on the logits' values, so on the CPU's kernels)
    _, state = checkpoint.load_latest(tmp_path / "split")
    assert state["progress"]["step"] == 3 and len(state["ada_signs"]) == 1 and state["ada_signs"][0].numel() > 0
    resumed = _train(tiny_cfg(*overrides), tmp_path / "split", 6)
    assert resumed.progress.step == straight.progress.step == 6
    assert 0 < float(straight.augment.p) != 0.3, "the test must exercise ADA"
    for attr in ("G", "D", "G_ema"):
        _assert_same_weights(getattr(straight, attr), getattr(resumed, attr))
    assert float(straight.augment.p) == float(resumed.augment.p)


def test_truncated_newest_checkpoint_falls_back_to_the_previous(tiny_cfg, tmp_path) -> None:
    run_dir = tmp_path / "run"
    _train(tiny_cfg(), run_dir, 1)
    trainer = _train(tiny_cfg(), run_dir, 2)
    newest = checkpoint.list_checkpoints(run_dir)[-1]
    assert newest.name == "checkpoint-000000002.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])  # a crash mid-copy
    path, state = checkpoint.load_latest(run_dir)
    assert path.name == "checkpoint-000000001.pt" and state["progress"]["step"] == 1
    assert trainer.progress.step == 2


def test_prune_keeps_the_newest_and_the_best(tmp_path) -> None:
    for step in range(1, 6):
        checkpoint.save(tmp_path, step, {"step": step})
    checkpoint.update_best(tmp_path, checkpoint.checkpoint_dir(tmp_path) / "checkpoint-000000002.pt", "fvd", 10.0, 0.1)
    assert not checkpoint.update_best(tmp_path, checkpoint.checkpoint_dir(tmp_path) / "checkpoint-000000003.pt",
                                      "fvd", 12.0, 0.2), "a worse value is not the best"
    checkpoint.prune(tmp_path, keep=2)
    names = [p.name for p in checkpoint.list_checkpoints(tmp_path)]
    assert names == ["checkpoint-000000002.pt", "checkpoint-000000004.pt", "checkpoint-000000005.pt"]
    assert not list(checkpoint.checkpoint_dir(tmp_path).glob(".*tmp*")), "no temporary files left behind"


def test_run_dir_is_deterministic_and_ignores_where_it_runs(tiny_cfg) -> None:
    a = run_dir_of(tiny_cfg())
    assert a == run_dir_of(tiny_cfg()), "same config, same folder (a requeued job finds its checkpoints)"
    assert a == run_dir_of(tiny_cfg("cluster=slurm", "cluster.nodes=2", "training.num_workers=0"))
    assert a == run_dir_of(tiny_cfg("++report.g3an_seed=7", "++pipeline.export_dir=elsewhere")), \
        "how the results are reported or exported is not part of the run"
    assert a.name.startswith("smoke-")
    assert a != run_dir_of(tiny_cfg("model.motion.kernel_size=5")), "a different model is a different run"


def test_a_signal_stops_at_a_step_boundary_with_a_checkpoint(tiny_cfg, tmp_path) -> None:
    cfg = tiny_cfg("training.total_kimg=1000", "training.max_steps=1000")
    trainer = Trainer(cfg, tmp_path / "run", SINGLE)
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGUSR2))
    timer.start()
    try:
        assert trainer.run() == "interrupted"
    finally:
        timer.cancel()
    assert trainer.stop_signal == signal.SIGUSR2
    path, state = checkpoint.load_latest(tmp_path / "run")
    assert 0 < state["progress"]["step"] == trainer.progress.step < 1000
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL, "the previous handler is restored"


def test_usr2_after_the_run_is_done_does_not_requeue(tiny_cfg, tmp_path) -> None:
    """In a submitit job, USR2 outside the loop reaches submitit's requeue until the run is done, and nothing
    after (a finished job requeued in its last seconds would start again only to find itself finished).
    Submitit's handler works only inside a Slurm job, so a recorder stands in for it here; the Slurm tests run
    the real one."""
    requeues: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: requeues.append(signum))
    try:
        guard = SubmititUsr2.install()
        assert guard is not None and signal.getsignal(signal.SIGUSR2) is guard
        trainer = Trainer(tiny_cfg("training.max_steps=2"), tmp_path / "run", SINGLE)
        guard.trainer = trainer
        os.kill(os.getpid(), signal.SIGUSR2)  # built, not done: requeue (the next segment resumes)
        assert requeues == [signal.SIGUSR2]
        assert trainer.run() == "finished" and trainer.done()
        assert signal.getsignal(signal.SIGUSR2) is guard, "the loop hands USR2 back"
        os.kill(os.getpid(), signal.SIGUSR2)
        assert requeues == [signal.SIGUSR2], "a finished run is not requeued"
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert SubmititUsr2.install() is None, "no Python handler (training in-process): nothing is put in front"


def test_every_checkpoint_damaged_refuses_to_restart_unless_allowed(tiny_cfg, tmp_path) -> None:
    """A run whose checkpoints are all damaged (one of them a crafted file that would run code) must not
    silently start again from step 0 with a reset cost meter."""
    import pytest
    from test_checkpoint_files import crafted

    run_dir = tmp_path / "run"
    _train(tiny_cfg(), run_dir, 1)
    (only,) = checkpoint.list_checkpoints(run_dir)
    only.write_bytes(only.read_bytes()[:1000])
    crafted(checkpoint.checkpoint_dir(run_dir) / "checkpoint-000000002.pt", tmp_path / "pwned", with_header=True)
    with pytest.raises(checkpoint.NoUsableCheckpoint, match="set training.allow_restart=true"):
        Trainer(tiny_cfg(), run_dir, SINGLE)
    assert not (tmp_path / "pwned").exists()
    restarted = Trainer(tiny_cfg("training.allow_restart=true"), run_dir, SINGLE)
    assert restarted.progress.step == 0


def test_a_second_job_on_a_run_directory_in_use_refuses_naming_the_holder(tiny_cfg, tmp_path) -> None:
    """Two identical commands would both train into one folder (MLflow gets every step twice); the second
    refuses at once, on the login node before queueing and again in the job itself."""
    import pytest

    from stylegan_v import train
    from stylegan_v.configs import resolved_yaml
    from stylegan_v.files import LockBusy, exclusive_lock
    from stylegan_v.training.job import RUN_LOCK, TrainJob

    cfg = tiny_cfg(f"paths.runs_dir={tmp_path / 'runs'}")
    run_dir = run_dir_of(cfg)
    with exclusive_lock(run_dir / RUN_LOCK, "test holder", wait=False):  # another job holds the folder
        with pytest.raises(LockBusy, match=rf"run directory {run_dir} is in use by pid {os.getpid()} on "):
            train.run(cfg)
        with pytest.raises(LockBusy, match="is in use by pid"):
            TrainJob()(resolved_yaml(cfg))
    assert not checkpoint.list_checkpoints(run_dir)


def test_a_finished_run_started_with_more_metrics_measures_only_those(tiny_cfg, tmp_path) -> None:
    """training.metrics is not part of the run directory's hash: a sweep point with the same model as a finished
    run lands in it, and must still end with the metrics it asks for (measured on the last checkpoint, once)."""
    from mlflow import MlflowClient

    from stylegan_v.configs import resolved_yaml
    from stylegan_v.metrics.records import read_records
    from stylegan_v.training.job import TrainJob

    fvd = ("metrics.num_videos=2", "metrics.progress=false", "training.max_steps=2")
    first = TrainJob()(resolved_yaml(tiny_cfg(*fvd, "training.metrics=[fvd256_16f]")))
    again = TrainJob()(resolved_yaml(tiny_cfg(*fvd, "training.metrics=[fvd256_16f,fvd2048_16f]")))
    assert again["run_dir"] == first["run_dir"] and again["step"] == first["step"]
    records = [r for r in read_records(Path(first["run_dir"])) if r["source"] == "snapshot"]
    last = checkpoint.list_checkpoints(Path(first["run_dir"]))[-1].name
    assert sorted((r["metric"], r["checkpoint"]) for r in records) == \
        [("fvd2048_16f", last), ("fvd256_16f", last)], "the new metric measured once, the old one not again"
    metrics = MlflowClient(tiny_cfg().tracking.tracking_uri).get_run(first["mlflow_run_id"]).data.metrics
    assert metrics["metrics/fvd2048_16f"] == next(r["value"] for r in records if r["metric"] == "fvd2048_16f")
