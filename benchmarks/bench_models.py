"""G+D training-step cost of StyleGAN-V (k = 3) against the same backbone as a plain image StyleGAN2 (k = 1, no
motion) at equal frames per batch, measured in one run on this machine and reported as a ratio.

The paper (§4, Fig. 3 / Table 6) says a video step costs about 1.04x an image step. One step here is what the
training loop does per minibatch without augmentation or R1: G forward, D on fakes and reals, non-saturating
losses, backward through both networks.

    python benchmarks/bench_models.py [--resolution 64] [--videos 2] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from stylegan_v.models.config import MotionKind, StyleGANVConfig
from stylegan_v.models.registry import build_models
from stylegan_v.profile import sample_times


def make_step(cfg: StyleGANVConfig, batch: int, seed: int = 0):
    """A closure running one G+D step on ``batch`` videos of cfg.num_frames frames."""
    torch.manual_seed(seed)
    G, D = build_models(cfg, cfg.resolution, cfg.num_frames)
    G.train(), D.train()
    gen = torch.Generator().manual_seed(seed)
    k, R = cfg.num_frames, cfg.resolution
    z = torch.randn(batch, G.z_dim, generator=gen)
    t = sample_times(batch, k, 32, gen)
    real = torch.rand(batch, k, 3, R, R, generator=gen) * 2 - 1

    def step() -> None:
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        fake = G(z, t)
        loss = F.softplus(-D(fake, t)).mean() + F.softplus(D(real, t)).mean()
        loss.backward()

    return step


def time_steps(steps: dict[str, object], repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall seconds, process CPU seconds) per step; candidates interleaved so load drift hits both; one warm-up.

    CPU time is reported beside wall time because the machine is shared: other processes stretch wall time
    but not (much) the CPU time this process spends.
    """
    for fn in steps.values():
        fn()
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--videos", type=int, default=2, help="videos per batch for StyleGAN-V (k = 3)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    video = StyleGANVConfig(resolution=args.resolution)  # the paper's model, k = 3
    image = StyleGANVConfig(resolution=args.resolution, num_frames=1)
    image.motion.kind = MotionKind.none  # plain StyleGAN2: no motion input, D sees single frames
    frames = args.videos * video.num_frames
    steps = {
        "stylegan_v (k=3)": make_step(video, args.videos),
        "image stylegan2 (k=1)": make_step(image, frames),  # equal frames per batch
    }
    wall, cpu = time_steps(steps, args.repeats)
    base = "image stylegan2 (k=1)"
    print(f"G+D training step, {args.resolution}x{args.resolution}, {frames} frames per batch, "
          f"{args.repeats} repeats, {torch.get_num_threads()} threads, device cpu")
    print(f"{'model':<24}{'videos x k':>11}{'wall med s':>11}{'wall min s':>11}{'cpu med s':>10}"
          f"{'ratio wall med':>15}{'ratio wall min':>15}{'ratio cpu med':>14}")
    med = {name: statistics.median(ts) for name, ts in wall.items()}
    best = {name: min(ts) for name, ts in wall.items()}  # other processes only ever add wall time
    cmed = {name: statistics.median(ts) for name, ts in cpu.items()}
    for name in wall:
        batch = f"{args.videos}x3" if "k=3" in name else f"{frames}x1"
        print(f"{name:<24}{batch:>11}{med[name]:>11.3f}{best[name]:>11.3f}{cmed[name]:>10.3f}"
              f"{med[name] / med[base]:>15.3f}{best[name] / best[base]:>15.3f}{cmed[name] / cmed[base]:>14.3f}")
    print("paper: video step ~1.04x image step")


if __name__ == "__main__":
    main()
