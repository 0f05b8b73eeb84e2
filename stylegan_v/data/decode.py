"""Decode a source video (file via PyAV, or a folder of frame images), resample its frame rate, crop and resize.

Every failure becomes a :class:`BadVideo` with a human-readable reason, so a recipe can list the file in
the manifest's ``rejected`` list and go on with the rest of the dataset (the recipe turns any other exception
from reading a source into one too).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Frame folders carry no rate: dataset.fps names theirs (nothing is resampled; MUG: 19), else this (SkyTimelapse)
FRAME_FOLDER_FPS = 25.0
TRUNCATION_TOLERANCE = 0.02  # decoded may fall this fraction short of the declared count (inexact headers)
SEEK_MARGIN_S = 1.0  # seek this far before a segment's first frame; the demuxer lands on an earlier keyframe

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
    with _open(path) as container:
        stream = container.streams.video[0]
        declared = int(stream.frames or 0)
        rate = float(stream.average_rate) if stream.average_rate else 0.0
        count = 0
        t0: float | None = None
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


def _open(path: Path) -> av.container.InputContainer:
    if path.stat().st_size == 0:
        raise BadVideo("zero-length file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise BadVideo(f"unreadable: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise BadVideo("unreadable: no video stream")
    return container


def probe_num_frames(path: Path) -> int | None:
    """Frame count from the container header (or duration x rate); None when unknown or unreadable."""
    try:
        with _open(path) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            if stream.duration and stream.average_rate:
                return int(float(stream.duration * stream.time_base) * float(stream.average_rate))
    except BadVideo:
        return None
    return None


class _Overshoot(Exception):
    """The seek landed after the segment's first frame (a demuxer quirk); decode from the start instead."""


def _scan(path: Path, start: int, end: int | None, seek: bool) -> Iterator[tuple[int, Image.Image]]:
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 0)
        if rate <= 0:
            raise BadVideo("unreadable: unknown frame rate")
        try:
            first = next(iter(container.decode(stream)), None)
            if first is None or first.time is None:
                raise BadVideo("no frames decoded")
            t0 = first.time
            target = t0 + start / rate - SEEK_MARGIN_S
            if seek and target > t0:
                container.seek(int(target / stream.time_base), backward=True, any_frame=False, stream=stream)
            else:
                container.seek(0, stream=stream)
            expected = None
            for frame in container.decode(stream):
                index = round((frame.time - t0) * rate)
                if index < start:
                    continue
                if end is not None and index >= end:
                    return
                if expected is None and index > start:
                    raise _Overshoot()
                if expected is not None and index != expected:
                    raise BadVideo(
                        f"variable frame rate: frame index jumps from {expected - 1} to {index}; "
                        "segment-parallel decoding needs a constant rate (set dataset.segment_chunks=null)"
                    )
                yield index, frame.to_image()
                expected = index + 1
        except av.error.FFmpegError as exc:
            raise BadVideo(f"corrupt or truncated: decoding failed near frame {start}: {exc}") from exc


def decode_range(path: Path, start: int, end: int | None) -> Iterator[tuple[int, Image.Image]]:
    """Yield (frame index, RGB image) for native frames ``start <= index < end`` (None = to the end).

    Seeks to a keyframe before ``start`` instead of decoding from the beginning, so one long film (the
    RainbowJelly source is 8 hours of 4K) splits into segments that decode in parallel. Indices come from
    timestamps, which equals sequential counting for constant-frame-rate video; a jump raises BadVideo.
    """
    try:
        yield from _scan(path, start, end, seek=start > 0)
    except _Overshoot:
        yield from _scan(path, start, end, seek=False)


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
        except Exception as exc:  # e.g. Pillow's DecompressionBombError: this video is rejected, not the dataset
            raise BadVideo(f"frame {file.name} refused: {type(exc).__name__}: {exc}") from exc
        yield i / fps, rgb


def decode(path: Path, fps_out: float | None) -> Iterator[Image.Image]:
    """Yield full-resolution RGB frames, resampled to ``fps_out`` (None = every decoded frame).

    Resampling picks, for each output time ``j / fps_out``, the latest source frame shown at that time
    (nearest-previous), which neither blends frames nor shifts motion. A frame folder has no rate to resample
    from: ``fps_out`` is its rate.
    """
    src_fps = float(fps_out) if path.is_dir() and fps_out is not None else native_fps(path)
    frames = _decode_folder(path, src_fps) if path.is_dir() else _decode_file(path)
    if fps_out is None or math.isclose(fps_out, src_fps, rel_tol=1e-3):
        for _, image in frames:
            yield image
        return
    step = 1.0 / fps_out
    eps = 1e-6
    j = 0
    previous: tuple[float, Image.Image] | None = None
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

