"""FID for video generators (appendix C): every frame of N fake videos × 16 frames from t = 0 (the same
``fake_jpeg_quality`` switch as FVD) against all real frames, with the 2015-12-05 InceptionV3 pool features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from stylegan_v.metrics.cache import sha256_bytes
from stylegan_v.metrics.fvd import FakeGenerator, FVDProtocol, Stats, iter_fake_clips, stats_of
from stylegan_v.metrics.frechet import frechet_distance
from stylegan_v.metrics.video_source import VideoSource


@torch.no_grad()
def frame_features(model: torch.nn.Module, frames: Iterable[np.ndarray], batch_size: int, desc: str, progress: bool = True) -> np.ndarray:
    """uint8 frames [H, W, 3] -> model features [N, D]; the model takes float 0..255 [N, 3, H, W]."""
    device = next(model.parameters()).device
    feats, batch = [], []

    def flush() -> None:
        if batch:
            x = torch.from_numpy(np.stack(batch)).to(device).permute(0, 3, 1, 2).float()  # [N, C, H, W]
            feats.append(model(x).double().cpu().numpy())
            batch.clear()

    for frame in tqdm(frames, desc=desc, unit="frame", disable=not progress):
        if batch and frame.shape != batch[0].shape:
            flush()
        batch.append(frame)
        if len(batch) == batch_size:
            flush()
    flush()
    if not feats:
        raise ValueError(f"{desc}: no frames")
    return np.concatenate(feats)


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
    path = None
    s_real: Stats | None = None
    if cache_dir is not None:
        path = Path(cache_dir) / "fid_stats" / f"{sha256_bytes(json.dumps(key, sort_keys=True).encode())[:20]}.npz"
        if path.exists():
            with np.load(path) as z:
                s_real = Stats(z["mu"], z["sigma"], int(z["count"]))
    if s_real is None:
        s_real = stats_of(frame_features(model, iter_real_frames(real, max_real_frames, protocol.seed), batch_size, "real frames", progress))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path.with_suffix(".tmp.npz"), mu=s_real.mu, sigma=s_real.sigma, count=s_real.count)
            path.with_suffix(".tmp.npz").replace(path)
    fake_frames = (frame for clip in iter_fake_clips(fake, protocol, protocol.seed) for frame in clip)
    s_fake = stats_of(frame_features(model, fake_frames, batch_size, "fake frames", progress))
    return frechet_distance(s_real.mu, s_real.sigma, s_fake.mu, s_fake.sigma), s_real.count, s_fake.count


