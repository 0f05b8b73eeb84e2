"""The official training recipe: hyper-parameters pinned, kimg counted in frames, labels reaching G and D."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from stylegan_v.launch.distributed import DistributedEnv
from stylegan_v.training import checkpoint
from stylegan_v.training.config import TrainingConfig
from stylegan_v.training.loop import Trainer

SINGLE = DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")


def test_official_recipe_is_the_default(compose) -> None:
    """StyleGAN2-ADA's "auto" settings as the official code derives them for a 256² run at batch 64."""
    cfg = compose("experiment=ffs_256")
    t: TrainingConfig = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainingConfig), cfg.training))
    assert (t.batch_size, t.total_kimg, t.kimg_per_tick, t.snapshot_ticks) == (64, 25000.0, 5.0, 200)
    assert (t.learning_rate(t.lr_g, 256), t.learning_rate(t.lr_d, 256), t.learning_rate(None, 1024)) == (
        0.0025, 0.0025, 0.002)
    assert (t.betas, t.eps, t.g_reg_interval, t.r1_interval) == ([0.0, 0.99], 1e-8, 4, 16)
    assert t.gamma(256) == pytest.approx(0.2048) and t.gamma(1024) == pytest.approx(3.2768)
    assert (t.ema_kimg * t.batch_size / 32, t.ema_rampup, t.mirror, t.cond) == (20.0, 0.05, True, False)
    a = t.augment
    assert (a.mode, a.target, a.interval, a.speed_kimg, a.video_consistent) == ("ada", 0.6, 4, 500.0, True)
    assert (cfg.dataset.sampling.num_frames, cfg.dataset.sampling.max_dist, cfg.dataset.sampling.max_num_frames) == (
        3, 32, 1024)


def test_optimisers_steps_and_kimg_follow_the_official_loop(tiny_cfg, tmp_path) -> None:
    cfg = tiny_cfg("training.max_steps=3", "training.num_workers=0")
    trainer = Trainer(cfg, tmp_path / "run", SINGLE)
    g, d = trainer.opt_G.param_groups[0], trainer.opt_D.param_groups[0]
    assert g["lr"] == pytest.approx(0.0025 * 4 / 5) and g["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5)))
    assert d["lr"] == pytest.approx(0.0025 * 16 / 17) and d["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert trainer.loss.r1_gamma == pytest.approx(0.0002 * 32**2 / 2)  # resolution 32, batch 2
    assert trainer._loader.dataset.mirror
    assert trainer.run() == "finished"
    assert trainer.progress.nimg == 3 * 2 * 3  # steps x videos x frames: kimg counts frames


def _labelled(tiny_cfg, *overrides: str):
    return tiny_cfg("dataset.name=mnist_digits", "dataset.label_from=digit", "training.num_workers=0", *overrides)


def test_labels_reach_g_and_d_in_a_conditional_run(tiny_cfg, tmp_path) -> None:
    cfg = _labelled(tiny_cfg, "training.cond=true", "training.max_steps=2")
    trainer = Trainer(cfg, tmp_path / "run", SINGLE)
    classes = len(trainer.videos.manifest["label_names"])
    assert classes >= 2 and trainer.num_classes == classes and trainer.cfg.model.c_dim == classes
    seen: dict[str, list[torch.Tensor]] = {"G": [], "D": [], "motion": []}
    trainer.G.mapping.embed_c.register_forward_hook(lambda m, i, o: seen["G"].append(i[0]))
    trainer.G.motion.layers[0].mapping.register_forward_hook(lambda m, i, o: seen["motion"].append(i[0]))
    trainer.D.mapping.register_forward_hook(lambda m, i, o: seen["D"].append(i[0]))
    assert trainer.run() == "finished"
    for c in seen["G"]:  # one-hot classes into G's mapping
        assert c.shape[1] == classes and torch.equal(c.sum(dim=1), torch.ones(len(c)))
    assert all(x.shape[-1] == 32 + classes for x in seen["motion"])  # ... into every motion noise row
    assert all(x.shape[1] == classes + 2 * (256 + 20) for x in seen["D"])  # ... and into D beside the Δt codes
    real_classes = torch.cat([x[:, :classes] for x in seen["D"]]).argmax(dim=1)
    assert real_classes.unique().numel() >= 2
    assert len(seen["G"]) >= 2 and len(seen["D"]) >= 4
    path = trainer.save_checkpoint()
    assert checkpoint.read(path)["config"]["model"]["c_dim"] == classes  # G rebuilds conditional


def test_a_conditional_model_without_cond_is_refused(tiny_cfg, tmp_path) -> None:
    with pytest.raises(ValueError, match="training.cond=true"):
        Trainer(_labelled(tiny_cfg, "model.c_dim=3"), tmp_path / "run", SINGLE)
    with pytest.raises(ValueError, match="has no class label"):
        Trainer(tiny_cfg("training.cond=true", "training.num_workers=0"), tmp_path / "run2", SINGLE)
