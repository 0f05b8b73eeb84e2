"""The official FVD protocol as the default, and every previous behaviour behind its named switch.

Fast: a stand-in detector (per-channel means) replaces I3D, so these check which videos, frames, resizing and
statistics go in, not the network.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from stylegan_v.metrics import fvd
from stylegan_v.metrics.config import MetricsConfig
from stylegan_v.metrics.fvd import (
    FVDProtocol,
    I3DFeatureExtractor,
    compute_fvd,
    iter_fake_clips,
    iter_source_clips,
    real_stats,
    real_stats_key,
    stats_of,
    video_order,
)
from stylegan_v.metrics.registry import get_metric, protocol_for, run_metric
from stylegan_v.metrics.video_source import ArrayVideos, open_video_source

# name -> frames; the manifest lists them out of name order, v01 is too short for 16-frame clips.
LENGTHS = {"v07": 22, "v02": 30, "v05": 18, "v00": 20, "v03": 16, "v01": 12, "v06": 40, "v04": 25}


def _frame(video_id: int, t: int) -> np.ndarray:
    """8x8 frame whose red channel names the video and green channel the frame index."""
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[..., 0], frame[..., 1] = video_id, t
    return frame


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unsorted")
    for name, length in LENGTHS.items():
        (root / name).mkdir()
        for t in range(length):
            Image.fromarray(_frame(int(name[1:]), t)).save(root / name / f"{t:06d}.png")
    videos = [{"name": name, "num_frames": length} for name, length in LENGTHS.items()]
    (root / "dataset.json").write_text(json.dumps({"format_version": 1, "image_format": "png", "content_hash": "unsorted",
                                                   "videos": videos}))
    return root


def _ids_and_starts(clips) -> list[tuple[int, int]]:
    out = []
    for clip in clips:
        t = clip[:, 0, 0, 1].astype(int)
        np.testing.assert_array_equal(np.diff(t), 1)  # consecutive frames, native frame rate
        out.append((int(clip[0, 0, 0, 0]), int(t[0])))
    return out


def _clips(source, protocol: FVDProtocol, seed: int = 0):
    return iter_source_clips(source, protocol.num_videos, protocol.num_frames, protocol.subsample, protocol.real_selection,
                             seed, protocol.video_selection, protocol.still_frame)


def test_default_takes_the_first_n_videos_in_name_order_leaving_out_short_ones(prepared: Path) -> None:
    source = open_video_source(prepared)
    got = _ids_and_starts(_clips(source, FVDProtocol(num_videos=4, num_frames=16)))
    # sorted names: v00 v01(12 frames: left out before counting) v02 v03 v04 | v05 v06 v07
    assert [vid for vid, _ in got] == [0, 2, 3, 4]
    for vid, start in got:
        assert 0 <= start <= LENGTHS[f"v{vid:02d}"] - 16  # one clip at a random offset inside the video
    v00 = [got[0][1] for got in (_ids_and_starts(_clips(source, FVDProtocol(num_videos=2, num_frames=16), s)) for s in range(20))]
    assert len(set(v00)) > 1 and set(v00) <= set(range(0, 20 - 16 + 1))  # v00's offset varies with the seed


def test_random_video_selection_is_the_previous_seeded_draw(prepared: Path) -> None:
    source = open_video_source(prepared)
    names = list(LENGTHS)  # source index order = manifest order
    for seed in range(3):
        drawn = [names[i] for i in video_order(len(names), 4, seed)]
        expected = [int(n[1:]) for n in drawn if LENGTHS[n] >= 16]  # a drawn short video gives no clip
        got = _ids_and_starts(_clips(source, FVDProtocol(num_videos=4, num_frames=16, video_selection="random"), seed))
        assert [vid for vid, _ in got] == expected
    first = [vid for vid, _ in _ids_and_starts(_clips(source, FVDProtocol(num_videos=4, num_frames=16)))]
    assert any([vid for vid, _ in _ids_and_starts(_clips(source, FVDProtocol(num_videos=4, num_frames=16, video_selection="random"), s))]
               != first for s in range(3))


def test_subsampled_clips_need_n_times_s_frames_by_default() -> None:
    videos = ArrayVideos([np.stack([_frame(i, t) for t in range(n)]) for i, n in enumerate((17, 18, 30))])
    proto = FVDProtocol(num_videos=3, num_frames=9, subsample=2)
    got = list(_clips(videos, proto))
    assert [int(c[0, 0, 0, 0]) for c in got] == [1, 2]  # 17 frames < 9 * 2: left out (the span 17 would fit)
    assert all(np.all(np.diff(c[:, 0, 0, 1].astype(int)) == 2) for c in got)
    old = list(_clips(videos, FVDProtocol(num_videos=3, num_frames=9, subsample=2, video_selection="random")))
    assert [int(c[0, 0, 0, 0]) for c in old] == [0, 1, 2]


def test_fake_video_sets_are_read_like_the_reference_generated_dataset(prepared: Path) -> None:
    source = open_video_source(prepared)  # PNG frames: not lossy-stored, so a JPEG round trip would apply
    clips = list(iter_fake_clips(source, FVDProtocol(num_videos=4, num_frames=16), seed=0))
    assert _ids_and_starts(clips) == [(0, 0), (2, 0), (3, 0), (4, 0)]  # first N in name order, from t = 0, no JPEG


def test_generator_fakes_skip_jpeg_by_default_and_take_every_s_th_frame() -> None:
    def generator(n: int, t: int, seed: int, step: int = 1):  # frames 0, step, ... of a fixed random video
        for k in range(n):
            video = np.random.default_rng([seed, k]).integers(0, 255, size=(17, 16, 16, 3), dtype=np.uint8)
            yield video[: (t - 1) * step + 1 : step]

    proto = FVDProtocol(num_videos=2, num_frames=9, subsample=2)
    raw = list(generator(2, 17, 5))
    fakes = list(iter_fake_clips(generator, proto, seed=5))
    for fake, video in zip(fakes, raw):
        np.testing.assert_array_equal(fake, video[::2])  # t = 0, s, ..., (n - 1) s, untouched
    q95 = next(iter(iter_fake_clips(generator, FVDProtocol(num_videos=2, num_frames=9, subsample=2, fake_jpeg_quality=95), seed=5)))
    assert np.abs(q95.astype(int) - raw[0][::2]).mean() > 1  # the named switch still round-trips through JPEG


def _features(x: torch.Tensor) -> torch.Tensor:
    """Stand-in detector: [B, 3, T, 224, 224] -> per-channel means [B, 3]."""
    assert x.shape[1:] == (3, x.shape[2], 224, 224), x.shape
    return x.mean(dim=(2, 3, 4))


def test_default_resize_is_torch_bilinear_half_pixel_no_antialias() -> None:
    clip = np.random.default_rng(0).integers(0, 256, size=(1, 9, 37, 53, 3), dtype=np.uint8)
    x = torch.from_numpy(clip[0]).permute(0, 3, 1, 2).float()  # [T, C, H, W]
    expected = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False) / 127.5 - 1
    got = I3DFeatureExtractor(_features).preprocess(clip)[0].permute(1, 0, 2, 3)  # [T, C, 224, 224]
    torch.testing.assert_close(got, expected)
    # Trilinear on [B, C, T, H, W] with T unchanged (how the reference project writes its resizes) is the same.
    tri = F.interpolate(x.permute(1, 0, 2, 3)[None], size=(9, 224, 224), mode="trilinear", align_corners=False)[0].permute(1, 0, 2, 3)
    torch.testing.assert_close(got, tri / 127.5 - 1)
    tf1 = I3DFeatureExtractor(_features, resize_mode="tf1").preprocess(clip)[0].permute(1, 0, 2, 3)
    assert (tf1 - got).abs().max() > 1e-2  # the named switch keeps the TensorFlow FVD resize


def test_pre_resize_roundtrip_goes_back_to_the_input_size_as_uint8() -> None:
    clip = np.random.default_rng(1).integers(0, 256, size=(1, 9, 64, 64, 3), dtype=np.uint8)
    x = torch.from_numpy(clip[0]).permute(0, 3, 1, 2).float()
    down = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    back = torch.floor(F.interpolate(down, size=(64, 64), mode="bilinear", align_corners=False) + 0.5).clamp(0, 255)
    expected = F.interpolate(back, size=(224, 224), mode="bilinear", align_corners=False) / 127.5 - 1
    got = I3DFeatureExtractor(_features, pre_resize=32).preprocess(clip)[0].permute(1, 0, 2, 3)
    torch.testing.assert_close(got, expected)
    direct = I3DFeatureExtractor(_features, pre_resize=32, pre_resize_mode="direct").preprocess(clip)[0].permute(1, 0, 2, 3)
    torch.testing.assert_close(direct, F.interpolate(down, size=(224, 224), mode="bilinear", align_corners=False) / 127.5 - 1)
    assert (direct - got).abs().max() > 1e-3


def _videos(seed: int, count: int = 4, length: int = 20) -> ArrayVideos:
    rng = np.random.default_rng(seed)
    return ArrayVideos([rng.integers(0, 256, size=(length, 8, 8, 3), dtype=np.uint8) for _ in range(count)])


def test_cache_key_names_every_real_side_switch(tmp_path: Path) -> None:
    source = _videos(0)
    extractor = I3DFeatureExtractor(_features, progress=False)
    base = real_stats_key(source, FVDProtocol(), extractor, seed=0)
    assert (base["video_selection"], base["selection"], base["still_frame"]) == ("first", "random_offset", "any")
    assert (base["resize_mode"], base["pre_resize_mode"], base["covariance"]) == ("torch", "roundtrip", "population")
    for change in ({"video_selection": "random"}, {"still_frame": "clip_start"}, {"covariance": "unbiased"},
                   {"real_selection": "still"}, {"subsample": 8}):
        assert real_stats_key(source, FVDProtocol(**change), extractor, seed=0) != base, change
    assert real_stats_key(source, FVDProtocol(fake_jpeg_quality=95), extractor, seed=0) == base  # fake-only switch
    for kwargs in ({"resize_mode": "tf1"}, {"pre_resize": 128}, {"pre_resize": 128, "pre_resize_mode": "direct"}):
        assert real_stats_key(source, FVDProtocol(), I3DFeatureExtractor(_features, **kwargs), seed=0) != base, kwargs
    # Both video selections cached side by side, each file carrying its key.
    for selection in ("first", "random"):
        real_stats(source, FVDProtocol(num_videos=3, video_selection=selection), extractor, 0, tmp_path)
    files = sorted((tmp_path / "fvd_stats").iterdir())
    assert len(files) == 2
    assert {json.loads(str(np.load(f)["key"]))["video_selection"] for f in files} == {"first", "random"}


def test_population_covariance_by_default() -> None:
    feats = np.random.default_rng(0).normal(size=(10, 3))
    pop, unb = stats_of(feats, "population"), stats_of(feats, "unbiased")
    np.testing.assert_allclose(pop.sigma, unb.sigma * 9 / 10)
    np.testing.assert_allclose(pop.sigma, (feats - feats.mean(0)).T @ (feats - feats.mean(0)) / 10)
    source = _videos(0)
    extractor = I3DFeatureExtractor(_features, progress=False)
    default = real_stats(source, FVDProtocol(num_videos=4), extractor, 0, None)
    unbiased = real_stats(source, FVDProtocol(num_videos=4, covariance="unbiased"), extractor, 0, None)
    np.testing.assert_allclose(default.sigma, unbiased.sigma * 3 / 4)  # 4 clips: the default divides by N


@pytest.mark.parametrize(("repeat_real", "seeds"), [("fixed", [7]), ("redraw", [7, 8, 9])])
def test_repeats_reuse_or_redraw_the_real_statistics(monkeypatch, repeat_real: str, seeds: list[int]) -> None:
    calls: list[int] = []
    original = fvd.real_stats

    def spy(source, protocol, extractor, seed, cache_dir):
        calls.append(seed)
        return original(source, protocol, extractor, seed, cache_dir)

    monkeypatch.setattr(fvd, "real_stats", spy)
    proto = FVDProtocol(num_videos=4, num_frames=9, seed=7, repeat_real=repeat_real)
    res = compute_fvd(_videos(0), _videos(1), proto, I3DFeatureExtractor(_features, progress=False), repeats=3)
    assert calls == seeds and len(res.values) == 3 and np.all(np.isfinite(res.values))


def test_compute_fvd_refuses_an_extractor_that_contradicts_the_protocol() -> None:
    with pytest.raises(ValueError, match="differs from the protocol"):
        compute_fvd(_videos(0), _videos(1), FVDProtocol(num_videos=4, num_frames=9), I3DFeatureExtractor(_features, resize_mode="tf1"))


class _Detectors:
    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir

    def get(self, kind: str):
        assert kind == "fvd", kind
        return _features


def test_defaults_are_the_official_protocol_and_every_record_says_so(tmp_path: Path) -> None:
    cfg = MetricsConfig(num_videos=3, device="cpu", progress=False)
    assert (cfg.video_selection, cfg.resize_mode, cfg.fake_jpeg_quality, cfg.covariance) == ("first", "torch", None, "population")
    assert (cfg.still_frame, cfg.pre_resize_mode, cfg.repeat_real, cfg.fid_preprocessing) == ("any", "roundtrip", "fixed", "nvidia")
    assert protocol_for(get_metric("fid50k_full"), cfg, 0).resize_mode == "tf1"  # FID keeps its own resize
    record = run_metric("fvd256_16f", _videos(0, length=16), _videos(1, length=16), cfg, _Detectors(tmp_path), seed=0)
    assert record["status"] == "ok" and np.isfinite(record["value"]) and record["num_real"] == record["num_fake"] == 3
    assert record["protocol"] == asdict(protocol_for(get_metric("fvd256_16f"), cfg, 0))
    assert {k: record["protocol"][k] for k in ("video_selection", "resize_mode", "fake_jpeg_quality", "covariance", "repeat_real")} == \
        {"video_selection": "first", "resize_mode": "torch", "fake_jpeg_quality": None, "covariance": "population", "repeat_real": "fixed"}
    old = MetricsConfig(num_videos=3, device="cpu", progress=False, video_selection="random", still_frame="clip_start",
                        fake_jpeg_quality=95, pre_resize_mode="direct", resize_mode="tf1", covariance="unbiased", repeat_real="redraw")
    old_record = run_metric("fvd256_16f", _videos(0, length=16), _videos(1, length=16), old, _Detectors(tmp_path), seed=0)
    assert old_record["protocol"]["resize_mode"] == "tf1" and old_record["value"] != record["value"]
    assert len(list((tmp_path / "fvd_stats").iterdir())) == 2  # the two protocols do not share real statistics


def test_floor_compares_held_out_real_clips_with_the_real_statistics(prepared: Path, tmp_path: Path) -> None:
    source = open_video_source(prepared)
    proto = FVDProtocol(num_videos=3, num_frames=16)
    held_out = iter_source_clips(source, 3, 16, 1, "random_offset", 0, "first", "any", skip=3)
    # eligible in name order: v00 v02 v03 | v04 v05 v06 v07 (v01 is too short): the next three are held out
    assert [vid for vid, _ in _ids_and_starts(held_out)] == [4, 5, 6]
    extractor = I3DFeatureExtractor(_features)
    value, count = fvd.fvd_floor(source, proto, extractor, cache_dir=tmp_path)
    assert count == 3 and value > 0
    s_real = real_stats(source, proto, extractor, 0, None)
    s_held = real_stats(source, proto, extractor, 0, None, skip=3)
    assert value == pytest.approx(fvd.frechet_distance(s_real.mu, s_real.sigma, s_held.mu, s_held.sigma))
    assert real_stats_key(source, proto, extractor, 0, skip=3) != real_stats_key(source, proto, extractor, 0)
    assert len(list((tmp_path / "fvd_stats").glob("*.npz"))) == 2  # both sides cached, under different keys
    with pytest.raises(ValueError, match="held-out clips"):
        fvd.fvd_floor(source, FVDProtocol(num_videos=6, num_frames=16), extractor)  # only one video left over
    with pytest.raises(ValueError, match="video_selection=first"):
        fvd.fvd_floor(source, FVDProtocol(num_videos=3, num_frames=16, video_selection="random"), extractor)
