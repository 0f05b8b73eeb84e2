"""Random access to the frames of a prepared dataset (folder or zip), cheap enough for every training step.

The manifest is parsed once in ``__init__``; per call we only build file names and decode the JPEGs
with Pillow. Zip handles are opened lazily and per process (``ZipFile`` is not safe to share across
forked DataLoader workers), and are dropped when the object is pickled to a worker.

``data/<name>`` is resolved once to the version it is published as (:mod:`.versions`) and that version is
held (a shared lock) until :meth:`VideoDataset.close` or the end of the process: a dataset prepared again
meanwhile is published beside it, and this reader keeps reading what it opened.
"""

from __future__ import annotations

import io
import json
import os
import weakref
import zipfile
from typing import Any

import numpy as np
from PIL import Image

from stylegan_v.data.format import FRAME_DIGITS, MANIFEST_NAME
from stylegan_v.data.versions import open_reader, resolve_dataset_path

__all__ = ["VideoDataset", "resolve_dataset_path"]


class VideoDataset:
    """Videos of a prepared dataset: ``num_videos``, ``video_length(i)``, ``read_frames(i, indices)``.

    ``resolution``: read frames downsampled to this size (Pillow's Lanczos, antialiased, as prepare resizes);
    None = the prepared resolution. Only smaller sizes: upsampling would invent detail the data never had.
    """

    def __init__(self, path: str | os.PathLike[str], resolution: int | None = None) -> None:
        self.path, hold = open_reader(path)  # the version data/<name> points at now, held from here on
        # Released by close() or when the object goes away; callable once, so a descriptor is never closed twice.
        self._release = weakref.finalize(self, _release, hold, os.getpid()) if hold is not None else None
        self.is_zip = self.path.suffix == ".zip"
        self._root = str(self.path) + os.sep  # str joins: pathlib parsing shows up at thousands of frames/s
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        self.manifest: dict[str, Any] = json.loads(self._read_bytes(MANIFEST_NAME))
        videos = self.manifest["videos"]
        self.names: list[str] = [v["name"] for v in videos]
        self.lengths = np.array([v["num_frames"] for v in videos], dtype=np.int64)
        self.ext = self.manifest["image_format"]
        self.fps = float(self.manifest["fps"])
        self.prepared_resolution = int(self.manifest["resolution"])  # frames on disk are this size
        self.resolution = self.prepared_resolution if resolution is None else int(resolution)  # frames read
        if not 1 <= self.resolution <= self.prepared_resolution:
            self.close()
            raise ValueError(f"{path}: frames can be read at most at the prepared {self.prepared_resolution}², "
                             f"asked for {self.resolution}²")
        self.channels = int(self.manifest.get("channels", 3))  # 1: grayscale frames
        self._mode = {1: "L", 3: "RGB"}[self.channels]
        label_ids = {name: i for i, name in enumerate(self.manifest.get("label_names", []))}
        self.labels = np.array([label_ids.get(v.get("label"), -1) for v in videos], dtype=np.int64)
        self.speakers: list[str | None] = [v.get("speaker") for v in videos]
        self.video_fps = np.array([v.get("fps", self.fps) for v in videos], dtype=np.float64)

    # -- pickling for DataLoader workers: reopen the zip lazily in the child
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"] = None
        state["_zip_pid"] = None
        state["_release"] = None  # the parent holds the version; its descriptor means nothing in another process
        return state

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def _read_bytes(self, rel: str) -> bytes:
        if self.is_zip:
            return self._zipfile().read(rel)
        return (self.path / rel).read_bytes()

    @property
    def num_videos(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return self.num_videos

    def video_length(self, i: int) -> int:
        return int(self.lengths[i])

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])

    def frame_path(self, i: int, t: int) -> str:
        return f"{self.names[i]}/{t:0{FRAME_DIGITS}d}.{self.ext}"

    def read_frames(self, i: int, frame_indices: Any) -> np.ndarray:
        """Frames ``frame_indices`` of video ``i`` as uint8 ``[k, H, W, C]`` (C = ``channels``)."""
        indices = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
        length = self.video_length(i)
        if indices.size == 0 or indices.min() < 0 or indices.max() >= length:
            raise IndexError(f"frame indices {indices.tolist()} outside video {i} of length {length}")
        frames = []
        for t in indices:
            rel = self.frame_path(i, int(t))
            source = io.BytesIO(self._zipfile().read(rel)) if self.is_zip else self._root + rel
            with Image.open(source) as image:
                image.load()
                image = image if image.mode == self._mode else image.convert(self._mode)
                if self.resolution != self.prepared_resolution:
                    image = image.resize((self.resolution, self.resolution), Image.Resampling.LANCZOS)
                frames.append(np.asarray(image))
        out = np.stack(frames).reshape(len(indices), self.resolution, self.resolution, self.channels)
        return out

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._release is not None:
            self._release()


def _release(fd: int, pid: int) -> None:
    """Close the hold on a version, in the process that took it only: a forked worker's copy of the object
    leaves the worker's descriptors alone (the lock stays held while any process has it open)."""
    if os.getpid() == pid:
        os.close(fd)
