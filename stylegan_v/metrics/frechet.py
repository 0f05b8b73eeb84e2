"""Fréchet distance between two Gaussians, the core of FID and FVD (pure math on arrays, no I/O)."""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg

log = logging.getLogger(__name__)

IMAG_TOLERANCE = 1e-3  # |imag| of the matrix root above this means the covariances are broken, not rounding
SQRTM_JITTER = 1e-6  # diagonal offset when the product of covariances is too singular for a finite root


# Covariance estimators: population divides by N (StyleGAN-V's FeatureStats: sum x x^T / N - mu mu^T),
# unbiased divides by N - 1 (np.cov's default).
COVARIANCES = ("population", "unbiased")


def _ddof(covariance: str) -> int:
    if covariance == "population":
        return 0
    elif covariance == "unbiased":
        return 1
    else:
        raise ValueError(f"unknown covariance estimator {covariance!r}; valid: {', '.join(COVARIANCES)}")


def gaussian_stats(features: np.ndarray, covariance: str = "unbiased") -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] of features [N, D], in float64 (float32 loses FVD digits)."""
    assert features.ndim == 2 and features.shape[0] >= 2, f"need features [N >= 2, D], got {features.shape}"
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=_ddof(covariance))


class RunningGaussian:
    """Mean and covariance of features that arrive in batches, without keeping them: memory O(D²) for any N
    (FID sees every frame of a dataset, often millions). Each batch is centred on its own mean and merged with
    the pairwise update of Chan, Golub & LeVeque, so no large raw moments cancel; float64 throughout."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.scatter: np.ndarray | None = None  # sum of (x - mean)(x - mean)^T

    def update(self, batch: np.ndarray) -> None:
        x = np.asarray(batch, dtype=np.float64)
        assert x.ndim == 2, f"need features [B, D], got {x.shape}"
        if x.shape[0] == 0:
            return
        mean_b = x.mean(axis=0)
        centred = x - mean_b
        scatter_b = centred.T @ centred
        if self.mean is None or self.scatter is None:
            self.count, self.mean, self.scatter = x.shape[0], mean_b, scatter_b
            return
        n_a, n_b = self.count, x.shape[0]
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.scatter = self.scatter + scatter_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    def stats(self, covariance: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean [D], covariance [D, D]) of everything seen so far."""
        if self.mean is None or self.scatter is None or self.count < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {self.count}")
        return self.mean.copy(), self.scatter / (self.count - _ddof(covariance))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), the 2-Wasserstein distance between the two Gaussians."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    D = mu1.shape[0]
    assert mu2.shape == (D,) and sigma1.shape == (D, D) and sigma2.shape == (D, D), "mismatched statistics shapes"

    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # Singular product (e.g. fewer samples than dimensions): shift both covariances off the singularity.
        log.warning("sqrtm of the covariance product is not finite; adding %g to the diagonals", SQRTM_JITTER)
        offset = np.eye(D) * SQRTM_JITTER
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Rounding produces a tiny imaginary part; a large one means a broken covariance: refuse to report it.
        max_imag = float(np.max(np.abs(covmean.imag)))
        if max_imag > IMAG_TOLERANCE * max(1.0, float(np.max(np.abs(covmean.real)))):
            raise ValueError(f"matrix square root has a large imaginary component ({max_imag:.3g})")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return value
