"""The official training recipe: hyper-parameters pinned, kimg counted in frames, labels reaching G and D."""

from __future__ import annotations

from collections import defaultdict

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
    # The paper's runs: ADA speed 100 kimg and no EMA ramp-up (the official launcher's `resume: ~`).
    assert (t.ema_kimg * t.batch_size / 32, t.ema_rampup, t.mirror, t.cond) == (20.0, None, True, False)
    a = t.augment
    assert (a.mode, a.target, a.interval, a.speed_kimg, a.video_consistent) == ("ada", 0.6, 4, 100.0, True)
    assert (cfg.dataset.sampling.num_frames, cfg.dataset.sampling.max_dist, cfg.dataset.sampling.max_num_frames) == (
        3, 32, 1024)


def test_stylegan2_ada_defaults_are_a_named_option(compose) -> None:
    """training=paper_ada_defaults: ADA 500 kimg and the 0.05 EMA ramp-up, every other key as training=paper."""
    paper, other = (OmegaConf.to_container(compose("experiment=ffs_256", *extra).training)
                    for extra in ([], ["training=paper_ada_defaults"]))
    assert (other["augment"]["speed_kimg"], other["ema_rampup"]) == (500.0, 0.05)
    other["augment"]["speed_kimg"], other["ema_rampup"] = paper["augment"]["speed_kimg"], paper["ema_rampup"]
    assert other == paper


@pytest.mark.parametrize("rampup", [None, 0.05])
def test_ema_half_life_with_and_without_the_rampup(tiny_cfg, tmp_path, rampup) -> None:
    """p_ema <- p + beta (p_ema - p), beta = 0.5 ** (batch / half-life); the ramp-up caps the half-life at
    rampup x frames seen, so after the first step G_ema is almost G with it and still almost the initial G_ema
    without it (the paper's runs)."""
    cfg = tiny_cfg("training.num_workers=0", "training.ema_kimg=10", f"training.ema_rampup={rampup or 'null'}")
    trainer = Trainer(cfg, tmp_path / "run", SINGLE)
    before = [p.detach().clone() for p in trainer.G_ema.parameters()]
    trainer.train_step(defaultdict(list))
    B, nimg = trainer.tcfg.batch_size, trainer.progress.nimg
    half_life = 10 * 1000 * B / 32 if rampup is None else min(10 * 1000 * B / 32, nimg * rampup)
    beta = 0.5 ** (B / half_life)
    assert (beta > 0.99) if rampup is None else (beta < 0.01)
    for old, ema, p in zip(before, trainer.G_ema.parameters(), trainer.G.parameters()):
        # one lerp in float32: a rounding of each of its two terms, |p| and |old| at most
        torch.testing.assert_close(ema, p + beta * (old - p), atol=4 * 2**-24 * float(old.abs().max() + p.abs().max()),
                                   rtol=0)


def test_ada_statistic_gathers_the_d_and_the_r1_phase(tiny_cfg, tmp_path) -> None:
    """As the official loss reports the real logits' signs in the D and the R1 phase, ADA steers by their
    mean over both since its last adjustment."""
    cfg = tiny_cfg("training.num_workers=0", "training.batch_size=4", "training.r1_interval=2",
                   "training.augment.interval=2", "training.augment.p=0.3", "training.max_steps=4")
    trainer = Trainer(cfg, tmp_path / "run", SINGLE)
    signs: list[tuple[int, str, float]] = []  # (step, phase, mean sign of the real logits)
    steered: list[tuple[int, float]] = []
    accumulate, adjust = trainer.loss.accumulate_gradients, trainer.augment.adjust

    def observe_phase(phase, *args, **kwargs):
        out = accumulate(phase, *args, **kwargs)
        if "D/real_sign" in out:
            signs.append((trainer.progress.step, phase, float(out["D/real_sign"])))
        return out

    def observe_adjust(sign_mean, *args):
        steered.append((trainer.progress.step, sign_mean))
        return adjust(sign_mean, *args)

    trainer.loss.accumulate_gradients, trainer.augment.adjust = observe_phase, observe_adjust
    assert trainer.run() == "finished"
    assert [phase for _, phase, _ in signs] == ["D", "Dreg", "D", "D", "Dreg", "D"]  # R1 on steps 0 and 2
    assert [step for step, _ in steered] == [2, 4]
    d_only = []
    for (step, value), window in zip(steered, ([0, 1], [2, 3])):
        pooled = [s for st, _, s in signs if st in window]
        assert len(pooled) == 3 and value == pytest.approx(sum(pooled) / 3, abs=1e-6)
        d_only.append(sum(s for st, phase, s in signs if st in window and phase == "D") / 2)
    assert [value for _, value in steered] != pytest.approx(d_only)  # the R1 phase's signs made a difference


def test_optimisers_steps_and_kimg_follow_the_official_loop(tiny_cfg, tmp_path) -> None:
    cfg = tiny_cfg("training.max_steps=3", "training.num_workers=0")
    trainer = Trainer(cfg, tmp_path / "run", SINGLE)
    g, d = trainer.opt_G.param_groups[0], trainer.opt_D.param_groups[0]
    assert g["lr"] == pytest.approx(0.0025 * 4 / 5) and g["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5)))
    assert d["lr"] == pytest.approx(0.0025 * 16 / 17) and d["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert trainer.loss.r1_gamma == pytest.approx(0.0002 * 32**2 / 2)  # resolution 32, batch 2
    assert trainer._loader.dataset.mirror and trainer._loader.dataset.max_num_frames == 1024  # the official window
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
