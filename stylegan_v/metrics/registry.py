"""Named metrics: the name states the protocol (StyleGAN-V's names), the spec holds its numbers."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from stylegan_v.metrics.cache import WeightsUnavailable
from stylegan_v.metrics.fid import compute_fid
from stylegan_v.metrics.fvd import FakeGenerator, FVDProtocol, I3DFeatureExtractor, compute_fvd, fvd_floor
from stylegan_v.metrics.inception import preprocessing_resize_mode
from stylegan_v.metrics.isv import compute_isv
from stylegan_v.metrics.video_source import VideoSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # fvd | fid | isv
    num_videos: int  # N (fake videos; real videos up to N for FVD)
    num_frames: int  # frames per video/clip
    subsample: int = 1  # every s-th frame
    description: str = ""


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("fvd2048_16f", "fvd", 2048, 16, 1, "FVD_16, StyleGAN-V's protocol"),
        MetricSpec("fvd2048_128f", "fvd", 2048, 128, 1, "FVD_128: long clips expose motion quality"),
        MetricSpec("fvd2048_128f_subsample8f", "fvd", 2048, 16, 8, "16 frames, every 8th: a 128-frame window (StyleGAN-V naming)"),
        MetricSpec("fvd256_16f", "fvd", 256, 16, 1, "reduced FVD_16 for CPU runs (not comparable to the paper)"),
        MetricSpec("fid50k_full", "fid", 3125, 16, 1, "FID as StyleGAN-V computes it: 50 000 fake frames (3125 videos x t = 0..15) vs every real frame"),
        MetricSpec("fid2048_16f", "fid", 2048, 16, 1, "FID, the paper text's reading: 2048 videos x 16 frames (32 768 fakes) vs every real frame"),
        MetricSpec("isv2048_ucf", "isv", 2048, 16, 1, "video Inception Score with C3D (UCF-101), 10 splits of the shuffled videos"),
    )
}


def get_metric(name: str) -> MetricSpec:
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; valid: {', '.join(METRICS)}")
    return METRICS[name]


def protocol_for(spec: MetricSpec, cfg: Any, seed: int) -> FVDProtocol:
    """The spec's numbers with the config's protocol switches and N override (``cfg`` is a MetricsConfig).

    FID records carry FID's own resize (the one of ``fid_preprocessing``), so the written protocol says what was
    computed.
    """
    return FVDProtocol(
        num_videos=cfg.num_videos or spec.num_videos,
        num_frames=spec.num_frames,
        subsample=cfg.subsample or spec.subsample,
        video_selection=cfg.video_selection,
        real_selection=cfg.real_selection,
        still_frame=cfg.still_frame,
        fake_selection=cfg.fake_selection,
        fake_jpeg_quality=cfg.fake_jpeg_quality,
        pre_resize=cfg.pre_resize,
        pre_resize_mode=cfg.pre_resize_mode,
        resize_mode=preprocessing_resize_mode(cfg.fid_preprocessing) if spec.kind == "fid" else cfg.resize_mode,
        covariance=cfg.covariance,
        repeat_real=cfg.repeat_real,
        seed=seed,
    )


@dataclass
class Detectors:
    """Loads each detector once per evaluation, on first use."""

    cfg: Any  # MetricsConfig
    cache_dir: Path
    _loaded: dict[str, torch.nn.Module] = field(default_factory=dict)

    def get(self, kind: str) -> torch.nn.Module:
        if kind not in self._loaded:
            if kind == "fvd":
                from stylegan_v.metrics.i3d import load_i3d

                self._loaded[kind] = load_i3d(self.cfg.device, cache_dir=self.cache_dir)
            elif kind == "fid":
                from stylegan_v.metrics.inception import load_fid_inception

                self._loaded[kind] = load_fid_inception(self.cfg.inception_weights, self.cache_dir, self.cfg.device, self.cfg.fid_preprocessing)
            elif kind == "isv":
                from stylegan_v.metrics.c3d import load_c3d

                self._loaded[kind] = load_c3d(self.cfg.c3d_weights, self.cache_dir, self.cfg.device)
            else:
                raise ValueError(f"unknown detector kind {kind!r}; valid: fvd, fid, isv")
        return self._loaded[kind]


def _extractor(protocol: FVDProtocol, cfg: Any, model: torch.nn.Module) -> I3DFeatureExtractor:
    return I3DFeatureExtractor(model, resize_mode=protocol.resize_mode, pre_resize=protocol.pre_resize,
                               pre_resize_mode=protocol.pre_resize_mode, batch_size=cfg.batch_size, device=cfg.device,
                               progress=cfg.progress)


def run_floor(name: str, real: VideoSource, cfg: Any, detectors: Detectors, seed: int) -> dict:
    """The FVD floor of metric ``name`` on ``real`` (held-out real clips against the real statistics, same
    protocol); a record like :func:`run_metric`'s, status "unavailable" when it cannot be measured."""
    spec = get_metric(name)
    if spec.kind != "fvd":
        raise ValueError(f"{name} is not an FVD metric: only FVD has a held-out floor")
    protocol = protocol_for(spec, cfg, seed)
    record: dict[str, Any] = {"metric": name, "kind": "fvd_floor", "protocol": asdict(protocol)}
    try:
        value, held_out = fvd_floor(real, protocol, _extractor(protocol, cfg, detectors.get("fvd")), detectors.cache_dir)
    except (WeightsUnavailable, ValueError) as err:
        log.warning("%s floor unavailable: %s", name, err)
        return {**record, "status": "unavailable", "value": None, "message": str(err)}
    return {**record, "status": "ok", "value": value, "num_held_out": held_out}


def run_metric(name: str, real: VideoSource, fake: VideoSource | FakeGenerator, cfg: Any, detectors: Detectors, seed: int) -> dict:
    """One metric as a JSON-ready record; missing detector weights give status "unavailable", never a number."""
    spec = get_metric(name)
    protocol = protocol_for(spec, cfg, seed)
    reduced = cfg.reduced or protocol.num_videos < spec.num_videos or (spec.kind == "fid" and cfg.max_real_frames is not None)
    record: dict[str, Any] = {"metric": name, "kind": spec.kind, "reduced": bool(reduced), "protocol": asdict(protocol)}
    try:
        model = detectors.get(spec.kind)
    except WeightsUnavailable as err:
        log.error("%s unavailable: %s", name, err)
        return {**record, "status": "unavailable", "value": None, "message": str(err)}
    if spec.kind == "fvd":
        res = compute_fvd(real, fake, protocol, _extractor(protocol, cfg, model), repeats=cfg.repeats,
                          cache_dir=detectors.cache_dir)
        return {**record, "status": "ok", "value": res.mean, "std": res.std, "values": res.values, "num_real": res.num_real, "num_fake": res.num_fake}
    elif spec.kind == "fid":
        value, n_real, n_fake = compute_fid(real, fake, protocol, model, cfg.max_real_frames, batch_size=8 * cfg.batch_size,
                                            cache_dir=detectors.cache_dir, progress=cfg.progress)
        return {**record, "status": "ok", "value": value, "num_real": n_real, "num_fake": n_fake, "max_real_frames": cfg.max_real_frames,
                "preprocessing": cfg.fid_preprocessing}
    elif spec.kind == "isv":
        mean, std, n = compute_isv(fake, protocol, model, splits=cfg.is_splits, batch_size=cfg.batch_size, progress=cfg.progress)
        return {**record, "status": "ok", "value": mean, "std": std, "num_fake": n, "splits": cfg.is_splits}
    else:
        raise ValueError(f"unknown metric kind {spec.kind!r}; valid: fvd, fid, isv")
