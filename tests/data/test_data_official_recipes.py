"""Real data as the paper's runs had it: JPEG quality 75 and FaceForensics as the official preprocessing made it.

``tests/fixtures/official_ffs.npz`` holds outputs of the official ``src/scripts/preprocess_ffs.py``
(``process_video``, run outside this repository with its ``imageio`` reader replaced by one serving in-memory
frames; cv2 4.14) on three synthetic 6-frame 48x64 videos and their masks (white outside a dark face box, per
frame; ``img_size=32``): ``<name>/frames``, ``<name>/masks`` (the inputs, ``[T, H, W, 3]`` uint8) and
``<name>/frame_box`` and ``<name>/video_box`` (the outputs without and with ``--wide_crop``, ``[T', 32, 32, 3]``,
as the script saves them). Video A has tall and wide boxes and a band of mask columns exactly at the darkness
threshold; in video B the square grows past the left edge (two frames dropped) and past the bottom and the right
edge (clipped, stretched crops); video C has a mask frame without face, so the script gives up on it (no outputs stored).
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from data_helpers import compose_dataset, jpeg_bytes_quality_tables
from PIL import Image

from stylegan_v.data.build import build_dataset
from stylegan_v.data.faces import mask_box, mask_crop, union_box
from stylegan_v.data.video_dataset import VideoDataset

FIXTURE = Path(__file__).parents[1] / "fixtures" / "official_ffs.npz"
PAPER_DATASETS = ("faceforensics", "sky_timelapse", "ucf101", "rainbow_jelly", "mead")
MODES = {"frame_box": "mask", "video_box": "mask_video"}  # fixture output -> dataset.crop
# OpenCV's Lanczos-4 sums 64 weighted pixels in float and rounds to uint8; a build with another vector width may
# round the last bit the other way: one grey level.
RESIZE_TOLERANCE = 1


def test_pillow_ignores_q95_so_the_official_frames_are_quality_75() -> None:
    """The official scripts save frames with ``Image.save(path, q=95)``; Pillow's keyword is ``quality``."""
    image = Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8))

    def jpeg(**kwargs) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", **kwargs)
        return buffer.getvalue()

    assert jpeg(q=95) == jpeg() == jpeg(quality=75) != jpeg(quality=95)


def test_paper_datasets_are_written_at_jpeg_75(tmp_path: Path) -> None:
    for name in PAPER_DATASETS:
        assert compose_dataset(name)[0].jpeg_quality == 75, name
    assert compose_dataset("faceforensics", "dataset.jpeg_quality=95")[0].jpeg_quality == 95  # the paper text's reading
    # A SkyTimelapse-like frame folder, prepared: its frames carry quality 75's quantisation tables.
    clip = tmp_path / "sky_train" / "v1" / "c1"
    clip.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((24, 40, 3), 40 * i, np.uint8)).save(clip / f"{i:03d}.png")
    _, settings = compose_dataset("sky_timelapse", f"dataset.source={tmp_path / 'sky_train'}",
                                  "dataset.resolution=16", "dataset.num_workers=0")
    ds = VideoDataset(build_dataset(settings, tmp_path / "out")["path"])
    assert ds.manifest["jpeg_quality"] == 75
    frame = Image.open(Path(ds.path) / ds.names[0] / "000000.jpg")
    assert frame.quantization == jpeg_bytes_quality_tables(75)


# ------------------------------------------------------------------------------------------------- FaceForensics

@pytest.fixture(scope="module")
def official() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as fixture:
        return {key: fixture[key] for key in fixture.files}


def _names(official: dict[str, np.ndarray]) -> list[str]:
    return sorted({key.split("/")[0] for key in official})


def test_mask_crop_equals_the_official_preprocessing(official: dict[str, np.ndarray]) -> None:
    """Per frame (the official default) and per video (--wide_crop), crops and drops as the official script."""
    compared = 0
    for name in _names(official):
        frames, masks = official[f"{name}/frames"], official[f"{name}/masks"]
        boxes = [mask_box(mask) for mask in masks]
        if None in boxes:  # a mask frame without face: the official script skipped the video
            assert not any(f"{name}/{mode}" in official for mode in MODES)
            continue
        for mode in MODES:
            used = boxes if mode == "frame_box" else [union_box(boxes)] * len(boxes)
            crops = [mask_crop(frame, box, 32) for frame, box in zip(frames, used)]
            ours = np.stack([crop for crop in crops if crop is not None])
            assert ours.shape == official[f"{name}/{mode}"].shape, (name, mode)
            assert np.abs(ours.astype(int) - official[f"{name}/{mode}"]).max() <= RESIZE_TOLERANCE
            compared += 1
    assert compared == 4
    assert official["BBBBBBBBBBB_1_bbbbbbbbbbb_1/frame_box"].shape[0] == 4  # two frames dropped
    assert mask_box(official["AAAAAAAAAAA_0_aaaaaaaaaaa_0/masks"][0])[0] == 20  # the band at the threshold is out


