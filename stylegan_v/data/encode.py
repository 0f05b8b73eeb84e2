"""Write videos frame chunk by frame chunk, so a 10 000-frame video costs the memory of one chunk."""

from __future__ import annotations

import os
import secrets
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np


class Mp4Writer:
    """H.264 mp4 from uint8 ``[T, H, W, 3]`` chunks; written to a temporary name and renamed on success."""

    def __init__(self, path: str | Path, fps: float, crf: int = 18) -> None:
        self.path = Path(path)
        # a name unique to this writer: two processes writing one target never share a partial file
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp.mp4")
        self.fps = Fraction(fps).limit_denominator(1001)
        self.crf = crf
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self.frames_written = 0

    def __enter__(self) -> Mp4Writer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.tmp), mode="w")
        return self

    def write(self, frames: np.ndarray) -> None:
        T, H, W, C = frames.shape
        assert C == 3 and frames.dtype == np.uint8, f"expected uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}"
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            self._stream.width, self._stream.height = W + W % 2, H + H % 2  # yuv420p needs even sizes
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self.crf)}
        if W % 2 or H % 2:
            frames = np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), mode="edge")
        for frame in frames:
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                self._container.mux(packet)
        self.frames_written += T

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._stream is not None and exc_type is None:
                for packet in self._stream.encode():  # flush
                    self._container.mux(packet)
        finally:
            self._container.close()
        if exc_type is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)
