"""Clip selection modes (appendix C, Table 4) and the JPEG round trip, on plain arrays."""

from __future__ import annotations

import numpy as np
import pytest

from stylegan_v.metrics.clips import clip_rng, clip_span, jpeg_roundtrip, min_video_length, select_clip_indices
from stylegan_v.metrics.fvd import FVDProtocol, iter_fake_clips, iter_source_clips, video_order
from stylegan_v.metrics.video_source import ArrayVideos


def test_span_and_subsampling() -> None:
    assert clip_span(16, 1) == 16 and clip_span(128, 8) == 1017
    (clip,) = select_clip_indices(40, 4, 8, "first", clip_rng(0, 0))
    np.testing.assert_array_equal(clip, [0, 8, 16, 24])


def test_random_offset_is_in_range_seeded_and_varies() -> None:
    starts = [select_clip_indices(100, 16, 1, "random_offset", clip_rng(0, i))[0][0] for i in range(50)]
    assert all(0 <= s <= 84 for s in starts) and len(set(starts)) > 10
    again = [select_clip_indices(100, 16, 1, "random_offset", clip_rng(0, i))[0][0] for i in range(50)]
    assert starts == again
    (clip,) = select_clip_indices(100, 16, 1, "random_offset", clip_rng(0, 3))
    np.testing.assert_array_equal(np.diff(clip), 1)  # native frame rate: consecutive frames


def test_all_clips_do_not_overlap_and_still_clip_start_repeats_the_random_offset_frame() -> None:
    clips = select_clip_indices(50, 16, 1, "all", clip_rng(0, 0))
    assert [c[0] for c in clips] == [0, 16, 32]
    (random_clip,) = select_clip_indices(50, 16, 1, "random_offset", clip_rng(7, 2))
    (still,) = select_clip_indices(50, 16, 1, "still", clip_rng(7, 2), still_frame="clip_start")
    np.testing.assert_array_equal(still, np.full(16, random_clip[0]))


def test_still_default_repeats_any_frame_of_the_whole_video() -> None:
    # Default (the reference's static-video script): a uniformly random frame of the video, so also frames past
    # the last clip start (L - span = 34 here), which clip_start can never pick.
    frames = []
    for i in range(300):
        (still,) = select_clip_indices(50, 16, 1, "still", clip_rng(0, i))
        assert len(set(still.tolist())) == 1 and 0 <= still[0] <= 49
        frames.append(int(still[0]))
    assert max(frames) > 34 and min(frames) < 16 and len(set(frames)) > 30
    with pytest.raises(ValueError, match="any, clip_start"):
        select_clip_indices(50, 16, 1, "still", clip_rng(0, 0), still_frame="last")


def test_min_video_length_per_video_selection() -> None:
    # The reference requires n * s frames; the paper-text reading only the clip span (n - 1) * s + 1.
    assert min_video_length(16, 8, "first") == 128 and min_video_length(16, 8, "random") == 121
    assert min_video_length(16, 1, "first") == min_video_length(16, 1, "random") == 16
    with pytest.raises(ValueError, match="first, random"):
        min_video_length(16, 1, "sorted")


def test_short_videos_give_no_clip_and_unknown_mode_lists_valid() -> None:
    assert select_clip_indices(15, 16, 1, "random_offset", clip_rng(0, 0)) == []
    with pytest.raises(ValueError, match="random_offset, all, first, still"):
        select_clip_indices(50, 16, 1, "middle", clip_rng(0, 0))


def test_jpeg_roundtrip_quality_matters() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    smooth = np.stack([yy * 3, xx * 3, (yy + xx) * 2], -1).astype(np.uint8)
    frames = np.clip(smooth[None] + rng.integers(-20, 20, size=(2, 64, 64, 3)), 0, 255).astype(np.uint8)
    err95 = np.abs(jpeg_roundtrip(frames, 95).astype(int) - frames).mean()
    err75 = np.abs(jpeg_roundtrip(frames, 75).astype(int) - frames).mean()
    assert 0 < err95 < err75


def test_source_and_generator_clip_iteration() -> None:
    videos = [np.full((20 + i, 8, 8, 3), i, np.uint8) for i in range(5)]
    source = ArrayVideos(videos)
    clips = list(iter_source_clips(source, num_videos=3, num_frames=16, subsample=1, selection="random_offset", seed=0))
    assert len(clips) == 3 and all(c.shape == (16, 8, 8, 3) for c in clips)
    assert [int(c[0, 0, 0, 0]) for c in clips] == [0, 1, 2]  # default: the first N (no names: index order)
    assert len(video_order(5, 3, 0)) == 3 and list(video_order(2, 3, 0)) == [0, 1]

    def generator(n: int, t: int, seed: int, step: int = 1):  # frames 0, step, ... of a fixed random video
        for k in range(n):
            video = np.random.default_rng([seed, k]).integers(0, 255, size=(17, 16, 16, 3), dtype=np.uint8)
            yield video[: (t - 1) * step + 1 : step]

    proto = FVDProtocol(num_videos=2, num_frames=9, subsample=2, fake_jpeg_quality=None)
    fakes = list(iter_fake_clips(generator, proto, seed=1))
    assert len(fakes) == 2 and fakes[0].shape == (9, 16, 16, 3)
    raw = next(iter(generator(2, 17, 1)))
    np.testing.assert_array_equal(fakes[0], raw[::2])  # from t = 0, every s-th frame


@pytest.mark.parametrize(("key", "value", "valid"), [
    ("real_selection", "middle", "random_offset, all, first, still"), ("video_selection", "sorted", "first, random"),
    ("still_frame", "last", "any, clip_start"), ("resize_mode", "area", "torch, tf1"),
    ("pre_resize_mode", "twice", "roundtrip, direct"), ("covariance", "biased", "population, unbiased"),
    ("repeat_real", "never", "fixed, redraw"), ("fake_jpeg_quality", 0, "1, 100"),
])
def test_protocol_validation_names_the_key_and_valid_values(key: str, value, valid: str) -> None:
    with pytest.raises(ValueError, match=rf"metrics\.{key}.*{valid}"):
        FVDProtocol(**{key: value})
