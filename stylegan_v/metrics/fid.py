"""FID for video generators: frames of fake videos against every real frame, InceptionV3 pool features.

By default what StyleGAN-V's ``fid50k_full`` computes (it produced the paper's FID column):
- real: every frame of every video of the dataset, however many (the official code reads the dataset folder as
  a set of images: all of them, mirroring off);
- fake: N generated videos, frames t = 0 … 15 (``fid50k_full``: N = 3125, so 50 000 frames). A fake video
  *set* gives its first N × 16 frames in path order, every frame of each video in turn, as the official
  dataset-to-dataset script reads it (the same frames when the set holds 16-frame videos);
- features: NVIDIA's InceptionV3 front end (``inception.PREPROCESSINGS``: TF1 bilinear to 299², (p − 128)/128);
- statistics: the protocol's covariance (population, divide by N, by default), accumulated batch by batch, so
  memory does not grow with the number of frames.
The paper text's reading, 2048 videos × 16 frames, is the metric ``fid2048_16f``; ``metrics.covariance=unbiased``
divides by N − 1 as our earlier reading did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from stylegan_v.metrics.batching import iter_batches
from stylegan_v.metrics.clips import jpeg_roundtrip
from stylegan_v.metrics.frechet import RunningGaussian, frechet_distance
from stylegan_v.metrics.fvd import FakeGenerator, FVDProtocol, iter_fake_clips
from stylegan_v.metrics.stats_cache import Stats, cached_stats
from stylegan_v.metrics.video_source import VideoSource

log = logging.getLogger(__name__)

READ_CHUNK = 64  # frames read from a video at a time: a long video never sits in memory whole


@torch.no_grad()
def frame_stats(model: torch.nn.Module, frames: Iterable[np.ndarray], batch_size: int, covariance: str, desc: str,
                total: int | None = None, progress: bool = True) -> Stats:
    """uint8 frames [H, W, 3] -> Gaussian statistics of the model's features; the model takes float 0..255
    [N, 3, H, W]. Streams: one batch of frames and the running moments in memory."""
    device = next(model.parameters()).device
    running = RunningGaussian()
    for batch in iter_batches(frames, batch_size, desc, "frame", total, progress):
        x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float()  # [N, C, H, W]
        running.update(model(x).double().cpu().numpy())
    if running.count < 2:
        raise ValueError(f"{desc}: {running.count} frames, need at least 2 for a covariance")
    mu, sigma = running.stats(covariance)
    return Stats(mu, sigma, running.count)


def path_order(source: VideoSource) -> list[int]:
    """Video indices in the order their frames' paths sort (``<name>/<frame>``, compared as strings, so
    ``clip-2/`` comes before ``clip/``); index order for sets without names (in-memory arrays)."""
    names = getattr(source, "names", None)
    if names is None:
        return list(range(len(source)))
    return sorted(range(len(source)), key=lambda i: names[i] + "/")


def iter_real_frames(source: VideoSource, max_frames: int | None, seed: int) -> Iterator[np.ndarray]:
    """All frames of all videos (the official protocol), or a seeded choice of ``max_frames`` of them for
    reduced runs."""
    lengths = [source.num_frames(i) for i in range(len(source))]
    if max_frames is None or max_frames >= sum(lengths):
        for i in path_order(source):
            yield from _read_frames(source, i, lengths[i])
        return
    offsets = np.cumsum([0] + lengths)
    picks = np.sort(np.random.default_rng(seed).choice(offsets[-1], size=max_frames, replace=False))
    for i in range(len(lengths)):
        local = picks[(picks >= offsets[i]) & (picks < offsets[i + 1])] - offsets[i]
        if local.size:
            yield from source.read(i, local)


def _read_frames(source: VideoSource, index: int, count: int) -> Iterator[np.ndarray]:
    """Frames 0 .. count - 1 of one video, read READ_CHUNK at a time."""
    for start in range(0, count, READ_CHUNK):
        yield from source.read(index, np.arange(start, min(count, start + READ_CHUNK)))


def iter_fake_frames(fake: VideoSource | FakeGenerator, protocol: FVDProtocol, seed: int) -> Iterator[np.ndarray]:
    """N × n fake frames: every frame of N generated videos, or the first N × n frames of a video set in path
    order (with the JPEG round trip of ``fake_jpeg_quality`` unless the set is stored lossy already)."""
    if callable(fake) and not hasattr(fake, "read"):
        for clip in iter_fake_clips(fake, protocol, seed):
            yield from clip
        return
    wanted = protocol.num_videos * protocol.num_frames
    quality = protocol.fake_jpeg_quality if not getattr(fake, "lossy_stored", False) else None
    given = 0
    for i in path_order(fake):
        take = min(fake.num_frames(i), wanted - given)
        for frame in _read_frames(fake, i, take):
            yield jpeg_roundtrip(frame[None], quality)[0] if quality is not None else frame
        given += take
        if given == wanted:
            return
    log.warning("the fake video set holds %d frames, fewer than the %d the metric asks for: FID uses all of them",
                given, wanted)


def compute_fid(
    real: VideoSource,
    fake: VideoSource | FakeGenerator,
    protocol: FVDProtocol,  # num_videos, num_frames, subsample, fake_jpeg_quality, covariance, seed are used
    model: torch.nn.Module,  # FIDInceptionV3
    max_real_frames: int | None = None,  # None = all real frames (the official protocol)
    batch_size: int = 16,
    cache_dir: Path | None = None,
    detector_id: str = "inception_2015_12_05",
    progress: bool = True,
) -> tuple[float, int, int]:
    """(FID, real frames, fake frames)."""
    key = {"detector": detector_id, "preprocessing": getattr(model, "preprocessing", None), "dataset": real.content_hash,
           "max_real_frames": max_real_frames, "seed": protocol.seed if max_real_frames is not None else None,
           "covariance": protocol.covariance}
    s_real = cached_stats(cache_dir, "fid_stats", key, lambda: frame_stats(
        model, iter_real_frames(real, max_real_frames, protocol.seed), batch_size, protocol.covariance, "real frames",
        progress=progress))
    wanted = protocol.num_videos * protocol.num_frames
    s_fake = frame_stats(model, iter_fake_frames(fake, protocol, protocol.seed), batch_size, protocol.covariance,
                         "fake frames", total=wanted, progress=progress)
    return frechet_distance(s_real.mu, s_real.sigma, s_fake.mu, s_fake.sigma), s_real.count, s_fake.count
