"""Inception Score from class probabilities: exp E_x KL(p(y|x) || p(y)), mean ± std over splits."""

from __future__ import annotations

import numpy as np


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """probs [N, K] (rows sum to 1) -> (mean, std) of the score over ``splits`` equal consecutive chunks."""
    assert probs.ndim == 2 and probs.shape[0] >= splits >= 1, f"need probs [N >= splits, K], got {probs.shape}, splits={splits}"
    p = np.asarray(probs, dtype=np.float64)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4), "rows of probs must sum to 1"
    eps = 1e-12  # log(0) guard; terms with p = 0 contribute 0 to the KL anyway
    scores = []
    for chunk in np.array_split(p, splits):
        marginal = chunk.mean(axis=0, keepdims=True)
        kl = np.sum(chunk * (np.log(chunk + eps) - np.log(marginal + eps)), axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
