"""Fréchet Video Distance with the appendix-C protocol and the Table 4 variants as switches.

Real statistics: one clip per video at a random offset (``real_selection``), native frame rate, no skipping,
up to N videos, cached under a key naming everything that changes the number. Fakes: N videos from t = 0,
each frame JPEG-encoded with Pillow (q = 95) and decoded back before the detector. Both sides are resized to
224² (TF1 bilinear by default, as the reference FVD code), scaled to [-1, 1], and mapped to I3D's 400 logits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from stylegan_v.metrics.cache import sha256_bytes
from stylegan_v.metrics.clips import SELECTIONS, clip_rng, clip_span, jpeg_roundtrip, select_clip_indices
from stylegan_v.metrics.frechet import frechet_distance, gaussian_stats
from stylegan_v.metrics.i3d_weights import CKPT_SHA256
from stylegan_v.metrics.resize import RESIZE_MODES, resize_images
from stylegan_v.metrics.video_source import VideoSource

log = logging.getLogger(__name__)

I3D_SIZE = 224
# (num_videos, num_frames, seed) -> iterator of uint8 [num_frames, H, W, 3] videos starting at t = 0.
FakeGenerator = Callable[[int, int, int], Iterable[np.ndarray]]


@dataclass(frozen=True)
class FVDProtocol:
    """Everything that changes an FVD number (together with the two video sets and the detector)."""

    num_videos: int = 2048  # N: real videos used (up to) and fake videos generated
    num_frames: int = 16  # n: frames per clip fed to I3D
    subsample: int = 1  # s: take every s-th frame (Table 4 "subsampling s = 8"); 1 = native frame rate
    real_selection: str = "random_offset"  # random_offset | all | first | still (see clips.SELECTIONS)
    fake_selection: str = "first"  # used only when fakes come from a video set (a generator always starts at t = 0)
    fake_jpeg_quality: int | None = 95  # Pillow JPEG round trip of fake frames; None = none (lossless)
    pre_resize: int | None = None  # Table 4 "resized to 128²": PyTorch bilinear to this size first; None = off
    resize_mode: str = "tf1"  # resize to 224²: tf1 (reference FVD) | torch
    seed: int = 0  # clip offsets (real) and generator seed (fake); repeats add their index

    def __post_init__(self) -> None:
        if self.num_videos < 2:
            raise ValueError(f"metrics.num_videos must be >= 2, got {self.num_videos}")
        if self.num_frames < 9:
            raise ValueError(f"metrics.num_frames must be >= 9 (I3D's temporal receptive field), got {self.num_frames}")
        if self.subsample < 1:
            raise ValueError(f"metrics.subsample must be >= 1, got {self.subsample}")
        for key in ("real_selection", "fake_selection"):
            if getattr(self, key) not in SELECTIONS:
                raise ValueError(f"metrics.{key} must be one of {', '.join(SELECTIONS)}, got {getattr(self, key)!r}")
        if self.fake_jpeg_quality is not None and not 1 <= self.fake_jpeg_quality <= 100:
            raise ValueError(f"metrics.fake_jpeg_quality must be in [1, 100] or null, got {self.fake_jpeg_quality}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"metrics.resize_mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}")
        if self.pre_resize is not None and self.pre_resize < 8:
            raise ValueError(f"metrics.pre_resize must be >= 8 or null, got {self.pre_resize}")


class I3DFeatureExtractor:
    """uint8 clips [T, H, W, 3] -> I3D logits [N, 400], batched, with the protocol's resizing."""

    def __init__(
        self,
        model: torch.nn.Module,  # from load_i3d(); any [B, 3, T, 224, 224] -> [B, 400] module works
        resize_mode: str = "tf1",  # tf1 | torch (see resize.py)
        pre_resize: int | None = None,  # Table 4 128² variant (PyTorch bilinear); None = off
        batch_size: int = 2,  # clips per forward; ~1 GB per 16-frame clip on CPU, larger batches are not faster there
        device: str | torch.device = "cpu",
        detector_id: str = f"i3d_kinetics400_{CKPT_SHA256[:12]}",  # enters the real-statistics cache key
        progress: bool = True,
    ) -> None:
        self.model, self.resize_mode, self.pre_resize = model, resize_mode, pre_resize
        self.batch_size, self.device, self.detector_id, self.progress = batch_size, torch.device(device), detector_id, progress

    def preprocess(self, clips: np.ndarray) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] -> float [B, 3, T, 224, 224] in [-1, 1]: resize the 0..255 values, then scale."""
        B, T, H, W, C = clips.shape
        assert C == 3 and clips.dtype == np.uint8, (clips.shape, clips.dtype)
        x = torch.from_numpy(clips).to(self.device).reshape(B * T, H, W, C).permute(0, 3, 1, 2).float()  # [BT, C, H, W]
        if self.pre_resize is not None:
            x = resize_images(x, self.pre_resize, "torch")
        x = resize_images(x, I3D_SIZE, self.resize_mode)
        x = x / 127.5 - 1.0  # = 2 x / 255 - 1, as the reference FVD code
        return x.reshape(B, T, C, I3D_SIZE, I3D_SIZE).permute(0, 2, 1, 3, 4).contiguous()  # [B, C, T, H, W]

    @torch.no_grad()
    def __call__(self, clips: Iterable[np.ndarray], total: int | None = None, desc: str = "I3D features") -> np.ndarray:
        feats: list[np.ndarray] = []
        batch: list[np.ndarray] = []

        def flush() -> None:
            if batch:
                feats.append(self.model(self.preprocess(np.stack(batch))).double().cpu().numpy())
                batch.clear()

        for clip in tqdm(clips, total=total, desc=desc, unit="clip", disable=not self.progress):
            if batch and clip.shape != batch[0].shape:
                flush()
            batch.append(clip)
            if len(batch) == self.batch_size:
                flush()
        flush()
        if not feats:
            raise ValueError(f"{desc}: no clips to extract features from")
        return np.concatenate(feats)


def video_order(num_available: int, num_videos: int, seed: int) -> np.ndarray:
    """All videos if there are at most N; otherwise a seeded choice of N (sorted, for sequential reads)."""
    if num_available <= num_videos:
        return np.arange(num_available)
    return np.sort(np.random.default_rng(seed).choice(num_available, size=num_videos, replace=False))


def iter_source_clips(source: VideoSource, num_videos: int, num_frames: int, subsample: int, selection: str, seed: int) -> Iterator[np.ndarray]:
    """Clips from a video set; videos shorter than the clip span are skipped (and counted in the log)."""
    skipped = 0
    for index in video_order(len(source), num_videos, seed):
        picks = select_clip_indices(source.num_frames(int(index)), num_frames, subsample, selection, clip_rng(seed, int(index)))
        skipped += not picks
        for frame_indices in picks:
            yield source.read(int(index), frame_indices)
    if skipped:
        log.warning("skipped %d videos shorter than %d frames", skipped, clip_span(num_frames, subsample))


def iter_fake_clips(fake: VideoSource | FakeGenerator, protocol: FVDProtocol, seed: int) -> Iterator[np.ndarray]:
    """Fake clips from t = 0 with the JPEG round trip (skipped for video sets whose frames are stored lossy)."""
    quality = protocol.fake_jpeg_quality
    if callable(fake) and not hasattr(fake, "read"):
        span = clip_span(protocol.num_frames, protocol.subsample)
        count = 0
        for video in fake(protocol.num_videos, span, seed):
            assert video.ndim == 4 and video.shape[0] >= span and video.dtype == np.uint8, (video.shape, video.dtype)
            clip = video[: span : protocol.subsample]
            yield jpeg_roundtrip(clip, quality) if quality is not None else clip
            count += 1
        if count != protocol.num_videos:
            raise ValueError(f"fake generator yielded {count} videos, expected {protocol.num_videos}")
    else:
        lossy = getattr(fake, "lossy_stored", False)
        for clip in iter_source_clips(fake, protocol.num_videos, protocol.num_frames, protocol.subsample, protocol.fake_selection, seed):
            yield jpeg_roundtrip(clip, quality) if quality is not None and not lossy else clip


@dataclass
class Stats:
    mu: np.ndarray  # [D] float64
    sigma: np.ndarray  # [D, D] float64
    count: int  # clips the statistics come from


def stats_of(features: np.ndarray) -> Stats:
    mu, sigma = gaussian_stats(features)
    return Stats(mu, sigma, features.shape[0])


def real_stats_key(source: VideoSource, protocol: FVDProtocol, extractor: I3DFeatureExtractor, seed: int) -> dict:
    """Every parameter that changes the real statistics (fake-only switches are left out on purpose)."""
    return {
        "detector": extractor.detector_id,
        "dataset": source.content_hash,
        "num_videos": protocol.num_videos,
        "num_frames": protocol.num_frames,
        "subsample": protocol.subsample,
        "selection": protocol.real_selection,
        "resize_mode": extractor.resize_mode,
        "pre_resize": extractor.pre_resize,
        "seed": seed,
    }


def real_stats(source: VideoSource, protocol: FVDProtocol, extractor: I3DFeatureExtractor, seed: int, cache_dir: Path | None) -> Stats:
    """Real-clip statistics, read from / written to ``<cache_dir>/fvd_stats`` when a cache dir is given."""
    key = real_stats_key(source, protocol, extractor, seed)
    path = None
    if cache_dir is not None:
        digest = sha256_bytes(json.dumps(key, sort_keys=True).encode())[:20]
        path = Path(cache_dir) / "fvd_stats" / f"{protocol.num_frames}f-{protocol.real_selection}-{digest}.npz"
        if path.exists():
            with np.load(path) as z:
                if json.loads(str(z["key"])) == key:
                    return Stats(z["mu"], z["sigma"], int(z["count"]))
    clips = iter_source_clips(source, protocol.num_videos, protocol.num_frames, protocol.subsample, protocol.real_selection, seed)
    stats = stats_of(extractor(clips, total=None, desc=f"real clips ({protocol.real_selection})"))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, mu=stats.mu, sigma=stats.sigma, count=stats.count, key=json.dumps(key, sort_keys=True))
        tmp.replace(path)
    return stats


def fake_stats(fake: VideoSource | FakeGenerator, protocol: FVDProtocol, extractor: I3DFeatureExtractor, seed: int) -> Stats:
    return stats_of(extractor(iter_fake_clips(fake, protocol, seed), total=protocol.num_videos, desc="fake clips"))


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


def compute_fvd(
    real: VideoSource,
    fake: VideoSource | FakeGenerator,
    protocol: FVDProtocol,
    extractor: I3DFeatureExtractor,
    repeats: int = 1,
    cache_dir: Path | None = None,
) -> RepeatedResult:
    """FVD, repeated with seeds ``seed + r`` (new real offsets and new fakes each time) for mean ± std."""
    assert repeats >= 1, repeats
    values, counts = [], []
    for r in range(repeats):
        seed = protocol.seed + r
        s_real = real_stats(real, protocol, extractor, seed, cache_dir)
        s_fake = fake_stats(fake, protocol, extractor, seed)
        values.append(frechet_distance(s_real.mu, s_real.sigma, s_fake.mu, s_fake.sigma))
        counts.append((s_real.count, s_fake.count))
        log.info("FVD repeat %d/%d (seed %d): %.3f", r + 1, repeats, seed, values[-1])
    return RepeatedResult(values, counts[0][0], counts[0][1])
