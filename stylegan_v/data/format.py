"""The on-disk dataset format shared by every recipe.

A dataset is a folder (or a zip of that folder's contents) holding one sub-folder per video with
zero-padded frame files ``000000.jpg, 000001.jpg, ...`` and a ``dataset.json`` manifest::

    {"format_version": 1, "name": ..., "fps": 25.0, "resolution": 256, "image_format": "jpg",
     "jpeg_quality": 95, "config_hash": ..., "content_hash": ...,
     "videos": [{"name": ..., "num_frames": ..., "fps": ..., "label": ..., "speaker": ..., "source": ...}],
     "label_names": [...], "speaker_names": [...], "rejected": [{"source": ..., "reason": ...}]}

``content_hash`` is a sha256 over every video's name, frame count and frame bytes, so two builds
that hash equal hold the same pixels (used as the dataset tag of training runs). ``config`` and ``config_hash``
are the build settings, which a run compares with its own config. Each build is one version of the dataset
(:mod:`.versions`).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from stylegan_v.files import atomic_write_text

FORMAT_VERSION = 1
MANIFEST_NAME = "dataset.json"
FRAME_DIGITS = 6


def frame_name(index: int, image_format: str) -> str:
    """File name of frame ``index`` inside its video folder."""
    return f"{index:0{FRAME_DIGITS}d}.{image_format}"


def encode_frame(frame: np.ndarray, image_format: str, jpeg_quality: int) -> bytes:
    """Encode one ``[H, W, 3]`` (RGB) or ``[H, W, 1]`` (grayscale) uint8 frame; JPEG quality is always passed
    explicitly (the public code's bug)."""
    assert frame.ndim == 3 and frame.shape[2] in (1, 3) and frame.dtype == np.uint8, (frame.shape, frame.dtype)
    buffer = io.BytesIO()
    image = Image.fromarray(frame[:, :, 0], mode="L") if frame.shape[2] == 1 else Image.fromarray(frame, mode="RGB")
    if image_format == "jpg":
        image.save(buffer, format="JPEG", quality=jpeg_quality)
    elif image_format == "png":
        image.save(buffer, format="PNG", compress_level=1)  # lossless either way; level 1 is fastest
    else:
        raise ValueError(f"unknown image_format {image_format!r}; valid: jpg, png")
    return buffer.getvalue()


class VideoWriter:
    """Writes one video's frames into ``<root>/<name>/`` and hashes them as it goes."""

    def __init__(self, root: Path, name: str, image_format: str, jpeg_quality: int) -> None:
        self.folder = root / name
        self.name = name
        self.image_format = image_format
        self.jpeg_quality = jpeg_quality
        self.num_frames = 0
        self._hash = hashlib.sha256()
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, frame: np.ndarray) -> None:
        data = encode_frame(frame, self.image_format, self.jpeg_quality)
        (self.folder / frame_name(self.num_frames, self.image_format)).write_bytes(data)
        self._hash.update(data)
        self.num_frames += 1

    def digest(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Remove what was written (a video rejected half-way must not leave frames behind)."""
        if self.folder.exists():
            for path in self.folder.iterdir():
                path.unlink()
            self.folder.rmdir()


def content_hash(videos: Iterable[dict[str, Any]]) -> str:
    """Combine per-video frame hashes (in manifest order) into the dataset's content hash."""
    h = hashlib.sha256()
    for video in videos:
        h.update(f"{video['name']}\0{video['num_frames']}\0{video['sha256']}\n".encode())
    return h.hexdigest()


def config_hash(config: dict[str, Any]) -> str:
    """Stable hash of the parts of a dataset config that change its content."""
    text = json.dumps({"format_version": FORMAT_VERSION, **config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``dataset.json`` atomically."""
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=False))


def read_manifest_file(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST_NAME).read_text())
