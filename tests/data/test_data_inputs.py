"""Awkward inputs: names that clash once cleaned get folders of their own, and any failure reading one video
rejects that video (with its reason in the manifest) while the rest is built."""

from __future__ import annotations

import json
import struct
import unicodedata
import zlib
from pathlib import Path

import numpy as np
from data_helpers import compose_dataset
from PIL import Image

from stylegan_v.data.build import build_dataset
from stylegan_v.data.format import MANIFEST_NAME
from stylegan_v.data.video_dataset import VideoDataset


def _frames(folder: Path, colour: tuple[int, int, int], count: int = 2) -> None:
    folder.mkdir(parents=True)
    for t in range(count):
        Image.new("RGB", (24, 24), colour).save(folder / f"{t:03d}.png")


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds almost none (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _build(source: Path, out: Path, *overrides: str) -> VideoDataset:
    _, settings = compose_dataset("video_folder", f"dataset.source={source}", "dataset.name=inputs",
                                  "dataset.resolution=16", "dataset.num_workers=2", *overrides)
    return VideoDataset(build_dataset(settings, out)["path"])


def test_names_that_clash_after_cleaning_get_their_own_folders(tmp_path: Path) -> None:
    inputs = {"a b": (250, 0, 0), "a_b": (0, 250, 0), "Up": (0, 0, 250), "up": (250, 250, 0),
              unicodedata.normalize("NFC", "café"): (0, 250, 250), unicodedata.normalize("NFD", "café"): (250, 0, 250),
              unicodedata.normalize("NFC", "Café"): (120, 120, 120), "v": (60, 0, 0), "v_c00001": (0, 60, 0),
              ".done": (0, 0, 60), "dataset.json": (200, 100, 0)}
    assert len({unicodedata.normalize("NFC", n) for n in inputs}) == len(inputs) - 1  # NFC and NFD: one name twice
    for rel, colour in inputs.items():
        _frames(tmp_path / "raw" / rel, colour)
    ds = _build(tmp_path / "raw", tmp_path / "out")
    assert ds.num_videos == len(inputs) == ds.manifest["num_videos"] and not ds.manifest["rejected"]
    assert len({n.casefold() for n in ds.names}) == len(inputs), "distinct even where the filesystem folds case"
    folders = sorted(p.name for p in ds.path.iterdir() if p.is_dir())
    assert folders == sorted(ds.names), "the manifest equals the folders"
    assert not any(n.startswith(".") or n == MANIFEST_NAME for n in ds.names)
    for i, video in enumerate(ds.manifest["videos"]):  # each input's pixels in its own folder
        # JPEG q95 of a flat colour: DC steps of 2-3 per YCbCr channel, at most ~1.8x that in RGB; the inputs'
        # colours are >= 60 apart.
        expected = inputs[video["source"]]
        assert np.abs(ds.read_frames(i, [1])[0, 8, 8].astype(int) - expected).max() <= 6, video
    assert {"a_b", "Up", "v"} & set(ds.names) == {"v"}, "clashing names carry a digest; the others keep theirs"
    assert json.loads((ds.path / MANIFEST_NAME).read_text())["content_hash"] == ds.content_hash


def test_any_failure_reading_one_video_rejects_that_video_only(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _frames(raw / "good", (200, 30, 30), count=3)
    _frames(raw / "bomb", (30, 200, 30), count=3)
    (raw / "bomb" / "001.png").write_bytes(_png_header(20000, 20000))  # 4e8 pixels: Pillow refuses to open it
    _frames(raw / "broken", (30, 30, 200), count=3)
    (raw / "broken" / "002.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    _frames(raw / "also_good", (90, 90, 90), count=4)
    ds = _build(raw, tmp_path / "out")
    assert sorted(ds.names) == ["also_good", "good"] and sorted(ds.lengths.tolist()) == [3, 4]
    reasons = {r["source"]: r["reason"] for r in ds.manifest["rejected"]}
    assert set(reasons) == {"bomb", "broken"}
    assert "001.png" in reasons["bomb"] and "DecompressionBombError" in reasons["bomb"]
    assert reasons["broken"].startswith("corrupt: frame 002.png unreadable")
    assert sorted(p.name for p in ds.path.iterdir() if p.is_dir()) == ["also_good", "good"], "no frames left behind"
