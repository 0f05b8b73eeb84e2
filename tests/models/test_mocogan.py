"""MoCoGAN+SG2 as the StyleGAN-V authors ran it: v_t from the LSTM through a 2-layer mapping, concatenated to w;
StyleGAN2's image D per frame plus MoCoGAN's 3-D video D at a tenth of the learning rate; 16 consecutive frames."""

from __future__ import annotations

import pytest
import torch
from model_helpers import tiny_config
from numerics import fan_in, reorder_tolerance, weighted_layers

from stylegan_v import prepare
from stylegan_v.launch.distributed import DistributedEnv
from stylegan_v.models.mocogan import MoCoGANDiscriminator, MoCoGANGenerator
from stylegan_v.models.registry import build_models
from stylegan_v.training.loop import Trainer, _lazy_adam

SINGLE = DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")
MOCOGAN = ("name=mocogan_sg2", "motion.kind=lstm", "motion.code_distance=1", "resolution=64")
K = 16  # the official runs' clip length (and the least the 3-D D takes without time padding)


def _models(resolution: int = 64, *overrides: str) -> tuple[MoCoGANGenerator, MoCoGANDiscriminator]:
    G, D = build_models(tiny_config(*MOCOGAN, *overrides), resolution, K)
    assert isinstance(G, MoCoGANGenerator) and isinstance(D, MoCoGANDiscriminator)
    return G, D


def _times(B: int) -> torch.Tensor:
    return torch.arange(K, dtype=torch.float32)[None] + torch.arange(B, dtype=torch.float32)[:, None] * 3


def test_forward_shapes_and_backprop() -> None:
    torch.manual_seed(0)
    G, D = _models()
    t = _times(2)
    video = G(torch.randn(2, G.z_dim), t)
    assert video.shape == (2, K, 3, 64, 64) and torch.isfinite(video).all()
    streams = D.heads(video, t)
    assert streams["image"].shape == (2, K) and streams["video"].shape == (2, 1)  # 64²: one patch
    logits = D(video, t)
    assert logits.shape == (2, 1)
    torch.nn.functional.softplus(-logits).mean().backward()
    for module in (G.mapping, G.motion.lstm, G.motion.mapping, G.synthesis, D.image, D.video):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert D.extra_losses() == {} and G.extra_losses() == {}


def test_video_d_is_mocogans_at_256() -> None:
    """Two extra 3x3x3 convs at exactly 256², batch norm after all but the first conv, no biases, 13x13 patches."""
    _, D = _models(256)
    convs = [m for m in D.video.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 1]
    assert all(c.bias is None for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in D.video.modules()) == 5
    assert D.video.num_patches == 13 * 13


def test_video_d_refuses_clips_it_cannot_take() -> None:
    with pytest.raises(ValueError, match="16 consecutive frames"):
        build_models(tiny_config(*MOCOGAN), 64, 3)
    with pytest.raises(ValueError, match=">= 64²"):
        build_models(tiny_config(*MOCOGAN), 32, K)
    build_models(tiny_config(*MOCOGAN, "mocogan.video_d_time_paddings=4"), 64, 8)  # padding in time: fewer frames


