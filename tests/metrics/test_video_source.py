"""Video sets: in-memory arrays, prepared-dataset folders and zips, folders of frame folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan_v.metrics.video_source import ArrayVideos, FrameFolderVideos, ZipFrameVideos, open_video_source


def _prepared(root: Path, image_format: str = "png") -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 255, (3 + i, 8, 8, 3), dtype=np.uint8) for i in range(2)]
    for i, v in enumerate(videos):
        (root / f"v{i}").mkdir(parents=True)
        for t, frame in enumerate(v):
            Image.fromarray(frame).save(root / f"v{i}" / f"{t:06d}.{image_format}")
    manifest = {"format_version": 1, "image_format": image_format, "content_hash": "abc",
                "videos": [{"name": f"v{i}", "num_frames": len(v)} for i, v in enumerate(videos)]}
    (root / "dataset.json").write_text(json.dumps(manifest))
    return videos


def test_prepared_folder_and_zip_read_the_same_pixels(tmp_path: Path) -> None:
    videos = _prepared(tmp_path / "ds")
    folder = open_video_source(tmp_path / "ds")
    assert isinstance(folder, FrameFolderVideos) and folder.content_hash == "abc" and not folder.lossy_stored
    shutil.make_archive(str(tmp_path / "packed"), "zip", tmp_path / "ds")
    packed = open_video_source(tmp_path / "packed")  # the folder is gone, <name>.zip is found beside it
    assert isinstance(packed, ZipFrameVideos) and len(packed) == 2 and packed.num_frames(1) == 4
    for source in (folder, packed):
        np.testing.assert_array_equal(source.read(1, np.array([3, 0, 3])), videos[1][[3, 0, 3]])


def test_plain_frame_folders_hash_their_content(tmp_path: Path) -> None:
    _prepared(tmp_path / "a")
    (tmp_path / "a" / "dataset.json").unlink()
    a = open_video_source(tmp_path / "a")
    assert len(a) == 2 and a.lossy_stored and len(a.content_hash) == 64
    img = np.asarray(Image.open(tmp_path / "a" / "v0" / "000000.png")).copy()
    img[0, 0, 0] ^= 1
    Image.fromarray(img).save(tmp_path / "a" / "v0" / "000000.png")
    assert open_video_source(tmp_path / "a").content_hash != a.content_hash


def test_array_videos_and_missing_source(tmp_path: Path) -> None:
    v = ArrayVideos([np.zeros((4, 2, 2, 3), np.uint8)])
    assert v.read(0, np.array([1, 2])).shape == (2, 2, 2, 3)
    with pytest.raises(FileNotFoundError, match="neither a folder nor"):
        open_video_source(tmp_path / "nothing")
