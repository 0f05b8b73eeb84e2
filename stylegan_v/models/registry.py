"""Model registry: one builder per name; ``build_models`` is what the training loop, profile and generate call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from stylegan_v.models.config import (
    G3ANConfig,
    G3ANVariant,
    MotionKind,
    StyleGANVConfig,
    check_resolution,
    to_model_config,
)
from stylegan_v.models.discriminator import Discriminator
from stylegan_v.models.g3an import G3ANAppendixGenerator, G3ANDiscriminator, G3ANGenerator
from stylegan_v.models.g3an_code import G3ANCodeGenerator
from stylegan_v.models.generator import Generator
from stylegan_v.models.mocogan import MoCoGANDiscriminator, MoCoGANGenerator

Builder = Callable[[Any, int, int], tuple[nn.Module, nn.Module]]


def _build_stylegan_v(cfg: StyleGANVConfig, resolution: int, num_frames: int) -> tuple[nn.Module, nn.Module]:
    return Generator(cfg, resolution, num_frames), Discriminator(cfg.discriminator, resolution, num_frames, cfg.c_dim,
                                                          cfg.img_channels)


def _build_mocogan_sg2(cfg: StyleGANVConfig, resolution: int, num_frames: int) -> tuple[nn.Module, nn.Module]:
    if cfg.motion.kind not in (MotionKind.lstm, MotionKind.lstm_ema):
        raise ValueError(f"mocogan_sg2 needs model.motion.kind=lstm (or lstm_ema), got {cfg.motion.kind.value!r}")
    return MoCoGANGenerator(cfg, resolution, num_frames), MoCoGANDiscriminator(cfg, resolution, num_frames)


def _build_g3an(cfg: G3ANConfig, resolution: int, num_frames: int) -> tuple[nn.Module, nn.Module]:
    if resolution != 64:
        raise ValueError(f"g3an generates 64x64 videos (Table 1); got resolution {resolution}")
    G: G3ANGenerator
    if cfg.g3an_variant == G3ANVariant.code:  # the public code's generator (the default)
        G = G3ANCodeGenerator(cfg, num_frames)
    elif cfg.g3an_variant == G3ANVariant.appendix:
        G = G3ANAppendixGenerator(cfg, num_frames)
    else:
        raise ValueError(f"unknown model.g3an_variant {cfg.g3an_variant!r}; valid: {[v.value for v in G3ANVariant]}")
    return G, G3ANDiscriminator(cfg, num_frames)


MODELS: dict[str, tuple[type, Builder]] = {
    "stylegan_v": (StyleGANVConfig, _build_stylegan_v),
    "mocogan_sg2": (StyleGANVConfig, _build_mocogan_sg2),
    "g3an": (G3ANConfig, _build_g3an),
}


def build_models(cfg_model: Any, resolution: int, num_frames: int) -> tuple[nn.Module, nn.Module]:
    """(G, D) for ``cfg.model`` (DictConfig or dataclass) at the dataset's resolution and k frames per video."""
    name = cfg_model.name if hasattr(cfg_model, "name") else cfg_model["name"]
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {sorted(MODELS)}")
    schema, builder = MODELS[name]
    cfg = to_model_config(cfg_model)
    if not isinstance(cfg, schema):
        raise TypeError(f"model {name!r} needs a {schema.__name__}, got {type(cfg).__name__}")
    check_resolution(resolution, "resolution")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return builder(cfg, resolution, num_frames)
