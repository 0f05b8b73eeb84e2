"""CPU allocator policy of the launch layer: glibc default vs `keep_freed_memory()`, same step, same machine.

Each variant runs in a fresh process (an allocator policy cannot be undone): forward + backward of a stack
of 3x3 convolutions at 256² on a batch of 6 frames (2 videos x k = 3), whose activations are the large,
short-lived buffers a StyleGAN-V step frees and re-allocates. Prints seconds per step, minor page faults
per step and peak RSS, and the ratio default / ours.

    python benchmarks/bench_launch.py [--steps 4] [--res 256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from stylegan_v.launch.allocator import keep_freed_memory
tuned, steps, res = sys.argv[1] == "1", int(sys.argv[2]), int(sys.argv[3])
if tuned:
    keep_freed_memory()
torch.manual_seed(0)
layers = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.LeakyReLU(0.2))
                               for _ in range(6)])
x = torch.randn(6, 64, res, res)
def step():
    layers.zero_grad(set_to_none=True)
    layers(x).square().mean().backward()
step()  # warm-up
f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
for _ in range(steps):
    step()
dt, faults = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
print(json.dumps({"sec_per_step": dt / steps, "faults_per_step": faults / steps,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(tuned: bool, steps: int, res: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, "1" if tuned else "0", str(steps), str(res)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--res", type=int, default=256)
    args = parser.parse_args()
    base, ours = measure(False, args.steps, args.res), measure(True, args.steps, args.res)
    print(f"{'allocator':<22}{'s/step':>10}{'faults/step':>14}{'peak RSS MB':>14}")
    for name, r in (("glibc default", base), ("keep_freed_memory", ours)):
        print(f"{name:<22}{r['sec_per_step']:>10.3f}{r['faults_per_step']:>14.0f}{r['peak_rss_mb']:>14.0f}")
    print(f"speed-up (default / ours): {base['sec_per_step'] / ours['sec_per_step']:.2f}x; "
          f"page faults {base['faults_per_step'] / max(ours['faults_per_step'], 1):.0f}x fewer")


if __name__ == "__main__":
    main()