def _write_lossless(path: Path, frames: np.ndarray, fps: int = 30) -> None:
    """H.264 lossless RGB, as the FaceForensics release's compressed videos."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        stream.options = {"qp": "0"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def download(official: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FaceForensics download in miniature: train/val/test, each with original/, mask/ and altered/."""
    root = tmp_path_factory.mktemp("FaceForensics")
    for name in _names(official):
        _write_lossless(root / "train" / "original" / f"{name}.avi", official[f"{name}/frames"])
        _write_lossless(root / "train" / "mask" / f"{name}.avi", official[f"{name}/masks"])
        _write_lossless(root / "train" / "altered" / f"{name}.avi", official[f"{name}/frames"][:, ::-1].copy())
    a = official["AAAAAAAAAAA_0_aaaaaaaaaaa_0/frames"], official["AAAAAAAAAAA_0_aaaaaaaaaaa_0/masks"]
    for split in ("val", "test"):  # other splits are not read
        _write_lossless(root / split / "original" / f"DDDDDDDDDDD_{split}.avi", a[0])
        _write_lossless(root / split / "mask" / f"DDDDDDDDDDD_{split}.avi", a[1])
    _write_lossless(root / "train" / "original" / "EEEEEEEEEEE_no_mask.avi", a[0])  # no mask video
    _write_lossless(root / "train" / "original" / "FFFFFFFFFFF_short_mask.avi", a[0])
    _write_lossless(root / "train" / "mask" / "FFFFFFFFFFF_short_mask.avi", a[1][:4])  # a length of its own
    return root


@pytest.mark.parametrize("mode", list(MODES))
def test_faceforensics_recipe_builds_the_train_split_as_the_official_script(
        official: dict[str, np.ndarray], download: Path, tmp_path: Path, mode: str) -> None:
    _, settings = compose_dataset("faceforensics", f"dataset.source={download}", "dataset.resolution=32",
                                  "dataset.image_format=png", f"dataset.crop={MODES[mode]}", "dataset.num_workers=0")
    ds = VideoDataset(build_dataset(settings, tmp_path / "out")["path"])
    kept = [name for name in _names(official) if f"{name}/{mode}" in official]
    assert ds.names == kept  # train only, originals only, named as the script names its folders
    assert ds.speakers == [name[:11] for name in kept] and ds.fps == 30.0  # one speaker per video; native rate
    reasons = {r["source"]: r["reason"] for r in ds.manifest["rejected"]}
    assert set(reasons) == {"train/original/CCCCCCCCCCC_2_ccccccccccc_2.avi", "train/original/EEEEEEEEEEE_no_mask.avi",
                            "train/original/FFFFFFFFFFF_short_mask.avi"}
    assert "shows no face" in reasons["train/original/CCCCCCCCCCC_2_ccccccccccc_2.avi"]
    assert "no mask video" in reasons["train/original/EEEEEEEEEEE_no_mask.avi"]
    assert "fewer frames" in reasons["train/original/FFFFFFFFFFF_short_mask.avi"]
    for i, name in enumerate(kept):
        expected = official[f"{name}/{mode}"]
        ours = ds.read_frames(i, list(range(ds.video_length(i))))
        assert ours.shape == expected.shape and np.abs(ours.astype(int) - expected).max() <= RESIZE_TOLERANCE


def test_faceforensics_recipe_refuses_what_the_official_one_does_not_do(download: Path) -> None:
    with pytest.raises(ValueError, match="dataset.crop must be one of"):
        compose_dataset("faceforensics", "dataset.crop=face")
    with pytest.raises(ValueError, match="dataset.crop must be one of"):
        compose_dataset("ucf101", "dataset.crop=mask")
    with pytest.raises(ValueError, match="dataset.fps must be null"):
        compose_dataset("faceforensics", "dataset.fps=25")
    _, settings = compose_dataset("faceforensics", f"dataset.source={download / 'train' / 'mask'}")
    with pytest.raises(FileNotFoundError, match="<split>/original/<name>.avi"):
        build_dataset(settings, download.parent / "never")