def test_video_d_trains_at_a_tenth_of_the_learning_rate() -> None:
    _, D = _models()
    opt = _lazy_adam(D, 0.0025, [0.0, 0.99], 1e-8, 16)
    image, video = opt.param_groups
    assert image["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert video["lr"] == pytest.approx(0.1 * 0.0025 * 16 / 17)
    assert {id(p) for p in image["params"]} == {id(p) for p in D.image.parameters()}
    assert {id(p) for p in video["params"]} == {id(p) for p in D.video.parameters()}
    assert len(image["params"]) + len(video["params"]) == len(list(D.parameters()))


def test_lstm_code_reaches_every_style_through_the_2_layer_mapping() -> None:
    """u_t (LSTM width) -> 2 FC layers -> v_t; every affine (ToRGB included) reads [w, v_t]: w_dim + v_dim."""
    torch.manual_seed(0)
    G, _ = _models()
    w_dim, code_dim, v_dim = G.cfg.mapping.w_dim, G.cfg.motion.code_dim, G.cfg.motion.embed_dim
    assert len(G.motion.mapping.layers) == 2
    seen: dict[str, list[torch.Tensor]] = {"lstm": [], "mapping": [], "affine": []}
    G.motion.lstm.register_forward_hook(lambda m, i, o: seen["lstm"].append(o[0]))
    G.motion.mapping.register_forward_hook(lambda m, i, o: seen["mapping"].append(o))
    G.motion.mapping.layers[0].register_forward_hook(lambda m, i, o: seen["mapping"].append(i[0]))
    affines = [m for m in G.synthesis.modules() if hasattr(m, "affine")]
    assert affines and all(m.affine.weight.shape[1] == w_dim + v_dim for m in affines)
    for m in affines:
        m.affine.register_forward_hook(lambda m, i, o: seen["affine"].append(i[0]))
    B = 2
    z = torch.randn(B, G.z_dim)
    G(z, _times(B))
    assert seen["lstm"][0].shape[-1] == code_dim
    first_in, v = seen["mapping"]  # the first layer's input (forward hooks fire inner first), then v_t
    assert first_in.shape == (B * K, code_dim) and v.shape == (B * K, v_dim)
    w = G.mapping(z).repeat_interleave(K, dim=0)
    assert len(seen["affine"]) == len(affines)
    for x in seen["affine"]:
        assert x.shape == (B * K, w_dim + v_dim)
        torch.testing.assert_close(x, torch.cat([w, v], dim=1))
    assert not torch.allclose(v[0], v[1]), "v_t changes from frame to frame"


def test_video_d_sees_the_k_frames_of_the_clip() -> None:
    torch.manual_seed(0)
    _, D = _models()
    seen = []
    D.video.main[1].register_forward_hook(lambda m, i, o: seen.append(i[0]))  # the first 3-D conv (after noise)
    video = torch.randn(2, K, 3, 64, 64)
    D.video.main[0].sigma = 0.0  # no input noise, to compare the frames exactly
    D(video, _times(2))
    (clip,) = seen
    assert clip.shape == (2, 3, K, 64, 64)
    torch.testing.assert_close(clip, video.transpose(1, 2))


@pytest.fixture
def mocogan_cfg(compose, tmp_path_factory, tmp_path):
    data = tmp_path_factory.mktemp("data")

    def _cfg(*overrides: str):
        cfg = compose("experiment=smoke", "+sweep/baselines=mocogan_sg2", f"paths.data_dir={data}",
                      f"paths.runs_dir={tmp_path / 'runs'}", f"tracking.tracking_uri=sqlite:///{tmp_path / 'db'}",
                      "model.synthesis.channel_max=16", "model.discriminator.channel_max=16",
                      "model.discriminator.cmap_dim=16", "model.mocogan.video_d_channels=8",
                      "dataset.name=mnist_mocogan", "dataset.num_videos=4", "dataset.video_length=20",
                      "training.batch_size=2", "training.num_workers=0", "training.max_steps=1",
                      "training.r1_interval=1", "training.sample_grid=[1,2]", *overrides)
        prepare.run(cfg)
        return cfg
    return _cfg


def test_one_training_step_on_consecutive_clips(mocogan_cfg, tmp_path) -> None:
    trainer = Trainer(mocogan_cfg(), tmp_path / "run", SINGLE)
    assert isinstance(trainer.G, MoCoGANGenerator) and isinstance(trainer.D, MoCoGANDiscriminator)
    assert trainer.opt_D.param_groups[1]["lr"] == pytest.approx(0.1 * trainer.opt_D.param_groups[0]["lr"])
    seen: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
    heads = trainer.D.heads

    def recording(video: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = heads(video, t, c)
        seen.append((t, out))
        return out

    trainer.D.heads = recording  # the loss reaches D through its heads
    clips = []
    trainer.D.video.register_forward_hook(lambda m, i, o: clips.append(i[0]))
    assert trainer.run() == "finished"
    assert len(seen) >= 4  # G, D fake, D real, R1
    for t, logits in seen:
        assert t.shape[1] == K and torch.equal(t[:, 1:] - t[:, :-1], torch.ones_like(t[:, 1:])), "consecutive"
        assert logits["image"].shape == (len(t), K) and logits["video"].shape[0] == len(t)
    assert all(c.shape[2] == K for c in clips)
    assert trainer.progress.nimg == 2 * K


def test_each_head_has_its_own_softplus_terms_and_r1_reaches_the_image_head_only() -> None:
    """The official loss: softplus of the image logits and of the video patch logits, R1 of the image head; the
    video D gets no gradient in the R1 phase, so Adam leaves it alone there."""
    import torch.nn.functional as F

    from stylegan_v.training.loss import VideoGANLoss

    torch.manual_seed(0)
    G, D = _models()
    D.eval()  # batch norm on running statistics and ...
    for module in D.video.modules():
        if hasattr(module, "sigma"):
            module.sigma = 0.0  # ... no input noise: two passes give the same logits
    loss = VideoGANLoss(G, D, None, r1_gamma=1.0)
    real = torch.rand(2, K, 3, 64, 64) * 2 - 1
    t, z = _times(2), torch.randn(2, G.z_dim)
    G.requires_grad_(False)
    stats = loss.accumulate_gradients("D", real, t, z, t)
    with torch.no_grad():
        fake = G(z, t)
        heads_fake, heads_real = D.heads(fake, t), D.heads(real, t)
    expected = sum(F.softplus(heads_fake[h]).mean() + F.softplus(-heads_real[h]).mean() for h in ("image", "video"))
    # the loss may run D in another batch layout: fp32 rounding of D's layers (numerics.py) in each of the four
    # softplus means (1-Lipschitz), at the magnitude of the frames D reads
    tolerance = 4 * reorder_tolerance(fan_in(D), weighted_layers(D), max(real.abs().max(), fake.abs().max()))
    assert float(stats["loss/D"]) == pytest.approx(float(expected), rel=0, abs=tolerance)
    D.zero_grad(set_to_none=True)
    loss.accumulate_gradients("Dreg", real, t, z, t)
    assert all(p.grad is None for p in D.video.parameters()), "R1 is on the image head only"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in D.image.parameters())
