"""Table 6's baselines from one ``+sweep=baselines``: every option composes and validates with every experiment,
and G3AN trains at 64² on the experiment's own prepared data, downsampled at load (``dataset.resize_on_load``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from PIL import Image

from stylegan_v import prepare
from stylegan_v.configs import check_across_groups, register_configs
from stylegan_v.data.build import DatasetMismatch, open_prepared
from stylegan_v.data.video_dataset import VideoDataset
from stylegan_v.launch.sweep import expand_points, point_configs, prepare_points, register_resolvers

REPO = Path(__file__).resolve().parents[2]
OPTIONS = sorted(p.stem for p in (REPO / "sweeps" / "baselines").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
TABLE6 = {"stylegan_v", "stylegan2", "mocogan_sg2", "g3an"}  # the rows Table 6 fills from the sweep
SMALL = ("experiment=smoke", "dataset.num_videos=2")  # Moving MNIST, 2 videos of 32 frames


@pytest.fixture(scope="module", autouse=True)
def _hydra_initialized():
    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        yield


def _compose(*overrides: str, hydra: bool = False):
    return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def _validated(*overrides: str) -> SimpleNamespace:
    """The point typed by every schema and checked by the rules spanning groups, as ``train`` validates it."""
    cfg = _compose(*overrides, hydra=True)
    HydraConfig.instance().set_config(cfg)
    typed = SimpleNamespace(**OmegaConf.to_object(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])))
    check_across_groups(typed)
    return typed


def test_the_sweep_runs_every_table6_model() -> None:
    master = _compose("+sweep=baselines", "experiment=smoke", hydra=True)
    assert {p[0].rpartition("=")[2] for p in expand_points(master)} == TABLE6
    assert TABLE6 | {"g3an_cpu"} == set(OPTIONS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("option", OPTIONS)
def test_every_baseline_composes_and_validates_with_every_experiment(option: str, experiment: str) -> None:
    base = _validated(f"experiment={experiment}")
    point = _validated("+sweep=baselines", f"+sweep/baselines={option}", f"experiment={experiment}")
    assert point.dataset.name == base.dataset.name, "every baseline reads the experiment's own prepared data"
    assert point.dataset.source == base.dataset.source
    if option.startswith("g3an"):
        assert (point.model.name, point.training.recipe, point.dataset.resolution) == ("g3an", "g3an", 64)
        assert point.dataset.resize_on_load, "64² read from the experiment's data, not a second preparation"
        s = point.dataset.sampling
        assert (s.mode, s.num_frames, list(s.strides)) == ("random_stride", 16, [2, 3])  # G3AN's dataset.py
        assert point.model.attention_after == (1 if option == "g3an_cpu" else 3)
    else:
        assert point.dataset.resolution == base.dataset.resolution and not point.dataset.resize_on_load
        assert point.model.mapping == base.model.mapping and point.model.synthesis == base.model.synthesis
        assert point.model.motion.omega_min == base.model.motion.omega_min  # e.g. SkyTimelapse's 256
    if option == "stylegan2":
        assert (point.model.name, str(point.model.motion.kind), point.dataset.sampling.num_frames) == \
            ("stylegan_v", "none", 1)


def _frames(path: Path, video: int, indices: list[int]) -> np.ndarray:
    videos = VideoDataset(path)
    try:
        return videos.read_frames(video, indices)
    finally:
        videos.close()


def test_frames_are_read_downsampled_with_an_antialiased_filter(tmp_path) -> None:
    """256² on disk, 64² read: each frame is Pillow's Lanczos of the stored one (not a strided pick)."""
    cfg = _compose(*SMALL, f"paths.data_dir={tmp_path}", "dataset.resolution=256")
    prepare.run(cfg)
    path = tmp_path / cfg.dataset.name
    full = _frames(path, 1, [0, 5])
    small = VideoDataset(path, resolution=64)
    try:
        got = small.read_frames(1, [0, 5])
    finally:
        small.close()
    assert full.shape == (2, 256, 256, 1) and got.shape == (2, 64, 64, 1)
    for frame, want in zip(full, got):
        lanczos = np.asarray(Image.fromarray(frame[..., 0]).resize((64, 64), Image.Resampling.LANCZOS))
        np.testing.assert_array_equal(want[..., 0], lanczos)
    strided = full[:, ::4, ::4]
    assert not np.array_equal(got, strided), "a strided pick would alias; the filter averages"
    with pytest.raises(ValueError, match="at most at the prepared 256"):
        VideoDataset(path, resolution=512)


