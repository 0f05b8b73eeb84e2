"""Decode a source video (file via PyAV, or a folder of frame images), resample its frame rate, crop and resize.

Every failure becomes a :class:`BadVideo` with a human-readable reason, so a recipe can list the file in
the manifest's ``rejected`` list and go on with the rest of the dataset.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator, Optional

import av
import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FRAME_FOLDER_FPS = 25.0  # frame folders carry no rate; SkyTimelapse (the one such dataset) is 25 fps
TRUNCATION_TOLERANCE = 0.02  # decoded may fall this fraction short of the declared count (inexact headers)

Box = tuple[int, int, int]  # (left, top, side) of a square crop, in source pixels


class BadVideo(Exception):
    """A source video that cannot be used; ``str(exc)`` is the reason stored in the manifest."""


def is_frame_folder(path: Path) -> bool:
    """A directory of image files with no sub-directories counts as one video (SkyTimelapse layout)."""
    if not path.is_dir():
        return False
    entries = list(path.iterdir())
    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in entries) and not any(p.is_dir() for p in entries)


def _decode_file(path: Path) -> Iterator[tuple[float, Image.Image]]:
    """Yield (time in seconds from the first frame, RGB image); raise BadVideo on any defect."""
    if path.stat().st_size == 0:
        raise BadVideo("zero-length file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise BadVideo(f"unreadable: {exc}") from exc
    with container:
        if not container.streams.video:
            raise BadVideo("unreadable: no video stream")
        stream = container.streams.video[0]
        declared = int(stream.frames or 0)
        rate = float(stream.average_rate) if stream.average_rate else 0.0
        count = 0
        t0: Optional[float] = None
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else (count / rate if rate else float(count))
                t0 = t if t0 is None else t0
                yield t - t0, frame.to_image()
                count += 1
        except av.error.FFmpegError as exc:
            of = f" of {declared} declared" if declared else ""
            raise BadVideo(f"corrupt or truncated: decoding failed after {count}{of} frames: {exc}") from exc
        if count == 0:
            raise BadVideo("no frames decoded")
        if declared > 0 and count < declared * (1.0 - TRUNCATION_TOLERANCE) - 1:
            raise BadVideo(f"truncated: decoded {count} of {declared} declared frames")


def native_fps(path: Path) -> float:
    """Frame rate stored in the container (frame folders: :data:`FRAME_FOLDER_FPS`)."""
    if path.is_dir():
        return FRAME_FOLDER_FPS
    if path.stat().st_size == 0:
        raise BadVideo("zero-length file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadVideo("unreadable: no video stream")
            rate = container.streams.video[0].average_rate
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise BadVideo(f"unreadable: {exc}") from exc
    if not rate or float(rate) <= 0:
        raise BadVideo("unreadable: unknown frame rate")
    return float(rate)


def _decode_folder(path: Path, fps: float) -> Iterator[tuple[float, Image.Image]]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise BadVideo("no frames decoded")
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                rgb = image.convert("RGB")
        except OSError as exc:
            raise BadVideo(f"corrupt: frame {file.name} unreadable: {exc}") from exc
        yield i / fps, rgb


def decode(path: Path, fps_out: Optional[float]) -> Iterator[Image.Image]:
    """Yield full-resolution RGB frames, resampled to ``fps_out`` (None = every decoded frame).

    Resampling picks, for each output time ``j / fps_out``, the latest source frame shown at that time
    (nearest-previous), which neither blends frames nor shifts motion.
    """
    src_fps = native_fps(path)
    frames = _decode_folder(path, src_fps) if path.is_dir() else _decode_file(path)
    if fps_out is None or math.isclose(fps_out, src_fps, rel_tol=1e-3):
        for _, image in frames:
            yield image
        return
    step = 1.0 / fps_out
    eps = 1e-6
    j = 0
    previous: Optional[tuple[float, Image.Image]] = None
    for t, image in frames:
        if previous is not None:
            while j * step < t - eps:  # every output time before this frame shows the previous one
                yield previous[1]
                j += 1
        previous = (t, image)
    if previous is not None:
        end = previous[0] + 1.0 / src_fps  # the last frame stays on screen for one source period
        while j * step < end - eps:
            yield previous[1]
            j += 1


def center_box(width: int, height: int) -> Box:
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def crop_resize(image: Image.Image, box: Box, resolution: int) -> np.ndarray:
    """Square crop then Lanczos resize (the paper's RainbowJelly recipe) to ``[R, R, 3]`` uint8."""
    left, top, side = box
    image = image.crop((left, top, left + side, top + side))
    if image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    frame = np.asarray(image, dtype=np.uint8)
    assert frame.shape == (resolution, resolution, 3), frame.shape
    return frame


BoxFinder = Callable[[Path], Box]
