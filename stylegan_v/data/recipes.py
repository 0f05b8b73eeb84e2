"""Dataset recipes: turn a dataset config into independent tasks, and run one task in a worker process.

A task is one source video (all its chunks) or one batch of synthetic videos. Tasks share nothing, so
they run in parallel, and each leaves a done marker so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from stylegan_v.data import decode, moving_mnist, recipes_g3an, sources
from stylegan_v.data.format import VideoWriter

MNIST_VIDEOS_PER_TASK = 16


@dataclass(frozen=True)
class Task:
    key: str  # unique and filesystem-safe; names the done marker and prefixes the output folders
    kind: str  # "video" (decode a source), "faceforensics" (a video and its mask) or "moving_mnist" (synthesise)
    source: str = ""  # absolute path of the source video file / frame folder
    rel: str = ""  # path relative to the dataset source, as reported in the manifest
    label: str | None = None
    speaker: str | None = None
    indices: tuple[int, ...] = ()  # moving_mnist: video indices of this task
    name: str = ""  # video: output base name (chunks are <name>_c<j>)
    first_chunk: int | None = None  # video segment: chunks [first_chunk, end_chunk) of the file; None = all
    end_chunk: int | None = None  # None = to the end of the file


Settings = dict[str, Any]  # the resolved dataset config as a plain dict (picklable for workers)


MAX_NAME = 200  # characters of a video folder name (filesystems allow 255; chunk suffixes add 7)
RESERVED_NAMES = ("dataset.json",)  # the manifest, beside the video folders


def _digest(rel: str) -> str:
    return hashlib.sha256(rel.encode()).hexdigest()[:8]


def _safe_name(rel: str) -> str:
    """A folder name for the input at ``rel``: ASCII letters, digits and ``_ . -``; never hidden (``.``, ``..``,
    our ``.done``) nor the manifest's name, and short enough for any filesystem."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", rel.replace("/", "__"))
    if name.startswith(".") or name.casefold() in RESERVED_NAMES:
        name = "_" + name
    if len(name) > MAX_NAME:
        name = f"{name[:MAX_NAME - 9]}_{_digest(rel)}"
    return name


def _distinct_names(rels: list[Path]) -> list[str]:
    """One folder name per input (``rels``), distinct even on a filesystem that folds case, and never the
    name another input's chunks (``<name>_c00000``) or segment tasks (``<name>_s00000``) take. Names that clash
    after cleaning (``a b.mp4`` beside ``a_b.mp4``, ``A.mp4`` beside ``a.mp4``, accented letters that differ
    only in Unicode form) get a digest of their relative path appended."""
    names = [_safe_name(r.with_suffix("").as_posix() if r.suffix else r.as_posix()) for r in rels]
    if len(set(names)) != len(names):  # a.mp4 next to a.avi: keep the extension in the name
        names = [_safe_name(r.as_posix()) for r in rels]
    keys = [n.casefold() for n in names]
    counts, bases = Counter(keys), set(keys)
    distinct = []
    for rel, name, key in zip(rels, names, keys):
        derived = re.fullmatch(r"(.+)_[cs]\d{5}", key)
        if counts[key] > 1 or (derived is not None and derived.group(1) in bases):
            name = f"{name}_{_digest(rel.as_posix())}"
        distinct.append(name)
    if len({n.casefold() for n in distinct}) != len(distinct):
        raise RuntimeError(f"input names still clash after adding digests: {sorted(distinct)[:10]}")
    return distinct


def _path_part(rel: Path, which: str | None) -> str | None:
    if which is None:
        return None
    if which == "parent_dir":
        return rel.parent.name or None
    elif which == "top_dir":
        return rel.parts[0] if len(rel.parts) > 1 else None
    else:
        raise ValueError(f"unknown path label source {which!r}; valid: parent_dir, top_dir")


def _find_videos(root: Path, settings: Settings) -> list[Path]:
    """Video files and frame folders under ``root`` (sorted), filtered by ``include`` patterns."""
    extensions = {e.lower() for e in settings["extensions"]}
    if root.is_file():
        return [root]
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in extensions:
            found.append(path)
        elif path.is_dir() and decode.is_frame_folder(path):
            found.append(path)
    patterns = list(settings["include"])
    if patterns:
        found = [p for p in found if any(fnmatch.fnmatch(p.relative_to(root).as_posix(), pat) for pat in patterns)]
    if settings["max_videos"] is not None:
        found = found[: settings["max_videos"]]
    return found


