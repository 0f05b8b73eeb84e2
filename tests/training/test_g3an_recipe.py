"""G3AN trains with its own recipe inside our loop: two discriminators on their own losses, plain Adam, no
R1/ADA/EMA, the public trainer's order (the D step, then the G step on the same fake clips, one G forward per
step), clips of 16 frames at a stride of 2 or 3, and, when conditional, the one-hot class reaching G and both Ds."""

from __future__ import annotations

import pytest
import torch
from tiny_config import TINY_G3AN

from stylegan_v import prepare
from stylegan_v.launch.distributed import DistributedEnv
from stylegan_v.models.config import G3ANConfig
from stylegan_v.models.g3an import G3ANDiscriminator, G3ANGenerator
from stylegan_v.models.registry import build_models
from stylegan_v.training.g3an_loss import G3ANLoss
from stylegan_v.training.loop import Trainer

SINGLE = DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")


def _tiny(num_classes: int = 0) -> tuple[G3ANGenerator, G3ANDiscriminator]:
    cfg = G3ANConfig(base_channels=32, d_channels=8, za_dim=16, zm_dim=4, num_classes=num_classes, attention_after=1)
    return build_models(cfg, 64, 16)  # type: ignore[return-value]


def _grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


def test_each_discriminator_learns_from_its_own_loss_only() -> None:
    """Changing the video D leaves the image D's gradients exactly as they were (and the other way round):
    each D's gradient comes from its own loss term alone."""
    torch.manual_seed(0)
    G, D = _tiny()
    G.eval(), D.eval()  # spectral norm's power iteration stays put, so two passes see the same weights
    loss = G3ANLoss(G, D)
    real = torch.rand(2, 16, 3, 64, 64) * 2 - 1
    t = torch.arange(16.0)[None].expand(2, -1)
    z = torch.randn(2, G.z_dim)

    def d_phase() -> tuple[list[torch.Tensor], list[torch.Tensor], dict]:
        D.zero_grad(set_to_none=False)
        for p in D.parameters():
            p.grad = torch.zeros_like(p)
        torch.manual_seed(1)  # same frames for the image D
        stats = loss.accumulate_gradients("D", real, t, z, t)
        return _grads(D.video), _grads(D.image), stats

    video_a, image_a, stats = d_phase()
    assert stats["loss/D"] == pytest.approx(float(stats["loss/D_video"] + stats["loss/D_image"]))
    assert all(g.abs().sum() > 0 for g in video_a + image_a), "both Ds receive gradients"
    with torch.no_grad():
        D.video.net[-1].weight_orig.mul_(3.0)  # another video D ...
    video_b, image_b, _ = d_phase()
    assert all(torch.equal(a, b) for a, b in zip(image_a, image_b)), "... the image D's gradients do not move"
    assert not all(torch.equal(a, b) for a, b in zip(video_a, video_b))
    with torch.no_grad():
        D.image.net[-1].weight_orig.mul_(3.0)  # another image D ...
    video_c, _, _ = d_phase()
    assert all(torch.equal(b, c) for b, c in zip(video_b, video_c)), "... the video D's gradients do not move"
    with pytest.raises(ValueError, match="valid: D, G"):
        loss.accumulate_gradients("Dreg", real, t, z, t)


def test_g_phase_scores_the_d_phase_clip_with_the_updated_discriminators() -> None:
    """The G phase's gradient is that of the D phase's fake clip (same z, same image-D frame) scored by the Ds as
    they are after their step; a z the D phase did not see is refused."""
    torch.manual_seed(0)
    G, D = _tiny()
    G.eval(), D.eval()  # deterministic passes, so the expected gradient can be recomputed
    loss = G3ANLoss(G, D)
    real = torch.rand(2, 16, 3, 64, 64) * 2 - 1
    t = torch.arange(16.0)[None].expand(2, -1)
    z = torch.randn(2, G.z_dim)
    with pytest.raises(RuntimeError, match="D phase before it"):
        loss.accumulate_gradients("G", real, t, z, t)
    loss.accumulate_gradients("D", real, t, z, t)
    (_, kept, _, frame), = loss._kept
    with torch.no_grad():  # "the D step": both Ds move before G is scored
        for p in D.parameters():
            p.add_(0.01 * torch.randn_like(p))
    G.zero_grad(set_to_none=True)
    D.requires_grad_(False)
    with pytest.raises(RuntimeError, match="D phase before it"):
        loss.accumulate_gradients("G", real, t, z.clone(), t)  # equal values, but not the D phase's codes
    stats = loss.accumulate_gradients("G", real, t, z, t)
    got = _grads(G)
    assert not loss._kept
    G.zero_grad(set_to_none=True)
    fresh = G(z, t)
    torch.testing.assert_close(fresh, kept)
    logits = D.streams(fresh, frame=frame)
    expected_loss = torch.nn.functional.softplus(-logits["video"]).mean() + torch.nn.functional.softplus(
        -logits["image"]).mean()
    expected_loss.backward()
    torch.testing.assert_close(stats["loss/G"], expected_loss.detach())
    for a, b in zip(got, _grads(G)):
        torch.testing.assert_close(a, b)


