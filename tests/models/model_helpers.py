"""Tiny StyleGAN-V configs for fast CPU tests (channel widths shrunk; every other number as in the paper).

A plain module (not conftest.py) so test modules can import it by name.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from stylegan_v.models.config import StyleGANVConfig, to_model_config

TINY = [
    "resolution=32",
    "synthesis.channel_base=256",
    "synthesis.channel_max=16",
    "discriminator.channel_base=256",
    "discriminator.channel_max=16",
    "discriminator.cmap_dim=32",
    "mapping.z_dim=32",
    "mapping.w_dim=32",
    "motion.noise_dim=32",
    "motion.code_dim=32",
    "motion.embed_dim=32",
]


def tiny_config(*overrides: str) -> StyleGANVConfig:
    """StyleGANVConfig with TINY widths and the given dotlist overrides, validated like a composed config."""
    node = OmegaConf.merge(OmegaConf.structured(StyleGANVConfig), OmegaConf.from_dotlist([*TINY, *overrides]))
    return to_model_config(node)  # type: ignore[return-value]
