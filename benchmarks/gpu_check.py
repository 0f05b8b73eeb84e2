"""GPU checks for a CUDA machine: what the CPU test suite cannot show (run by ``benchmarks/gpu_check.sh``).

1. ``fp16_step``: one training step of the paper's 256² StyleGAN-V (G and D phases, plus 1/16 of a lazy-R1
   phase, with ADA augmentation and Adam) with mixed precision (fp16 on the top 4 resolutions, conv clamp
   256) against the same step in fp32: seconds per phase and per step, frames per second, the ratio, finite
   losses, and how far fp16 frames are from fp32 frames of the same weights.
2. ``trainer``: the real training loop (``Trainer``, ``experiment=smoke``) on CUDA: the whole run (ticks,
   final snapshot), then steady-state seconds per step, finite losses.
3. ``nccl``: the launch layer's ``distributed()`` with NCCL: all-reduce correctness and bus bandwidth.
4. ``compile``: ``torch.compile`` of G's synthesis at 256²: compile time, eager vs compiled time per call
   (ratio), and the largest difference between their frames.

Every figure is measured in this run; ratios compare two measurements made here. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the device machine runs from a copy of the tree, without installing it

from stylegan_v.data.augment import AugmentPipe  # noqa: E402
from stylegan_v.models.config import StyleGANVConfig  # noqa: E402
from stylegan_v.models.registry import build_models  # noqa: E402
from stylegan_v.training.loss import VideoGANLoss  # noqa: E402


def _timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds per call after two warm-up calls, synchronising the device around each call."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _models(fp16: bool, res: int = 256) -> tuple[torch.nn.Module, torch.nn.Module]:
    cfg = StyleGANVConfig()
    if not fp16:
        cfg.synthesis.num_fp16_res = cfg.discriminator.num_fp16_res = 0
        cfg.synthesis.conv_clamp = cfg.discriminator.conv_clamp = None
    torch.manual_seed(0)
    G, D = build_models(cfg, res, 3)
    return G.cuda().train(), D.cuda().train()


def fp16_step(batch: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {"batch_videos": batch, "frames_per_video": 3}
    z = torch.randn(batch, 512, device="cuda")
    t = torch.tensor([[0.0, 3.0, 8.0]], device="cuda").expand(batch, -1).contiguous()
    real = torch.rand(batch, 3, 3, 256, 256, device="cuda") * 2 - 1
    frames = {}
    for name, fp16 in (("fp32", False), ("mixed", True)):
        G, D = _models(fp16)
        augment = AugmentPipe(p=0.2).cuda()
        loss = VideoGANLoss(G, D, augment, r1_gamma=0.2048)
        opt_G = torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.0, 0.99 ** 0.8))
        opt_D = torch.optim.Adam(D.parameters(), lr=0.0025 * 16 / 17, betas=(0.0, 0.99 ** (16 / 17)))
        stats: dict[str, torch.Tensor] = {}

        def phase(name: str, module: torch.nn.Module, opt: torch.optim.Optimizer, gain: float,
                  G: torch.nn.Module = G, D: torch.nn.Module = D) -> Callable[[], None]:
            def run() -> None:
                G.requires_grad_(module is G)
                D.requires_grad_(module is D)
                opt.zero_grad(set_to_none=True)
                stats.update(loss.accumulate_gradients(name, real, t, z, t, gain))
                opt.step()
            return run

        torch.cuda.reset_peak_memory_stats()
        phases = {name: _timed(phase(name, module, opt, gain), repeats)
                  for name, module, opt, gain in (("G", G, opt_G, 1.0), ("D", D, opt_D, 1.0), ("Dreg", D, opt_D, 16.0))}
        seconds = phases["G"] + phases["D"] + phases["Dreg"] / 16  # lazy R1 every 16 steps
        finite = all(bool(torch.isfinite(v).all()) for v in stats.values())
        out[name] = {"sec_per_step": seconds, "frames_per_sec": batch * 3 / seconds, "phase_sec": phases,
                     "losses_finite": finite, "losses": {k: float(v) for k, v in stats.items()},
                     "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30}
        with torch.no_grad():
            G_fresh, _ = _models(fp16)
            frames[name] = G_fresh.eval()(z[:4], t[:4]).float()
        del G, D, opt_G, opt_D
        torch.cuda.empty_cache()
    out["mixed_speedup"] = out["fp32"]["sec_per_step"] / out["mixed"]["sec_per_step"]
    diff = (frames["mixed"] - frames["fp32"]).abs()
    out["fp16_vs_fp32_frames"] = {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
                                  "fp32_range": float(frames["fp32"].abs().max())}
    return out


def trainer(data_dir: Path, steps: int) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir

    from stylegan_v.configs import register_configs
    from stylegan_v.launch.distributed import DistributedEnv
    from stylegan_v.training.loop import Trainer

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=smoke", f"paths.data_dir={data_dir}", "training.device=cuda",
                                           f"training.max_steps={steps}", "training.snapshot_ticks=1000"])
    env = DistributedEnv(rank=0, local_rank=0, world_size=1, source="single")
    with tempfile.TemporaryDirectory() as run_dir:
        t0 = time.perf_counter()
        tr = Trainer(cfg, Path(run_dir), env)
        built = time.perf_counter()
        status = tr.run()  # the whole loop: steps, ticks, the final snapshot (checkpoint, sample grid)
        ran = time.perf_counter()
        stats: dict[str, list[torch.Tensor]] = defaultdict(list)
        steady = _timed(lambda: tr.train_step(stats), repeats=steps)  # steady-state steps after the run
        params_on_cuda = all(p.is_cuda for p in tr.G_ema.parameters())
        ckpts = sorted((Path(run_dir) / "checkpoints").glob("*.pt"))
        finite = all(bool(torch.isfinite(torch.stack(v)).all()) for v in stats.values())
    return {"status": status, "steps": tr.progress.step, "kimg": tr.progress.kimg, "build_s": built - t0,
            "run_s": ran - built, "steady_sec_per_step": steady, "losses_finite": finite,
            "G_ema_on_cuda": params_on_cuda, "checkpoint_written": bool(ckpts)}


NCCL_WORKER = r"""
import json, os, sys, time, torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1])
from stylegan_v.launch.distributed import distributed
with distributed(timeout_s=120) as env:
    rank, world = env.rank, env.world_size
    if world == 1:  # distributed() only joins a group for several ranks: join one of one for the check
        import datetime
        torch.cuda.set_device(0)
        dist.init_process_group("nccl", init_method="env://", rank=0, world_size=1,
                                timeout=datetime.timedelta(seconds=120))
    x = torch.full([4], float(rank + 1), device="cuda")
    dist.all_reduce(x)
    ok = bool((x == world * (world + 1) / 2).all())
    big = torch.ones(64 * 2**20, device="cuda")  # 256 MB
    for _ in range(3):
        dist.all_reduce(big)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        dist.all_reduce(big)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / 10
    backend = dist.get_backend()
    if world == 1:
        dist.destroy_process_group()
    if rank == 0:
        print("NCCL_RESULT " + json.dumps({"world_size": world, "backend": backend, "allreduce_correct": ok,
              "allreduce_256MB_ms": seconds * 1e3, "algbw_GBps": 256 / 1024 / seconds}))
