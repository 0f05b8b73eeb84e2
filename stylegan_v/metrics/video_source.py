"""Read-only access to a set of videos: in-memory arrays, a prepared dataset folder, or a folder of videos.

Metrics need only "how many videos, how long is each, give me these frames", plus a content hash for cache
keys. The prepared-dataset layout (``dataset.json`` + one folder of numbered frames per video) is read directly
from its manifest; only the version a link ``data/<name>`` points at is resolved, and held, through
:mod:`stylegan_v.data.versions`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import weakref
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import av
import numpy as np
from PIL import Image

from stylegan_v.data.versions import open_reader

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class VideoSource(Protocol):
    """A set of videos. Sets read from disk also have ``names`` (one per video: folder or file name), which
    order the videos as a directory listing does (``fvd.listing_order``); in-memory sets keep index order."""

    content_hash: str  # identifies the pixels; part of every real-statistics cache key
    lossy_stored: bool  # frames already went through lossy storage (so no extra JPEG round trip for fakes)

    def __len__(self) -> int: ...

    def num_frames(self, index: int) -> int: ...

    def read(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        """uint8 [len(frame_indices), H, W, 3]."""
        ...


class ArrayVideos:
    """Videos held in memory as uint8 [T, H, W, 3] arrays (tests, generator outputs already collected)."""

    def __init__(self, videos: Sequence[np.ndarray], lossy_stored: bool = False) -> None:
        for v in videos:
            assert v.ndim == 4 and v.shape[-1] == 3 and v.dtype == np.uint8, (v.shape, v.dtype)
        self.videos = list(videos)
        self.lossy_stored = lossy_stored
        h = hashlib.sha256()
        for v in self.videos:
            h.update(str(v.shape).encode())
            h.update(np.ascontiguousarray(v).tobytes())
        self.content_hash = h.hexdigest()

    def __len__(self) -> int:
        return len(self.videos)

    def num_frames(self, index: int) -> int:
        return self.videos[index].shape[0]

    def read(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        return self.videos[index][np.asarray(frame_indices)]


def _read_image(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


class FrameFolderVideos:
    """A folder with one sub-folder of numbered frame images per video (a prepared dataset if it has
    ``dataset.json``; then the manifest's video list and ``content_hash`` are used)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        manifest = self.root / "dataset.json"
        if manifest.exists():
            meta = json.loads(manifest.read_text())
            names = [v["name"] for v in meta["videos"]]
            self.content_hash = str(meta.get("content_hash") or _hash_folders(self.root, names))
            self.lossy_stored = meta.get("image_format", "jpg") == "jpg"
        else:
            names = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            self.content_hash = _hash_folders(self.root, names)
            self.lossy_stored = True
        self.frames = [sorted(p for p in (self.root / n).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) for n in names]
        self.names = names
        if not self.frames:
            raise ValueError(f"{self.root} holds no videos (expected one folder of frames per video)")

    def __len__(self) -> int:
        return len(self.frames)

    def num_frames(self, index: int) -> int:
        return len(self.frames[index])

    def read(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        files = self.frames[index]
        cache: dict[int, np.ndarray] = {}
        for i in np.unique(frame_indices):
            cache[int(i)] = _read_image(files[int(i)])
        return np.stack([cache[int(i)] for i in frame_indices])


def _hash_folders(root: Path, names: Sequence[str]) -> str:
    h = hashlib.sha256()
    for name in names:
        for f in sorted((root / name).iterdir()):
            h.update(f"{name}/{f.name}".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def decode_video_file(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


class VideoFileFolder:
    """A folder of encoded video files (mp4, avi, ...), decoded with PyAV on demand (last video kept)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.files = sorted(p for p in self.root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not self.files:
            raise ValueError(f"{self.root} holds no video files ({', '.join(VIDEO_SUFFIXES)})")
        self.names = [f.name for f in self.files]
        h = hashlib.sha256()
        for f in self.files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
        self.content_hash = h.hexdigest()
        self.lossy_stored = True
        self._lengths: dict[int, int] = {}
        self._last: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def _video(self, index: int) -> np.ndarray:
        if self._last is None or self._last[0] != index:
            self._last = (index, decode_video_file(self.files[index]))
            self._lengths[index] = self._last[1].shape[0]
        return self._last[1]

    def num_frames(self, index: int) -> int:
        if index not in self._lengths:
            self._video(index)
        return self._lengths[index]

    def read(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        return self._video(index)[np.asarray(frame_indices)]


class ZipFrameVideos:
    """A prepared dataset packed as a zip of the folder's contents (``dataset.json`` at the zip root)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._zip = zipfile.ZipFile(self.path)
        meta = json.loads(self._zip.read("dataset.json"))
        self.names = [v["name"] for v in meta["videos"]]
        self.lossy_stored = meta.get("image_format", "jpg") == "jpg"
        members: dict[str, list[str]] = {n: [] for n in self.names}
        for info in self._zip.infolist():
            folder, _, file = info.filename.rpartition("/")
            if folder in members and Path(file).suffix.lower() in IMAGE_SUFFIXES:
                members[folder].append(info.filename)
        self.frames = [sorted(members[n]) for n in self.names]
        if meta.get("content_hash"):
            self.content_hash = str(meta["content_hash"])
        else:
            h = hashlib.sha256()
            for files in self.frames:
                for f in files:
                    h.update(f.encode())
                    h.update(self._zip.read(f))
            self.content_hash = h.hexdigest()

    def __len__(self) -> int:
        return len(self.frames)

    def num_frames(self, index: int) -> int:
        return len(self.frames[index])

    def read(self, index: int, frame_indices: np.ndarray) -> np.ndarray:
        out = []
        for i in frame_indices:
            with Image.open(io.BytesIO(self._zip.read(self.frames[index][int(i)]))) as img:
                out.append(np.asarray(img.convert("RGB")))
        return np.stack(out)


def open_video_source(path: str | Path) -> VideoSource:
    """A prepared dataset (folder, or ``<name>.zip`` beside where the folder would be), a frame-folder tree, or
    a folder of video files; fails naming what it expected."""
    root = Path(path)
    prepared = (root / "dataset.json").exists() or (root.suffix == ".zip" and root.is_file()) or (
        not root.exists() and root.with_name(root.name + ".zip").is_file())
    if prepared:  # the version data/<name> points at now, held while the source lives (stylegan_v.data.versions)
        version, hold = open_reader(root)
        source: VideoSource = ZipFrameVideos(version) if version.suffix == ".zip" else FrameFolderVideos(version)
        if hold is not None:
            weakref.finalize(source, os.close, hold)
        return source
    if not root.is_dir():
        raise FileNotFoundError(f"video source {root} is neither a folder nor a prepared-dataset zip")
    if any(p.is_dir() for p in root.iterdir()):
        return FrameFolderVideos(root)
    return VideoFileFolder(root)
