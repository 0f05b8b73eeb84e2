"""Prepare a dataset: ``python -m stylegan_v.prepare dataset=<name> [dataset.source=<raw download>]``.

Writes ``<paths.data_dir>/<dataset.name>`` (or ``.zip``) in the format of :mod:`stylegan_v.data.format`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from stylegan_v.checks import require
from stylegan_v.cli import entry_point
from stylegan_v.configs import register_configs
from stylegan_v.data.config import DatasetConfig

if TYPE_CHECKING:  # decoding and the dataset format are imported where used: --help answers at once
    from stylegan_v.data.video_dataset import VideoDataset

log = logging.getLogger(__name__)

register_configs()


def run(cfg: DictConfig) -> dict[str, Any]:
    """Build the dataset named by ``cfg.dataset`` under ``cfg.paths.data_dir``; returns the build summary."""
    from stylegan_v.data.build import build_dataset

    dataset = OmegaConf.to_object(cfg.dataset)  # runs the range checks of DatasetConfig.__post_init__
    assert isinstance(dataset, DatasetConfig), type(dataset)
    settings = OmegaConf.to_container(cfg.dataset, resolve=True)
    summary = build_dataset(settings, Path(cfg.paths.data_dir))
    log.info("prepare %s: %s", dataset.name, json.dumps(summary))
    return summary


def ensure_prepared(cfg: DictConfig) -> None:
    """Prepare ``cfg.dataset`` unless it already is, and check that a prepared one matches the config: the one
    preparation path of ``train`` and sweeps (a sweep prepares once on the submitting side, before its points
    could race for it), run before anything is queued."""
    from stylegan_v.data.video_dataset import VideoDataset, resolve_dataset_path

    try:
        path = resolve_dataset_path(f"{cfg.paths.data_dir}/{cfg.dataset.name}")
    except FileNotFoundError:
        log.info("dataset %s is not prepared yet: preparing it first", cfg.dataset.name)
        run(cfg)
        return
    check_matches_config(VideoDataset(path), cfg)


def check_matches_config(videos: VideoDataset, cfg: DictConfig) -> None:
    """A dataset prepared earlier with other settings would fail deep inside training; say so now."""
    again = ("prepare it again (python -m stylegan_v.prepare dataset=<option> ..., which replaces it) or give "
             "this variant its own dataset.name")
    wanted = {"dataset.resolution": (int(cfg.dataset.resolution), videos.resolution),
              "dataset.grayscale": (bool(cfg.dataset.get("grayscale", False)), videos.channels == 1)}
    for key, (configured, prepared) in wanted.items():
        require(configured == prepared, key, f"does not match the prepared dataset {videos.path} (prepared: "
                f"{prepared}); {again}", configured)


@entry_point("prepare")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
