"""Appendix numbers pinned as defaults and in the built modules; composition and registry errors."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import ConfigCompositionException

from stylegan_v.models.config import (
    MotionKind,
    PeriodScheme,
    StyleGANVConfig,
    TimeCond,
    to_model_config,
)
from stylegan_v.models.registry import MODELS, build_models


def test_appendix_defaults() -> None:
    cfg = StyleGANVConfig()
    assert (cfg.mapping.z_dim, cfg.mapping.w_dim, cfg.motion.code_dim, cfg.motion.embed_dim) == (512,) * 4
    assert (cfg.mapping.num_layers, cfg.mapping.lr_multiplier) == (2, 0.01)
    m = cfg.motion
    assert (m.kind, m.kernel_size, m.num_layers, m.code_distance) == (MotionKind.acyclic, 11, 2, 16)
    assert (m.period_scheme, m.omega_min, m.omega_max) == (PeriodScheme.linear, 2.0**3, 2.0**10)
    s, d = cfg.synthesis, cfg.discriminator
    assert (s.channel_base, s.channel_max, s.conv_clamp, s.num_fp16_res) == (16384, 512, 256.0, 4)
    assert (d.channel_base, d.channel_max, d.conv_clamp, d.concat_res) == (16384, 512, 256.0, 16)
    assert d.time_cond == TimeCond.projection
    assert (cfg.num_frames, cfg.resolution) == (3, 256)


def test_built_default_model_pins_appendix_numbers() -> None:
    torch.manual_seed(0)
    G, D = build_models(StyleGANVConfig(), 256, 3)
    # fmaps 0.5: channel_base 16384 -> 512 up to 32x32, then halving to 64 at 256x256 (fmaps 1.0 would give 128)
    assert G.synthesis.channels == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64}
    assert [b.is_fp16 for b in G.synthesis.blocks] == [False, False, False, True, True, True, True]  # top 4
    fm = G.motion.layers[0].mapping
    assert len(fm.convs) == 2
    assert all(c.weight.shape[-1] == 11 and c.padding == 0 for c in fm.convs)
    assert fm.num_noise_codes(7) == 7 + 20
    assert fm.convs[0].weight.shape[:2] == (512, 512) and fm.convs[1].weight.shape[:2] == (512, 512)
    assert len(G.mapping.layers) == 2 and all(layer.weight_gain == pytest.approx(0.01 / 512**0.5)
                                              for layer in G.mapping.layers)
    assert G.synthesis.blocks[0].conv1.weight.shape[1] == 512 + 512  # v_t concatenated to the 4x4 constant
    assert G.synthesis.blocks[0].conv1.conv_clamp == 256.0
    # D: per frame down to 16x16 (256 -> 16 is 4 blocks), k = 3 feature maps concatenated there
    assert len(D.frame_blocks) == 4 and len(D.video_blocks) == 2
    assert D.video_blocks[0].conv0.weight.shape[1] == 3 * 512


def test_compose_every_model_option(compose) -> None:
    for name in MODELS:
        cfg = compose(f"model={name}")
        assert cfg.model.name == name
        assert type(to_model_config(cfg.model)).__name__ in ("StyleGANVConfig", "G3ANConfig")
    assert to_model_config(compose("model=mocogan_sg2").model).motion.kind == MotionKind.lstm


def test_unknown_option_fails_at_compose_naming_valid_ones(compose) -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose("model=stylegan_v", "model.motion.period_scheme=cosine")
    assert "linear, geometric, exponential, random" in str(err.value.__cause__)
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
