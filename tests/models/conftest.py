"""Fixtures of the models room: tiny StyleGAN-V configs (see model_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from model_helpers import tiny_config

from stylegan_v.models.config import StyleGANVConfig


@pytest.fixture
def tiny() -> Callable[..., StyleGANVConfig]:
    """``tiny(*dotlist)`` -> a validated tiny StyleGANVConfig."""
    return tiny_config
