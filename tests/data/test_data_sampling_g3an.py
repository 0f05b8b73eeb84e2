"""G3AN's clips (``dataset.sampling.mode=random_stride``), as its public ``dataset.py`` draws them: 16 frames at
a stride drawn from {2, 3}, the first frame uniform in [0, length - 16 x stride]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_helpers import compose_dataset
from scipy.stats import binomtest, chisquare

from stylegan_v.data import format as fmt
from stylegan_v.data.sampling import ClipDataset, sample_fake_times, sample_random_stride
from stylegan_v.data.video_dataset import VideoDataset


def _draws(length: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(starts [n], strides [n]) of n clips of 16 frames from a video of ``length`` frames."""
    rng = np.random.default_rng(seed)
    starts, strides = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    for i in range(n):
        idx, times = sample_random_stride(length, 16, rng)
        assert idx.shape == (16,) and 0 <= idx[0] and idx[-1] < length
        steps = np.diff(idx)
        assert (steps == steps[0]).all(), "one stride per clip"
        np.testing.assert_array_equal(times, np.arange(16, dtype=np.float32))  # times count the clip's frames
        starts[i], strides[i] = idx[0], steps[0]
    return starts, strides


def test_strides_two_and_three_equally_often_and_starts_uniform() -> None:
    length, n = 100, 4000
    starts, strides = _draws(length, n)
    assert set(strides.tolist()) == {2, 3}
    assert binomtest(int((strides == 2).sum()), n, 0.5).pvalue > 1e-4
    for stride in (2, 3):
        last = length - 16 * stride  # the public window: randint(0, nframes - 16 * step), both ends included
        got = starts[strides == stride]
        assert got.min() == 0 and got.max() == last
        counts = np.bincount(got, minlength=last + 1)
        assert chisquare(counts).pvalue > 1e-4  # uniform over 0 .. last


def test_the_public_window_is_one_stride_longer_than_the_clip() -> None:
    """A 32-frame video: at stride 2 the clip (frames 0, 2, ..., 30) could also start at 1, but the public
    window of 16 x 2 frames only allows 0; stride 3 does not fit at all."""
    starts, strides = _draws(32, 200)
    assert (strides == 2).all() and (starts == 0).all()


def test_short_videos_draw_only_the_strides_that_fit() -> None:
    starts, strides = _draws(47, 300)  # 16 x 3 = 48 > 47: stride 3 never fits, where the public code would crash
    assert (strides == 2).all() and starts.max() == 47 - 32
    starts, strides = _draws(48, 2000, seed=1)  # both fit
    assert set(strides.tolist()) == {2, 3} and (starts[strides == 3] == 0).all()
    with pytest.raises(ValueError, match="31 frames is shorter than 16 x the smallest stride"):
        sample_random_stride(31, 16, np.random.default_rng(0))


def _write(root: Path, lengths: list[int]) -> VideoDataset:
    """A real on-disk dataset whose frame t has grey level t, to check which frames were read."""
    videos = []
    for v, length in enumerate(lengths):
        writer = fmt.VideoWriter(root, f"{v:04d}", "png", 95)
        for t in range(length):
            writer.add(np.full((8, 8, 3), t, dtype=np.uint8))
        videos.append({"name": writer.name, "num_frames": length, "fps": 25.0, "label": None, "speaker": None,
                       "source": None, "sha256": writer.digest()})
    fmt.write_manifest(root, {
        "format_version": fmt.FORMAT_VERSION, "name": "synthetic", "fps": 25.0, "resolution": 8,
        "image_format": "png", "jpeg_quality": None, "config_hash": "test", "content_hash": fmt.content_hash(videos),
        "num_videos": len(videos), "num_frames": sum(lengths), "label_names": [], "speaker_names": [],
        "videos": videos, "rejected": [],
    })
    return VideoDataset(root)


def test_clip_dataset_reads_the_strided_frames(tmp_path: Path) -> None:
    clips = ClipDataset(_write(tmp_path / "ds", [40, 90]), num_frames=16, mode="random_stride")
    seen = set()
    for seed in range(40):
        item = clips[(1, seed)]
        grey = item["frames"][:, 0, 0, 0].numpy().astype(np.int64)  # [16]: the frame indices read
        stride = int(grey[1] - grey[0])
        assert stride in (2, 3) and (np.diff(grey) == stride).all() and grey[-1] < 90
        seen.add(stride)
        np.testing.assert_array_equal(item["times"].numpy(), np.arange(16))
    assert seen == {2, 3}
    for seed in range(10):  # 40 frames: only stride 2 fits
        assert (np.diff(clips[(0, seed)]["frames"][:, 0, 0, 0].numpy().astype(np.int64)) == 2).all()
    with pytest.raises(ValueError, match="1 videos are shorter than the 32 frames a clip needs"):
        ClipDataset(_write(tmp_path / "short", [31, 90]), num_frames=16, mode="random_stride")


def test_fake_clips_are_the_generated_frames_in_order() -> None:
    times, videos = sample_fake_times(np.array([40, 90, 300]), 5, 16, np.random.RandomState(0), mode="random_stride")
    np.testing.assert_array_equal(times, np.tile(np.arange(16, dtype=np.float32), (5, 1)))
    assert videos.shape == (5,) and videos.max() < 3


def test_config_mode_and_strides() -> None:
    cfg, _ = compose_dataset("moving_mnist", "dataset.sampling.mode=random_stride")
    assert cfg.sampling.mode == "random_stride" and list(cfg.sampling.strides) == [2, 3]
    with pytest.raises(ValueError, match="dataset.sampling.strides"):
        compose_dataset("moving_mnist", "dataset.sampling.strides=[]")
    with pytest.raises(ValueError, match="dataset.sampling.strides"):
        compose_dataset("moving_mnist", "dataset.sampling.strides=[2,0]")
