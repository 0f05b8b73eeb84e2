"""Which frames D sees (training) and which clips the metrics use (evaluation).

Training picks a **video first, uniformly, then a clip inside it**, so SkyTimelapse's few very long
videos do not dominate; a video longer than ``max_num_frames`` (1024) is first cut to a random window of that
many frames, as the official loader does, and the clip is drawn inside the window. StyleGAN-V's sparse
sampling draws k frames: span T (last - first index) from
{1, 2, 4, ..., max_dist} limited to [k - 1, video length - 1], a random offset, both endpoints and
k - 2 sorted random interior frames. Times are returned in frames relative to the clip's first frame.
Fake clips for G (:func:`sample_fake_times`) follow the same rule on the length of a random training video,
at a fractional offset, so G learns real-valued times over the whole length of a real video. G3AN's public
code draws 16 frames at a random stride of 2 or 3 instead (:func:`sample_random_stride`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from stylegan_v.data.video_dataset import VideoDataset

EVAL_MODES = ("one_random_clip", "all_clips", "first_frames", "still_frames")


def default_spans(max_dist: int) -> list[int]:
    """Allowed spans: powers of two from 1 up to ``max_dist``; with k = 3 only {2, 4, 8, 16, 32} are >= k - 1."""
    spans, s = [], 1
    while s <= max_dist:
        spans.append(s)
        s *= 2
    return spans


def sample_sparse(
    length: int, num_frames: int, rng: np.random.Generator, max_dist: int = 32, spans: list[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices ``[k]`` (sorted, inside ``[0, length)``) and times ``[k]`` (frames since the first).

    If no allowed span fits (a video shorter than the smallest span but with >= k frames), the span is
    the whole video, so short videos still contribute; a video with fewer than k frames is an error.
    """
    k = num_frames
    if length < k:
        raise ValueError(f"video of {length} frames is shorter than the {k} frames requested")
    if k == 1:
        idx = np.array([rng.integers(length)], dtype=np.int64)
        return idx, np.zeros(1, dtype=np.float32)
    allowed = [s for s in (spans if spans is not None else default_spans(max_dist)) if k - 1 <= s <= length - 1]
    span = int(rng.choice(allowed)) if allowed else length - 1
    offset = int(rng.integers(0, length - span))  # offset + span <= length - 1
    interior = rng.choice(np.arange(1, span), size=k - 2, replace=False) if k > 2 else np.zeros(0, dtype=np.int64)
    rel = np.sort(np.concatenate([[0, span], interior]).astype(np.int64))
    return offset + rel, rel.astype(np.float32)


