"""Dataset statistics (Table 7 and Figure 10): ``python -m stylegan_v.data.stats dataset=<name>``.

Writes ``<paths.data_dir>/stats/<name>.json`` (summary + length histogram), ``<name>_summary.csv``
(one Table 7 row) and ``<name>_videos.csv`` (one row per video, for re-binning Figure 10).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from stylegan_v.cli import entry_point
from stylegan_v.configs import register_configs

if TYPE_CHECKING:  # imported where used, so that --help answers at once
    from stylegan_v.data.video_dataset import VideoDataset

log = logging.getLogger(__name__)

HISTOGRAM_BINS = 20

register_configs()


def compute_stats(dataset: VideoDataset, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Summary of a prepared dataset; lengths in frames, durations at each video's own frame rate."""
    import numpy as np

    lengths = dataset.lengths
    seconds = lengths / dataset.video_fps
    counts, edges = np.histogram(lengths, bins=bins)
    speakers = {s for s in dataset.speakers if s is not None}
    return {
        "name": dataset.manifest["name"],
        "content_hash": dataset.content_hash,
        "num_videos": int(dataset.num_videos),
        "num_frames": int(lengths.sum()),
        "hours": float(seconds.sum() / 3600.0),
        "mean_length_s": float(seconds.mean()),
        "median_length_frames": float(np.median(lengths)),
        "min_length_frames": int(lengths.min()),
        "max_length_frames": int(lengths.max()),
        "fps": dataset.fps,
        "resolution": dataset.resolution,
        "num_speakers": len(speakers) if speakers else None,
        "num_labels": len(dataset.manifest.get("label_names", [])) or None,
        "num_rejected": len(dataset.manifest.get("rejected", [])),
        "length_histogram": {"bin_edges_frames": edges.tolist(), "counts": counts.tolist()},
    }


def write_stats(dataset: VideoDataset, out_dir: Path) -> dict[str, Any]:
    stats = compute_stats(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = stats["name"]
    (out_dir / f"{name}.json").write_text(json.dumps(stats, indent=1))
    summary_keys = ["name", "num_videos", "hours", "mean_length_s", "fps", "num_speakers", "resolution", "content_hash"]
    with open(out_dir / f"{name}_summary.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=summary_keys)
        writer.writeheader()
        writer.writerow({k: stats[k] for k in summary_keys})
    with open(out_dir / f"{name}_videos.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video", "num_frames", "seconds", "label", "speaker"])
        for i, video in enumerate(dataset.manifest["videos"]):
            writer.writerow(
                [video["name"], int(dataset.lengths[i]), float(dataset.lengths[i] / dataset.video_fps[i]),
                 video.get("label") or "", video.get("speaker") or ""]
            )
    return stats


def run(cfg: DictConfig) -> dict[str, Any]:
    from stylegan_v.data.video_dataset import VideoDataset

    data_dir = Path(cfg.paths.data_dir)
    dataset = VideoDataset(data_dir / cfg.dataset.name)
    stats = write_stats(dataset, data_dir / "stats")
    log.info("stats %s: %s", cfg.dataset.name, json.dumps({k: v for k, v in stats.items() if k != "length_histogram"}))
    return stats


@entry_point("stats")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