def _video_tasks(root: Path, settings: Settings) -> list[Task]:
    if not root.exists():
        raise FileNotFoundError(
            f"dataset.source={str(root)!r} does not exist; point it at the raw download of {settings['name']}"
        )
    paths = _find_videos(root, settings)
    rels = [p.relative_to(root) if p != root else Path(p.name) for p in paths]
    stems = _distinct_names(rels)
    tasks = []
    for path, rel, stem in zip(paths, rels, stems):
        task = Task(
            key=stem,
            kind="video",
            source=str(path.resolve()),
            rel=rel.as_posix(),
            label=_path_part(rel, settings["label_from"]),
            speaker=_path_part(rel, settings["speaker_from"]),
            name=stem,
        )
        tasks.extend(_segments(task, path, settings))
    return tasks


def _segments(task: Task, path: Path, settings: Settings) -> list[Task]:
    """Split one chunked file into tasks of ``segment_chunks`` chunks (the last one open-ended)."""
    per_task, chunk = settings["segment_chunks"], settings["chunk_length"]
    if per_task is None or chunk is None or path.is_dir():
        return [task]
    try:
        total, fps_native = decode.probe_num_frames(path), decode.native_fps(path)
    except Exception:  # noqa: BLE001 - any failure to probe: one task, whose worker rejects the file with the reason
        return [task]
    if total is None or (settings["fps"] is not None and not math.isclose(settings["fps"], fps_native, rel_tol=1e-3)):
        return [task]  # resampling or an unknown length: decode the file in one piece
    num_chunks = max(1, (total - settings["skip_frames"]) // chunk)
    starts = list(range(0, num_chunks, per_task))
    return [
        replace(task, key=f"{task.name}_s{c0:05d}", first_chunk=c0, end_chunk=None if c0 == starts[-1] else c0 + per_task)
        for c0 in starts
    ]


def plan_video_folder(settings: Settings) -> list[Task]:
    if settings["source"] is None:
        raise ValueError(
            f"dataset {settings['name']!r} (recipe {settings['recipe']!r}) needs dataset.source=<folder of raw videos>"
        )
    return _video_tasks(Path(settings["source"]).expanduser(), settings)


def plan_sample_videos(settings: Settings) -> list[Task]:
    root = Path(settings["source"]).expanduser() if settings["source"] else sources.sample_videos_dir()
    return _video_tasks(root, settings)


def plan_faceforensics(settings: Settings) -> list[Task]:
    """FaceForensics as the official preprocessing reads its download (``<split>/original/<name>.avi`` beside
    ``<split>/mask/<name>.avi``): the original videos that ``include`` selects (the train split: 704 videos,
    one speaker each), each cropped with its mask video. The speaker is the target YouTube id, the name's
    first 11 characters."""
    if settings["source"] is None:
        raise ValueError("dataset faceforensics needs dataset.source=<the FaceForensics download: train/ val/ test/>")
    root = Path(settings["source"]).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset.source={str(root)!r} is not a folder; point it at the FaceForensics "
                                "download (<split>/original/, <split>/mask/)")
    originals = [p for p in _find_videos(root, settings) if p.is_file() and p.parent.name == "original"]
    if not originals:
        raise FileNotFoundError(f"no original videos matching dataset.include={list(settings['include'])} under "
                                f"{root}; the FaceForensics download is laid out as <split>/original/<name>.avi "
                                "with <split>/mask/<name>.avi")
    return [Task(key=p.stem, kind="faceforensics", source=str(p.resolve()), rel=p.relative_to(root).as_posix(),
                 speaker=p.stem[:11], name=p.stem) for p in originals]


def plan_moving_mnist(settings: Settings) -> list[Task]:
    n = settings["num_videos"]
    return [
        Task(key=f"mnist_{start:06d}", kind="moving_mnist", indices=tuple(range(start, min(n, start + MNIST_VIDEOS_PER_TASK))))
        for start in range(0, n, MNIST_VIDEOS_PER_TASK)
    ]


# Recipe name -> planner. The paper's datasets are video_folder runs with their own YAML options
# (include patterns, label/speaker folders, crop); they need the user's raw download as dataset.source.
RECIPES: dict[str, Callable[[Settings], list[Task]]] = {
    "moving_mnist": plan_moving_mnist,
    "sample_videos": plan_sample_videos,
    "video_folder": plan_video_folder,
    "rainbow_jelly": plan_video_folder,
    "sky_timelapse": plan_video_folder,
    "ucf101": plan_video_folder,
    "mead": plan_video_folder,
    "faceforensics": plan_faceforensics,
    "faceforensics_pp": plan_video_folder,
    # G3AN's datasets: the video-folder tasks, labelled (and filtered) from the download's names
    "uva_nemo": lambda settings: recipes_g3an.uva_nemo(plan_video_folder(settings)),
    "mug": lambda settings: recipes_g3an.mug(plan_video_folder(settings)),
    "weizmann": lambda settings: recipes_g3an.weizmann(plan_video_folder(settings)),
}


