"""I3D throughput against this machine's matmul ceiling, measured in one run.

    python benchmarks/bench_metrics.py [--clips 4] [--frames 16] [--batch 1 2]

Prints I3D clips/s and achieved GFLOP/s (convolution FLOPs counted with hooks: 2 x MACs) next to plain
fp32 torch.matmul GFLOP/s, so the ratio says how close feature extraction gets to the hardware. Every figure
is the best of several timed calls (the machine is shared; interference only slows a call down).
"""

from __future__ import annotations

import argparse
import time

import torch

from stylegan_v.metrics.i3d import load_i3d


def conv_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one forward: 2 x multiply-adds of every Conv3d (pools and BN are < 1 % and left out)."""
    total = 0.0

    def hook(module: torch.nn.Conv3d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += 2.0 * out.numel() * module.weight[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
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


def matmul_gflops(n: int, repeats: int) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2.0 * n**3 / time_it(lambda: a @ b, repeats) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4, help="clips timed per batch size (after one warm-up batch)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    torch.manual_seed(0)
    model = load_i3d("cpu")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    mm = {n: matmul_gflops(n, 10 if n <= 2048 else 3) for n in (2048, 4096)}
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
    mm = matmul_gflops(2048, 10)  # re-measure: other jobs on a shared machine move the ceiling
    rows.append(("torch.matmul fp32 2048x2048 (again)", "", f"{mm:.1f}", f"{mm / ceiling:.2f}"))
    print(f"I3D forward: {flops_clip / 1e9:.1f} GFLOP per {args.frames}-frame clip (conv MACs x 2)")
    print(f"{'what':<38}{'clips/s':>10}{'GFLOP/s':>10}{'vs matmul':>11}")
    for r in rows:
        print(f"{r[0]:<38}{r[1]:>10}{r[2]:>10}{r[3]:>11}")


if __name__ == "__main__":
    main()
