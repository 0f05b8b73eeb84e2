"""Published dataset versions: every build is a folder of its own, and ``<data_dir>/<name>`` points at one.

Layout under ``paths.data_dir`` (every name below is made here, and nothing else is ever deleted)::

    <name>                          -> .<name>.versions/<config hash>      a relative symlink, swapped atomically
    <name>.zip                      -> .<name>.versions/<config hash>.zip  the same for dataset.zip=true
    .<name>.versions/<config hash>/        one complete build: dataset.json + one folder per video
    .<name>.versions/<config hash>.zip     one complete build, packed
    .<name>.versions/.<version>.readers    every open reader of that version holds a shared lock on it
    .<name>.lock                           one build of <name> at a time
    .<name>.tmp-<config hash>/             a build in progress (a killed one is resumed)

* A published version is never written to: a build finishes in its temporary folder, is renamed to its version
  and the link is replaced by a new one in one rename, so a reader finds the old version or the new one.
* A reader (:func:`open_reader`) resolves the link once, holds a shared lock on that version for its whole life
  and reads only from it: preparing other settings under a running training does not change its data.
* Versions are named by the config hash of their build settings, so preparing settings built before publishes
  that version again without decoding anything.
* After a publish, versions that are not published and that no reader holds are removed.
* A path at ``<data_dir>/<name>`` that is neither our link nor a folder (or zip) holding our manifest is refused
  and left untouched; a folder of ours from before versions (or written there by ``dvc checkout``) is moved
  into the versions folder first, unless a reader holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stylegan_v.checks import ConfigError
from stylegan_v.data.config import name_problem
from stylegan_v.data.format import MANIFEST_NAME
from stylegan_v.files import LockBusy

log = logging.getLogger(__name__)

VERSION_PATTERN = re.compile(r"[0-9a-f]{16}(\.zip)?")  # config hashes (data.format.config_hash)
TRASH_PREFIX = ".trash-"  # a version being deleted (renamed first, so no reader ever sees half of one)
READERS_SUFFIX = ".readers"
OPEN_ATTEMPTS = 20  # a reader retries when the version it resolved was removed before it could lock it


class NotOurs(ConfigError):
    """``<data_dir>/<name>`` holds something that this module did not make; it is left alone."""


def check_name(name: str) -> None:
    """The config's name rule, for callers that hand over plain settings."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"dataset.name {problem}, got {name!r}")


def versions_dir(data_dir: Path, name: str) -> Path:
    return data_dir / f".{name}.versions"


def version_path(data_dir: Path, name: str, config_hash: str, zipped: bool) -> Path:
    return versions_dir(data_dir, name) / (f"{config_hash}.zip" if zipped else config_hash)


def link_path(data_dir: Path, name: str, zipped: bool) -> Path:
    return data_dir / (f"{name}.zip" if zipped else name)


def readers_lock(path: Path) -> Path:
    """The lock file readers of the dataset at ``path`` (a version, or an unversioned folder or zip) hold."""
    return path.with_name(f".{path.name}{READERS_SUFFIX}")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of a prepared dataset (folder or zip) at ``path``; None when there is none of ours."""
    try:
        if path.is_dir():
            manifest = json.loads((path / MANIFEST_NAME).read_text())
        elif path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                manifest = json.loads(zf.read(MANIFEST_NAME))
        else:
            return None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    ours = isinstance(manifest, dict) and {"format_version", "config_hash", "content_hash", "videos"} <= manifest.keys()
    return manifest if ours else None


def _our_link(path: Path, name: str) -> bool:
    if not path.is_symlink():
        return False
    target = os.readlink(path)
    return re.fullmatch(re.escape(f".{name}.versions/") + VERSION_PATTERN.pattern, target) is not None


def check_target(data_dir: Path, name: str) -> None:
    """Refuse (:class:`NotOurs`) when ``<data_dir>/<name>`` or ``<name>.zip`` holds something we did not make."""
    for zipped in (False, True):
        path = link_path(data_dir, name, zipped)
        if not os.path.lexists(path) or _our_link(path, name):
            continue
        if path.is_symlink() or read_manifest(path) is None:
            raise NotOurs(f"dataset.name={name!r} would replace {path}, which is not a dataset prepared here "
                          f"(neither a link into {versions_dir(data_dir, name).name}/ nor a folder holding our "
                          f"{MANIFEST_NAME}); it is left untouched: choose another dataset.name or move it away")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    """Try to lock ``path`` exclusively without waiting; yields whether it worked (False: a reader holds it)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _retire(path: Path, data_dir: Path, name: str) -> None:
    """Move an unversioned dataset of ours at ``path`` into the versions folder (or delete it when that version
    exists already); refused while a reader holds it."""
    manifest = read_manifest(path)
    assert manifest is not None, path
    target = version_path(data_dir, name, str(manifest["config_hash"]), path.suffix == ".zip")
    target.parent.mkdir(parents=True, exist_ok=True)
    trash = None
    with _exclusive(readers_lock(path)) as free:
        if not free:
            raise LockBusy(f"{path} is an unversioned dataset that a running reader (training or evaluation) holds; "
                           "prepare publishes versions only once it has finished")
        if os.path.lexists(target):  # the same build exists as a version already
            trash = _to_trash(path, target.parent)
        else:
            os.replace(path, target)
            readers_lock(target).touch()
            log.info("moved the unversioned dataset %s to %s", path, target)
        readers_lock(path).unlink(missing_ok=True)
    if trash is not None:
        _remove_tree(trash)


