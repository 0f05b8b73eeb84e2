"""Video Inception Score (UCF-101): N fake videos × 16 frames from t = 0 through C3D, 10 splits."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

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
    probs, batch = [], []

    def flush() -> None:
        if batch:
            x = torch.from_numpy(np.stack(batch)).to(device).permute(0, 4, 1, 2, 3).float()  # [B, C, T, H, W]
            probs.append(model(x).double().cpu().numpy())
            batch.clear()

    for clip in tqdm(iter_fake_clips(fake, protocol, protocol.seed), total=protocol.num_videos, desc="C3D", unit="clip", disable=not progress):
        if batch and clip.shape != batch[0].shape:
            flush()
        batch.append(clip)
        if len(batch) == batch_size:
            flush()
    flush()
    p = np.concatenate(probs)
    mean, std = inception_score(p, splits=min(splits, p.shape[0]))
    return mean, std, p.shape[0]
