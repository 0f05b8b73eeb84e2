"""Build a dataset atomically: tasks run in worker processes into a hidden temp folder, then one rename.

* The temp folder is named after the config hash, so a re-run with the same config resumes it: tasks
  whose done marker exists are skipped.
* The final folder (or zip) appears only once everything is written, by ``os.replace``: an interrupted
  run never leaves a partial dataset at ``<data_dir>/<name>``.
* A final dataset whose manifest carries the same config hash is up to date and is not rebuilt.
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
from pathlib import Path
from typing import IO, Any, Optional

from stylegan_v.data import format as fmt
from stylegan_v.data.recipes import Settings, Task, plan, run_task
from stylegan_v.files import atomic_write, atomic_write_text, exclusive_lock
from stylegan_v.progress import progress_bar

log = logging.getLogger(__name__)

# Config keys that do not change the written content (and so do not change the config hash).
NON_CONTENT_KEYS = ("num_workers", "zip", "sampling")


def default_workers() -> int:
    return min(os.cpu_count() or 1, 8)


def _existing_manifest(final: Path, zip_path: Path) -> Optional[dict[str, Any]]:
    if (final / fmt.MANIFEST_NAME).is_file():
        return fmt.read_manifest_file(final)
    if zip_path.is_file():
        with zipfile.ZipFile(zip_path) as zf:
            return json.loads(zf.read(fmt.MANIFEST_NAME))
    return None


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


def _replace_dir(tmp: Path, final: Path) -> None:
    """Swap ``tmp`` in for ``final``; an older dataset is moved aside first and then deleted."""
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash)
    else:
        os.replace(tmp, final)


def build_dataset(settings: Settings, data_dir: Path) -> dict[str, Any]:
    """Prepare the dataset described by ``settings`` under ``data_dir``; returns a summary dict."""
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
    final, zip_path = data_dir / name, data_dir / f"{name}.zip"
    content_settings = {k: v for k, v in settings.items() if k not in NON_CONTENT_KEYS}
    chash = fmt.config_hash(content_settings)
    out_path = zip_path if settings["zip"] else final

    existing = _existing_manifest(final, zip_path)
    if existing is not None and existing.get("config_hash") == chash and out_path.exists():
        log.info("%s is up to date (config hash %s)", out_path, chash)
        return _summary(existing, out_path, status="up_to_date", skipped=0, start=start)

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
        fmt.write_manifest(tmp, manifest)  # from here on the temp folder is complete
        shutil.rmtree(done_dir)
    else:  # killed between writing the manifest and the final rename
        manifest = fmt.read_manifest_file(tmp)
        skipped = len(manifest["videos"])

    if settings["zip"]:
        _zip_folder(tmp, zip_path)
        shutil.rmtree(tmp)
        if final.exists() and final.is_dir():
            shutil.rmtree(final)  # a stale folder of an older build would shadow the zip
    else:
        _replace_dir(tmp, final)
        if zip_path.exists():
            zip_path.unlink()
    return _summary(manifest, out_path, status="built", skipped=skipped, start=start)


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
        "config": {k: v for k, v in settings.items() if k not in NON_CONTENT_KEYS},
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
