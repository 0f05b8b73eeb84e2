"""Cached Gaussian statistics of real data, shared by FID and FVD.

Real statistics are expensive (every real frame through Inception, hundreds of clips through I3D) and the same
for every checkpoint, so they are kept on disk. A file is named by a digest of its key — a dict naming
everything that changes the number (detector, dataset content hash, protocol switches, seed) — and carries the
key and a checksum of its arrays. On load both are checked: a file whose key differs (a digest collision or a
renamed file), whose arrays do not match their checksum, or that cannot be read at all is reported and rebuilt,
never used.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stylegan_v.files import atomic_write_bytes
from stylegan_v.metrics.frechet import gaussian_stats

log = logging.getLogger(__name__)


@dataclass
class Stats:
    mu: np.ndarray  # [D] float64
    sigma: np.ndarray  # [D, D] float64
    count: int  # samples the statistics come from


def stats_of(features: np.ndarray, covariance: str = "unbiased") -> Stats:
    mu, sigma = gaussian_stats(features, covariance)
    return Stats(mu, sigma, features.shape[0])


def _canonical(key: Mapping[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def _checksum(stats: Stats) -> str:
    digest = hashlib.sha256()
    for array in (stats.mu, stats.sigma):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    digest.update(str(stats.count).encode())
    return digest.hexdigest()


def cache_path(cache_dir: str | Path, kind: str, key: Mapping[str, Any], prefix: str = "") -> Path:
    """``<cache_dir>/<kind>/<prefix><digest of key>.npz``; the prefix only makes listings readable."""
    digest = hashlib.sha256(_canonical(key).encode()).hexdigest()[:20]
    return Path(cache_dir) / kind / f"{prefix}{digest}.npz"


def load_stats(path: Path, key: Mapping[str, Any]) -> Stats | None:
    """The statistics stored at ``path`` if it exists, holds ``key`` and is intact; None otherwise (logged)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            stored_key, checksum = str(z["key"]), str(z["checksum"])
            stats = Stats(np.array(z["mu"], np.float64), np.array(z["sigma"], np.float64), int(z["count"]))
    except KeyError as e:
        log.warning("cached statistics %s lack %s (an older cache layout); rebuilding them", path, e)
        return None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        log.warning("cached statistics %s are unreadable (%s); rebuilding them", path, e)
        return None
    if stored_key != _canonical(key):
        log.warning("cached statistics %s were made for another key; rebuilding them", path)
        return None
    D = stats.mu.shape[0] if stats.mu.ndim == 1 else -1
    if D < 1 or stats.sigma.shape != (D, D) or checksum != _checksum(stats):
        log.warning("cached statistics %s are damaged (checksum or shapes differ); rebuilding them", path)
        return None
    return stats


def save_stats(path: Path, key: Mapping[str, Any], stats: Stats) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, mu=stats.mu, sigma=stats.sigma, count=stats.count, key=_canonical(key), checksum=_checksum(stats))
    atomic_write_bytes(path, buffer.getvalue())


def cached_stats(cache_dir: str | Path | None, kind: str, key: Mapping[str, Any], compute: Callable[[], Stats],
                 prefix: str = "") -> Stats:
    """Statistics for ``key`` from ``<cache_dir>/<kind>`` when present and intact, else ``compute()`` (then
    stored). Without a cache dir, always computed."""
    if cache_dir is None:
        return compute()
    path = cache_path(cache_dir, kind, key, prefix)
    stats = load_stats(path, key)
    if stats is None:
        stats = compute()
        save_stats(path, key, stats)
    return stats