def sample_consecutive(
    length: int, num_frames: int, rng: np.random.Generator, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """MoCoGAN-style clip: ``num_frames`` frames ``stride`` apart at a random offset."""
    extent = (num_frames - 1) * stride + 1
    if length < extent:
        raise ValueError(f"video of {length} frames is shorter than a clip of {num_frames} frames at stride {stride}")
    offset = int(rng.integers(0, length - extent + 1))
    rel = np.arange(num_frames, dtype=np.int64) * stride
    return offset + rel, rel.astype(np.float32)


def sample_random_stride(
    length: int, num_frames: int, rng: np.random.Generator, strides: Sequence[int] = (2, 3)
) -> tuple[np.ndarray, np.ndarray]:
    """G3AN's clip (its public ``dataset.py``): ``num_frames`` frames at a stride drawn uniformly from ``strides``,
    the first one uniform in [0, length - num_frames * stride].

    That window counts num_frames * stride frames, one stride more than the clip spans, so the last stride - 1
    starts that would fit are never drawn, as there. A stride whose window is longer than the video is left out of
    the draw (the public code crashes on such a video); a video shorter than every window is an error. Times count
    the clip's frames, 0 .. num_frames - 1: G3AN's G and D see a clip as consecutive frames whatever its stride.
    """
    fitting = [int(s) for s in strides if num_frames * int(s) <= length]
    if not fitting:
        raise ValueError(f"video of {length} frames is shorter than {num_frames} x the smallest stride of {list(strides)}")
    stride = fitting[int(rng.integers(len(fitting)))]
    offset = int(rng.integers(0, length - num_frames * stride + 1))
    return offset + np.arange(num_frames, dtype=np.int64) * stride, np.arange(num_frames, dtype=np.float32)


def sample_fake_times(
    lengths: np.ndarray,  # frames of each training video
    batch: int,
    num_frames: int,  # k
    rng: Any,  # np.random.RandomState, or the np.random module (whose state the training checkpoint carries)
    mode: str = "sparse",
    max_dist: int = 32,
    spans: list[int] | None = None,
    stride: int = 1,
    max_num_frames: int = 1024,  # longer videos count as this long
) -> tuple[np.ndarray, np.ndarray]:
    """Times of ``batch`` fake clips [batch, k] float32 and the training videos they were modelled on [batch].

    Each fake clip takes the length of a random training video (its label conditions G): sparse clips get a
    span as real ones and a fractional offset in [0, length - span - 1), consecutive clips an integer offset;
    random-stride clips (G3AN) are the generated video's frames 0 .. k - 1, as real ones count theirs.
    """
    videos = rng.randint(0, len(lengths), size=batch)
    times = np.empty((batch, num_frames), dtype=np.float64)
    for row, v in enumerate(videos):
        length = int(min(lengths[v], max_num_frames))
        if mode == "consecutive":
            extent = (num_frames - 1) * stride + 1
            offset = rng.randint(0, max(length - extent, 0) + 1)
            times[row] = offset + np.arange(num_frames) * stride
        elif mode == "sparse":
            allowed = [s for s in (spans if spans is not None else default_spans(max_dist))
                       if num_frames - 1 <= s <= length - 1]
            span = int(rng.choice(allowed)) if allowed else max(length - 1, num_frames - 1)
            interior = rng.choice(np.arange(1, span), size=num_frames - 2, replace=False) if num_frames > 2 else []
            rel = np.sort(np.concatenate([[0, span][:num_frames], interior]))
            times[row] = rng.random_sample() * max(length - span - 1, 0) + rel
        elif mode == "random_stride":
            times[row] = np.arange(num_frames)
        else:
            raise ValueError(f"unknown sampling mode {mode!r}; valid: sparse, consecutive, random_stride")
    return times.astype(np.float32), videos


class ClipDataset(Dataset):
    """Training clips: item ``(video_index, clip_seed)`` (from :class:`VideoFirstSampler`) or a plain video index.

    Returns ``dict(frames=[k, 3, H, W] uint8 or float in [-1, 1], times=[k] float32, video_index, label)``.
    Passing the clip seed through the sampler makes the data stream independent of the worker count.
    """

    def __init__(
        self,
        dataset: VideoDataset | str,
        num_frames: int = 3,  # k
        mode: str = "sparse",  # "sparse" (StyleGAN-V), "consecutive" (MoCoGAN baselines), "random_stride" (G3AN)
        max_dist: int = 32,  # sparse: largest span
        spans: list[int] | None = None,  # sparse: allowed spans; None = powers of two up to max_dist
        stride: int = 1,  # consecutive: step between frames
        strides: Sequence[int] = (2, 3),  # random_stride: each clip's stride is drawn from these (G3AN)
        dtype: str = "uint8",  # "uint8" (convert on the device) or "float" ([-1, 1])
        mirror: bool = False,  # flip each clip left-right with probability 1/2 (all its frames alike)
        # Longer videos: a random window of this many frames first (not in random_stride mode); None = no window
        max_num_frames: int | None = None,
    ) -> None:
        self.videos = dataset if isinstance(dataset, VideoDataset) else VideoDataset(dataset)
        if mode not in ("sparse", "consecutive", "random_stride"):
            raise ValueError(f"unknown sampling mode {mode!r}; valid: sparse, consecutive, random_stride")
        if dtype not in ("uint8", "float"):
            raise ValueError(f"unknown dtype {dtype!r}; valid: uint8, float")
        self.num_frames, self.mode, self.max_dist, self.spans = num_frames, mode, max_dist, spans
        self.stride, self.strides, self.dtype, self.mirror = stride, [int(s) for s in strides], dtype, mirror
        self.max_num_frames = max_num_frames
        if mode == "sparse":
            min_len = num_frames
        elif mode == "consecutive":
            min_len = (num_frames - 1) * stride + 1
        elif mode == "random_stride":
            min_len = num_frames * min(self.strides)
        else:
            raise ValueError(f"unknown sampling mode {mode!r}; valid: sparse, consecutive, random_stride")
        if max_num_frames is not None and mode != "random_stride" and max_num_frames < min_len:
            raise ValueError(f"max_num_frames={max_num_frames} is shorter than the {min_len} frames a clip needs")
        too_short = int((self.videos.lengths < min_len).sum())
        if too_short:
            raise ValueError(f"{too_short} videos are shorter than the {min_len} frames a clip needs")
        self._rng = np.random.default_rng()  # only for plain-int items; reseeded per worker by torch

    def __len__(self) -> int:
        return self.videos.num_videos

    def sample_indices(self, video_index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        length = self.videos.video_length(video_index)
        window = 0  # first frame of the window the clip is drawn from (G3AN's loader has none)
        if self.max_num_frames is not None and self.mode != "random_stride" and length > self.max_num_frames:
            window = int(rng.integers(0, length - self.max_num_frames + 1))
            length = self.max_num_frames
        if self.mode == "sparse":
            indices, times = sample_sparse(length, self.num_frames, rng, self.max_dist, self.spans)
        elif self.mode == "consecutive":
            indices, times = sample_consecutive(length, self.num_frames, rng, self.stride)
        elif self.mode == "random_stride":
            indices, times = sample_random_stride(length, self.num_frames, rng, self.strides)
        else:
            raise ValueError(f"unknown sampling mode {self.mode!r}; valid: sparse, consecutive, random_stride")
        return window + indices, times

    def __getitem__(self, item: Any) -> dict[str, Any]:
        if isinstance(item, (tuple, list)):
            video_index, clip_seed = int(item[0]), int(item[1])
            rng = np.random.default_rng(clip_seed)
        else:
            video_index, rng = int(item), self._rng
        indices, times = self.sample_indices(video_index, rng)
        frames = self.videos.read_frames(video_index, indices)  # [k, H, W, C]
        if self.mirror and rng.random() < 0.5:
            frames = frames[:, :, ::-1]
        # [k,H,W,C] -> [k,C,H,W]; the copy is done by numpy: a torch copy this small pays for waking its
        # intra-op thread pool (measured ~13 ms instead of ~20 us per clip on a busy 2-core machine); same for the
        # float conversion.
        array = np.ascontiguousarray(frames.transpose(0, 3, 1, 2))
        if self.dtype == "float":
            array = array.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)
        frames = torch.from_numpy(array)
        return {
            "frames": frames,
            "times": torch.from_numpy(times),
            "video_index": video_index,
            "label": int(self.videos.labels[video_index]),
        }


class VideoFirstSampler(Sampler):
    """Yields ``(video_index, clip_seed)``: videos uniformly with replacement, so each is equally likely.

    Infinite by default (a training stream); ``rank``/``world_size`` give each DDP process its own stream.
    """

    def __init__(
        self, num_videos: int, seed: int = 0, num_samples: int | None = None, rank: int = 0, world_size: int = 1
    ) -> None:
        if num_videos < 1:
            raise ValueError(f"num_videos must be >= 1, got {num_videos}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.num_videos, self.seed, self.num_samples = num_videos, seed, num_samples
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.rank, self.world_size])
        count = 0
        while self.num_samples is None or count < self.num_samples:
            yield int(rng.integers(self.num_videos)), int(rng.integers(2**62))
            count += 1

    def __len__(self) -> int:
        if self.num_samples is None:
            raise TypeError("an infinite VideoFirstSampler has no length")
        return self.num_samples


