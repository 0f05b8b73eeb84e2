"""FID for video generators (appendix C): every frame of N fake videos × 16 frames from t = 0 (the same
``fake_jpeg_quality`` switch as FVD) against all real frames, with the 2015-12-05 InceptionV3 pool features."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from stylegan_v.metrics.batching import batched_features
from stylegan_v.metrics.frechet import frechet_distance
from stylegan_v.metrics.fvd import FakeGenerator, FVDProtocol, iter_fake_clips
from stylegan_v.metrics.stats_cache import cached_stats, stats_of
from stylegan_v.metrics.video_source import VideoSource


@torch.no_grad()
def frame_features(model: torch.nn.Module, frames: Iterable[np.ndarray], batch_size: int, desc: str, progress: bool = True) -> np.ndarray:
    """uint8 frames [H, W, 3] -> model features [N, D]; the model takes float 0..255 [N, 3, H, W]."""
    device = next(model.parameters()).device

    def features(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float()  # [N, C, H, W]
        return model(x).double().cpu().numpy()

    return batched_features(frames, features, batch_size, desc, "frame", progress=progress)


def iter_real_frames(source: VideoSource, max_frames: int | None, seed: int) -> Iterator[np.ndarray]:
    """All frames of all videos (appendix C), or a seeded choice of ``max_frames`` of them for reduced runs."""
    lengths = [source.num_frames(i) for i in range(len(source))]
    if max_frames is None or max_frames >= sum(lengths):
        for i, n in enumerate(lengths):
            yield from source.read(i, np.arange(n))
        return
    offsets = np.cumsum([0] + lengths)
    picks = np.sort(np.random.default_rng(seed).choice(offsets[-1], size=max_frames, replace=False))
    for i in range(len(lengths)):
        local = picks[(picks >= offsets[i]) & (picks < offsets[i + 1])] - offsets[i]
        if local.size:
            yield from source.read(i, local)


def compute_fid(
    real: VideoSource,
    fake: VideoSource | FakeGenerator,
    protocol: FVDProtocol,  # num_videos, num_frames, fake_jpeg_quality, fake_selection, seed are used
    model: torch.nn.Module,  # FIDInceptionV3
    max_real_frames: int | None = None,  # None = all real frames (the paper)
    batch_size: int = 16,
    cache_dir: Path | None = None,
    detector_id: str = "inception_2015_12_05",
    progress: bool = True,
) -> tuple[float, int, int]:
    """(FID, real frames, fake frames)."""
    key = {"detector": detector_id, "dataset": real.content_hash, "max_real_frames": max_real_frames,
           "resize_mode": getattr(model, "resize_mode", None), "seed": protocol.seed}
    real_frames = lambda: iter_real_frames(real, max_real_frames, protocol.seed)
    s_real = cached_stats(cache_dir, "fid_stats", key,
                          lambda: stats_of(frame_features(model, real_frames(), batch_size, "real frames", progress)))
    fake_frames = (frame for clip in iter_fake_clips(fake, protocol, protocol.seed) for frame in clip)
    s_fake = stats_of(frame_features(model, fake_frames, batch_size, "fake frames", progress))
    return frechet_distance(s_real.mu, s_real.sigma, s_fake.mu, s_fake.sigma), s_real.count, s_fake.count


