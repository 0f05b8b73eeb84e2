"""The official implementation's numbers pinned as defaults and in the built modules; composition and registry errors."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import ConfigCompositionException

from stylegan_v.models.config import (
    MotionKind,
    PeriodScheme,
    StyleGANVConfig,
    TimeCond,
    WaveCode,
    to_model_config,
)
from stylegan_v.models.generator import count_params
from stylegan_v.models.registry import MODELS, build_models


def test_official_defaults() -> None:
    cfg = StyleGANVConfig()
    assert (cfg.mapping.z_dim, cfg.mapping.w_dim, cfg.motion.code_dim, cfg.motion.embed_dim) == (512,) * 4
    assert (cfg.mapping.num_layers, cfg.mapping.lr_multiplier) == (2, 0.01)
    m = cfg.motion
    assert (m.kind, m.kernel_size, m.num_layers, m.lr_multiplier) == (MotionKind.acyclic, 11, 2, 0.01)
    assert (m.period_scheme, m.omega_min, m.omega_max) == (PeriodScheme.geometric, 16.0, 1024.0)
    assert (m.code_distance, m.distance) == (None, 16)  # the code distance follows the shortest period
    assert (m.amplitude_head, m.wave_code) == (False, WaveCode.left)
    s, d = cfg.synthesis, cfg.discriminator
    assert (s.channel_base, s.channel_max, s.conv_clamp, s.num_fp16_res) == (16384, 512, 256.0, 4)
    assert (d.channel_base, d.channel_max, d.conv_clamp, d.concat_res) == (16384, 512, 256.0, 16)
    assert (d.num_frames_div_factor, d.mbstd_group_size, d.max_num_frames, d.time_embed_dim) == (2, 4, 1024, 256)
    assert (d.time_cond, d.cmap_dim, d.mapping_layers) == (TimeCond.projection, None, 2)
    assert (cfg.num_frames, cfg.resolution) == (3, 256)


def test_sky_timelapse_distance_follows_omega_min(compose) -> None:
    motion = to_model_config(compose("experiment=sky_256").model).motion
    assert (motion.omega_min, motion.distance) == (256.0, 256)


def test_built_default_model_pins_official_numbers() -> None:
    torch.manual_seed(0)
    G, D = build_models(StyleGANVConfig(), 256, 3)
    # fmaps 0.5: channel_base 16384 -> 512 up to 32x32, then halving to 64 at 256x256 (fmaps 1.0 would give 128)
    assert G.synthesis.channels == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64}
    assert [b.is_fp16 for b in G.synthesis.blocks] == [False, False, False, True, True, True, True]  # top 4
    fm = G.motion.layers[0].mapping
    assert len(fm.convs) == 2
    assert all(c.weight.shape[-1] == 11 and c.padding == 0 for c in fm.convs)
    assert all(c.weight_gain == pytest.approx(0.01 / (512 * 11) ** 0.5) and c.bias_gain == 0.01 for c in fm.convs)
    assert fm.num_noise_codes(7) == 7 + 20
    assert fm.convs[0].weight.shape[:2] == (512, 512) and fm.convs[1].weight.shape[:2] == (512, 512)
    assert G.motion.to_periods.bias is None and G.motion.to_phases.bias is None  # no bias on the wave heads
    assert G.motion.to_amplitudes is None and G.motion.layers[0].aligner.bias is None
    periods = G.motion.periods
    assert periods[0] == pytest.approx(1024.0) and periods[-1] == pytest.approx(16.0)  # longest first, geometric
    torch.testing.assert_close(G.motion.phase_scales, 1024.0 / periods)
    assert len(G.mapping.layers) == 2 and all(layer.weight_gain == pytest.approx(0.01 / 512**0.5)
                                              for layer in G.mapping.layers)
    assert G.synthesis.blocks[0].conv1.weight.shape[1] == 512 + 512  # v_t concatenated to the 4x4 constant
    assert G.synthesis.blocks[0].conv1.conv_clamp == 256.0
    # D: per frame down to 16x16 (256 -> 16 is 4 blocks); the last one halves its channels; k = 3 maps concatenated
    assert len(D.frame_blocks) == 4 and len(D.video_blocks) == 2
    assert D.frame_blocks[-1].conv1.weight.shape[0] == 256 and D.video_blocks[0].conv0.weight.shape[1] == 3 * 256
    # time differences: 1024 x 256 embedding + 10 log-spaced sin/cos pairs per difference, then a 2-layer mapping
    assert D.time_encoder.embed.weight.shape == (1024, 256) and D.time_encoder.freqs.numel() == 10
    assert D.mapping.embed.weight.shape == (512, 2 * (256 + 20)) and len(D.mapping.layers) == 2
    assert all(layer.weight_gain == pytest.approx(0.01 / 512**0.5) for layer in D.mapping.layers)


def test_parameter_counts_equal_the_official_model() -> None:
    """The official code's counts for its 256² StyleGAN-V (k = 3, unconditional)."""
    G, D = build_models(StyleGANVConfig(), 256, 3)
    assert (count_params(G), count_params(G.mapping), count_params(G.motion)) == (32_105_941, 525_312, 6_292_480)
    assert count_params(D) == 25_333_568


def test_conditional_model_takes_labels_in_mapping_motion_and_d(tiny) -> None:
    torch.manual_seed(0)
    cfg = tiny("c_dim=5")
    G, D = build_models(cfg, 32, 3)
    assert G.mapping.embed_c.weight.shape == (32, 5)
    assert G.motion.layers[0].mapping.convs[0].weight.shape[1] == 32 + 5  # c joins each motion noise row
    assert D.mapping.embed.weight.shape[1] == 5 + 2 * (256 + 20)
    z, t = torch.randn(2, 32), torch.tensor([[0.0, 3.0, 8.0]] * 2)
    c0 = torch.nn.functional.one_hot(torch.tensor([0, 0]), 5).float()
    c1 = torch.nn.functional.one_hot(torch.tensor([1, 1]), 5).float()
    assert not torch.allclose(G(z, t, c0), G(z, t, c1))
    video = torch.randn(2, 3, 3, 32, 32)
    assert not torch.allclose(D(video, t, c0), D(video, t, c1))
    with pytest.raises(AssertionError, match="conditional G needs c"):
        G(z, t)


def test_compose_every_model_option(compose) -> None:
    for name in MODELS:
        cfg = compose(f"model={name}")
        assert cfg.model.name == name
        assert type(to_model_config(cfg.model)).__name__ in ("StyleGANVConfig", "G3ANConfig")
    assert to_model_config(compose("model=mocogan_sg2").model).motion.kind == MotionKind.lstm


def test_unknown_option_fails_at_compose_naming_valid_ones(compose) -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose("model=stylegan_v", "model.motion.period_scheme=cosine")
    assert "geometric, linear, exponential, random" in str(err.value.__cause__)
    with pytest.raises(ConfigCompositionException, match="g3an"):
        compose("model=nope")


def test_range_errors_name_the_key(tiny) -> None:
    with pytest.raises(ValueError, match="model.motion.kernel_size must be odd"):
        tiny("motion.kernel_size=4")
    with pytest.raises(ValueError, match="model.motion.omega_min"):
        tiny("motion.omega_min=2048")
    with pytest.raises(ValueError, match="model.resolution"):
        tiny("resolution=48")


def test_registry_unknown_name_lists_valid(tiny) -> None:
    cfg = tiny()
    cfg.name = "biggan"
    with pytest.raises(ValueError, match=r"valid: \['g3an', 'mocogan_sg2', 'stylegan_v'\]"):
        build_models(cfg, 32, 3)
