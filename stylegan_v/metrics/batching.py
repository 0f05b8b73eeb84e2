"""Feeding a stream of same-shaped arrays (frames, clips) through a detector in batches.

FID, FVD and IS all stream their inputs (videos are decoded or generated one at a time). FVD and IS keep the
features of every clip (a few thousand); FID folds each batch into running statistics instead, since it sees
every frame of a dataset. A batch is cut early whenever the shape changes, since arrays of different sizes
cannot be stacked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from stylegan_v.progress import progress_bar


def iter_batches(items: Iterable[np.ndarray], batch_size: int, desc: str, unit: str, total: int | None = None,
                 progress: bool = True) -> Iterator[np.ndarray]:
    """``np.stack``-ed batches of at most ``batch_size`` items, in order; one item in memory beyond a batch."""
    batch: list[np.ndarray] = []
    for item in progress_bar(items, enabled=progress, total=total, desc=desc, unit=unit):
        if batch and item.shape != batch[0].shape:
            yield np.stack(batch)
            batch.clear()
        batch.append(item)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch.clear()
    if batch:
        yield np.stack(batch)


def batched_features(items: Iterable[np.ndarray], features: Callable[[np.ndarray], np.ndarray], batch_size: int,
                     desc: str, unit: str, total: int | None = None, progress: bool = True) -> np.ndarray:
    """``features(np.stack(batch))`` -> [B, D] for batches of at most ``batch_size`` items, concatenated [N, D]."""
    out = [np.asarray(features(batch), dtype=np.float64) for batch in iter_batches(items, batch_size, desc, unit, total, progress)]
    if not out:
        raise ValueError(f"{desc}: nothing to extract features from")
    return np.concatenate(out)