def publish(data_dir: Path, name: str, version: Path) -> Path:
    """Point ``<data_dir>/<name>`` (``<name>.zip`` for a zip) at ``version`` in one rename; the link of the other
    kind is removed afterwards (readers prefer the folder). Returns the link."""
    zipped = version.suffix == ".zip"
    link, other = link_path(data_dir, name, zipped), link_path(data_dir, name, not zipped)
    check_target(data_dir, name)
    readers_lock(version).touch()  # exists before any reader, so one without write access can still lock it
    if os.path.lexists(link) and not link.is_symlink():
        _retire(link, data_dir, name)
    tmp = data_dir / f".{name}.link-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(version, data_dir), tmp)
    os.replace(tmp, link)
    if os.path.lexists(other):
        if other.is_symlink():
            other.unlink()
        else:
            _retire(other, data_dir, name)
    _fsync_dir(data_dir)
    return link


def published(data_dir: Path, name: str) -> set[str]:
    """Names of the versions the links of ``name`` point at."""
    return {os.path.basename(os.readlink(link)) for link in (link_path(data_dir, name, z) for z in (False, True))
            if _our_link(link, name)}


def _to_trash(path: Path, folder: Path) -> Path:
    """Rename ``path`` to a trash name in ``folder``: in one step no reader can find it any more, and the removal
    that follows (or, after a kill, the next :func:`remove_unused`) takes as long as it takes."""
    trash = folder / f"{TRASH_PREFIX}{path.name}-{os.getpid()}"
    os.replace(path, trash)
    return trash


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _undo_world_writable(version: Path, folder: Path) -> None:
    """``dvc repro`` "removes" a stage's output that is a link to a folder by chmod-ing the folder to 0777 (and
    leaving it there): give such a version the mode its versions folder got from mkdir again."""
    if version.is_dir() and stat.S_IMODE(version.stat().st_mode) == 0o777:
        os.chmod(version, stat.S_IMODE(folder.stat().st_mode))


def remove_unused(data_dir: Path, name: str) -> list[str]:
    """Remove the versions of ``name`` that are not published and that no reader holds, the leftovers of a killed
    removal or zip, and lock files of versions that are gone; returns the versions removed. Only names of our
    own patterns inside ``.<name>.versions/`` are touched. Call it holding the dataset's build lock."""
    folder = versions_dir(data_dir, name)
    if not folder.is_dir():
        return []
    keep = published(data_dir, name)
    removed = []
    for entry in sorted(folder.iterdir()):
        if VERSION_PATTERN.fullmatch(entry.name) and entry.name in keep:
            _undo_world_writable(entry, folder)
        elif VERSION_PATTERN.fullmatch(entry.name):
            with _exclusive(readers_lock(entry)) as free:
                if not free:
                    log.info("keeping %s: a reader holds it", entry)
                    _undo_world_writable(entry, folder)
                    continue
                trash = _to_trash(entry, folder)
                readers_lock(entry).unlink()
            _remove_tree(trash)
            removed.append(entry.name)
        elif entry.name.startswith(TRASH_PREFIX):
            _remove_tree(entry)
        elif (entry.name.startswith(".") and entry.name.endswith(READERS_SUFFIX)
              and VERSION_PATTERN.fullmatch(entry.name[1:-len(READERS_SUFFIX)])
              and not os.path.lexists(folder / entry.name[1:-len(READERS_SUFFIX)])):
            with _exclusive(entry) as free:
                if free:
                    entry.unlink()
        elif re.fullmatch(r"\.[0-9a-f]{16}\.zip\..+\.tmp", entry.name):  # atomic_write's temp file of a killed zip
            entry.unlink()
    if removed:
        log.info("removed unused versions of %s: %s", name, ", ".join(removed))
    return removed


def resolve_dataset_path(path: str | os.PathLike[str]) -> Path:
    """``data/foo`` -> the folder if it has a manifest, else ``data/foo.zip`` if that exists (links followed
    by the caller)."""
    path = Path(path)
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        return path
    if path.is_file() and path.suffix == ".zip":
        return path
    zipped = path.with_name(path.name + ".zip")
    if zipped.is_file():
        return zipped
    raise FileNotFoundError(
        f"no prepared dataset at {path} (nor {zipped}); run `python -m stylegan_v.prepare dataset=<name>` first"
    )


def _hold(path: Path) -> int | None:
    """A shared lock on the readers lock of ``path``; None where the lock file neither exists nor can be made
    (a read-only copy that no prepare here can clean up)."""
    lock = readers_lock(path)
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a removal renames this version away
    return fd


def _still_there(path: Path, fd: int | None) -> bool:
    """The version was not removed between resolving the link and locking it (its lock file is the one held)."""
    if fd is not None:
        try:
            if os.stat(readers_lock(path)).st_ino != os.fstat(fd).st_ino:
                return False
        except FileNotFoundError:
            return False
    return (path / MANIFEST_NAME).is_file() if path.suffix != ".zip" else path.is_file()


def open_reader(path: str | os.PathLike[str]) -> tuple[Path, int | None]:
    """Resolve a prepared dataset (``data/<name>`` or any prepared folder/zip) to the version it is now and hold
    it: returns (resolved path, lock fd to close when done; None where no lock can be held)."""
    for _ in range(OPEN_ATTEMPTS):
        resolved = resolve_dataset_path(path).resolve()
        fd = _hold(resolved)
        if _still_there(resolved, fd):
            return resolved, fd
        if fd is not None:
            os.close(fd)
    raise FileNotFoundError(f"{path} kept changing while it was opened ({OPEN_ATTEMPTS} attempts)")
