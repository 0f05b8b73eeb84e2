"""Build a dataset atomically: tasks run in worker processes into a hidden temp folder, which becomes a version.

* The temp folder is named after the config hash, so a re-run with the same config resumes it: tasks
  whose done marker exists are skipped.
* A finished build is renamed to its version ``<data_dir>/.<name>.versions/<config hash>`` (or packed into
  ``<config hash>.zip``) and published by swapping the link ``<data_dir>/<name>`` (:mod:`.versions`): an
  interrupted run never leaves a partial dataset there, and a reader keeps the version it opened.
* A version with the same config hash is up to date and is not rebuilt (only published again).
* One build of a dataset at a time: a lock per dataset name (``<data_dir>/.<name>.lock``) makes a second
  ``prepare`` (or a training that prepares automatically) wait, then find the dataset up to date; the temp
  folder is only ever touched by the lock's holder.
* Done markers are not trusted blindly: before the manifest is written every listed frame is checked on disk,
  and a task whose frames are missing runs again.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import ctypes.util
import json
import logging
import multiprocessing
import os
import shutil
import signal
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import IO, Any

from stylegan_v.checks import ConfigError
from stylegan_v.data import format as fmt
from stylegan_v.data import versions
from stylegan_v.data.recipes import Settings, Task, plan, run_task
from stylegan_v.data.video_dataset import VideoDataset
from stylegan_v.files import atomic_write, atomic_write_text, exclusive_lock
from stylegan_v.progress import progress_bar

log = logging.getLogger(__name__)

# Config keys that do not change the written content (and so do not change the config hash).
NON_CONTENT_KEYS = ("num_workers", "zip", "sampling", "on_mismatch", "resize_on_load")


def default_workers() -> int:
    return min(os.cpu_count() or 1, 8)


def _run_and_mark(task: Task, settings: Settings, tmp: str) -> dict[str, Any]:
    """Worker entry: run the task, then write its done marker atomically (so resume can trust it)."""
    root = Path(tmp)
    result = run_task(task, settings, root)
    atomic_write_text(root / ".done" / f"{task.key}.json", json.dumps(result))
    return result


def _zip_folder(folder: Path, zip_path: Path) -> None:
    def write(f: IO[bytes]) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:  # JPEG/PNG do not compress further
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(folder).as_posix())

    atomic_write(zip_path, write)


def content_settings(settings: Settings) -> dict[str, Any]:
    """The settings that decide what a build writes (what the config hash and the manifest's ``config`` cover)."""
    return {k: v for k, v in settings.items() if k not in NON_CONTENT_KEYS}


def differences(manifest: dict[str, Any], settings: Settings) -> dict[str, tuple[Any, Any]]:
    """``{"dataset.<key>": (prepared, configured)}`` for every content setting in which a prepared dataset's
    manifest and ``settings`` differ; empty when their config hashes agree."""
    configured = content_settings(settings)
    chash = fmt.config_hash(configured)
    if manifest.get("config_hash") == chash:
        return {}
    built, wanted = manifest.get("config") or {}, json.loads(json.dumps(configured, default=str))
    found = {f"dataset.{k}": (built.get(k), wanted.get(k)) for k in sorted(built.keys() | wanted.keys())
             if built.get(k) != wanted.get(k)}
    if manifest.get("format_version") != fmt.FORMAT_VERSION:
        found["the dataset format version"] = (manifest.get("format_version"), fmt.FORMAT_VERSION)
    return found or {"config hash": (manifest.get("config_hash"), chash)}


def downsampled(manifest: dict[str, Any], settings: Settings) -> bool:
    """True when the prepared dataset differs from ``settings`` only in a higher resolution: the one difference
    reading with ``resize_on_load`` makes up for."""
    prepared = int(manifest.get("resolution", 0))
    return prepared > int(settings["resolution"]) and not differences(manifest, {**settings, "resolution": prepared})


class DatasetMismatch(ConfigError):
    """The dataset prepared under a config's ``dataset.name`` was built with other settings."""


def open_prepared(settings: Settings, data_dir: Path, build_missing: bool) -> VideoDataset:
    """The prepared dataset that ``settings`` describe, opened (and so held, see :mod:`.versions`).

    The dataset published under ``settings["name"]`` must have been built with these settings; otherwise the
    run is refused naming what differs (:class:`DatasetMismatch`), or, with ``on_mismatch=prepare``, this
    config's version is prepared (or published again, when it was built before). A dataset not prepared at all
    is prepared when ``build_missing`` or ``on_mismatch=prepare``. With ``resize_on_load``, one prepared at a
    higher resolution and otherwise these settings is opened with its frames downsampled to ``resolution``.
    """
    name, on_mismatch = settings["name"], settings.get("on_mismatch", "refuse")
    try:
        videos = VideoDataset(data_dir / name)
    except FileNotFoundError:
        if not (build_missing or on_mismatch == "prepare"):
            raise
        log.info("dataset %s is not prepared yet: preparing it first", name)
    else:
        found = differences(videos.manifest, settings)
        if not found:
            return videos
        if settings.get("resize_on_load") and downsampled(videos.manifest, settings):
            path = videos.path
            videos.close()
            log.info("dataset %s: reading its %d² frames downsampled to %d² (dataset.resize_on_load)", name,
                     videos.resolution, settings["resolution"])
            return VideoDataset(path, resolution=int(settings["resolution"]))
        videos.close()
        what = mismatch(name, videos.path, found)
        if on_mismatch == "refuse":
            raise DatasetMismatch(f"{what}. {MISMATCH_ADVICE}")
        elif on_mismatch == "prepare":
            log.warning("%s: preparing this config's version (dataset.on_mismatch=prepare)", what)
        else:
            raise ValueError(f"unknown dataset.on_mismatch {on_mismatch!r}; valid: refuse, prepare")
    return VideoDataset(build_dataset(settings, data_dir)["version"])


MISMATCH_ADVICE = ("Prepare it again with this config (python -m stylegan_v.prepare with the same overrides; a run "
                   "reading the other version keeps it), set dataset.on_mismatch=prepare to do so automatically, or "
                   "give this variant its own dataset.name")


def mismatch(name: str, path: Path, found: dict[str, tuple[Any, Any]]) -> str:
    """One line: which settings of the prepared dataset differ from the config's."""
    what = "; ".join(f"{key} prepared {prepared!r}, configured {configured!r}"
                     for key, (prepared, configured) in found.items())
    return f"dataset {name} ({path}) was prepared with other settings: {what}"


def build_dataset(settings: Settings, data_dir: Path) -> dict[str, Any]:
    """Prepare the dataset described by ``settings`` under ``data_dir``; returns a summary dict."""
    versions.check_name(settings["name"])
    versions.check_target(data_dir, settings["name"])  # before any work: nothing foreign is replaced
    data_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(data_dir / f".{settings['name']}.lock", f"dataset {settings['name']}", wait=True):
        return _build_locked(settings, data_dir)


def _missing_frames(tmp: Path, videos: list[dict[str, Any]], image_format: str) -> list[str]:
    """Videos of ``videos`` whose frame files are not all on disk."""
    return [v["name"] for v in videos
            if not all((tmp / v["name"] / fmt.frame_name(i, image_format)).is_file() for i in range(v["num_frames"]))]


def _build_locked(settings: Settings, data_dir: Path) -> dict[str, Any]:
    start = time.perf_counter()
    name = settings["name"]
    chash = fmt.config_hash(content_settings(settings))
    version = versions.version_path(data_dir, name, chash, settings["zip"])
    manifest = versions.read_manifest(version)
    if manifest is not None:
        status = "up_to_date" if version.name in versions.published(data_dir, name) else "republished"
        log.info("%s is %s (config hash %s)", version, status.replace("_", " "), chash)
        return _finish(data_dir, name, version, manifest, status=status, skipped=0, start=start)

    tmp = data_dir / f".{name}.tmp-{chash}"
    done_dir = tmp / ".done"
    if not (tmp / fmt.MANIFEST_NAME).is_file():
        done_dir.mkdir(parents=True, exist_ok=True)
        tasks = plan(settings)
        if not tasks:
            raise RuntimeError(f"dataset {name!r}: the recipe found no input videos (source={settings['source']!r})")
        pending = [t for t in tasks if not (done_dir / f"{t.key}.json").is_file()]
        skipped = len(tasks) - len(pending)
        if skipped:
            log.info("resuming %s: %d of %d tasks already done", tmp, skipped, len(tasks))
        _run_tasks(pending, settings, tmp)
        redo = [t for t in tasks if _missing_frames(tmp, _done(done_dir, t)["videos"], settings["image_format"])]
        if redo:
            log.warning("%d task(s) marked done have frames missing on disk; running them again", len(redo))
            _run_tasks(redo, settings, tmp)
            still = [t.key for t in redo if _missing_frames(tmp, _done(done_dir, t)["videos"], settings["image_format"])]
            if still:
                raise RuntimeError(f"dataset {name!r}: frames still missing after a second run of tasks {still}")
        manifest = _manifest(settings, chash, tasks, done_dir)
        check_manifest_matches_folders(tmp, manifest)
        fmt.write_manifest(tmp, manifest)  # from here on the temp folder is complete
        shutil.rmtree(done_dir)
    else:  # killed between writing the manifest and the rename
        manifest = fmt.read_manifest_file(tmp)
        skipped = len(manifest["videos"])

    version.parent.mkdir(parents=True, exist_ok=True)
    if settings["zip"]:
        _zip_folder(tmp, version)
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, version)
    return _finish(data_dir, name, version, manifest, status="built", skipped=skipped, start=start)


