"""Where prepare writes and what it replaces: plain names only, only its own datasets, versions that readers keep.

Every refusal is checked on the files themselves: each file under the test folder is hashed before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from data_helpers import REPO, compose_dataset
from PIL import Image

from stylegan_v import prepare
from stylegan_v.checks import ConfigError
from stylegan_v.cli import USAGE_ERROR, check_command_line
from stylegan_v.data import versions
from stylegan_v.data.build import DatasetMismatch, build_dataset, open_prepared
from stylegan_v.data.config import name_problem
from stylegan_v.data.video_dataset import VideoDataset
from stylegan_v.files import LockBusy

MNIST = ("dataset.num_videos=4", "dataset.video_length=6", "dataset.resolution=16", "dataset.digit_size=8",
         "dataset.num_workers=0")


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file's sha256, a link's target, "dir" for a folder."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _raw_videos(folder: Path) -> Path:
    """Two tiny frame-folder videos: something precious that a slip must not destroy."""
    for name, colour in (("clip_a", (200, 10, 10)), ("clip_b", (10, 200, 10))):
        (folder / name).mkdir(parents=True)
        for t in range(3):
            Image.new("RGB", (20, 20), colour).save(folder / name / f"{t:03d}.png")
    (folder / "notes.txt").write_text("raw download, keep\n")
    return folder


@pytest.mark.parametrize("name", ["/abs/raw", "../../tmp/victim", "a/b", "..", ".", ".hidden", "-x", "stats",
                                  "a\nb", "tab\there", "nul\x00", "", "x" * 129, "x.zip"])
def test_a_dataset_name_is_one_plain_folder_name(name: str) -> None:
    assert name_problem(name) is not None
    with pytest.raises(ValueError, match="dataset.name"):
        versions.check_name(name)


@pytest.mark.parametrize("name", ["moving_mnist", "ffs_256", "ucf101.v2", "mine+gray", "_x", "A-1"])
def test_plain_names_pass(name: str) -> None:
    assert name_problem(name) is None


def test_the_source_folder_given_as_an_absolute_name_is_refused_in_one_line(tmp_path: Path) -> None:
    """`prepare dataset=video_folder dataset.source=/x/raw dataset.name=/x/raw`: exit 2, nothing touched."""
    raw = _raw_videos(tmp_path / "raw")
    before = _snapshot(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "stylegan_v.prepare", "dataset=video_folder", f"dataset.source={raw}",
         f"dataset.name={raw}", f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == USAGE_ERROR, result.stderr[-2000:]
    assert result.stderr.startswith("error: dataset.name must be a plain folder name") and \
        result.stderr.count("\n") == 1, result.stderr
    assert _snapshot(tmp_path) == before


def test_a_dotdot_name_and_the_source_folder_as_the_target_are_refused(tmp_path: Path, capsys) -> None:
    raw = _raw_videos(tmp_path / "raw")
    _raw_videos(tmp_path / "victim")  # where data/deep/../../victim leads
    data = tmp_path / "data" / "deep"
    data.mkdir(parents=True)
    before = _snapshot(tmp_path)
    refused = [["dataset.name=../../victim", f"paths.data_dir={data}"],
               # the raw download itself sits where the dataset would go: paths.data_dir/<name> is not ours
               ["dataset.name=raw", f"paths.data_dir={tmp_path}"]]
    for overrides in refused:
        with pytest.raises(SystemExit) as stop:
            check_command_line(["dataset=video_folder", f"dataset.source={raw}", *overrides], "config", prepare.check)
        assert stop.value.code == USAGE_ERROR
        err = capsys.readouterr().err
        assert err.startswith("error: dataset.name") and err.count("\n") == 1, err
    # The same through the API, which takes plain settings (no schema in between).
    _, settings = compose_dataset("video_folder", f"dataset.source={raw}", "dataset.num_workers=0")
    with pytest.raises(ValueError, match="dataset.name"):
        build_dataset({**settings, "name": "../../victim"}, data)
    with pytest.raises(versions.NotOurs, match="not a dataset prepared here"):
        build_dataset({**settings, "name": "raw"}, tmp_path)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["folder", "file", "link", "zip"])
def test_only_our_own_dataset_is_ever_replaced(tmp_path: Path, kind: str) -> None:
    """Whatever else sits at paths.data_dir/<name> (or <name>.zip) is refused and left as it was."""
    data = tmp_path / "data"
    data.mkdir()
    if kind == "folder":
        _raw_videos(data / "moving_mnist")
        (data / "moving_mnist" / "dataset.json").write_text('{"not": "ours"}')  # a manifest, but not ours
    elif kind == "file":
        (data / "moving_mnist").write_text("a file\n")
    elif kind == "link":
        _raw_videos(tmp_path / "elsewhere")
        (data / "moving_mnist").symlink_to(tmp_path / "elsewhere")
    elif kind == "zip":
        (data / "moving_mnist.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip, without our manifest
    else:
        raise ValueError(kind)
    before = _snapshot(tmp_path)
    _, settings = compose_dataset("moving_mnist", *MNIST)
    with pytest.raises(ConfigError, match="it is left untouched"):
        build_dataset(settings, data)
    assert _snapshot(tmp_path) == before


def test_builds_are_versions_and_a_reader_keeps_the_one_it_opened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, first = compose_dataset("moving_mnist", *MNIST)
    _, second = compose_dataset("moving_mnist", *MNIST, "dataset.seed=1")  # other content, same name
    a = build_dataset(first, data)
    assert a["status"] == "built" and (data / "moving_mnist").is_symlink()
    assert Path(a["version"]).parent == data / ".moving_mnist.versions"
    reader = VideoDataset(data / "moving_mnist")
    frame = reader.read_frames(1, [0, 5])
    b = build_dataset(second, data)  # published while `reader` holds the first version
    assert b["content_hash"] != a["content_hash"]
    assert VideoDataset(data / "moving_mnist").content_hash == b["content_hash"]
    assert reader.content_hash == a["content_hash"] and Path(a["version"]).is_dir(), "a held version is kept"
    assert (reader.read_frames(1, [0, 5]) == frame).all(), "the reader still reads the version it opened"
    reader.close()
    # Preparing the first settings again publishes the version that is still there: nothing is decoded.
    again = build_dataset(first, data)
    assert again["status"] == "republished" and again["content_hash"] == a["content_hash"]
    # ... and the second version, unused now, is removed; nothing else in the data folder is touched.
    assert not Path(b["version"]).exists()
    assert sorted(p.name for p in (data / ".moving_mnist.versions").iterdir()) == [
        f".{Path(a['version']).name}.readers", Path(a["version"]).name]
    assert build_dataset(first, data)["status"] == "up_to_date"


def test_zip_versions_and_switching_between_folder_and_zip(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, folder = compose_dataset("moving_mnist", *MNIST)
    _, zipped = compose_dataset("moving_mnist", *MNIST, "dataset.zip=true")
    f = build_dataset(folder, data)
    reader = VideoDataset(data / "moving_mnist")
    z = build_dataset(zipped, data)
    assert z["path"] == str(data / "moving_mnist.zip") and (data / "moving_mnist.zip").is_symlink()
    assert not os.path.lexists(data / "moving_mnist"), "the folder link is gone: readers find the zip"
    assert VideoDataset(data / "moving_mnist").is_zip and z["content_hash"] == f["content_hash"]
    assert reader.read_frames(0, [0]).shape == (1, 16, 16, 1) and Path(f["version"]).is_dir()
    reader.close()
    build_dataset(folder, data)  # back to the folder: the zip link goes, the unused zip version with it
    assert not os.path.lexists(data / "moving_mnist.zip") and not Path(z["version"]).exists()


def test_an_unversioned_dataset_of_ours_is_moved_into_the_versions(tmp_path: Path) -> None:
    """A real folder holding our manifest at data/<name> (from before versions, or written by `dvc checkout`)."""
    data = tmp_path / "data"
    _, settings = compose_dataset("moving_mnist", *MNIST)
    built = build_dataset(settings, data)
    (data / "moving_mnist").unlink()
    shutil.copytree(built["version"], data / "moving_mnist")  # what `dvc checkout` leaves: a plain copy
    shutil.rmtree(data / ".moving_mnist.versions")
    reader = VideoDataset(data / "moving_mnist")
    _, other = compose_dataset("moving_mnist", *MNIST, "dataset.seed=1")
    with pytest.raises(LockBusy, match="unversioned dataset that a running reader"):
        build_dataset(other, data)  # refused while a reader holds the folder ...
    assert reader.read_frames(0, [1]).shape == (1, 16, 16, 1)
    reader.close()
    b = build_dataset(other, data)  # ... and replaced once nobody does (moved aside, then removed as unused)
    assert (data / "moving_mnist").is_symlink() and VideoDataset(data / "moving_mnist").content_hash == b["content_hash"]
    assert sorted(p.name for p in (data / ".moving_mnist.versions").iterdir()) == sorted(
        [Path(b["version"]).name, f".{Path(b['version']).name}.readers"])
    assert not (data / ".moving_mnist.readers").exists()


def test_leftovers_of_a_killed_removal_are_cleaned_and_only_ours(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, settings = compose_dataset("moving_mnist", *MNIST)
    build_dataset(settings, data)
    folder = data / ".moving_mnist.versions"
    (folder / ".trash-0123456789abcdef-999").mkdir()  # a removal killed half-way
    (folder / ".trash-0123456789abcdef-999" / "000000").mkdir()
    (folder / "notes.txt").write_text("not ours: stays\n")
    (folder / "0123456789abcdeg").mkdir()  # not a config hash: stays
    version = Path(build_dataset(settings, data)["version"])
    os.chmod(version, 0o777)  # what `dvc repro` does to a linked output before it runs the stage again
    assert build_dataset(settings, data)["status"] == "up_to_date"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["notes.txt", "0123456789abcdeg", version.name, f".{version.name}.readers"])
    assert version.stat().st_mode & 0o777 == folder.stat().st_mode & 0o777


def test_a_prepared_dataset_is_checked_against_the_config(tmp_path: Path) -> None:
    """The manifest's build settings against the config: refused naming the keys, or prepared again on request."""
    data = tmp_path / "data"
    _, twenty = compose_dataset("moving_mnist", *MNIST)
    _, other = compose_dataset("moving_mnist", *MNIST, "dataset.video_length=8", "dataset.jpeg_quality=20",
                               "dataset.sampling.num_frames=2", "dataset.num_workers=1")  # two reading/speed keys too
    with pytest.raises(FileNotFoundError):
        open_prepared(twenty, data, build_missing=False)
    open_prepared(twenty, data, build_missing=True).close()
    same = open_prepared({**twenty, "num_workers": 2, "zip": False}, data, build_missing=False)
    assert same.video_length(0) == 6  # keys that change no pixel are not compared
    with pytest.raises(DatasetMismatch, match=r"dataset\.jpeg_quality prepared 95, configured 20; "
                                              r"dataset\.video_length prepared 6, configured 8\. Prepare it again"):
        open_prepared(other, data, build_missing=True)
    rebuilt = open_prepared({**other, "on_mismatch": "prepare"}, data, build_missing=False)
    assert rebuilt.video_length(0) == 8 and rebuilt.manifest["jpeg_quality"] == 20
    assert same.video_length(0) == 6 and same.read_frames(0, [5]).shape == (1, 16, 16, 1)
    assert json.loads((data / "moving_mnist" / "dataset.json").read_text())["config_hash"] == \
        rebuilt.manifest["config_hash"]
