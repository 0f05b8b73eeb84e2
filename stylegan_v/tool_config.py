"""Schemas of the stand-alone tools: ``generate`` (its own primary config, ``conf/generate.yaml``) and the
options of ``profile`` (``+profile.<key>=…`` on the main config)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from stylegan_v.checks import require, require_one_of

GENERATE_MODES = ("independent", "same_content", "same_motion", "manipulate_appearance", "manipulate_motion",
                  "motion_switch")


@dataclass
class GenerateConfig:
    checkpoint: str = MISSING  # checkpoint-*.pt, or a run directory (its best, else newest, checkpoint)
    out: str = "generated.mp4"  # mp4 path; beside it, <name>.png: a few frames of each video, one row per video
    num_frames: int = 128  # frames per video
    fps: float | None = None  # output frame rate; None = the training data's; higher = finer time steps
    start: float = 0.0  # time of the first frame, in training frames
    num_videos: int = 1  # videos tiled side by side
    # "independent", "same_content" (one z, several motions), "same_motion"; latent analysis (one row per code
    # set, num_videos unused): "manipulate_appearance" / "manipulate_motion" (dimension `dim` swept over
    # `values`), "motion_switch" (two sampled sets, then the same two with their motions swapped)
    mode: str = "independent"
    seed: int = 0
    truncation_psi: float = 1.0  # 1 = no truncation
    chunk: int = 16  # frames per forward pass: memory depends on this, not on num_frames
    classes: list[int] | None = None  # conditional models: class ids given to the videos in turn; None = all
    dim: int = 0  # manipulate_*: the code dimension swept; must be below the model's code size
    values: list[float] = field(default_factory=lambda: [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])  # one row each
    device: str = "auto"

    def __post_init__(self) -> None:
        for key in ("num_frames", "num_videos", "chunk"):
            require(getattr(self, key) >= 1, key, "must be >= 1", getattr(self, key))
        require(self.fps is None or (math.isfinite(self.fps) and self.fps > 0), "fps", "must be > 0 or null", self.fps)
        require(math.isfinite(self.truncation_psi), "truncation_psi", "must be a finite number (1 = none)",
                self.truncation_psi)
        require(math.isfinite(self.start) and self.start >= 0, "start", "must be a finite time >= 0", self.start)
        require_one_of(self.mode, GENERATE_MODES, "mode")
        require(self.dim >= 0, "dim", "must be >= 0", self.dim)
        require(len(self.values) >= 1 and all(math.isfinite(v) for v in self.values), "values",
                "must be a non-empty list of finite numbers", self.values)


@dataclass
class ProfileOptions:
    batch_size: int = 2  # videos per batch
    device: str = "cpu"  # cpu | cuda
    repeats: int = 3  # timed repeats after one warm-up; the median is reported
    max_time_diff: int = 32  # frame times of a video: sorted, span up to this many frames

    def __post_init__(self) -> None:
        for key in ("batch_size", "repeats", "max_time_diff"):
            require(getattr(self, key) >= 1, f"profile.{key}", "must be >= 1", getattr(self, key))
        require_one_of(self.device, ("cpu", "cuda"), "profile.device")


def register(cs: ConfigStore) -> None:
    cs.store(name="generate_schema", node=GenerateConfig)
    cs.store(name="profile_schema", node=ProfileOptions)
