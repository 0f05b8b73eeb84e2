"""The one way a config value is refused: ``ConfigError`` naming the full key, the rule and the value.

Schemas call it from ``__post_init__`` (so a bad value fails while the config is typed, on the login node,
before anything is queued); :func:`stylegan_v.configs.validate` calls it for rules spanning groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class ConfigError(ValueError):
    """A config value out of range; the message is one line: ``<key> <rule>, got <value>``."""


def require(ok: bool, key: str, message: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}, got {value!r}")


def require_one_of(value: Any, valid: Iterable[Any], key: str) -> None:
    valid = tuple(valid)
    require(value in valid, key, f"must be one of {', '.join(map(str, valid))}", value)


def section(prefix: str) -> Callable[[bool, str, str, Any], None]:
    """``require`` with keys relative to a config group (``section("cluster")(ok, "nodes", ...)``)."""
    def check(ok: bool, key: str, message: str, value: Any) -> None:
        require(ok, f"{prefix}.{key}", message, value)
    return check
