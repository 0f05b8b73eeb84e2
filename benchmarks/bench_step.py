"""A StyleGAN-V training step on the CPU, measured against this machine's own matmul rate.

1. ``paper_256``: the paper's 256² model (``experiment=ffs_256``), fp32, one step of 2 videos x 3 frames:
   G forward, D forward on the fakes and on real frames, backward of both (no augmentation, no R1). Seconds
   per step, GFLOP per step counted by ``torch.utils.flop_counter``, achieved GFLOP/s, and the ratio to the
   fp32 matmul GFLOP/s measured in the same run (2048² and 4096² products, best of several).
2. ``embedded``: the full training step of the embedded default (``experiment=moving_mnist_cpu``: G, D,
   1/16 of a lazy R1 phase, ADA, EMA, optimisers, data loading) through the ``Trainer``: seconds per step and
   per video shown, the mean over 16 consecutive steps (one R1 phase among them).

    python benchmarks/bench_step.py [--repeats 3] [--skip-paper]

Ratios only compare figures taken here, in one run; nothing is asserted about absolute times.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]


def matmul_gflops(repeats: int = 5) -> float:
    """Best fp32 matmul rate over 2048² and 4096² products: the ceiling for every CPU figure here."""
    best = 0.0
    for n in (2048, 4096):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def paper_step(repeats: int) -> dict:
    from stylegan_v.models.config import StyleGANVConfig
    from stylegan_v.models.registry import build_models

    torch.manual_seed(0)
    G, D = build_models(StyleGANVConfig(), 256, 3)
    G.train(), D.train()
    z, t = torch.randn(2, 512), torch.tensor([[0.0, 3.0, 8.0]] * 2)
    real = torch.rand(2, 3, 3, 256, 256) * 2 - 1

    def step() -> None:
        fake = G(z, t)
        loss = torch.nn.functional.softplus(-D(fake, t)).mean() + torch.nn.functional.softplus(D(real, t)).mean()
        loss.backward()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    times = []
    for _ in range(repeats):
        G.zero_grad(set_to_none=True), D.zero_grad(set_to_none=True)
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    seconds = min(times)
    return {"gflop_per_step": flops / 1e9, "sec_per_step": seconds, "sec_all": times,
            "achieved_gflops": flops / seconds / 1e9}


def embedded_step(steps: int = 16) -> dict:
    from hydra import compose, initialize_config_dir

    from stylegan_v.configs import register_configs
    from stylegan_v.launch.distributed import DistributedEnv
    from stylegan_v.training.loop import Trainer

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=moving_mnist_cpu", f"paths.data_dir={REPO / 'data'}"])
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, Path(run_dir), DistributedEnv(0, 0, 1, "single"))
        stats: dict = defaultdict(list)
        for _ in range(2):  # warm-up (data workers, allocator)
            trainer.train_step(stats)
        start = time.perf_counter()
        for _ in range(steps):  # 16 consecutive steps hold one lazy-R1 phase
            trainer.train_step(stats)
        seconds = (time.perf_counter() - start) / steps
        batch = trainer.tcfg.batch_size
        del trainer
    return {"sec_per_step": seconds, "sec_per_video": seconds / batch, "batch_videos": batch,
            "frames_per_video": int(cfg.dataset.sampling.num_frames), "resolution": int(cfg.dataset.resolution)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-paper", action="store_true", help="only the embedded default's step")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from stylegan_v.launch.allocator import keep_freed_memory

    keep_freed_memory()  # the launch layer's CPU policy, as a training job applies it
    result = {"threads": torch.get_num_threads(), "matmul_gflops": matmul_gflops()}
    if not args.skip_paper:
        paper = paper_step(args.repeats)
        paper["achieved_over_matmul"] = paper["achieved_gflops"] / result["matmul_gflops"]
        result["paper_256"] = paper
        print(f"paper 256² step: {paper['gflop_per_step']:.0f} GFLOP in {paper['sec_per_step']:.2f} s = "
              f"{paper['achieved_gflops']:.0f} GFLOP/s; matmul {result['matmul_gflops']:.0f} GFLOP/s; "
              f"ratio {paper['achieved_over_matmul']:.2f}", flush=True)
    embedded = embedded_step()
    result["embedded"] = embedded
    print(f"embedded default step: {embedded['sec_per_step']:.3f} s per step, "
          f"{embedded['sec_per_video'] * 1e3:.1f} ms per video ({embedded['batch_videos']} videos x "
          f"{embedded['frames_per_video']} frames at {embedded['resolution']}²)", flush=True)
    print(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
