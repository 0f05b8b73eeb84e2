"""Memory of `generate` does not grow with video length: peak RSS for 100 vs 10 000 frames, same generator.

Each length runs in a fresh process (peak RSS is per process) on a small StyleGAN-V (64², the smoke
experiment's widths, random weights saved as a real checkpoint). Prints frames, seconds, frames/s and
peak RSS, and the ratio of peak memories (the target is within 10 %).

    python benchmarks/bench_generate.py [--long 10000] [--short 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

MAKE_CHECKPOINT = r"""
import sys, torch
from pathlib import Path
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from stylegan_v.configs import register_configs
from stylegan_v.models.registry import build_models
from stylegan_v.training import checkpoint
register_configs()
with initialize_config_dir(config_dir=str(Path("conf").resolve()), version_base="1.3"):
    cfg = compose("config", overrides=["experiment=smoke"])
torch.manual_seed(0)
G, _ = build_models(cfg.model, cfg.dataset.resolution, cfg.dataset.sampling.num_frames)
checkpoint.save(Path(sys.argv[1]), 0, {"G_ema": G.state_dict(), "config": OmegaConf.to_container(cfg, resolve=True)})
"""

GENERATE = r"""
import json, resource, sys, time
from stylegan_v.generate import GenerateConfig, run
t0 = time.perf_counter()
out = run(GenerateConfig(checkpoint=sys.argv[1], out=sys.argv[2], num_frames=int(sys.argv[3]), chunk=16))
print(json.dumps({"frames": out["frames"], "seconds": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=100)
    parser.add_argument("--long", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", MAKE_CHECKPOINT, tmp], check=True, capture_output=True)
        results = {}
        for frames in (args.short, args.long):
            out = subprocess.run([sys.executable, "-c", GENERATE, tmp, str(Path(tmp) / f"{frames}.mp4"), str(frames)],
                                 check=True, capture_output=True, text=True)
            results[frames] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'frames':>8}{'seconds':>10}{'frames/s':>10}{'peak RSS MB':>14}")
    for frames, r in results.items():
        print(f"{frames:>8}{r['seconds']:>10.1f}{frames / r['seconds']:>10.1f}{r['peak_rss_mb']:>14.0f}")
    ratio = results[args.long]["peak_rss_mb"] / results[args.short]["peak_rss_mb"]
    print(f"peak memory {args.long} / {args.short} frames: {ratio:.3f} (target: within 1.10)")


if __name__ == "__main__":
    main()