def _finish(data_dir: Path, name: str, version: Path, manifest: dict[str, Any], status: str, skipped: int,
            start: float) -> dict[str, Any]:
    """Publish ``version`` as ``<data_dir>/<name>``, remove versions nobody uses, and summarise."""
    link = versions.publish(data_dir, name, version)
    versions.remove_unused(data_dir, name)
    return {**_summary(manifest, link, status=status, skipped=skipped, start=start), "version": str(version)}


def check_manifest_matches_folders(folder: Path, manifest: dict[str, Any]) -> None:
    """Every listed video has a folder of its own, and every video folder is listed: two inputs that map to one
    name would share a folder (and the manifest would list one of them twice). A folder no task claims (its input
    left the source between a killed run and its resume) is removed: the temp folder is ours."""
    names = [v["name"] for v in manifest["videos"]]
    on_disk = {p.name for p in folder.iterdir() if p.is_dir() and p.name != ".done"}
    for orphan in sorted(on_disk - set(names)):
        log.warning("removing %s: no input of this build writes it", folder / orphan)
        shutil.rmtree(folder / orphan)
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    missing = sorted(set(names) - on_disk)
    if twice or missing:
        raise RuntimeError(f"dataset {manifest['name']!r}: the manifest does not match the video folders "
                           f"(listed twice: {twice[:5]}; without a folder: {missing[:5]})")


