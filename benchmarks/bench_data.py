"""Data-room benchmark: prepare throughput (frames/s) and training-loader throughput (clips/s, k = 3).

Ratios are against baselines measured in the same run on the same machine:
* prepare: a plain single-process loop doing the same work (PyAV decode, crop, Lanczos resize, JPEG q95 save);
* loader: raw Pillow decode of exactly the same frame files, with no dataset/sampler/tensor machinery.

Run: ``python benchmarks/bench_data.py [--clips 1500] [--workers 2]``. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylegan_v.data import decode
from stylegan_v.data.build import build_dataset, default_workers
from stylegan_v.data.config import DatasetConfig
from stylegan_v.data.sampling import ClipDataset, VideoFirstSampler
from stylegan_v.data.sources import sample_videos_dir
from stylegan_v.data.video_dataset import VideoDataset


def settings(**overrides: object) -> dict:
    """Plain settings dict, as prepare builds it from the composed config."""
    from dataclasses import asdict

    base = {**asdict(DatasetConfig(name="x", recipe="sample_videos")), **overrides}
    return base


def baseline_prepare(out: Path, resolution: int) -> int:
    """Same work as the sample_videos recipe, one process, no bookkeeping: decode, crop, resize, save q95."""
    frames = 0
    for path in sorted(sample_videos_dir().glob("*.mp4")):
        folder = out / path.stem
        folder.mkdir(parents=True)
        box = None
        for i, image in enumerate(decode.decode(path, 25.0)):
            box = box or decode.center_box(*image.size)
            Image.fromarray(decode.crop_resize(image, box, resolution)).save(folder / f"{i:06d}.jpg", quality=95)
            frames += 1
    return frames


def bench_prepare(tmp: Path, resolution: int, workers: int) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    n_base = baseline_prepare(tmp / f"base{resolution}", resolution)
    base_fps = n_base / (time.perf_counter() - t0)
    s = settings(name=f"sv{resolution}", recipe="sample_videos", resolution=resolution, fps=25.0, chunk_length=32,
                 num_workers=workers)
    summary = build_dataset(s, tmp)
    ours_fps = summary["num_frames"] / summary["seconds"]
    return ours_fps, base_fps, summary["num_frames"]


def bench_loader(path: Path, clips: int, workers: int, repeats: int) -> tuple[float, float]:
    """Best of ``repeats`` interleaved runs each (other jobs share this machine; best-of damps their noise)."""
    ds = VideoDataset(path)
    clip_ds = ClipDataset(ds, num_frames=3)
    sampler = VideoFirstSampler(ds.num_videos, seed=0, num_samples=clips)
    items = list(sampler)
    files = [[str(ds.path / ds.frame_path(v, int(t))) for t in clip_ds.sample_indices(v, np.random.default_rng(s))[0]]
             for v, s in items]
    loader = torch.utils.data.DataLoader(clip_ds, batch_size=32, sampler=sampler, num_workers=workers,
                                         persistent_workers=workers > 0)
    next(iter(loader))  # start the workers outside the timed region
    raw_best, ours_best = 0.0, 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for clip in files:  # baseline: raw Pillow decode of the same 3 frames
            np.stack([np.asarray(Image.open(f).convert("RGB")) for f in clip])
        raw_best = max(raw_best, clips / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        n = 0
        for batch in loader:
            assert batch["frames"].shape[1:3] == (3, 3)
            n += batch["frames"].shape[0]
        ours_best = max(ours_best, n / (time.perf_counter() - t0))
    return ours_best, raw_best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1500, help="clips drawn per loader measurement")
    parser.add_argument("--repeats", type=int, default=3, help="loader runs per setting; the best is printed")
    parser.add_argument("--workers", type=int, default=default_workers(), help="prepare and DataLoader workers")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# data benchmark: {os.cpu_count()} cpus, workers={args.workers}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print("\n| prepare (sample_videos, 25 fps) | frames | ours frames/s | 1-process loop frames/s | ratio |")
        print("|---|---|---|---|---|")
        for res in (64, 256):
            ours, base, n = bench_prepare(tmp, res, args.workers)
            print(f"| {res}x{res} | {n} | {ours:.0f} | {base:.0f} | {ours / base:.2f} |")
        mnist = settings(name="mm", recipe="moving_mnist", resolution=64, fps=25.0, num_videos=128,
                         video_length=32, num_workers=args.workers)
        summary = build_dataset(mnist, tmp)
        print(f"| moving_mnist 64x64 | {summary['num_frames']} | {summary['num_frames'] / summary['seconds']:.0f}"
              f" | - | - |")
        print("\n| loader (k=3, video-first sparse sampling) | DataLoader workers | ours clips/s | raw PIL clips/s | ratio |")
        print("|---|---|---|---|---|")
        for res in (64, 256):
            for workers in (0, args.workers):
                ours, raw = bench_loader(tmp / f"sv{res}", args.clips, workers, args.repeats)
                print(f"| {res}x{res} | {workers} | {ours:.0f} | {raw:.0f} | {ours / raw:.2f} |")


if __name__ == "__main__":
    main()
