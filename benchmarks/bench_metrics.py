"""Evaluation throughput against this machine's matmul ceiling, and the memory of streamed fakes, in one run.

    python benchmarks/bench_metrics.py [--clips 4] [--frames 16] [--batch 1 2] [--frames-fid 16]
                                       [--stream-videos 4 16]

Prints I3D clips/s (FVD) and InceptionV3 frames/s (FID) with their achieved GFLOP/s (convolution FLOPs counted
with hooks: 2 x MACs) next to plain fp32 torch.matmul GFLOP/s, so the ratio says how close feature extraction
gets to the hardware (the goal is 0.5). Every figure is the best of several timed calls (the machine is shared;
interference only slows a call down). Then the fake side of FVD as training and ``evaluate`` run it (a
StyleGAN-V generator wrapped by ``training.fakes.video_generator``, clips fed to I3D as they are made) for a few
and for four times as many videos: the peak resident memory must not grow with the number of videos.
Inception runs with random weights (throughput does not depend on them; the FID weights are a download).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch
from bench_step import matmul_gflops_at

from stylegan_v.metrics.i3d import load_i3d
from stylegan_v.metrics.inception import FIDInceptionV3


def conv_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one forward: 2 x multiply-adds of every convolution (pools and BN are < 1 % and left out)."""
    total = 0.0

    def hook(module: torch.nn.Module, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += 2.0 * out.numel() * module.weight[0].numel()

    convs = (torch.nn.Conv2d, torch.nn.Conv3d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, convs)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def time_it(fn, repeats: int) -> float:
    """Best of ``repeats`` timed calls after a warm-up: other jobs on a shared machine only ever add time."""
    fn()  # warm-up (allocations, oneDNN kernel selection)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def streamed_fake_memory(i3d: torch.nn.Module, counts: list[int]) -> list[tuple[int, float, float]]:
    """(videos, seconds, peak RSS MB) of FVD's fake statistics for each count, in increasing order: a generator
    of the embedded default's size at 32², 16 frames per clip, I3D at batch 2 (the protocol's resize to 224²)."""
    from hydra import compose, initialize_config_dir

    from stylegan_v.configs import register_configs
    from stylegan_v.metrics.fvd import FVDProtocol, I3DFeatureExtractor, fake_stats
    from stylegan_v.models.registry import build_models
    from stylegan_v.training.fakes import video_generator

    register_configs()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["model=stylegan_v_tiny"])  # the embedded default's widths, RGB
    G = build_models(cfg.model, 32, 2)[0].eval()
    fakes = video_generator(G, "cpu")
    extractor = I3DFeatureExtractor(i3d, batch_size=2, progress=False)
    fake_stats(fakes, FVDProtocol(num_videos=min(counts), num_frames=16), extractor, seed=0)  # warm-up
    out = []
    for n in sorted(counts):
        start = time.perf_counter()
        fake_stats(fakes, FVDProtocol(num_videos=n, num_frames=16), extractor, seed=0)
        out.append((n, time.perf_counter() - start, peak_rss_mb()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4, help="clips timed per batch size (after one warm-up batch)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames-fid", type=int, default=16, help="256² frames per Inception forward")
    parser.add_argument("--stream-videos", type=int, nargs="+", default=[4, 16],
                        help="fake videos for the streaming memory check (the first sets the baseline)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = load_i3d("cpu")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    mm = {n: matmul_gflops_at(n, 10 if n <= 2048 else 3) for n in (2048, 4096)}
    ceiling = max(mm.values())
    flops_clip = conv_flops(model, torch.zeros(1, 3, args.frames, 224, 224))
    rows = [(f"torch.matmul fp32 {n}x{n}", "", f"{g:.1f}", f"{g / ceiling:.2f}") for n, g in mm.items()]
    for bs in args.batch:
        x = torch.rand(bs, 3, args.frames, 224, 224) * 2 - 1
        with torch.no_grad():
            sec = time_it(lambda: model(x), max(1, args.clips // bs))
        clips_s = bs / sec
        g = clips_s * flops_clip / 1e9
        rows.append((f"I3D {args.frames}x224² batch {bs}", f"{clips_s:.3f}", f"{g:.1f}", f"{g / ceiling:.2f}"))
    inception = FIDInceptionV3().eval()
    frames = torch.rand(args.frames_fid, 3, 256, 256) * 255
    flops_frame = conv_flops(inception, frames[:1])
    with torch.no_grad():
        sec = time_it(lambda: inception(frames), 3)
    frames_s = args.frames_fid / sec
    g = frames_s * flops_frame / 1e9
    rows.append((f"InceptionV3 256²->299² batch {args.frames_fid}", f"{frames_s:.2f}", f"{g:.1f}", f"{g / ceiling:.2f}"))
    mm = matmul_gflops_at(2048, 10)  # re-measure: other jobs on a shared machine move the ceiling
    rows.append(("torch.matmul fp32 2048x2048 (again)", "", f"{mm:.1f}", f"{mm / ceiling:.2f}"))
    print(f"I3D forward: {flops_clip / 1e9:.1f} GFLOP per {args.frames}-frame clip; InceptionV3: "
          f"{flops_frame / 1e9:.2f} GFLOP per frame (conv MACs x 2)")
    print(f"{'what':<40}{'items/s':>10}{'GFLOP/s':>10}{'vs matmul':>11}")
    for r in rows:
        print(f"{r[0]:<40}{r[1]:>10}{r[2]:>10}{r[3]:>11}")
    runs = streamed_fake_memory(model, args.stream_videos)
    base = runs[0][2]
    for n, sec, peak in runs:
        print(f"FVD fake statistics, {n:>4} videos (streamed): {sec:6.1f} s, peak RSS {peak:7.0f} MB "
              f"(+{peak - base:.0f} MB over {runs[0][0]} videos)")


if __name__ == "__main__":
    main()
