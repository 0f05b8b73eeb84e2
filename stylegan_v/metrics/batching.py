"""Feeding a stream of same-shaped arrays (frames, clips) through a detector in batches.

FID, FVD and IS all stream their inputs (videos are decoded or generated one at a time) and need features
for all of them; a batch is cut early whenever the shape changes, since arrays of different sizes cannot be
stacked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from stylegan_v.progress import progress_bar


def batched_features(items: Iterable[np.ndarray], features: Callable[[np.ndarray], np.ndarray], batch_size: int,
                     desc: str, unit: str, total: int | None = None, progress: bool = True) -> np.ndarray:
    """``features(np.stack(batch))`` -> [B, D] for batches of at most ``batch_size`` items, concatenated [N, D]."""
    out: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            out.append(np.asarray(features(np.stack(batch)), dtype=np.float64))
            batch.clear()

    for item in progress_bar(items, enabled=progress, total=total, desc=desc, unit=unit):
        if batch and item.shape != batch[0].shape:
            flush()
        batch.append(item)
        if len(batch) == batch_size:
            flush()
    flush()
    if not out:
        raise ValueError(f"{desc}: nothing to extract features from")
    return np.concatenate(out)
