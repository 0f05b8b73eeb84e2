"""The config tree: every group option and every experiment composes, validates and builds at a tiny size."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra.errors import ConfigCompositionException

from stylegan_v.configs import validate
from stylegan_v.data.recipes import RECIPES
from stylegan_v.models.registry import build_models

CONF = Path(__file__).resolve().parents[2] / "conf"
GROUPS = ("cluster", "dataset", "model", "training", "tracking", "metrics", "report")
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
TINY_MODEL = ("model.synthesis.channel_base=256", "model.synthesis.channel_max=16",
              "model.discriminator.channel_base=256", "model.discriminator.channel_max=16",
              "model.discriminator.cmap_dim=16")


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# Options that only make sense together (G3AN's model and its training recipe are refused apart).
PARTNERS = {"model=g3an": ["training=g3an", "dataset.sampling.num_frames=16"],
            "training=g3an": ["model=g3an", "dataset.sampling.num_frames=16"],
            "model=mocogan_sg2": ["dataset.sampling.num_frames=16", "dataset.sampling.mode=consecutive"]}


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in _options(g)])
def test_every_group_option_composes_and_validates(compose, group: str, option: str) -> None:
    validate(compose(f"{group}={option}", *PARTNERS.get(f"{group}={option}", [])))


def test_the_paper_experiments_exist() -> None:
    for name in ("ffs_256", "sky_256", "ucf101_256", "rainbow_jelly_256", "mead_1024", "smoke", "moving_mnist_cpu"):
        assert name in EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_builds_model_and_dataset_at_a_tiny_size(compose, experiment: str) -> None:
    cfg = compose(f"experiment={experiment}", *TINY_MODEL)
    typed = validate(cfg)
    assert typed.experiment_name == experiment
    assert typed.dataset.recipe in RECIPES
    k = typed.dataset.sampling.num_frames
    G, D = build_models(cfg.model, 32, k)
    import torch

    video = G(torch.randn(1, G.z_dim), torch.arange(k, dtype=torch.float32)[None])
    assert video.shape == (1, k, 3, 32, 32)
    assert D(video, torch.arange(k, dtype=torch.float32)[None]).shape == (1, 1)


def test_paper_experiments_keep_the_official_numbers(compose) -> None:
    for experiment in ("ffs_256", "ucf101_256", "rainbow_jelly_256"):
        typed = validate(compose(f"experiment={experiment}"))
        assert typed.dataset.resolution == 256 and typed.training.gamma(256) == pytest.approx(0.2048)
        assert typed.model.motion.kernel_size == 11 and typed.model.motion.omega_min == 16
    assert validate(compose("experiment=sky_256")).model.motion.omega_min == 256  # the official SkyTimelapse run
    assert validate(compose("experiment=mead_1024")).dataset.resolution == 1024


@pytest.mark.parametrize(("override", "key"), [
    ("training.batch_size=0", "training.batch_size"),
    ("training.r1_gamma=-1", "training.r1_gamma"),
    ("model.motion.kernel_size=4", "model.motion.kernel_size"),
    ("dataset.jpeg_quality=101", "dataset.jpeg_quality"),
    ("training.best_metric=fid2048_16f", "training.best_metric"),
])
def test_bad_values_fail_before_anything_runs_naming_the_key(compose, override: str, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        validate(compose(override))


@pytest.mark.parametrize(("overrides", "key"), [
    (["cluster=slurm", "cluster.nodes=3", "training.batch_size=16"], "training.batch_size"),  # 16 videos, 3 ranks
    (["cluster=local", "cluster.processes=3", "training.batch_size=16"], "training.batch_size"),
    (["training.metrics=[fvd256_16f,fvd_typo]"], "training.metrics"),
    (["dataset.resolution=48"], "dataset.resolution"),
    (["dataset.sampling.num_frames=1"], "dataset.sampling.num_frames"),
])
def test_rules_across_groups_fail_on_the_login_node(compose, overrides: list[str], key: str) -> None:
    """Known before queueing (the world size from the cluster group, the metric names from the registry), so
    refused by ``validate``, which ``train`` calls before it submits anything."""
    with pytest.raises(ValueError, match="^" + key.replace(".", r"\.") + " "):
        validate(compose(*overrides))


def test_image_stylegan2_may_use_single_frames(compose) -> None:
    validate(compose("model.motion.kind=none", "dataset.sampling.num_frames=1"))


def test_unknown_experiment_lists_the_valid_ones(compose) -> None:
    with pytest.raises(ConfigCompositionException, match="(?s)Available options.*smoke"):
        compose("experiment=nope")


def test_params_yaml_is_the_composition_of_conf(tmp_path) -> None:
    """`dvc repro` reads the committed params.yaml: it must equal what DVC composes from conf/pipeline.yaml."""
    from stylegan_v.params import REPO, write_params

    fresh = write_params([], tmp_path / "params.yaml")
    assert yaml.safe_load(fresh.read_text()) == yaml.safe_load((REPO / "params.yaml").read_text()), \
        "params.yaml is stale: run `python -m stylegan_v.params`"


def test_params_yaml_is_retyped_with_validation(tmp_path) -> None:
    """Stages run on params.yaml (`--config-name params`): its values are checked like a fresh composition."""
    from omegaconf import OmegaConf

    from stylegan_v.params import write_params

    cfg = OmegaConf.load(write_params(["training.batch_size=0"], tmp_path / "params.yaml"))
    with pytest.raises(ValueError, match=r"training\.batch_size"):
        validate(cfg)


def test_a_dataset_prepared_with_other_settings_is_refused_before_training(compose, tmp_path) -> None:
    """Prepared at 32² with 8 frames, asked for 64² with 12: refused on the login node naming each key with both
    values, not trained on; prepared again when the config asks for it (dataset.on_mismatch=prepare)."""
    from stylegan_v import prepare
    from stylegan_v.data.build import DatasetMismatch
    from stylegan_v.data.video_dataset import VideoDataset

    common = ("experiment=smoke", f"paths.data_dir={tmp_path}", "dataset.num_videos=4")
    small = compose(*common, "dataset.resolution=32", "dataset.video_length=8")
    prepare.ensure_prepared(small)
    prepare.ensure_prepared(small)  # matches: nothing to say
    larger = (*common, "dataset.resolution=64", "dataset.video_length=12")
    with pytest.raises(DatasetMismatch, match=r"^dataset moving_mnist_smoke \(.*\) was prepared with other settings: "
                                              r"dataset\.resolution prepared 32, configured 64; "
                                              r"dataset\.video_length prepared 8, configured 12\. "):
        prepare.ensure_prepared(compose(*larger))
    prepare.ensure_prepared(compose(*larger, "dataset.on_mismatch=prepare"))
    videos = VideoDataset(tmp_path / "moving_mnist_smoke")
    assert (videos.resolution, videos.video_length(0)) == (64, 12)


@pytest.mark.parametrize(("override", "key"), [("fps=nan", "fps"), ("fps=-1", "fps"), ("truncation_psi=nan", "truncation_psi"),
                                               ("start=inf", "start")])
def test_generate_refuses_values_that_would_write_garbage(override: str, key: str) -> None:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from stylegan_v.configs import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf"), version_base="1.3"):
        cfg = hydra_compose("generate", overrides=["checkpoint=x.pt", override])
    with pytest.raises(ValueError, match=f"^{key} "):
        OmegaConf.to_object(cfg)
