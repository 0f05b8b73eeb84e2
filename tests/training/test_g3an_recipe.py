"""G3AN trains with its own recipe inside our loop: two discriminators on their own losses, plain Adam, no
R1/ADA/EMA, and, when conditional, the one-hot class reaching G and both Ds."""

from __future__ import annotations

import pytest
import torch

from stylegan_v import prepare
from stylegan_v.launch.distributed import DistributedEnv
from stylegan_v.models.config import G3ANConfig
from stylegan_v.models.g3an import G3ANDiscriminator, G3ANGenerator
from stylegan_v.training.g3an_loss import G3ANLoss
from stylegan_v.training.loop import Trainer

SINGLE = DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")
TINY_G3AN = ["model.base_channels=32", "model.d_channels=8", "model.za_dim=16", "model.zm_dim=4"]


def _tiny(num_classes: int = 0) -> tuple[G3ANGenerator, G3ANDiscriminator]:
    cfg = G3ANConfig(base_channels=32, d_channels=8, za_dim=16, zm_dim=4, num_classes=num_classes)
    return G3ANGenerator(cfg, 16), G3ANDiscriminator(cfg, 16)


def _grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


def test_each_discriminator_learns_from_its_own_loss_only() -> None:
    """Changing the video D leaves the image D's gradients exactly as they were (and the other way round):
    each D's gradient comes from its own loss term alone."""
    torch.manual_seed(0)
    G, D = _tiny()
    D.eval()  # spectral norm's power iteration stays put, so two passes see the same weights
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
    with pytest.raises(ValueError, match="valid: G, D"):
        loss.accumulate_gradients("Dreg", real, t, z, t)


@pytest.fixture
def g3an_cfg(compose, tiny_data, tmp_path):
    def _cfg(*overrides: str):
        cfg = compose("experiment=smoke", "+sweep/baselines=g3an", *TINY_G3AN, f"paths.data_dir={tiny_data}",
                      f"paths.runs_dir={tmp_path / 'runs'}", f"tracking.tracking_uri=sqlite:///{tmp_path / 'db'}",
                      "dataset.name=mnist_g3an", "dataset.num_videos=8", "dataset.video_length=16",
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


def test_a_recipe_that_does_not_match_the_model_is_refused(compose) -> None:
    from stylegan_v.configs import validate

    with pytest.raises(ValueError, match="training.recipe must be g3an exactly when model=g3an"):
        validate(compose("experiment=smoke", "model=g3an", "dataset.resolution=64"))


def test_conditional_g3an_feeds_c_to_g_and_both_discriminators(g3an_cfg, tmp_path) -> None:
    trainer = Trainer(g3an_cfg("training.cond=true"), tmp_path / "run", SINGLE)
    classes = trainer.num_classes
    assert classes >= 2 and trainer.G.c_dim == classes
    seen: dict[str, list[torch.Tensor]] = {"G": [], "video": [], "image": []}
    trainer.G.motion.layers[0].register_forward_hook(lambda m, i, o: seen["G"].append(i[0]))
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
