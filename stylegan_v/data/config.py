"""Typed schema of the ``dataset`` config group.

One dataclass covers every recipe: a recipe reads the fields it needs and ignores the rest, so a YAML
option only states what differs from the defaults. Ranges are checked at compose time, naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from stylegan_v.checks import require, require_one_of

IMAGE_FORMATS = ("jpg", "png")
CROPS = ("center", "face", "mask", "mask_video")
MASK_CROPS = ("mask", "mask_video")  # FaceForensics' own mask videos (recipe faceforensics)
PATH_LABELS = ("parent_dir", "top_dir")  # where a label/speaker id is read from a video's relative path
SAMPLING_MODES = ("sparse", "consecutive", "random_stride")
ON_MISMATCH = ("refuse", "prepare")  # a prepared dataset built with other settings: refuse the run, or prepare again
# A dataset name is one plain folder name under paths.data_dir: no separator, no "..", not hidden (the files
# prepare keeps beside each dataset start with a dot), no control characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")
RESERVED_NAMES = ("stats",)  # paths.data_dir/stats holds the dataset statistics (python -m stylegan_v.data.stats)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a dataset name; None when it can."""
    if not NAME_PATTERN.fullmatch(name):
        return ("must be a plain folder name under paths.data_dir (letters, digits and _ . + -, not starting "
                "with . + or -, at most 128 characters)")
    if name in RESERVED_NAMES:
        return f"must not be {name!r} (paths.data_dir/{name} is reserved)"
    if name.lower().endswith(".zip"):
        return "must not end in .zip (paths.data_dir/<name>.zip is the packed dataset)"
    return None


@dataclass
class ClipSamplingConfig:
    """How training clips are drawn from a video (StyleGAN-V sparse sampling, MoCoGAN consecutive frames, G3AN's
    random stride: ``mode=random_stride``)."""

    mode: str = "sparse"  # "sparse": endpoints + random interior frames; "consecutive": k adjacent frames
    num_frames: int = 3  # k, frames per clip that D sees
    max_dist: int = 32  # largest span T (last index - first index) for sparse sampling
    # Allowed spans; None = powers of two 2, 4, ..., max_dist (the paper's {2, 4, 8, 16, 32}).
    spans: list[int] | None = None
    stride: int = 1  # consecutive mode only: step between frames
    # "random_stride" mode (G3AN's public code): k frames, each clip at a stride drawn uniformly from these
    strides: list[int] = field(default_factory=lambda: [2, 3])
    # A longer video is seen through a random window of this many frames: a real clip is drawn inside it (the
    # official loader's window; not in random_stride mode, G3AN's loader has none), a fake clip takes the video's
    # length capped here (official dataset.max_num_frames).
    max_num_frames: int = 1024

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"dataset.sampling.mode must be one of {SAMPLING_MODES}, got {self.mode!r}")
        if self.num_frames < 1:
            raise ValueError(f"dataset.sampling.num_frames must be >= 1, got {self.num_frames}")
        if self.max_dist < 1:
            raise ValueError(f"dataset.sampling.max_dist must be >= 1, got {self.max_dist}")
        if self.spans is not None and any(int(s) < 1 for s in self.spans):
            raise ValueError(f"dataset.sampling.spans must all be >= 1, got {list(self.spans)}")
        if self.stride < 1:
            raise ValueError(f"dataset.sampling.stride must be >= 1, got {self.stride}")
        if not self.strides or any(int(s) < 1 for s in self.strides):
            raise ValueError(f"dataset.sampling.strides must be a non-empty list of strides >= 1, got {list(self.strides)}")
        extent = (self.num_frames - 1) * self.stride + 1 if self.mode == "consecutive" else self.num_frames
        if self.max_num_frames < extent:
            raise ValueError(f"dataset.sampling.max_num_frames must be >= the {extent} frames a clip spans, "
                             f"got {self.max_num_frames}")


