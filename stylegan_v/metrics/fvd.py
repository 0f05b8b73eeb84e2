"""Fréchet Video Distance: StyleGAN-V's official protocol by default, the Table 4 variants and our previous
reading of the paper text as named switches.

Default (what ``universome/stylegan-v`` computes; it produced the paper's tables):
- real: the first N videos in sorted name order among those with at least n * s frames, one clip of n
  frames (every s-th) per video at a uniformly random start, native frame rate;
- fake: N generated videos, frames t = 0, s, ..., (n - 1) s, straight from the generator (no JPEG);
- both: uint8 frames resized to 224² with PyTorch bilinear interpolation (``align_corners=False``), scaled
  to [-1, 1], mapped to I3D's 400 logits; statistics with the population covariance (divide by N);
- repeats draw new fakes against the same real statistics.
Real statistics are cached under a key naming every switch that changes them; each result records the
whole protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylegan_v.checks import require_one_of
from stylegan_v.metrics.batching import batched_features
from stylegan_v.metrics.clips import clip_rng, jpeg_roundtrip, min_video_length, select_clip_indices
from stylegan_v.metrics.frechet import frechet_distance
from stylegan_v.metrics.i3d_weights import CKPT_SHA256
from stylegan_v.metrics.options import (
    COVARIANCES,
    PRE_RESIZE_MODES,
    REPEAT_REAL,
    RESIZE_MODES,
    SELECTIONS,
    STILL_FRAMES,
    VIDEO_SELECTIONS,
)
from stylegan_v.metrics.resize import resize_images
from stylegan_v.metrics.stats_cache import Stats, cached_stats, stats_of
from stylegan_v.metrics.video_source import VideoSource

log = logging.getLogger(__name__)

I3D_SIZE = 224
# (num_videos, num_frames, seed, step) -> iterator of uint8 [num_frames, H, W, 3] videos with frames at
# t = 0, step, ..., (num_frames - 1) step (a generator of real-valued t renders only the frames it is asked for).
FakeGenerator = Callable[[int, int, int, int], Iterable[np.ndarray]]


def _check(value: str, valid: tuple[str, ...], key: str) -> None:
    require_one_of(value, valid, f"metrics.{key}")


@dataclass(frozen=True)
class FVDProtocol:
    """Everything that changes an FVD number (together with the two video sets and the detector)."""

    num_videos: int = 2048  # N: real videos used (up to) and fake videos generated
    num_frames: int = 16  # n: frames per clip fed to I3D
    subsample: int = 1  # s: take every s-th frame (Table 4 "subsampling s = 8"); 1 = native frame rate
    video_selection: str = "first"  # which videos of a set: first | random (clips.VIDEO_SELECTIONS)
    real_selection: str = "random_offset"  # which clips per real video: random_offset | all | first | still
    still_frame: str = "any"  # frame a still clip repeats: any | clip_start (clips.STILL_FRAMES)
    fake_selection: str = "first"  # used only when fakes come from a video set (a generator always starts at t = 0)
    fake_jpeg_quality: int | None = None  # Pillow JPEG round trip of fake frames; None = none (the reference)
    pre_resize: int | None = None  # Table 4 "resized to 128²": PyTorch bilinear to this size first; None = off
    pre_resize_mode: str = "roundtrip"  # how pre_resize is applied: roundtrip | direct (PRE_RESIZE_MODES)
    resize_mode: str = "torch"  # resize to 224²: torch (the reference's I3D module) | tf1 (TensorFlow FVD)
    covariance: str = "population"  # population (divide by N, the reference) | unbiased (N - 1)
    repeat_real: str = "fixed"  # real statistics across repeats: fixed | redraw (REPEAT_REAL)
    seed: int = 0  # clip offsets (real) and generator seed (fake); repeats add their index

    def __post_init__(self) -> None:
        if self.num_videos < 2:
            raise ValueError(f"metrics.num_videos must be >= 2, got {self.num_videos}")
        if self.num_frames < 9:
            raise ValueError(f"metrics.num_frames must be >= 9 (I3D's temporal receptive field), got {self.num_frames}")
        if self.subsample < 1:
            raise ValueError(f"metrics.subsample must be >= 1, got {self.subsample}")
        _check(self.video_selection, VIDEO_SELECTIONS, "video_selection")
        _check(self.real_selection, SELECTIONS, "real_selection")
        _check(self.fake_selection, SELECTIONS, "fake_selection")
        _check(self.still_frame, STILL_FRAMES, "still_frame")
        if self.fake_jpeg_quality is not None and not 1 <= self.fake_jpeg_quality <= 100:
            raise ValueError(f"metrics.fake_jpeg_quality must be in [1, 100] or null, got {self.fake_jpeg_quality}")
        _check(self.resize_mode, RESIZE_MODES, "resize_mode")
        if self.pre_resize is not None and self.pre_resize < 8:
            raise ValueError(f"metrics.pre_resize must be >= 8 or null, got {self.pre_resize}")
        _check(self.pre_resize_mode, PRE_RESIZE_MODES, "pre_resize_mode")
        _check(self.covariance, COVARIANCES, "covariance")
        _check(self.repeat_real, REPEAT_REAL, "repeat_real")


class I3DFeatureExtractor:
    """uint8 clips [T, H, W, 3] -> I3D logits [N, 400], batched, with the protocol's resizing."""

    def __init__(
        self,
        model: torch.nn.Module,  # from load_i3d(); any [B, 3, T, 224, 224] -> [B, 400] module works
        resize_mode: str = "torch",  # torch | tf1 (see resize.py)
        pre_resize: int | None = None,  # Table 4 128² variant (PyTorch bilinear); None = off
        batch_size: int = 2,  # clips per forward; ~1 GB per 16-frame clip on CPU, larger batches are not faster there
        device: str | torch.device = "cpu",
        detector_id: str = f"i3d_kinetics400_{CKPT_SHA256[:12]}",  # enters the real-statistics cache key
        progress: bool = True,
        pre_resize_mode: str = "roundtrip",  # roundtrip | direct (PRE_RESIZE_MODES)
    ) -> None:
        _check(resize_mode, RESIZE_MODES, "resize_mode")
        _check(pre_resize_mode, PRE_RESIZE_MODES, "pre_resize_mode")
        self.model, self.resize_mode, self.pre_resize, self.pre_resize_mode = model, resize_mode, pre_resize, pre_resize_mode
        self.batch_size, self.device, self.detector_id, self.progress = batch_size, torch.device(device), detector_id, progress

    def preprocess(self, clips: np.ndarray) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] -> float [B, 3, T, 224, 224] in [-1, 1]: resize the 0..255 values, then scale."""
        B, T, H, W, C = clips.shape
        assert C == 3 and clips.dtype == np.uint8, (clips.shape, clips.dtype)
        x = torch.from_numpy(clips).to(self.device).reshape(B * T, H, W, C).permute(0, 3, 1, 2).float()  # [BT, C, H, W]
        if self.pre_resize is not None:
            x = resize_images(x, self.pre_resize, "torch")
            if self.pre_resize_mode == "roundtrip":
                x = resize_images(x, (H, W), "torch")
                # Stored as uint8 again, rounded half up on both sides (the reference rounds its fakes this way but
                # truncates its reals, which would shift the real frames by half a level).
                x = torch.floor(x + 0.5).clamp_(0.0, 255.0)
            elif self.pre_resize_mode == "direct":
                pass
            else:
                raise ValueError(f"unknown pre_resize_mode {self.pre_resize_mode!r}; valid: {', '.join(PRE_RESIZE_MODES)}")
        x = resize_images(x, I3D_SIZE, self.resize_mode)
        x = x / 127.5 - 1.0  # = 2 x / 255 - 1, as the reference FVD code
        x = x.reshape(B, T, C, I3D_SIZE, I3D_SIZE).permute(0, 2, 1, 3, 4)  # [B, C, T, H, W]
        return x.contiguous(memory_format=torch.channels_last_3d)  # the layout load_i3d gives the model

    @torch.no_grad()
    def __call__(self, clips: Iterable[np.ndarray], total: int | None = None, desc: str = "I3D features") -> np.ndarray:
        return batched_features(clips, lambda batch: self.model(self.preprocess(batch)).double().cpu().numpy(),
                                self.batch_size, desc, "clip", total, self.progress)


def video_order(num_available: int, num_videos: int, seed: int) -> np.ndarray:
    """All videos if there are at most N; otherwise a seeded choice of N (sorted, for sequential reads)."""
    if num_available <= num_videos:
        return np.arange(num_available)
    return np.sort(np.random.default_rng(seed).choice(num_available, size=num_videos, replace=False))


def listing_order(source: VideoSource) -> list[int]:
    """Video indices in sorted name order (a prepared dataset's directory listing); index order for sets
    without names (in-memory arrays)."""
    names = getattr(source, "names", None)
    if names is None:
        return list(range(len(source)))
    return sorted(range(len(source)), key=lambda i: names[i])


def iter_source_clips(
    source: VideoSource,
    num_videos: int,
    num_frames: int,
    subsample: int,
    selection: str,
    seed: int,
    video_selection: str = "first",  # first | random (clips.VIDEO_SELECTIONS)
    still_frame: str = "any",  # any | clip_start (clips.STILL_FRAMES)
    skip: int = 0,  # video_selection=first: leave out the first ``skip`` eligible videos (held-out clips)
) -> Iterator[np.ndarray]:
    """Clips from a video set: which videos by ``video_selection``, which clips of each by ``selection``."""
    min_len = min_video_length(num_frames, subsample, video_selection)
    if skip and video_selection != "first":
        raise ValueError(f"held-out videos need metrics.video_selection=first, got {video_selection!r}")
    if video_selection == "first":
        candidates: Iterable[int] = listing_order(source)
        limit: int | None = num_videos + skip  # short videos are left out before counting
    elif video_selection == "random":
        candidates, limit = (int(i) for i in video_order(len(source), num_videos, seed)), None
    else:
        raise ValueError(f"unknown video selection {video_selection!r}; valid: {', '.join(VIDEO_SELECTIONS)}")
    used = skipped = 0
    for index in candidates:
        if limit is not None and used == limit:
            break
        length = source.num_frames(index)
        if length < min_len:
            skipped += 1
            continue
        used += 1
        if used <= skip:
            continue
        for frame_indices in select_clip_indices(length, num_frames, subsample, selection, clip_rng(seed, index), still_frame):
            yield source.read(index, frame_indices)
    if skipped:
        log.warning("left out %d videos shorter than %d frames (%d videos used)", skipped, min_len, used - min(used, skip))


def iter_fake_clips(fake: VideoSource | FakeGenerator, protocol: FVDProtocol, seed: int) -> Iterator[np.ndarray]:
    """Fake clips from t = 0, every s-th frame, with the optional JPEG round trip (skipped for video sets whose
    frames are stored lossy already)."""
    quality = protocol.fake_jpeg_quality
    if callable(fake) and not hasattr(fake, "read"):
        n = protocol.num_frames
        count = 0
        for clip in fake(protocol.num_videos, n, seed, protocol.subsample):
            assert clip.ndim == 4 and clip.shape[0] == n and clip.dtype == np.uint8, (clip.shape, clip.dtype)
            yield jpeg_roundtrip(clip, quality) if quality is not None else clip
            count += 1
        if count != protocol.num_videos:
            raise ValueError(f"fake generator yielded {count} videos, expected {protocol.num_videos}")
    else:
        lossy = getattr(fake, "lossy_stored", False)
        clips = iter_source_clips(fake, protocol.num_videos, protocol.num_frames, protocol.subsample, protocol.fake_selection,
                                  seed, protocol.video_selection, protocol.still_frame)
        for clip in clips:
            yield jpeg_roundtrip(clip, quality) if quality is not None and not lossy else clip


def real_stats_key(source: VideoSource, protocol: FVDProtocol, extractor: I3DFeatureExtractor, seed: int,
                   skip: int = 0) -> dict:
    """Every parameter that changes the real statistics (fake-only switches are left out on purpose; how
    repeats treat the reals shows as the seed used)."""
    return {
        **({"skip": skip} if skip else {}),
        "detector": extractor.detector_id,
        "dataset": source.content_hash,
        "num_videos": protocol.num_videos,
        "num_frames": protocol.num_frames,
        "subsample": protocol.subsample,
        "video_selection": protocol.video_selection,
        "selection": protocol.real_selection,
        "still_frame": protocol.still_frame,
        "resize_mode": extractor.resize_mode,
        "pre_resize": extractor.pre_resize,
        "pre_resize_mode": extractor.pre_resize_mode,
        "covariance": protocol.covariance,
        "seed": seed,
    }


def real_stats(source: VideoSource, protocol: FVDProtocol, extractor: I3DFeatureExtractor, seed: int,
               cache_dir: Path | None, skip: int = 0) -> Stats:
    """Real-clip statistics, read from / written to ``<cache_dir>/fvd_stats`` when a cache dir is given;
    ``skip`` leaves out the first eligible videos (the held-out set of :func:`fvd_floor`)."""
    key = real_stats_key(source, protocol, extractor, seed, skip)

    def compute() -> Stats:
        clips = iter_source_clips(source, protocol.num_videos, protocol.num_frames, protocol.subsample,
                                  protocol.real_selection, seed, protocol.video_selection, protocol.still_frame, skip)
        desc = f"{'held-out' if skip else 'real'} clips ({protocol.real_selection})"
        return stats_of(extractor(clips, total=None, desc=desc), protocol.covariance)

    return cached_stats(cache_dir, "fvd_stats", key, compute, prefix=f"{protocol.num_frames}f-{protocol.real_selection}-")


def fake_stats(fake: VideoSource | FakeGenerator, protocol: FVDProtocol, extractor: I3DFeatureExtractor, seed: int) -> Stats:
    features = extractor(iter_fake_clips(fake, protocol, seed), total=protocol.num_videos, desc="fake clips")
    return stats_of(features, protocol.covariance)


@dataclass
class RepeatedResult:
    values: list[float]
    num_real: int  # clips behind the real statistics (first repeat)
    num_fake: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values)) if len(self.values) > 1 else 0.0


def real_seed(protocol: FVDProtocol, repeat: int) -> int:
    """Seed of the real clip offsets in repeat ``repeat`` (``repeat_real``)."""
    if protocol.repeat_real == "fixed":
        return protocol.seed
    elif protocol.repeat_real == "redraw":
        return protocol.seed + repeat
    else:
        raise ValueError(f"unknown repeat_real {protocol.repeat_real!r}; valid: {', '.join(REPEAT_REAL)}")


def compute_fvd(
    real: VideoSource,
    fake: VideoSource | FakeGenerator,
    protocol: FVDProtocol,
    extractor: I3DFeatureExtractor,
    repeats: int = 1,
    cache_dir: Path | None = None,
) -> RepeatedResult:
    """FVD, repeated with fake seeds ``seed + r`` (real seeds per ``repeat_real``) for mean ± std."""
    assert repeats >= 1, repeats
    settings = (extractor.resize_mode, extractor.pre_resize, extractor.pre_resize_mode)
    if settings != (protocol.resize_mode, protocol.pre_resize, protocol.pre_resize_mode):
        raise ValueError(f"extractor resizing {settings} differs from the protocol's "
                         f"{(protocol.resize_mode, protocol.pre_resize, protocol.pre_resize_mode)}: the record would be wrong")
    values, counts = [], []
    reals: dict[int, Stats] = {}
    for r in range(repeats):
        seed, seed_real = protocol.seed + r, real_seed(protocol, r)
        if seed_real not in reals:
            reals[seed_real] = real_stats(real, protocol, extractor, seed_real, cache_dir)
        s_real = reals[seed_real]
        s_fake = fake_stats(fake, protocol, extractor, seed)
        values.append(frechet_distance(s_real.mu, s_real.sigma, s_fake.mu, s_fake.sigma))
        counts.append((s_real.count, s_fake.count))
        log.info("FVD repeat %d/%d (fake seed %d, real seed %d): %.3f", r + 1, repeats, seed, seed_real, values[-1])
    return RepeatedResult(values, counts[0][0], counts[0][1])


def fvd_floor(real: VideoSource, protocol: FVDProtocol, extractor: I3DFeatureExtractor,
              cache_dir: Path | None = None) -> tuple[float, int]:
    """The protocol's floor: FVD of held-out real clips (the N eligible videos after the first N) against the
    real statistics. A generator cannot be told from the data below it at this clip count, so training
    curves draw it as their reference line. Returns (value, held-out clips used)."""
    if protocol.video_selection != "first":
        raise ValueError(f"the FVD floor needs metrics.video_selection=first, got {protocol.video_selection!r}")
    min_len = min_video_length(protocol.num_frames, protocol.subsample, "first")
    eligible = sum(real.num_frames(i) >= min_len for i in range(len(real)))
    if eligible - protocol.num_videos < 2:
        raise ValueError(f"{max(eligible - protocol.num_videos, 0)} held-out clips: the dataset needs more than "
                         f"{protocol.num_videos + 1} videos of at least {min_len} frames for an FVD floor")
    s_real = real_stats(real, protocol, extractor, protocol.seed, cache_dir)
    s_held = real_stats(real, protocol, extractor, protocol.seed, cache_dir, skip=protocol.num_videos)
    return frechet_distance(s_real.mu, s_real.sigma, s_held.mu, s_held.sigma), s_held.count