"""


def nccl(world_size: int) -> dict[str, Any]:
    """All-reduce through ``distributed()`` in ``world_size`` torchrun ranks (several ranks share this one GPU
    only if NCCL allows it: it refuses two ranks on one device, which is then reported)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(NCCL_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={world_size}", "--master-port=29533",
           f.name, str(REPO)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "NCCL_DEBUG": "WARN"})
    for line in proc.stdout.splitlines():
        if line.startswith("NCCL_RESULT "):
            return json.loads(line[len("NCCL_RESULT "):])
    text = proc.stderr + proc.stdout
    causes = [line for line in text.splitlines() if "Error" in line or "NCCL WARN" in line or "Duplicate" in line]
    return {"world_size": world_size, "error": "\n".join(causes[:8]) or text[-1500:]}


def compile_check(repeats: int) -> dict[str, Any]:
    G, _ = _models(fp16=True)
    G.eval()
    B, K = 4, 3
    z = torch.randn(B, 512, device="cuda")
    t = torch.tensor([[0.0, 5.5, 16.0]], device="cuda").expand(B, -1).contiguous()
    with torch.no_grad():
        w = G.mapping(z).repeat_interleave(K, dim=0)
        v = G.motion(torch.arange(B, device="cuda"), t).reshape(B * K, -1)
        eager_out = G.synthesis(w, v)
        eager_s = _timed(lambda: G.synthesis(w, v), repeats)
        compiled = torch.compile(G.synthesis)
        start = time.perf_counter()
        compiled_out = compiled(w, v)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - start
        compiled_s = _timed(lambda: compiled(w, v), repeats)
    return {"compile_s": compile_s, "eager_ms": eager_s * 1e3, "compiled_ms": compiled_s * 1e3,
            "speedup": eager_s / compiled_s, "max_abs_diff": float((compiled_out - eager_out).abs().max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="folder holding the prepared smoke dataset")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument("--batch", type=int, default=8, help="videos per step in fp16_step (official: 8 per GPU)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                              "cuda": torch.version.cuda}
    checks = {
        "fp16_step": lambda: fp16_step(args.batch, args.repeats),
        "trainer": lambda: trainer(args.data_dir, steps=10),
        "nccl_2_ranks": lambda: nccl(2),
        "nccl_1_rank": lambda: nccl(1),
        "compile": lambda: compile_check(args.repeats),
    }
    for name, check in checks.items():
        start = time.perf_counter()
        try:
            result[name] = check()
        except Exception:  # noqa: BLE001 - a failed check is reported; the others still run
            result[name] = {"error": traceback.format_exc()[-2000:]}
        result[name]["wall_s"] = round(time.perf_counter() - start, 1)
        print(name, json.dumps(result[name]), flush=True)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
