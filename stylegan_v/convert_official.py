"""``python -m stylegan_v.convert_official SRC.pkl DST.pt``: an official StyleGAN-V snapshot as our checkpoint.

The snapshot is read without running anything from it (:mod:`stylegan_v.models.official`). The result holds
G, D and G_ema in our layout with the model and dataset config they imply, so the authors' released networks
work with ``generate checkpoint=DST.pt``, ``evaluate metrics.checkpoint=DST.pt`` and as the starting point of a
run (``training.init_from=DST.pt``).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

log = logging.getLogger(__name__)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_state(src: Path) -> dict[str, Any]:
    """Our checkpoint dict for an official snapshot (G, D, G_ema, config, progress, source)."""
    from stylegan_v.models.official import load_official_snapshot  # torch: not for --help

    snapshot = load_official_snapshot(src)
    model = snapshot["config"]
    name = Path(str(snapshot["training_set_kwargs"].get("path") or src.stem)).stem
    kimg = re.search(r"snapshot-(\d+)", src.name)  # the official loop names snapshots by kimg of frames
    return {
        "G": snapshot["G"].state_dict(), "D": snapshot["D"].state_dict(), "G_ema": snapshot["G_ema"].state_dict(),
        "config": {
            "model": OmegaConf.to_container(OmegaConf.structured(model), enum_to_str=True),
            "dataset": {"name": name, "resolution": model.resolution, "fps": snapshot["fps"],
                        "sampling": {"num_frames": model.num_frames,
                                     "max_num_frames": model.discriminator.max_num_frames}},
            "tracking": {"step_unit": "kimg"},
        },
        "progress": {"step": 0, "nimg": int(kimg.group(1)) * 1000 if kimg else 0, "tick": 0, "extra": {}},
        "source": {"official_snapshot": str(src), "sha256": _sha256(src)},
    }


def convert(src: str | Path, dst: str | Path) -> Path:
    from stylegan_v.training import checkpoint

    src, dst = Path(src), Path(dst)
    state = converted_state(src)
    checkpoint.write(dst, state)
    log.info("wrote %s from %s (%s, %d² x %d frames)", dst, src, state["config"]["model"]["name"],
             state["config"]["dataset"]["resolution"], state["config"]["dataset"]["sampling"]["num_frames"])
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_v.convert_official", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="official network-snapshot-*.pkl")
    parser.add_argument("dst", help="our checkpoint to write (.pt)")
    args = parser.parse_args(argv)
    from stylegan_v.models.official import OfficialSnapshotError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        convert(args.src, args.dst)
    except (OfficialSnapshotError, FileNotFoundError, IsADirectoryError) as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
