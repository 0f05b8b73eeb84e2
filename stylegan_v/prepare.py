"""Prepare a dataset: ``python -m stylegan_v.prepare dataset=<name> [dataset.source=<raw download>]``.

Builds a version of ``<paths.data_dir>/<dataset.name>`` (or ``.zip``) in the format of
:mod:`stylegan_v.data.format` and publishes it there (:mod:`stylegan_v.data.versions`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stylegan_v.cli import entry_point, type_groups
from stylegan_v.configs import as_schema, register_configs
from stylegan_v.data.config import DatasetConfig

log = logging.getLogger(__name__)

register_configs()


def settings_of(cfg: DictConfig) -> dict[str, Any]:
    """The dataset section as plain settings, after its schema's checks (the name rule among them), for a config
    composed from ``conf/`` and for DVC's untyped ``params.yaml`` alike."""
    settings = OmegaConf.to_container(cfg.dataset, resolve=True)
    as_schema(DatasetConfig, settings)  # runs the range checks of DatasetConfig.__post_init__
    return settings


def run(cfg: DictConfig) -> dict[str, Any]:
    """Build the dataset named by ``cfg.dataset`` under ``cfg.paths.data_dir``; returns the build summary."""
    from stylegan_v.data.build import build_dataset

    summary = build_dataset(settings_of(cfg), Path(cfg.paths.data_dir))
    log.info("prepare %s: %s", cfg.dataset.name, json.dumps(summary))
    return summary


def ensure_prepared(cfg: DictConfig) -> None:
    """Prepare ``cfg.dataset`` unless it already is, and check that the prepared one was built with this config's
    settings (refused naming what differs, or prepared again with ``dataset.on_mismatch=prepare``): the one
    preparation path of ``train`` and sweeps (a sweep prepares once on the submitting side, before its points
    could race for it), run before anything is queued. The job checks again when it starts."""
    from stylegan_v.data.build import open_prepared

    open_prepared(settings_of(cfg), Path(cfg.paths.data_dir), build_missing=True).close()


def check(cfg: DictConfig) -> None:
    """What a plain ``prepare`` refuses before it starts: the config's checks, and a target that is not ours."""
    from stylegan_v.data.versions import check_target  # the dataset format: not needed for --help

    type_groups(cfg)
    check_target(Path(cfg.paths.data_dir), cfg.dataset.name)


@entry_point("prepare", check=check)
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
