"""Fréchet distance against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from stylegan_v.metrics.frechet import frechet_distance, gaussian_stats


def _closed_form_diag(mu1, var1, mu2, var2) -> float:
    # Diagonal Gaussians: sum (mu1 - mu2)^2 + sum (sqrt(v1) - sqrt(v2))^2.
    return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2))


@pytest.mark.parametrize("dim", [1, 7, 64])
def test_matches_closed_form_for_diagonal_covariances(dim: int) -> None:
    rng = np.random.default_rng(dim)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    var1, var2 = rng.uniform(0.1, 3.0, size=dim), rng.uniform(0.1, 3.0, size=dim)
    got = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    expected = _closed_form_diag(mu1, var1, mu2, var2)
    assert got == pytest.approx(expected, rel=1e-6)


def test_zero_for_identical_statistics_and_symmetric() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 32))
    b = rng.normal(size=(500, 32)) @ rng.normal(size=(32, 32)) * 0.3 + 1.0
    mu_a, s_a = gaussian_stats(a)
    mu_b, s_b = gaussian_stats(b)
    assert abs(frechet_distance(mu_a, s_a, mu_a, s_a)) < 1e-8
    ab, ba = frechet_distance(mu_a, s_a, mu_b, s_b), frechet_distance(mu_b, s_b, mu_a, s_a)
    assert ab > 1.0
    assert ab == pytest.approx(ba, rel=1e-8)


def test_singular_covariances_stay_finite() -> None:
    # Fewer samples than dimensions (the CPU protocol's situation): rank-deficient covariances.
    rng = np.random.default_rng(1)
    mu_a, s_a = gaussian_stats(rng.normal(size=(5, 40)))
    mu_b, s_b = gaussian_stats(rng.normal(size=(5, 40)) + 0.5)
    value = frechet_distance(mu_a, s_a, mu_b, s_b)
    assert np.isfinite(value) and value > 0


def test_shift_of_mean_adds_squared_norm() -> None:
    rng = np.random.default_rng(2)
    mu, s = gaussian_stats(rng.normal(size=(300, 16)))
    shift = np.full(16, 0.5)
    assert frechet_distance(mu, s, mu + shift, s) == pytest.approx(16 * 0.25, rel=1e-6, abs=1e-6)


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(AssertionError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
