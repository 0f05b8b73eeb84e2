"""Checkpoints: files that hold tensors and plain data only, carry a checksum, and fall back when damaged.

Format: a header line (``STYLEGAN-V CHECKPOINT 2``), a line ``sha256:<hex of the payload>``, then the
payload, a ``torch.save`` archive of tensors, numbers, strings, lists and dicts; the resolved config is
stored as JSON text. Reading checks the checksum first and unpickles with ``weights_only=True``, so a file
that holds anything else (a crafted pickle that would run code) is refused, never executed, and flipped
bytes are caught rather than loaded as wrong weights.

Writes go to a temporary sibling and are renamed (a checkpoint is complete or absent). A damaged newest file
makes resume, ``evaluate`` and ``generate`` fall back to the previous one; when every checkpoint of a run is
damaged, training refuses to start again from step 0 unless ``training.allow_restart=true``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from stylegan_v.files import atomic_write, atomic_write_json

log = logging.getLogger(__name__)

PATTERN = "checkpoint-{step:09d}.pt"
GLOB = "checkpoint-*.pt"
BEST_FILE = "best.json"
MAGIC = b"STYLEGAN-V CHECKPOINT 2\n"
_DIGEST_LINE = len(b"sha256:") + 64 + 1


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message is one line naming the file and why."""


class DamagedCheckpoint(CheckpointError):
    """Truncated, checksum mismatch, unreadable archive: a checkpoint of ours that broke after writing."""


class UnsafeCheckpoint(CheckpointError):
    """Holds objects other than tensors and plain data: refused without running any of it."""


class NoUsableCheckpoint(CheckpointError):
    """A run directory whose checkpoints are all damaged or refused."""


class _HashingWriter:
    """File wrapper that hashes what passes through (torch.save streams the archive through ``write``)."""

    def __init__(self, f: Any) -> None:
        self.f, self.digest = f, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def write(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors and plain data; ``config`` a plain dict) atomically with its checksum."""
    payload = dict(state)
    if "config" in payload:
        payload["config"] = json.dumps(payload["config"], sort_keys=True)

    def _write(f: Any) -> None:
        f.write(MAGIC)
        f.write(b"sha256:" + b"0" * 64 + b"\n")  # filled in once the payload has been hashed
        hashing = _HashingWriter(f)
        torch.save(payload, hashing)
        f.seek(len(MAGIC))
        f.write(b"sha256:" + hashing.digest.hexdigest().encode() + b"\n")
        f.seek(0, io.SEEK_END)

    return atomic_write(path, _write)


def read(path: str | Path) -> dict[str, Any]:
    """The checkpoint's state; :class:`CheckpointError` (one line, naming the file) for anything else."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror or e})") from None
    if data.startswith(MAGIC):
        header = data[len(MAGIC): len(MAGIC) + _DIGEST_LINE]
        payload = memoryview(data)[len(MAGIC) + _DIGEST_LINE:]
        if not header.startswith(b"sha256:") or hashlib.sha256(payload).hexdigest().encode() != header[7:71]:
            raise DamagedCheckpoint(f"{path}: checksum mismatch (the file was truncated or altered after writing)")
        state = _unpickle(path, io.BytesIO(payload))
    elif data.startswith(b"PK"):  # a plain torch archive without our header (older exports): no checksum
        state = _unpickle(path, io.BytesIO(data))
        log.warning("%s has no checksum (written by an older version); loaded with weights only", path)
    else:
        raise CheckpointError(f"{path} is not a StyleGAN-V checkpoint (no checkpoint header, not a torch archive)")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a StyleGAN-V checkpoint (holds a {type(state).__name__}, not a dict)")
    if isinstance(state.get("config"), str):
        state["config"] = json.loads(state["config"])
    return state