@dataclass
class DatasetConfig:
    """One dataset: how to build it from raw input (prepare) and how to read it (sampling)."""

    name: str = MISSING  # output folder name under paths.data_dir
    recipe: str = MISSING  # key in stylegan_v.data.recipes.RECIPES
    resolution: int = 256  # output frames are resolution x resolution (square)
    fps: float | None = None  # output frame rate; None = keep each video's native rate (frame folders: theirs)
    source: str | None = None  # raw input (file or folder); None = the recipe's built-in offline source
    image_format: str = "jpg"  # "jpg" (quality below) or "png" (lossless)
    grayscale: bool = False  # one channel (luma) per frame; G and D then have one colour channel too
    # Pillow JPEG quality. The paper datasets' options set 75, what their frames were: the official preprocessing
    # scripts pass `q=95` to Pillow's save, which ignores that keyword (it is `quality`) and writes its default 75.
    jpeg_quality: int = 95
    num_workers: int | None = None  # decode processes; None = min(cpus, 8); 0 = in-process (debug)
    zip: bool = False  # also pack the folder into <name>.zip and keep only the zip
    # A dataset already prepared under this name with other settings: "refuse" the run (naming what differs),
    # or "prepare" this config's version (published beside the other; runs reading that one keep it).
    on_mismatch: str = "refuse"
    # True: a dataset prepared at a higher resolution, with otherwise these settings, is read with every frame
    # downsampled to `resolution` (Pillow's Lanczos, antialiased: the filter prepare resizes with) instead of
    # being refused. A reading setting: the baselines that train at 64² read the same prepared data as the rest.
    resize_on_load: bool = False
    # Video-file recipes.
    extensions: list[str] = field(default_factory=lambda: [".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"])
    include: list[str] = field(default_factory=list)  # fnmatch patterns on relative paths; empty = all
    # "center" square crop; "face": one face-centred square per video (OpenCV's face detector); FaceForensics'
    # masks (recipe faceforensics): "mask", the face's square in each frame's mask (the official preprocessing),
    # or "mask_video", one box per video (its --wide_crop)
    crop: str = "center"
    face_margin: float = 1.8  # face crop: square side = margin x detected face size
    skip_frames: int = 0  # frames dropped at the start of every source video (RainbowJelly: 150)
    chunk_length: int | None = None  # slice each video into chunks of this many frames; None = whole video
    drop_partial: bool = True  # drop the trailing chunk shorter than chunk_length
    # Chunked recipes: split one source file into parallel tasks of this many chunks (seeking to a keyframe;
    # needs a constant native frame rate and no fps resampling); None = one task per file.
    segment_chunks: int | None = None
    min_frames: int = 1  # videos (or chunks) with fewer frames are rejected
    max_videos: int | None = None  # cap on source videos, in sorted order (quick subsets); None = all
    # Labels: "parent_dir" (UCF-101 class folders), "top_dir", or "digit" (Moving MNIST: the first digit's
    # class); None = no labels.
    label_from: str | None = None
    speaker_from: str | None = None  # same choices, for speaker ids (MEAD)
    # Moving MNIST.
    num_videos: int = 256
    video_length: int = 32
    digits_per_video: int = 2
    digit_size: int = 28
    seed: int = 0  # the dataset's own seed, so data do not change with the training seed
    # Reading.
    sampling: ClipSamplingConfig = field(default_factory=ClipSamplingConfig)

    def __post_init__(self) -> None:
        problem = name_problem(self.name)
        require(problem is None, "dataset.name", problem or "", self.name)
        require_one_of(self.on_mismatch, ON_MISMATCH, "dataset.on_mismatch")
        if self.resolution < 8:
            raise ValueError(f"dataset.resolution must be >= 8, got {self.resolution}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"dataset.fps must be > 0 or null, got {self.fps}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"dataset.image_format must be one of {IMAGE_FORMATS}, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"dataset.jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(f"dataset.num_workers must be >= 0 or null, got {self.num_workers}")
        if self.crop not in CROPS:
            raise ValueError(f"dataset.crop must be one of {CROPS}, got {self.crop!r}")
        if (self.recipe == "faceforensics") != (self.crop in MASK_CROPS):
            raise ValueError(f"dataset.crop must be one of {MASK_CROPS} with recipe faceforensics (and only with it), "
                             f"got {self.crop!r} with recipe {self.recipe!r}")
        if self.recipe == "faceforensics" and self.fps is not None:
            raise ValueError(f"dataset.fps must be null with recipe faceforensics (the native frame rate, as the "
                             f"official preprocessing), got {self.fps}")
        if self.face_margin < 1.0:
            raise ValueError(f"dataset.face_margin must be >= 1, got {self.face_margin}")
        if self.skip_frames < 0:
            raise ValueError(f"dataset.skip_frames must be >= 0, got {self.skip_frames}")
        if self.chunk_length is not None and self.chunk_length < 1:
            raise ValueError(f"dataset.chunk_length must be >= 1 or null, got {self.chunk_length}")
        if self.segment_chunks is not None and (self.segment_chunks < 1 or self.chunk_length is None):
            raise ValueError(
                f"dataset.segment_chunks must be >= 1 and needs dataset.chunk_length, got {self.segment_chunks}"
            )
        if self.min_frames < 1:
            raise ValueError(f"dataset.min_frames must be >= 1, got {self.min_frames}")
        if self.max_videos is not None and self.max_videos < 1:
            raise ValueError(f"dataset.max_videos must be >= 1 or null, got {self.max_videos}")
        for key in ("label_from", "speaker_from"):
            value = getattr(self, key)
            valid = PATH_LABELS + (("digit",) if key == "label_from" and self.recipe == "moving_mnist" else ())
            if value is not None and value not in valid:
                raise ValueError(f"dataset.{key} must be one of {valid} or null, got {value!r}")
        if self.num_videos < 1:
            raise ValueError(f"dataset.num_videos must be >= 1, got {self.num_videos}")
        if self.video_length < 1:
            raise ValueError(f"dataset.video_length must be >= 1, got {self.video_length}")
        if self.digits_per_video < 1:
            raise ValueError(f"dataset.digits_per_video must be >= 1, got {self.digits_per_video}")
        if self.recipe == "moving_mnist" and not 1 <= self.digit_size <= self.resolution:
            raise ValueError(
                f"dataset.digit_size must be in [1, dataset.resolution={self.resolution}], got {self.digit_size}"
            )


def register(cs: ConfigStore) -> None:
    """Store the schema that every ``conf/dataset/*.yaml`` option extends (``defaults: [base_dataset, _self_]``)."""
    cs.store(group="dataset", name="base_dataset", node=DatasetConfig)