@pytest.fixture
def g3an_cfg(compose, tiny_data, tmp_path):
    def _cfg(*overrides: str):
        cfg = compose("experiment=smoke", "+sweep/baselines=g3an", *TINY_G3AN, f"paths.data_dir={tiny_data}",
                      f"paths.runs_dir={tmp_path / 'runs'}", f"tracking.tracking_uri=sqlite:///{tmp_path / 'db'}",
                      "dataset.name=mnist_g3an", "dataset.num_videos=8", "dataset.video_length=48",
                      "dataset.sampling.mode=random_stride",
                      "dataset.label_from=digit", "training.batch_size=2", "training.num_workers=0",
                      "training.max_steps=2", "training.sample_grid=[1,2]", *overrides)
        if not (tiny_data / cfg.dataset.name / "dataset.json").exists():
            prepare.run(cfg)
        return cfg
    return _cfg


def test_recipe_optimisers_and_no_ema(g3an_cfg, tmp_path) -> None:
    trainer = Trainer(g3an_cfg(), tmp_path / "run", SINGLE)
    assert isinstance(trainer.loss, G3ANLoss) and trainer.augment is None
    for opt in (trainer.opt_G, trainer.opt_D):  # Adam 2e-4, (0.5, 0.999), no lazy-regularisation scaling
        (group,) = opt.param_groups
        assert group["lr"] == pytest.approx(2e-4) and group["betas"] == pytest.approx((0.5, 0.999))
    assert trainer.run() == "finished"
    for p, q in zip(trainer.G.state_dict().values(), trainer.G_ema.state_dict().values()):
        assert torch.equal(p, q), "no EMA: G_ema is G"


def test_a_step_is_d_then_g_on_the_same_fake_clips(g3an_cfg, tmp_path) -> None:
    """Per step: one G forward per micro-batch; the D step shows the video D the real clip, then that fake clip;
    the G step shows it the very same clip (equal tensors) after the D step changed the Ds; real clips come from
    G3AN's random-stride sampling (tests/data/test_data_sampling_g3an.py checks which frames)."""
    trainer = Trainer(g3an_cfg("training.batch_size=4", "training.batch_per_rank=2", "training.max_steps=1"),
                      tmp_path / "run", SINGLE)
    assert trainer.num_micro == 2 and trainer._loader.dataset.mode == "random_stride"
    generated: list[torch.Tensor] = []
    video_d: list[tuple[torch.Tensor, torch.Tensor]] = []  # (input clip [B, C, T, H, W], first weight at the call)
    trainer.G.register_forward_hook(lambda m, i, o: generated.append(o.detach().clone()))
    first = trainer.D.video.net[0]
    trainer.D.video.register_forward_hook(lambda m, i, o: video_d.append((i[0].detach().clone(),
                                                                          first.weight.detach().clone())))
    batches = trainer._batches
    seen_real: list[torch.Tensor] = []

    def recording() -> object:
        for batch in batches:
            seen_real.append(batch["frames"])
            assert torch.equal(batch["times"], torch.arange(16.0).expand(4, -1))  # clip frames 0..15
            yield batch
    trainer._batches = recording()
    assert trainer.run() == "finished"
    assert len(generated) == 2, "G runs forward once per micro-batch, in the D step only"
    # D step: real 0, fake 0, real 1, fake 1; G step: fake 0, fake 1
    assert len(video_d) == 6
    d_step, g_step = video_d[:4], video_d[4:]
    for mb in range(2):
        fake_in_d, weight_in_d = d_step[2 * mb + 1]
        fake_in_g, weight_in_g = g_step[mb]
        assert torch.equal(fake_in_d, generated[mb].transpose(1, 2))
        assert torch.equal(fake_in_g, fake_in_d), "the G step scores the D step's fake clip"
        assert not torch.equal(weight_in_g, weight_in_d), "... with the video D after its step"
    real = seen_real[0].float() / 127.5 - 1  # [B, 16, C, H, W] uint8 -> [-1, 1]
    torch.testing.assert_close(d_step[0][0], real[:2].transpose(1, 2))


def test_a_recipe_that_does_not_match_the_model_is_refused(compose) -> None:
    from stylegan_v.configs import validate

    with pytest.raises(ValueError, match="training.recipe must be g3an exactly when model=g3an"):
        validate(compose("experiment=smoke", "model=g3an", "dataset.resolution=64"))


def test_conditional_g3an_feeds_c_to_g_and_both_discriminators(g3an_cfg, tmp_path) -> None:
    trainer = Trainer(g3an_cfg("training.cond=true"), tmp_path / "run", SINGLE)
    classes = trainer.num_classes
    assert classes >= 2 and trainer.G.c_dim == classes
    seen: dict[str, list[torch.Tensor]] = {"G": [], "video": [], "image": []}
    trainer.G.block1.conv_t.register_forward_hook(lambda m, i, o: seen["G"].append(i[0]))  # G_M of module 1
    trainer.D.video.net[0].register_forward_hook(lambda m, i, o: seen["video"].append(i[0]))
    trainer.D.image.net[0].register_forward_hook(lambda m, i, o: seen["image"].append(i[0]))
    assert trainer.run() == "finished"
    zm = trainer.G.cfg.zm_dim
    for x in seen["G"]:  # [B, zm + classes, 1, 1, 1]: the one-hot class follows z_m into the motion stream
        onehot = x[:, zm:, 0, 0, 0]
        assert onehot.shape[1] == classes and torch.equal(onehot.sum(dim=1), torch.ones(len(x)))
    for name in ("video", "image"):
        assert seen[name], f"the {name} D ran"
        for x in seen[name]:  # [B, C + classes, ...]: constant one-hot planes after the colour channels
            planes = x[:, trainer.G.img_channels:]
            assert planes.shape[1] == classes
            flat = planes.flatten(2)
            assert torch.equal(flat.amax(dim=2), flat.amin(dim=2)) and torch.equal(flat[:, :, 0].sum(1), torch.ones(len(x)))