def _unpickle(path: Path, buffer: io.BytesIO) -> Any:
    try:
        return torch.load(buffer, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "Unsupported operand" in str(e):
            raise UnsafeCheckpoint(f"{path} holds objects other than tensors and plain data; refused without "
                                   "loading it (it could run code)") from None
        raise DamagedCheckpoint(f"{path}: unreadable archive ({str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        raise DamagedCheckpoint(f"{path}: unreadable archive ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def require_keys(path: Path, state: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a StyleGAN-V checkpoint (no {', '.join(missing)})")


# ------------------------------------------------------------------------------------------ run directories


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def save(run_dir: Path, step: int, state: dict[str, Any]) -> Path:
    return write(checkpoint_dir(run_dir) / PATTERN.format(step=step), state)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Oldest first (the step is zero-padded in the name)."""
    return sorted(checkpoint_dir(run_dir).glob(GLOB))


def load(path: Path) -> dict[str, Any]:
    return read(path)


def _first_readable(candidates: list[Path], where: Path) -> tuple[Path, dict[str, Any]]:
    reasons = []
    for path in candidates:
        try:
            return path, read(path)
        except CheckpointError as error:
            log.warning("%s; trying the previous checkpoint", error)
            reasons.append(str(error))
    raise NoUsableCheckpoint(f"all {len(candidates)} checkpoint(s) in {where} are damaged or refused "
                             f"(newest: {reasons[0] if reasons else '-'})")


def load_latest(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads (damaged ones are reported and skipped); None when there is none at
    all; :class:`NoUsableCheckpoint` when there are some and every one is damaged."""
    found = list_checkpoints(run_dir)
    if not found:
        return None
    return _first_readable(list(reversed(found)), checkpoint_dir(run_dir))


def best(run_dir: Path) -> dict[str, Any] | None:
    """``{"path", "metric", "value", "kimg"}`` of the best checkpoint so far, if any."""
    path = run_dir / BEST_FILE
    return json.loads(path.read_text()) if path.exists() else None


def update_best(run_dir: Path, checkpoint: Path, metric: str, value: float, kimg: float) -> bool:
    """Record ``checkpoint`` as the best if ``value`` is lower (FVD/FID: lower is better)."""
    current = best(run_dir)
    if current is not None and current["metric"] == metric and current["value"] <= value:
        return False
    record = {"path": checkpoint.name, "metric": metric, "value": value, "kimg": kimg}
    atomic_write_json(run_dir / BEST_FILE, record, indent=2)
    return True


def prune(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints, never the best one; returns what was deleted."""
    protected = {(best(run_dir) or {}).get("path")}
    candidates = [p for p in list_checkpoints(run_dir)[:-keep] if p.name not in protected]
    for path in candidates:
        path.unlink(missing_ok=True)
    return candidates


def candidates(path: str | Path) -> list[Path]:
    """A checkpoint file; or for a run directory its best checkpoint (if recorded), then newest to oldest."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = list(reversed(list_checkpoints(path)))
        record = best(path)
        if record is not None and (checkpoint_dir(path) / record["path"]).exists():
            top = checkpoint_dir(path) / record["path"]
            found = [top] + [p for p in found if p != top]
        if found:
            return found
    raise FileNotFoundError(f"no checkpoint at {path} (give a checkpoint-*.pt file or a run directory)")


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's best checkpoint if recorded, else its newest."""
    return candidates(path)[0]


def load_from(path: str | Path, keys: tuple[str, ...] = ("G_ema", "config")) -> tuple[Path, dict[str, Any]]:
    """A checkpoint file (errors name it), or the first usable one of a run directory (best, then newest to
    oldest; damaged ones are reported and skipped); checked to hold ``keys``."""
    found = candidates(path)
    chosen, state = (found[0], read(found[0])) if Path(path).is_file() else _first_readable(found, Path(path))
    require_keys(chosen, state, keys)
    return chosen, state


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """G_ema of a checkpoint (or a run directory's first usable one), in eval mode, and its resolved config."""
    from stylegan_v.models.registry import build_models  # here, so that reading files needs no model code

    _, state = load_from(path)
    cfg = state["config"]
    G, _ = build_models(cfg["model"], int(cfg["dataset"]["resolution"]), int(cfg["dataset"]["sampling"]["num_frames"]))
    G.load_state_dict(state["G_ema"])
    return G.eval().requires_grad_(False).to(device), cfg
