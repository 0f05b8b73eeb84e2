"""A generator seen by the metrics: ``(num_videos, num_frames, seed, step) -> uint8 [T, H, W, 3]`` videos with
frames at t = 0, step, ..., (num_frames - 1) step.

The metrics room defines that interface and never imports training code; this module adapts G_ema to it,
for snapshot metrics inside the loop and for ``python -m stylegan_v.evaluate metrics.checkpoint=…``
(``metrics.generator_loader=stylegan_v.training.fakes:from_checkpoint``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stylegan_v.data.video_dataset import VideoDataset
from stylegan_v.models.generator import to_rgb_uint8
from stylegan_v.training.checkpoint import load_generator


def video_generator(G: nn.Module, device: torch.device | str, batch: int = 4, labels: np.ndarray | None = None):
    """Wrap G as a metrics FakeGenerator: fixed seeds, frames t = 0, step, ..., in batches of ``batch``.

    G is a function of (z, t) frame by frame, so only the frames the metric uses are rendered (16 for
    ``fvd2048_128f_subsample8f``, not 121). Frames become uint8 RGB as the official code makes images
    (:func:`to_rgb_uint8`).

    A conditional G gets the class of a random training video per fake (``labels``: the training videos'
    class ids), so classes appear as often as in the data; without ``labels`` classes are uniform.
    """
    num_classes = int(getattr(G, "c_dim", 0))

    def generate(num_videos: int, num_frames: int, seed: int, step: int = 1) -> Iterator[np.ndarray]:
        gen = torch.Generator().manual_seed(seed)
        t = torch.arange(num_frames, dtype=torch.float32) * step
        for start in range(0, num_videos, batch):
            n = min(batch, num_videos - start)
            z = torch.randn(n, G.z_dim, generator=gen).to(device)
            c = None
            if num_classes:
                pool = torch.as_tensor(labels) if labels is not None else torch.arange(num_classes)
                ids = pool[torch.randint(len(pool), (n,), generator=gen)]
                c = torch.nn.functional.one_hot(ids, num_classes).float().to(device)
            with torch.inference_mode():
                video = G(z, t[None].expand(n, -1).to(device), c)  # [n, T, 3, H, W]
            yield from to_rgb_uint8(video).permute(0, 1, 3, 4, 2).cpu().numpy()  # n x [T, H, W, 3]

    return generate


def from_checkpoint(checkpoint: str, device: str = "cpu"):
    """The ``metrics.generator_loader`` for training checkpoints (a file or a run directory); a conditional G
    draws classes like its training data when that dataset is at hand."""
    G, cfg = load_generator(checkpoint, device)
    return video_generator(G, device, labels=training_labels(cfg) if getattr(G, "c_dim", 0) else None)


def training_labels(cfg: dict) -> np.ndarray | None:
    """Class ids of the training videos named by a checkpoint's config, or None when that dataset is absent."""
    try:
        return VideoDataset(Path(cfg["paths"]["data_dir"]) / cfg["dataset"]["name"]).labels
    except (KeyError, TypeError, FileNotFoundError):
        return None