def test_a_smaller_resolution_is_read_downsampled_only_when_asked(tmp_path) -> None:
    common = (*SMALL, f"paths.data_dir={tmp_path}")
    prepare.run(_compose(*common, "dataset.resolution=256"))
    wanted = prepare.settings_of(_compose(*common, "dataset.resolution=64"))
    with pytest.raises(DatasetMismatch, match=r"dataset\.resolution prepared 256, configured 64"):
        open_prepared(wanted, tmp_path, build_missing=True)
    videos = open_prepared({**wanted, "resize_on_load": True}, tmp_path, build_missing=True)
    try:
        assert (videos.resolution, videos.prepared_resolution) == (64, 256)
        assert videos.read_frames(0, [0]).shape == (1, 64, 64, 1)
    finally:
        videos.close()
    other = prepare.settings_of(_compose(*common, "dataset.resolution=64", "dataset.video_length=20"))
    with pytest.raises(DatasetMismatch, match=r"dataset\.video_length prepared 32, configured 20"):
        open_prepared({**other, "resize_on_load": True}, tmp_path, build_missing=True)  # only resolution is made up for
    larger = prepare.settings_of(_compose(*common, "dataset.resolution=512"))
    with pytest.raises(DatasetMismatch, match=r"dataset\.resolution prepared 256, configured 512"):
        open_prepared({**larger, "resize_on_load": True}, tmp_path, build_missing=True)  # never upsampled


def test_the_sweep_checks_every_points_dataset_largest_first(tmp_path) -> None:
    """The submitting side prepares/checks each point's data (Slurm points skip the check at submission
    otherwise): the 256² point's data first, then G3AN's 64² point reads it downsampled; the reverse order would
    have prepared 64² under the name and refused the 256² point."""
    common = (*SMALL, f"paths.data_dir={tmp_path}")
    full = _compose(*common, "dataset.resolution=256")
    g3an = _compose(*common, "+sweep/baselines=g3an_cpu")
    prepare_points([g3an, full, g3an])
    assert VideoDataset(tmp_path / full.dataset.name).prepared_resolution == 256
    prepare.ensure_prepared(g3an)  # what the local point checks again: no mismatch
    refused = _compose(*common, "dataset.resolution=256", "dataset.video_length=20")
    with pytest.raises(DatasetMismatch, match="video_length"):
        prepare_points([refused])


def test_point_configs_are_the_points_as_launched(tmp_path) -> None:
    master = _compose("+sweep=baselines", *SMALL, f"paths.data_dir={tmp_path}", hydra=True)
    HydraConfig.instance().set_config(master)
    points = point_configs(master, expand_points(master))
    assert [(p.model.name, p.dataset.resolution, p.dataset.resize_on_load) for p in points] == [
        ("stylegan_v", 64, False), ("stylegan_v", 64, False), ("mocogan_sg2", 64, False), ("g3an", 64, True)]
    assert [str(p.model.motion.kind) for p in points[:3]] == ["acyclic", "none", "lstm"]


def test_g3an_trains_at_64_on_data_prepared_at_256(tmp_path) -> None:
    """One G3AN step on a 256²-prepared dataset: the loop reads 64² clips of 16 frames from it."""
    import torch

    from stylegan_v.launch.distributed import DistributedEnv
    from stylegan_v.training.loop import Trainer

    common = (*SMALL, f"paths.data_dir={tmp_path / 'data'}")
    prepare.run(_compose(*common, "dataset.resolution=256"))
    cfg = _compose(*common, "+sweep/baselines=g3an_cpu", f"paths.runs_dir={tmp_path / 'runs'}",
                   f"tracking.tracking_uri=sqlite:///{tmp_path / 'db'}", "training.batch_size=2",
                   "training.num_workers=0", "training.max_steps=1", "training.sample_grid=[1,2]",
                   "training.metrics=[]", "training.best_metric=null")
    trainer = Trainer(cfg, tmp_path / "run", DistributedEnv(rank=0, local_rank=0, world_size=1, source="single"))
    assert trainer.videos.prepared_resolution == 256 and trainer.videos.resolution == 64
    assert trainer.run() == "finished"
    clip = trainer._loader.dataset[(1, 7)]  # what the step was fed: a clip of the training stream
    assert isinstance(clip["frames"], torch.Tensor) and tuple(clip["frames"].shape) == (16, 1, 64, 64)
