"""Inception Score from class probabilities: exp E_x KL(p(y|x) || p(y)), mean ± std over splits.

Splits as StyleGAN-V's ``isv2048_ucf`` forms them: the N rows are shuffled with
``np.random.RandomState(42)``, then split i takes rows [i·N // S, (i + 1)·N // S) (sizes differ by one when S
does not divide N). The shuffle is a fixed permutation of row indices: NumPy keeps the legacy RandomState stream
frozen, so the same videos share a split on every machine.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

SPLIT_SHUFFLE_SEED = 42


def split_indices(n: int, splits: int) -> list[np.ndarray]:
    """Row indices of each split: a RandomState(42) permutation of range(n), cut at i·n // splits."""
    order = np.arange(n)
    np.random.RandomState(SPLIT_SHUFFLE_SEED).shuffle(order)  # the same permutation as shuffling the rows
    return [order[i * n // splits : (i + 1) * n // splits] for i in range(splits)]


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """probs [N, K] (rows sum to 1) -> (mean, std) of the score over ``splits`` splits of the shuffled rows."""
    assert probs.ndim == 2 and probs.shape[0] >= splits >= 1, f"need probs [N >= splits, K], got {probs.shape}, splits={splits}"
    p = np.asarray(probs, dtype=np.float64)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4), "rows of probs must sum to 1"
    scores = []
    for rows in split_indices(p.shape[0], splits):
        part = p[rows]
        marginal = part.mean(axis=0, keepdims=True)
        # p log p with 0 log 0 = 0: a class no video of the split predicts adds nothing (the reference's
        # log(0) would turn the split into NaN; any probability > 0 is treated exactly as the reference does)
        kl = np.sum(xlogy(part, part) - xlogy(part, marginal), axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