def worker_init_fn(worker_id: int) -> None:
    """Reseed the plain-int-item rng of a ClipDataset in each worker (torch seeds differ per worker)."""
    info = torch.utils.data.get_worker_info()
    assert info is not None
    dataset = info.dataset
    if isinstance(dataset, ClipDataset):
        dataset._rng = np.random.default_rng(info.seed % 2**32)


@dataclass(frozen=True)
class ClipRef:
    """One evaluation clip: which video, which frames (absolute indices)."""

    video_index: int
    frame_indices: np.ndarray


def select_clips(
    dataset: VideoDataset,
    mode: str = "one_random_clip",
    num_frames: int = 16,
    max_videos: int | None = 2048,
    seed: int = 0,
    subsample: int = 1,
) -> list[ClipRef]:
    """Real clips for FVD (appendix C). Videos too short for one clip are skipped.

    * ``one_random_clip`` (the protocol): one clip per video at a random offset, native frame rate;
    * ``all_clips``: every non-overlapping clip of every video (biased towards long videos; Table 4);
    * ``first_frames``: one clip per video starting at frame 0 (Table 4);
    * ``still_frames``: one random frame per video repeated ``num_frames`` times (Table 4's still images);
    * ``subsample`` s: take every s-th frame (s = 8 in Table 4).
    ``max_videos`` videos are drawn at random (seeded) when the dataset has more; None = all.
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"unknown clip selection mode {mode!r}; valid: {EVAL_MODES}")
    if num_frames < 1 or subsample < 1:
        raise ValueError(f"num_frames and subsample must be >= 1, got {num_frames}, {subsample}")
    rng = np.random.default_rng(seed)
    videos = np.arange(dataset.num_videos)
    if max_videos is not None and dataset.num_videos > max_videos:
        videos = np.sort(rng.choice(videos, size=max_videos, replace=False))
    extent = (num_frames - 1) * subsample + 1  # frames covered by one clip
    steps = np.arange(num_frames, dtype=np.int64) * subsample
    clips: list[ClipRef] = []
    for v in videos:
        length = dataset.video_length(int(v))
        if mode == "still_frames":
            clips.append(ClipRef(int(v), np.full(num_frames, rng.integers(length), dtype=np.int64)))
            continue
        if length < extent:
            continue
        if mode == "one_random_clip":
            offsets = [int(rng.integers(0, length - extent + 1))]
        elif mode == "first_frames":
            offsets = [0]
        elif mode == "all_clips":
            offsets = list(range(0, length - extent + 1, num_frames * subsample))
        else:
            raise ValueError(f"unknown clip selection mode {mode!r}; valid: {EVAL_MODES}")
        clips.extend(ClipRef(int(v), off + steps) for off in offsets)
    return clips


def clip_dataset_from_config(dataset_cfg: Any, data_dir: str, dtype: str = "uint8", mirror: bool = False) -> ClipDataset:
    """The training ClipDataset of a prepared dataset, from ``cfg.dataset`` (DictConfig or DatasetConfig)."""
    s = dataset_cfg.sampling
    return ClipDataset(
        VideoDataset(f"{data_dir}/{dataset_cfg.name}"),
        num_frames=int(s.num_frames),
        mode=str(s.mode),
        max_dist=int(s.max_dist),
        spans=[int(x) for x in s.spans] if s.spans is not None else None,
        stride=int(s.stride),
        strides=[int(x) for x in s.strides],
        dtype=dtype,
        mirror=mirror,
        max_num_frames=int(s.max_num_frames),
    )