def _done(done_dir: Path, task: Task) -> dict[str, Any]:
    return json.loads((done_dir / f"{task.key}.json").read_text())


def die_with_parent() -> None:
    """Worker initializer: the kernel kills this worker when the process that started it dies (even by
    SIGKILL, which runs no clean-up), so a killed ``prepare`` leaves no orphaned decoders behind."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the call above took effect
        os._exit(1)


def _run_tasks(tasks: list[Task], settings: Settings, tmp: Path) -> None:
    workers = settings["num_workers"] if settings["num_workers"] is not None else default_workers()
    bar = progress_bar(total=len(tasks), desc=f"prepare {settings['name']}", unit="task")
    frames = 0
    try:
        if workers == 0 or len(tasks) <= 1:
            for task in tasks:
                result = _run_and_mark(task, settings, str(tmp))
                frames += sum(v["num_frames"] for v in result["videos"])
                bar.set_postfix(frames=frames)
                bar.update()
            return
        # fork where available: workers run only PyAV/Pillow/numpy (never torch/OpenMP), so fork's thread
        # caveats do not bite, and it is ~3x faster here than spawn, which re-imports the parent's
        # __main__ (torch, Hydra) in every worker.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent) as pool:
            futures = [pool.submit(_run_and_mark, task, settings, str(tmp)) for task in tasks]
            try:
                for future in cf.as_completed(futures):
                    result = future.result()
                    frames += sum(v["num_frames"] for v in result["videos"])
                    bar.set_postfix(frames=frames)
                    bar.update()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        bar.close()


def _manifest(settings: Settings, chash: str, tasks: list[Task], done_dir: Path) -> dict[str, Any]:
    videos: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for task in tasks:
        result = _done(done_dir, task)
        videos.extend(result["videos"])
        rejected.extend(result["rejected"])
    if not videos:
        raise RuntimeError(f"dataset {settings['name']!r}: every input was rejected: {rejected[:10]}")
    videos.sort(key=lambda v: v["name"])
    fps_values = sorted({v["fps"] for v in videos})
    labels = sorted({v["label"] for v in videos if v["label"] is not None})
    speakers = sorted({v["speaker"] for v in videos if v["speaker"] is not None})
    return {
        "format_version": fmt.FORMAT_VERSION,
        "name": settings["name"],
        "recipe": settings["recipe"],
        # One rate when the recipe resamples; otherwise the most common native rate (per-video rates are kept).
        "fps": fps_values[0] if len(fps_values) == 1 else max(fps_values, key=[v["fps"] for v in videos].count),
        "resolution": settings["resolution"],
        "channels": 1 if settings["grayscale"] else 3,
        "image_format": settings["image_format"],
        "jpeg_quality": settings["jpeg_quality"] if settings["image_format"] == "jpg" else None,
        "config_hash": chash,
        "content_hash": fmt.content_hash(videos),
        "num_videos": len(videos),
        "num_frames": sum(v["num_frames"] for v in videos),
        "label_names": labels,
        "speaker_names": speakers,
        "config": content_settings(settings),
        "videos": videos,
        "rejected": rejected,
    }


def _summary(manifest: dict[str, Any], path: Path, status: str, skipped: int, start: float) -> dict[str, Any]:
    return {
        "status": status,
        "path": str(path),
        "num_videos": manifest["num_videos"],
        "num_frames": manifest["num_frames"],
        "num_rejected": len(manifest["rejected"]),
        "skipped": skipped,
        "content_hash": manifest["content_hash"],
        "config_hash": manifest["config_hash"],
        "seconds": time.perf_counter() - start,
    }
