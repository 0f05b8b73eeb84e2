"""TrackingConfig: ranges name the key, the store resolves as documented, the Hydra group composes."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from stylegan_v.tracking.config import DEFAULT_TRACKING_URI, TrackingConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"log_every_ticks": 0}, "tracking.log_every_ticks"),
    ({"request_timeout_s": 0}, "tracking.request_timeout_s"),
    ({"request_max_retries": 11}, "tracking.request_max_retries"),
    ({"step_unit": "frames"}, "tracking.step_unit"),
    ({"experiment": ""}, "tracking.experiment"),
    ({"tracking_uri": " "}, "tracking.tracking_uri"),
])
def test_ranges_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        TrackingConfig(**kwargs)


def test_uri_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert TrackingConfig().resolved_uri() == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert TrackingConfig().resolved_uri() == "http://tracking.example:5000"
    assert TrackingConfig(tracking_uri="sqlite:///x.db").resolved_uri() == "sqlite:///x.db"  # config wins


def test_step_units() -> None:
    assert TrackingConfig().step_for(12_345) == 12  # kimg, floored
    assert TrackingConfig(step_unit="img").step_for(12_345) == 12_345
    with pytest.raises(ValueError):
        TrackingConfig().step_for(-1)


def _tracking_override(option: str) -> str:
    """`+tracking=…` until the lead adds the group to the root defaults list, `tracking=…` after."""
    import yaml

    defaults = yaml.safe_load((REPO / "conf" / "config.yaml").read_text())["defaults"]
    listed = any(isinstance(d, dict) and "tracking" in d for d in defaults)
    return f"tracking={option}" if listed else f"+tracking={option}"


def test_group_composes_and_validates(compose) -> None:
    cfg = compose(_tracking_override("mlflow"), "tracking.step_unit=img")
    tracking = OmegaConf.to_object(cfg.tracking)
    assert isinstance(tracking, TrackingConfig)
    assert tracking.step_unit == "img" and tracking.experiment == "stylegan-v" and tracking.tracking_uri is None
    bad = compose(_tracking_override("mlflow"), "tracking.log_every_ticks=0")
    with pytest.raises(ValueError, match="tracking.log_every_ticks"):
        OmegaConf.to_object(bad.tracking)
