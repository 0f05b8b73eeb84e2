"""Typed ``metrics`` configs: which metrics, which protocol switches (Table 4), what to compare.

Defaults follow StyleGAN-V's official evaluation code; the paper-text reading stays
reachable through the named switches. Every switch that changes a number is a field here and is written next
to each result, so a reported FVD always says how it was computed. Ranges are checked in ``__post_init__``
(run by :func:`stylegan_v.configs.validate`), naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from stylegan_v.checks import section
from stylegan_v.metrics.options import (
    COVARIANCES,
    METRICS,
    PRE_RESIZE_MODES,
    PREPROCESSINGS,
    REPEAT_REAL,
    RESIZE_MODES,
    SELECTIONS,
    STILL_FRAMES,
    VIDEO_SELECTIONS,
)

_require = section("metrics")


@dataclass
class MetricsConfig:
    """What ``python -m stylegan_v.evaluate`` computes, and against what."""

    names: list[str] = field(default_factory=lambda: ["fvd2048_16f"])  # metric names (stylegan_v.metrics.options.METRICS)
    reduced: bool = False  # True when num_videos / max_real_frames cut the paper protocol (recorded with results)
    num_videos: int | None = None  # override every metric's N (CPU runs); None = the N in the metric's name
    repeats: int = 1  # FVD repeats with seeds seed + r -> mean ± std
    # FVD protocol (defaults = StyleGAN-V's official code; the other values = Table 4 rows or the paper-text reading):
    video_selection: str = "first"  # first N videos in name order among long-enough ones | random: N drawn at random
    real_selection: str = "random_offset"  # clips per real video: random_offset | all | first | still
    still_frame: str = "any"  # frame a still clip repeats: any (random frame of the video) | clip_start
    fake_selection: str = "first"  # for fakes read from a video set: first = from t = 0
    subsample: int | None = None  # 8 = Table 4 "subsampling s = 8" (both sides); null = as the metric's name says
    fake_jpeg_quality: int | None = None  # Pillow JPEG round trip of generated frames: null = none; 95; 75 = Table 4
    pre_resize: int | None = None  # 128 = Table 4 "resized to 128²" (PyTorch bilinear); null = off
    pre_resize_mode: str = "roundtrip"  # roundtrip (down, back up, uint8) | direct (down, then to 224²)
    resize_mode: str = "torch"  # FVD resize to 224²: torch (F.interpolate bilinear, the reference) | tf1 (TensorFlow FVD)
    covariance: str = "population"  # FVD and FID statistics: population (divide by N, the official code) | unbiased (N - 1)
    repeat_real: str = "fixed"  # real statistics across repeats: fixed (reused) | redraw (new offsets per repeat)
    fid_preprocessing: str = "nvidia"  # FID Inception input: nvidia (TF1 bilinear, (p - 128) / 128; official) | pytorch_fid
    max_real_frames: int | None = None  # FID real side: null = all real frames (official); N = a seeded choice of N
    is_splits: int = 10  # Inception Score splits (of the videos shuffled with RandomState(42), as the official code)
    batch_size: int = 2  # clips per detector forward
    device: str = "auto"  # auto = cuda when available, else cpu; or any torch device string
    progress: bool = True  # tqdm bars during feature extraction
    # Detector weights that no reachable registry has (path, else env var, else <cache_dir>/weights/<file>):
    inception_weights: str | None = None  # pt_inception-2015-12-05-6726825d.pth
    c3d_weights: str | None = None  # c3d_ucf101.pth
    # What to compare:
    # Real video set; null = the checkpoint's training dataset under paths.data_dir (its saved dataset.name), else
    # ${paths.data_dir}/${dataset.name}.
    real: str | None = None
    fake: str | None = None  # fake video set (prepared dataset folder or a folder of videos)
    checkpoint: str | None = None  # generator checkpoint, used with generator_loader instead of `fake`
    generator_loader: str | None = None  # "module:function"; (checkpoint, device) -> (num_videos, num_frames, seed, step) -> videos
    output_dir: str | None = None  # metrics.json + metric-<name>.jsonl; null = next to the checkpoint / fake set
    # Names an evaluation of its own (the options of conf/metrics/table4/, Table 4's protocol rows; table5/'s
    # real_videos): written with every record, its own folder eval-<variant> under the default output dir, its
    # own MLflow key metrics/<name>/<variant>.
    variant: str | None = None

    def __post_init__(self) -> None:
        _require(len(self.names) > 0, "names", "must list at least one metric", self.names)
        _require(self.num_videos is None or self.num_videos >= 2, "num_videos", "must be >= 2 or null", self.num_videos)
        _require(self.repeats >= 1, "repeats", "must be >= 1", self.repeats)
        _require(self.subsample is None or self.subsample >= 1, "subsample", "must be >= 1 or null", self.subsample)
        for key, valid in (("video_selection", VIDEO_SELECTIONS), ("real_selection", SELECTIONS), ("still_frame", STILL_FRAMES),
                           ("fake_selection", SELECTIONS), ("pre_resize_mode", PRE_RESIZE_MODES), ("resize_mode", RESIZE_MODES),
                           ("covariance", COVARIANCES), ("repeat_real", REPEAT_REAL), ("fid_preprocessing", PREPROCESSINGS)):
            _require(getattr(self, key) in valid, key, f"must be one of {', '.join(valid)}", getattr(self, key))
        _require(self.fake_jpeg_quality is None or 1 <= self.fake_jpeg_quality <= 100, "fake_jpeg_quality", "must be in [1, 100] or null", self.fake_jpeg_quality)
        _require(self.pre_resize is None or self.pre_resize >= 8, "pre_resize", "must be >= 8 or null", self.pre_resize)
        _require(self.max_real_frames is None or self.max_real_frames >= 2, "max_real_frames", "must be >= 2 or null", self.max_real_frames)
        _require(self.is_splits >= 1, "is_splits", "must be >= 1", self.is_splits)
        _require(self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)
        _require(self.variant is None or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", self.variant) is not None,
                 "variant", "must be a plain name (letters, digits, _ . -) or null", self.variant)
        _require(self.fake is None or self.checkpoint is None, "fake", "and metrics.checkpoint are exclusive", (self.fake, self.checkpoint))
        _require(self.checkpoint is None or bool(self.generator_loader), "generator_loader", "is required with metrics.checkpoint", self.generator_loader)
        if self.device == "auto":
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"

        unknown = [n for n in self.names if n not in METRICS]
        _require(not unknown, "names", f"has unknown metrics {unknown}; valid: {', '.join(METRICS)}", self.names)


def register(cs: ConfigStore) -> None:
    cs.store(group="metrics", name="base_metrics", node=MetricsConfig)