def plan(settings: Settings) -> list[Task]:
    recipe = settings["recipe"]
    if recipe not in RECIPES:
        raise ValueError(f"unknown dataset.recipe {recipe!r}; valid: {sorted(RECIPES)}")
    return RECIPES[recipe](settings)


def _clear_outputs(root: Path, name: str, first_chunk: int | None = None, end_chunk: int | None = None) -> None:
    """Remove folders a killed earlier attempt of this task may have left (they are rewritten from scratch)."""
    pattern = re.compile(re.escape(name) + r"_c\d{5}")  # only this video's chunks, not "<name>_cat"
    folders = [root / name, *(f for f in root.glob(f"{name}_c*") if pattern.fullmatch(f.name))]
    if first_chunk is not None:  # a segment owns only its own chunks
        folders = [f for f in folders[1:] if _chunk_index(f.name) >= first_chunk
                   and (end_chunk is None or _chunk_index(f.name) < end_chunk)]
    for folder in folders:
        if folder.is_dir():
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()


def _chunk_index(folder_name: str) -> int:
    return int(folder_name.rsplit("_c", 1)[1])


def _entry(writer: VideoWriter, task: Task, fps: float) -> dict[str, Any]:
    return {
        "name": writer.name,
        "num_frames": writer.num_frames,
        "fps": fps,
        "label": task.label,
        "speaker": task.speaker,
        "source": task.rel or None,
        "sha256": writer.digest(),
    }


@contextlib.contextmanager
def _rejects_video() -> Iterator[None]:
    """Whatever reading one source raises (a decoder error, a decompression bomb, an unreadable frame, a
    library's own exception) becomes :class:`decode.BadVideo`: that video is rejected with the reason and the
    dataset goes on. Errors writing the output happen outside this block and stop the build."""
    try:
        yield
    except decode.BadVideo:
        raise
    except Exception as exc:  # any failure of this one source rejects it, not the whole dataset
        raise decode.BadVideo(f"unreadable: {type(exc).__name__}: {exc}") from exc


def _source_frames(task: Task, settings: Settings, box: decode.Box | None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index after ``skip_frames``, output frame) of one task's source; read failures are BadVideo."""
    path, skip, chunk = Path(task.source), settings["skip_frames"], settings["chunk_length"]
    with _rejects_video():
        if task.first_chunk is None:
            frames = enumerate(decode.decode(path, settings["fps"]))
        else:  # one segment of a long file: frames of chunks [first_chunk, end_chunk)
            end = None if task.end_chunk is None else skip + task.end_chunk * chunk
            frames = decode.decode_range(path, skip + task.first_chunk * chunk, end)
        for i, image in frames:
            if i < skip:
                continue
            box = box or decode.center_box(*image.size)
            frame = decode.crop_resize(image, box, settings["resolution"])
            yield i - skip, to_gray(frame) if settings["grayscale"] else frame


def _run_video(task: Task, settings: Settings, root: Path) -> dict[str, Any]:
    path = Path(task.source)
    fmt, quality, chunk = settings["image_format"], settings["jpeg_quality"], settings["chunk_length"]
    writers: list[VideoWriter] = []
    try:
        with _rejects_video():
            fps = float(settings["fps"]) if settings["fps"] is not None else decode.native_fps(path)
        if settings["crop"] == "face":
            from stylegan_v.data.faces import face_box  # OpenCV is only needed for this crop

            with _rejects_video():
                box: decode.Box | None = face_box(path, settings["face_margin"])
        elif settings["crop"] == "center":
            box = None  # from the first frame's size
        else:
            raise ValueError(f"unknown dataset.crop {settings['crop']!r}; valid: center, face")
        for j, frame in _source_frames(task, settings, box):
            if not writers or (chunk is not None and j % chunk == 0):
                name = task.name if chunk is None else f"{task.name}_c{j // chunk:05d}"
                writers.append(VideoWriter(root, name, fmt, quality))
            writers[-1].add(frame)
    except decode.BadVideo as exc:
        for writer in writers:
            writer.discard()
        where = "" if task.first_chunk is None else f" (chunks from {task.first_chunk})"
        return {"videos": [], "rejected": [{"source": task.rel + where, "reason": str(exc)}]}
    if chunk is not None and settings["drop_partial"]:
        for writer in [w for w in writers if w.num_frames < chunk]:  # only the file's last chunk can be short
            writers.remove(writer)
            writer.discard()  # the recipe drops the incomplete trailing chunk; not an error
    kept = [w for w in writers if w.num_frames >= settings["min_frames"]]
    for writer in writers:
        if writer.num_frames < settings["min_frames"]:
            writer.discard()
    if not kept and task.first_chunk:
        return {"videos": [], "rejected": []}  # a segment past the real end (the header overestimated the length)
    if not kept:
        return {
            "videos": [],
            "rejected": [{"source": task.rel, "reason": f"too short: fewer than {settings['min_frames']} usable frames"}],
        }
    return {"videos": [_entry(w, task, fps) for w in kept], "rejected": []}


