"""Cached real statistics: used when intact and made for the same key; rebuilt when damaged or foreign."""

from __future__ import annotations

import numpy as np

from stylegan_v.metrics.stats_cache import cache_path, cached_stats, stats_of

KEY = {"detector": "d", "dataset": "abc", "num_videos": 4, "seed": 0}


def _counting(features: np.ndarray):
    calls = []

    def compute():
        calls.append(1)
        return stats_of(features)
    return compute, calls


def test_intact_cache_is_reused(tmp_path) -> None:
    feats = np.random.default_rng(0).normal(size=(8, 3))
    compute, calls = _counting(feats)
    first = cached_stats(tmp_path, "fvd_stats", KEY, compute)
    second = cached_stats(tmp_path, "fvd_stats", KEY, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.sigma, second.sigma)


def test_damaged_cache_is_detected_and_rebuilt(tmp_path) -> None:
    feats = np.random.default_rng(1).normal(size=(8, 3))
    compute, calls = _counting(feats)
    good = cached_stats(tmp_path, "fvd_stats", KEY, compute)
    path = cache_path(tmp_path, "fvd_stats", KEY)

    # Flipped bytes inside the stored mean: the file still loads, the checksum does not match.
    with np.load(path) as z:
        fields = {k: z[k] for k in z.files}
    fields["mu"] = fields["mu"] + 1.0
    np.savez(path, **fields)
    rebuilt = cached_stats(tmp_path, "fvd_stats", KEY, compute)
    assert len(calls) == 2
    np.testing.assert_array_equal(rebuilt.mu, good.mu)

    # A truncated file (a crash of some other writer, a full disk).
    path.write_bytes(path.read_bytes()[:100])
    cached_stats(tmp_path, "fvd_stats", KEY, compute)
    assert len(calls) == 3

    # Another key's file under this name (a copied cache folder): not used.
    other = {**KEY, "seed": 1}
    cached_stats(tmp_path, "fvd_stats", other, compute)
    cache_path(tmp_path, "fvd_stats", other).replace(path)
    cached_stats(tmp_path, "fvd_stats", KEY, compute)
    assert len(calls) == 5
    assert cached_stats(tmp_path, "fvd_stats", KEY, compute) is not None and len(calls) == 5  # healthy again
