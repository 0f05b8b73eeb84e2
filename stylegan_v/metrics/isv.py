"""Video Inception Score (UCF-101): N fake videos × 16 frames from t = 0 through C3D, 10 splits of the videos
shuffled as the official code does (``inception_score``)."""

from __future__ import annotations

import numpy as np
import torch

from stylegan_v.metrics.batching import batched_features
from stylegan_v.metrics.fvd import FakeGenerator, FVDProtocol, iter_fake_clips
from stylegan_v.metrics.inception_score import inception_score
from stylegan_v.metrics.video_source import VideoSource


@torch.no_grad()
def compute_isv(
    fake: VideoSource | FakeGenerator,
    protocol: FVDProtocol,  # num_videos, num_frames (16), fake_jpeg_quality, fake_selection, seed are used
    model: torch.nn.Module,  # C3D returning probabilities [B, 101]
    splits: int = 10,
    batch_size: int = 4,
    progress: bool = True,
) -> tuple[float, float, int]:
    """(IS mean, IS std over splits, number of videos)."""
    device = next(model.parameters()).device

    def features(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(device).permute(0, 4, 1, 2, 3).float()  # [B, C, T, H, W]
        return model(x).double().cpu().numpy()

    p = batched_features(iter_fake_clips(fake, protocol, protocol.seed), features, batch_size, "C3D", "clip",
                         total=protocol.num_videos, progress=progress)
    mean, std = inception_score(p, splits=min(splits, p.shape[0]))
    return mean, std, p.shape[0]
