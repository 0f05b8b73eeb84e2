"""Which frames of a video become FVD clips (appendix C and the Table 4 variants), and the JPEG round trip.

Works on frame counts and uint8 arrays only, so it needs nothing from the data stage. Offsets come from a
generator seeded by (seed, video index): the same seed picks the same clips whatever the selection mode,
which is what makes "random offset" vs "still" a like-for-like comparison.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# random_offset: one clip per video at a random start (the paper's protocol);
# all: every non-overlapping clip; first: one clip from frame 0; still: the first frame of the random-offset clip,
# repeated (Table 4 "still real images").
SELECTIONS = ("random_offset", "all", "first", "still")


def clip_span(num_frames: int, subsample: int) -> int:
    """Frames of the source video a clip covers: n frames taken every ``subsample``-th."""
    assert num_frames >= 1 and subsample >= 1, (num_frames, subsample)
    return (num_frames - 1) * subsample + 1


def clip_rng(seed: int, video_index: int) -> np.random.Generator:
    return np.random.default_rng([seed, video_index])


def select_clip_indices(video_len: int, num_frames: int, subsample: int, mode: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Frame indices [num_frames] of each clip taken from a video of ``video_len`` frames ([] if too short)."""
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
        return [np.full(num_frames, int(rng.integers(0, video_len - span + 1)))]
    else:
        raise ValueError(f"unknown clip selection {mode!r}; valid: {', '.join(SELECTIONS)}")


def jpeg_roundtrip(frames: np.ndarray, quality: int) -> np.ndarray:
    """Encode every frame as JPEG with Pillow at ``quality`` and decode it back (how fakes are stored, App. C)."""
    assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.dtype == np.uint8, (frames.shape, frames.dtype)
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame, mode="RGB").save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as img:
            out[t] = np.asarray(img.convert("RGB"))
    return out
