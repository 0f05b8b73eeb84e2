"""Clip sampling: sparse-sampling invariants, video-first fairness (statistical), evaluation selections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from stylegan_v.data import format as fmt
from stylegan_v.data.sampling import (
    ClipDataset,
    VideoFirstSampler,
    default_spans,
    sample_consecutive,
    sample_fake_times,
    sample_sparse,
    select_clips,
)
from stylegan_v.data.video_dataset import VideoDataset


def _write_dataset(root: Path, lengths: list[int], size: int = 8) -> VideoDataset:
    """A real on-disk dataset whose frame (v, t) has grey level v * 8 + (t % 2), to check what was read."""
    videos = []
    for v, length in enumerate(lengths):
        writer = fmt.VideoWriter(root, f"{v:04d}", "png", 95)
        for t in range(length):
            writer.add(np.full((size, size, 3), v * 8 + t % 2, dtype=np.uint8))
        videos.append({"name": writer.name, "num_frames": length, "fps": 25.0, "label": None, "speaker": None,
                       "source": None, "sha256": writer.digest()})
    fmt.write_manifest(root, {
        "format_version": fmt.FORMAT_VERSION, "name": "synthetic", "fps": 25.0, "resolution": size,
        "image_format": "png", "jpeg_quality": None, "config_hash": "test", "content_hash": fmt.content_hash(videos),
        "num_videos": len(videos), "num_frames": sum(lengths), "label_names": [], "speaker_names": [],
        "videos": videos, "rejected": [],
    })
    return VideoDataset(root)


def test_default_spans_are_the_official_ones() -> None:
    assert default_spans(32) == [1, 2, 4, 8, 16, 32]  # official total_dists up to max_dist
    assert [s for s in default_spans(32) if s >= 3 - 1] == [2, 4, 8, 16, 32]  # k = 3: the paper's spans


def test_fake_times_take_a_real_video_length_and_a_fractional_offset() -> None:
    lengths = np.array([3, 12, 400, 5000])
    rng = np.random.RandomState(0)
    times, videos = sample_fake_times(lengths, 4000, 3, rng, max_dist=32, max_num_frames=1024)
    assert times.shape == (4000, 3) and times.dtype == np.float32 and set(videos) == {0, 1, 2, 3}
    rel = times - times[:, :1]
    np.testing.assert_allclose(rel, np.round(rel), atol=1e-3)  # whole frames apart, as real clips
    assert np.all(np.diff(times, axis=1) > 0) and times.min() >= 0
    span = np.round(rel[:, -1])
    for v, length in enumerate(lengths):
        mine = videos == v
        capped = min(length, 1024)
        assert np.all(times[mine, -1] < capped - 1 + 1e-6), "inside the video the clip was modelled on"
        allowed = [s for s in (2, 4, 8, 16, 32) if s <= capped - 1] or [capped - 1]
        assert set(span[mine].astype(int)) == set(allowed)
    assert (times[videos != 0, 0] % 1 != 0).mean() > 0.99  # fractional offsets (a 3-frame video has no room)
    assert times[videos == 3, 0].max() > 900  # offsets over the (capped) length of a long video
    consecutive, _ = sample_fake_times(lengths, 50, 3, rng, mode="consecutive", stride=2)
    np.testing.assert_array_equal(np.diff(consecutive, axis=1), 2.0)


def test_mirror_flips_whole_clips_about_half_the_time(tmp_path: Path) -> None:
    root = tmp_path / "asym"
    writer = fmt.VideoWriter(root, "0000", "png", 95)
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    frame[:, :4] = 200  # bright left half
    for _ in range(40):
        writer.add(frame)
    videos = [{"name": writer.name, "num_frames": 40, "fps": 25.0, "label": None, "speaker": None, "source": None,
               "sha256": writer.digest()}]
    fmt.write_manifest(root, {
        "format_version": fmt.FORMAT_VERSION, "name": "asym", "fps": 25.0, "resolution": 8, "image_format": "png",
        "jpeg_quality": None, "config_hash": "test", "content_hash": fmt.content_hash(videos), "num_videos": 1,
        "num_frames": 40, "label_names": [], "speaker_names": [], "videos": videos, "rejected": [],
    })
    plain, mirrored = ClipDataset(VideoDataset(root), num_frames=3), ClipDataset(VideoDataset(root), num_frames=3,
                                                                                   mirror=True)
    assert all(plain[(0, seed)]["frames"][:, :, :, 0].float().mean() == 200 for seed in range(20))
    left = [mirrored[(0, seed)]["frames"][:, :, :, 0].float() for seed in range(200)]
    flipped = [bool((clip == 0).all()) for clip in left]  # every frame of a clip flipped together
    assert all(bool((clip == 200).all()) or f for clip, f in zip(left, flipped))
    assert 60 < sum(flipped) < 140


@pytest.mark.parametrize("k", [2, 3, 4, 8])
def test_sparse_sampling_invariants(k: int) -> None:
    rng = np.random.default_rng(0)
    seen_spans: set[int] = set()
    for _ in range(3000):
        length = int(rng.integers(k, 120))
        idx, times = sample_sparse(length, k, rng, max_dist=32)
        span = int(idx[-1] - idx[0])
        assert idx.shape == (k,) and times.shape == (k,) and times.dtype == np.float32
        assert np.all(np.diff(idx) > 0), "indices strictly increasing (sorted, distinct)"
        assert idx[0] >= 0 and idx[-1] < length, "inside the video"
        np.testing.assert_array_equal(times, idx - idx[0])  # frames since the first sampled frame
        allowed = [s for s in default_spans(32) if k - 1 <= s <= length - 1]
        if allowed:
            assert span in allowed
        else:  # shorter than any allowed span: the whole video
            assert span == length - 1
        assert span >= k - 1
        if length > 40:
            seen_spans.add(span)
    assert seen_spans == {s for s in default_spans(32) if s >= k - 1}  # every allowed span is used


def test_sparse_sampling_offsets_cover_the_video() -> None:
    rng = np.random.default_rng(1)
    starts = [sample_sparse(100, 3, rng, spans=[32])[0][0] for _ in range(4000)]
    assert min(starts) == 0 and max(starts) == 100 - 1 - 32  # random offset, all positions reachable


def test_long_videos_are_seen_through_a_random_window_of_max_num_frames(tmp_path: Path) -> None:
    """As the official loader: a video longer than 1024 frames is cut to a random 1024-frame window, then the
    clip is drawn inside it; so a clip's start is the sum of two uniform offsets (the window's and the clip's
    in it), fewer starts fall near the ends than uniform sampling over the whole video would give."""
    length, window, span = 3000, 1024, 32
    ds = _write_dataset(tmp_path, [length, 40], size=2)
    clips = ClipDataset(ds, num_frames=3, spans=[span], max_num_frames=window)
    rng = np.random.default_rng(4)
    draws = 20000
    starts = np.empty(draws, dtype=np.int64)
    for i in range(draws):
        indices, times = clips.sample_indices(0, rng)
        assert indices[-1] - indices[0] == span and indices[-1] < length
        np.testing.assert_array_equal(times, indices - indices[0])  # times from the clip's first frame
        starts[i] = indices[0]
    # Exact law of the start: window offset uniform on [0, length - window], clip offset on [0, window - span - 1].
    law = np.convolve(np.full(length - window + 1, 1 / (length - window + 1)), np.full(window - span, 1 / (window - span)))
    edges = np.linspace(0, len(law), 21).astype(int)
    expected = np.array([law[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]) * draws
    observed = np.array([((starts >= a) & (starts < b)).sum() for a, b in zip(edges[:-1], edges[1:])])
    assert chisquare(observed, expected).pvalue > 1e-3, (observed, expected.round())
    assert observed[0] < 0.5 * draws / 20  # far fewer starts in the first twentieth than uniform sampling gives
    # A video within the window: no window drawn, the clip as before (the same random stream).
    short = [clips.sample_indices(1, np.random.default_rng(9))[0] for _ in range(2)]
    assert all(np.array_equal(a, sample_sparse(40, 3, np.random.default_rng(9), spans=[span])[0]) for a in short)
    with pytest.raises(ValueError, match="max_num_frames"):
        ClipDataset(ds, num_frames=16, mode="consecutive", stride=3, max_num_frames=32)
    # G3AN's random-stride clips come from the whole video (its loader has no window): a 16-frame window could
    # not even hold one of these 22-frame clips.
    g3an = ClipDataset(ds, num_frames=8, mode="random_stride", strides=[3], max_num_frames=16)
    starts = [g3an.sample_indices(0, rng)[0][0] for _ in range(200)]
    assert max(starts) > 1000


def test_consecutive_sampling() -> None:
    rng = np.random.default_rng(2)
    for _ in range(500):
        idx, times = sample_consecutive(40, 16, rng, stride=2)
        assert np.all(np.diff(idx) == 2) and idx[0] >= 0 and idx[-1] < 40
        np.testing.assert_array_equal(times, np.arange(16) * 2)
    with pytest.raises(ValueError):
        sample_consecutive(10, 16, rng)


def test_each_video_equally_likely_despite_one_very_long_video(tmp_path: Path) -> None:
    lengths = [3000] + [6] * 29  # the long one holds 95 % of all frames
    ds = _write_dataset(tmp_path, lengths)
    clips = ClipDataset(ds, num_frames=3)
    draws = 30 * 200
    loader = torch.utils.data.DataLoader(
        clips, batch_size=100, sampler=VideoFirstSampler(ds.num_videos, seed=3, num_samples=draws))
    counts = np.zeros(ds.num_videos, dtype=np.int64)
    for batch in loader:
        assert batch["frames"].shape[1:] == (3, 3, 8, 8)
        # The frames really come from the picked video (grey level encodes the video index).
        np.testing.assert_array_equal(batch["frames"][:, :, 0, 0, 0].to(torch.int64) // 8,
                                      batch["video_index"][:, None].expand(-1, 3))
        counts += np.bincount(batch["video_index"].numpy(), minlength=ds.num_videos)
    assert counts.sum() == draws
    p_value = chisquare(counts).pvalue  # H0: uniform over videos
    assert p_value > 1e-3, (p_value, counts)
    assert counts[0] / draws < 2 / 30  # a frame-uniform sampler would pick the long video ~95 % of the time


def test_stream_does_not_depend_on_worker_count(tmp_path: Path) -> None:
    ds = _write_dataset(tmp_path, [40, 50, 60, 70])
    clips = ClipDataset(ds, num_frames=3)

    def stream(workers: int) -> list[tuple[int, list[float]]]:
        loader = torch.utils.data.DataLoader(
            clips, batch_size=4, num_workers=workers, sampler=VideoFirstSampler(4, seed=7, num_samples=32))
        return [(int(v), t.tolist()) for b in loader for v, t in zip(b["video_index"], b["times"])]

    assert stream(0) == stream(2)


def test_clip_dataset_float_frames(tmp_path: Path) -> None:
    ds = _write_dataset(tmp_path, [20, 20])
    item = ClipDataset(ds, num_frames=3, dtype="float")[(1, 123)]
    assert item["frames"].dtype == torch.float32 and item["frames"].shape == (3, 3, 8, 8)
    assert item["frames"].min() >= -1 and item["frames"].max() <= 1 and item["video_index"] == 1
    assert item["label"] == -1
    with pytest.raises(ValueError, match="shorter"):
        ClipDataset(_write_dataset(tmp_path / "short", [2, 20]), num_frames=3)


def test_evaluation_selections(tmp_path: Path) -> None:
    lengths = [10, 16, 33, 100, 5]
    ds = _write_dataset(tmp_path, lengths)
    one = select_clips(ds, "one_random_clip", num_frames=16, max_videos=None, seed=0)
    assert [c.video_index for c in one] == [1, 2, 3]  # videos shorter than a clip are skipped
    for c in one:
        assert np.all(np.diff(c.frame_indices) == 1) and c.frame_indices[-1] < lengths[c.video_index]
    offsets = {select_clips(ds, "one_random_clip", 16, None, seed=s)[2].frame_indices[0] for s in range(30)}
    assert len(offsets) > 10  # random offsets, not always 0
    assert select_clips(ds, "one_random_clip", 16, None, seed=4)[2].frame_indices.tolist() == \
        select_clips(ds, "one_random_clip", 16, None, seed=4)[2].frame_indices.tolist()  # seeded

    first = select_clips(ds, "first_frames", num_frames=16, max_videos=None)
    assert all(c.frame_indices[0] == 0 for c in first) and len(first) == 3

    every = select_clips(ds, "all_clips", num_frames=16, max_videos=None)
    assert [c.video_index for c in every] == [1, 2, 2, 3, 3, 3, 3, 3, 3]  # floor(length / 16) per video
    for v in (2, 3):
        frames = np.concatenate([c.frame_indices for c in every if c.video_index == v])
        assert len(set(frames.tolist())) == len(frames)  # non-overlapping

    sub = select_clips(ds, "one_random_clip", num_frames=4, max_videos=None, subsample=8)
    assert [c.video_index for c in sub] == [2, 3] and all(np.all(np.diff(c.frame_indices) == 8) for c in sub)

    still = select_clips(ds, "still_frames", num_frames=16, max_videos=None, seed=0)
    assert len(still) == 5 and all(len(set(c.frame_indices.tolist())) == 1 for c in still)
    assert all(c.frame_indices[0] < lengths[c.video_index] and c.frame_indices.shape == (16,) for c in still)

    capped = select_clips(ds, "first_frames", num_frames=1, max_videos=2, seed=0)
    assert len(capped) == 2
    with pytest.raises(ValueError, match="valid"):
        select_clips(ds, "every_frame", num_frames=16)