def to_gray(frame: np.ndarray) -> np.ndarray:
    """[H, W, 3] RGB -> [H, W, 1] luma (Pillow's ITU-R 601 weights, as its "L" mode)."""
    return np.asarray(Image.fromarray(frame).convert("L"))[..., None]


def _run_faceforensics(task: Task, settings: Settings, root: Path) -> dict[str, Any]:
    """One FaceForensics video as the official preprocessing makes it: every frame cropped to the square of the
    face in its mask frame (``crop: mask``; ``mask_video``: one box for the whole video, the union over its
    frames), Lanczos-4 to the resolution, at the native frame rate. As there, a video whose mask has a frame
    without face, or a length of its own, is left out, and a frame whose square starts before the top or left
    edge is dropped."""
    from stylegan_v.data.faces import mask_box, mask_crop, union_box  # OpenCV is only needed here

    path = Path(task.source)
    mask_path = path.parent.parent / "mask" / path.name
    writer: VideoWriter | None = None
    try:
        if not mask_path.is_file():
            raise decode.BadVideo(f"no mask video (expected {mask_path.parent.name}/{mask_path.name} in its split)")
        fps = decode.native_fps(path)
        video_box = None
        if settings["crop"] == "mask_video":
            boxes = [mask_box(np.asarray(mask)) for mask in decode.decode(mask_path, None)]
            if None in boxes:
                raise decode.BadVideo(f"mask frame {boxes.index(None)} shows no face")
            video_box = union_box(boxes)  # type: ignore[arg-type]
        elif settings["crop"] != "mask":
            raise ValueError(f"dataset.crop={settings['crop']!r} with recipe faceforensics; valid: mask, mask_video")
        writer = VideoWriter(root, task.name, settings["image_format"], settings["jpeg_quality"])
        dropped = 0
        pairs = itertools.zip_longest(decode.decode(path, None), decode.decode(mask_path, None))
        for i, (image, mask) in enumerate(pairs):
            if image is None or mask is None:
                raise decode.BadVideo(f"the mask video has {'more' if image is None else 'fewer'} frames than the video")
            box = video_box or mask_box(np.asarray(mask))
            if box is None:
                raise decode.BadVideo(f"mask frame {i} shows no face")
            frame = mask_crop(np.asarray(image), box, settings["resolution"])
            if frame is None:
                dropped += 1
            else:
                writer.add(frame)
    except decode.BadVideo as exc:
        if writer is not None:
            writer.discard()
        return {"videos": [], "rejected": [{"source": task.rel, "reason": str(exc)}]}
    if writer.num_frames < settings["min_frames"]:
        writer.discard()
        return {"videos": [], "rejected": [{"source": task.rel, "reason": f"too short: {writer.num_frames} usable "
                                            f"frames ({dropped} with the face's square past the top or left edge)"}]}
    return {"videos": [_entry(writer, task, fps)], "rejected": []}


def _run_moving_mnist(task: Task, settings: Settings, root: Path) -> dict[str, Any]:
    csv = Path(settings["source"]).expanduser() if settings["source"] else sources.mnist_csv()
    digits, classes = moving_mnist.load_digits(str(csv), settings["digit_size"])
    fps = float(settings["fps"]) if settings["fps"] is not None else 25.0
    videos = []
    for index in task.indices:
        frames, first = moving_mnist.make_video(
            digits, index, settings["seed"], settings["video_length"], settings["resolution"], settings["digits_per_video"]
        )
        writer = VideoWriter(root, f"{index:06d}", settings["image_format"], settings["jpeg_quality"])
        for frame in frames:
            writer.add(frame if settings["grayscale"] else np.repeat(frame, 3, axis=2))
        label = str(classes[first]) if settings["label_from"] == "digit" else None  # the first digit's class
        videos.append(_entry(writer, replace(task, label=label), fps))
    return {"videos": videos, "rejected": []}


def run_task(task: Task, settings: Settings, root: Path) -> dict[str, Any]:
    """Write one task's videos under ``root``; returns its manifest entries and rejections."""
    if task.kind == "video":
        _clear_outputs(root, task.name, task.first_chunk, task.end_chunk)
        return _run_video(task, settings, root)
    elif task.kind == "faceforensics":
        _clear_outputs(root, task.name)
        return _run_faceforensics(task, settings, root)
    elif task.kind == "moving_mnist":
        for index in task.indices:
            _clear_outputs(root, f"{index:06d}")
        return _run_moving_mnist(task, settings, root)
    else:
        raise ValueError(f"unknown task kind {task.kind!r}; valid: video, faceforensics, moving_mnist")
