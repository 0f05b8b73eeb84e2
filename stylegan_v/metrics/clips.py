"""Which videos and which frames of them become FVD clips (the official protocol, the Table 4 variants, and
the paper-text reading as named switches), and the JPEG round trip.

Works on frame counts and uint8 arrays only, so it needs nothing from the data stage. Clip offsets come from a
generator seeded by (seed, video index): the same seed picks the same clip start whatever the selection mode,
so "random offset" vs "first" vs "all" compare like for like.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from stylegan_v.metrics.options import SELECTIONS, STILL_FRAMES, VIDEO_SELECTIONS


def clip_span(num_frames: int, subsample: int) -> int:
    """Frames of the source video a clip covers: n frames taken every ``subsample``-th."""
    assert num_frames >= 1 and subsample >= 1, (num_frames, subsample)
    return (num_frames - 1) * subsample + 1


def min_video_length(num_frames: int, subsample: int, video_selection: str) -> int:
    """Shortest video that gives a clip: n * s frames (``first``, as the reference dataset requires) or the
    clip span (n - 1) * s + 1 (``random``); the two differ only when s > 1."""
    if video_selection == "first":
        return num_frames * subsample
    elif video_selection == "random":
        return clip_span(num_frames, subsample)
    else:
        raise ValueError(f"unknown video selection {video_selection!r}; valid: {', '.join(VIDEO_SELECTIONS)}")


def clip_rng(seed: int, video_index: int) -> np.random.Generator:
    return np.random.default_rng([seed, video_index])


def select_clip_indices(
    video_len: int,
    num_frames: int,
    subsample: int,
    mode: str,
    rng: np.random.Generator,
    still_frame: str = "any",  # which frame a still clip repeats (STILL_FRAMES); other modes ignore it
) -> list[np.ndarray]:
    """Frame indices [num_frames] of each clip taken from a video of ``video_len`` frames ([] if too short).

    The random start is uniform over [0, video_len - span], the same range as the reference's
    ``randint(0, L - n * s + s - 1)``.
    """
    span = clip_span(num_frames, subsample)
    if video_len < span:
        return []
    steps = np.arange(num_frames) * subsample
    if mode == "random_offset":
        return [int(rng.integers(0, video_len - span + 1)) + steps]
    elif mode == "all":
        return [start + steps for start in range(0, video_len - span + 1, span)]
    elif mode == "first":
        return [steps.copy()]
    elif mode == "still":
        start = int(rng.integers(0, video_len - span + 1))  # drawn first in both cases: same stream as random_offset
        if still_frame == "any":
            return [np.full(num_frames, int(rng.integers(0, video_len)))]
        elif still_frame == "clip_start":
            return [np.full(num_frames, start)]
        else:
            raise ValueError(f"unknown still frame {still_frame!r}; valid: {', '.join(STILL_FRAMES)}")
    else:
        raise ValueError(f"unknown clip selection {mode!r}; valid: {', '.join(SELECTIONS)}")


def jpeg_roundtrip(frames: np.ndarray, quality: int) -> np.ndarray:
    """Encode every frame as JPEG with Pillow at ``quality`` and decode it back (fakes stored like JPEG reals)."""
    assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.dtype == np.uint8, (frames.shape, frames.dtype)
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame, mode="RGB").save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as img:
            out[t] = np.asarray(img.convert("RGB"))
    return out
