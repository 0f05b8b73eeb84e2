"""A StyleGAN-V training step on the CPU: ours beside the official code, and against this machine's matmul rate.

1. ``paper_256``: the paper's 256² model (``experiment=ffs_256``) in the official code's fp32 mode (no fp16,
   no conv clamp), one step of 2 videos x 3 frames: G forward, D forward on the fakes and on real frames,
   backward of both (no augmentation, no R1). Ours and the official implementation (its own classes, built
   from the same config, fetched outside this repository: ``--official``) run in this one process, with the
   same threads and the same allocator, alternated step by step, so that the load of a shared machine falls
   on both alike. Prints medians of wall and CPU seconds per step, ours / official, GFLOP per step
   (``torch.utils.flop_counter``), our achieved GFLOP/s and its fraction of the fp32 matmul GFLOP/s measured
   in the same run (2048² and 4096² products, best of several), the load average, and each one's system time
   and minor page faults per step. Under glibc's default allocator every buffer over the mmap threshold is a
   fresh mapping faulted in page by page; what a fault costs differs between hosts, so the wall ratio moves with
   the host. ``--allocator keep`` (the launch layer's policy, which training uses) takes that cost out for both
   and leaves the computation.
2. ``embedded``: the full training step of the embedded default (``experiment=moving_mnist_cpu``: G, D,
   1/16 of a lazy R1 phase, ADA, EMA, optimisers, data loading) through the ``Trainer``: seconds per step and
   per video shown, the mean over 16 consecutive steps (one R1 phase among them).

    python benchmarks/bench_step.py [--repeats 3] [--threads 2] [--allocator glibc|keep]
                                    [--official ../official/stylegan-v] [--skip-paper] [--skip-embedded]

The official code is found at ``--official``, else ``$STYLEGAN_V_OFFICIAL``, else ``official/stylegan-v``
beside this repository; without it only our step is measured. Ratios only compare figures taken here, in one
run; nothing is asserted about absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]


def matmul_gflops_at(n: int, repeats: int) -> float:
    """Best fp32 rate of ``repeats`` n×n products after a warm-up one."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def matmul_gflops(repeats: int = 5) -> float:
    """Best fp32 matmul rate over 2048² and 4096² products: the ceiling for every CPU figure here."""
    return max(matmul_gflops_at(n, repeats) for n in (2048, 4096))


def find_official(path: str | None) -> Path | None:
    """The official StyleGAN-V checkout (its ``src/training/networks.py``), or None when there is none."""
    candidates = [path] if path else [os.environ.get("STYLEGAN_V_OFFICIAL"), str(REPO.parent / "official" / "stylegan-v")]
    for candidate in filter(None, candidates):
        root = Path(candidate).resolve()
        if (root / "src" / "training" / "networks.py").is_file():
            return root
        if path:
            raise SystemExit(f"--official {path}: no src/training/networks.py there (a checkout of "
                             "universome/stylegan-v is expected)")
    return None


def paper_config(fp16: bool = False) -> Any:
    """The paper's 256² model (our defaults) in the official fp32 mode (no fp16, no clamp) or its mixed one."""
    from stylegan_v.models.config import StyleGANVConfig

    cfg = StyleGANVConfig()
    if not fp16:
        cfg.synthesis.num_fp16_res = cfg.discriminator.num_fp16_res = 0
        cfg.synthesis.conv_clamp = cfg.discriminator.conv_clamp = None
    return cfg


def official_models(root: Path, cfg: Any, resolution: int, num_frames: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The official Generator and Discriminator built by its own classes from the hyper-parameters of ``cfg``
    (as its ``train.py`` passes them), importing the official code from ``root`` (nothing of it is copied)."""
    from omegaconf import OmegaConf

    for entry in (str(root / "src"), str(root)):  # the official code imports both `training.*` and `src.*`
        if entry not in sys.path:
            sys.path.insert(0, entry)
    from training.networks import Discriminator, Generator  # type: ignore[import-not-found]

    m, s, d, mo = cfg.mapping, cfg.synthesis, cfg.discriminator, cfg.motion
    sampling = {"type": "random", "total_dists": [2**i for i in range(12)], "max_dist": 32,
                "num_frames_per_video": num_frames, "max_num_frames": d.max_num_frames}
    g_cfg = OmegaConf.create({
        "sampling": sampling, "use_noise": False, "input": {"type": "temporal"}, "w_dim": m.w_dim, "z_dim": m.z_dim,
        "c_dim": cfg.c_dim,
        "motion": {"z_dim": mo.noise_dim, "v_dim": mo.code_dim, "motion_z_distance": mo.code_distance or int(mo.omega_min),
                   "gen_strategy": "conv", "kernel_size": mo.kernel_size, "use_fractional_t": True, "fourier": True},
        "time_enc": {"cond_type": "concat_const", "dim": mo.embed_dim // 2, "min_period_len": int(mo.omega_min),
                     "max_period_len": int(mo.omega_max), "phase_dropout_std": 1.0}})
    d_cfg = OmegaConf.create({"sampling": sampling, "concat_res": d.concat_res, "dummy_c": False,
                              "num_frames_div_factor": d.num_frames_div_factor, "mbstd_group_size": d.mbstd_group_size})
    G = Generator(c_dim=cfg.c_dim, w_dim=m.w_dim, img_resolution=resolution, img_channels=cfg.img_channels, cfg=g_cfg,
                  mapping_kwargs={"num_layers": m.num_layers, "cfg": g_cfg},
                  synthesis_kwargs={"channel_base": s.channel_base, "channel_max": s.channel_max,
                                    "num_fp16_res": s.num_fp16_res, "conv_clamp": s.conv_clamp})
    D = Discriminator(c_dim=cfg.c_dim, img_resolution=resolution, img_channels=cfg.img_channels, cfg=d_cfg,
                      channel_base=d.channel_base, channel_max=d.channel_max, num_fp16_res=d.num_fp16_res,
                      conv_clamp=d.conv_clamp, block_kwargs={}, mapping_kwargs={"num_layers": d.mapping_layers},
                      epilogue_kwargs={"mbstd_group_size": d.mbstd_group_size})
    return G, D


def step_fn(G: torch.nn.Module, D: torch.nn.Module, official: bool, batch: int = 2,
            device: str = "cpu") -> Callable[[], None]:
    """One step of 2 videos x 3 frames: G forward, D on fakes and reals, non-saturating loss, backward of both."""
    softplus = torch.nn.functional.softplus
    gen = torch.Generator().manual_seed(0)
    K, R = 3, 256
    z = torch.randn(batch, 512, generator=gen).to(device)
    t = torch.tensor([[0.0, 3.0, 8.0]] * batch, device=device)
    real = (torch.rand(batch, K, 3, R, R, generator=gen) * 2 - 1).to(device)
    G.train(), D.train()
    if official:
        c = torch.zeros(batch, 0, device=device)
        real_frames = real.reshape(batch * K, 3, R, R)  # the official layout: videos x frames flattened

        def step() -> None:
            fake = G(z, c, t)
            logits_fake, logits_real = D(fake, c, t)["image_logits"], D(real_frames, c, t)["image_logits"]
            (softplus(-logits_fake).mean() + softplus(logits_real).mean()).backward()
    else:
        def step() -> None:
            fake = G(z, t)
            (softplus(-D(fake, t)).mean() + softplus(D(real, t)).mean()).backward()

    def run() -> None:
        G.zero_grad(set_to_none=True), D.zero_grad(set_to_none=True)
        step()
    return run


def paper_step(repeats: int, official_root: Path | None) -> dict:
    """Ours (and the official step, when its code is at hand) alternated, medians of ``repeats`` steps each."""
    from stylegan_v.models.registry import build_models

    cfg = paper_config()
    torch.manual_seed(0)
    steps = {"ours": step_fn(*build_models(cfg, 256, 3), official=False)}
    if official_root is not None:
        torch.manual_seed(0)
        G, D = official_models(official_root, cfg, 256, 3)
        ours_params = [sum(p.numel() for p in net.parameters()) for net in build_models(cfg, 256, 3)]
        if ours_params != [sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())]:
            raise SystemExit(f"the official G/D built here differ from ours in size ({ours_params}): not the same model")
        steps["official"] = step_fn(G, D, official=True)
    out: dict[str, Any] = {}
    for name, fn in steps.items():
        with FlopCounterMode(display=False) as counter:
            fn()  # also the warm-up step
        out[name] = {"gflop_per_step": counter.get_total_flops() / 1e9, "sec_all": [], "cpu_sec_all": [],
                     "sys_sec_all": [], "minor_faults_all": []}
    order = list(steps)
    for i in range(repeats):
        for name in order if i % 2 == 0 else order[::-1]:  # ABBA: neither always runs first
            before, wall, cpu = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), time.process_time()
            steps[name]()
            after = resource.getrusage(resource.RUSAGE_SELF)
            out[name]["sec_all"].append(time.perf_counter() - wall)
            out[name]["cpu_sec_all"].append(time.process_time() - cpu)
            out[name]["sys_sec_all"].append(after.ru_stime - before.ru_stime)
            out[name]["minor_faults_all"].append(after.ru_minflt - before.ru_minflt)
    for name in steps:
        r = out[name]
        r["sec_per_step"], r["cpu_sec_per_step"] = statistics.median(r["sec_all"]), statistics.median(r["cpu_sec_all"])
        r["sys_sec_per_step"] = statistics.median(r["sys_sec_all"])
        r["minor_faults_per_step"] = int(statistics.median(r["minor_faults_all"]))
        r["achieved_gflops"] = r["gflop_per_step"] / r["sec_per_step"]
    if "official" in out:
        out["ours_over_official"] = out["ours"]["sec_per_step"] / out["official"]["sec_per_step"]
        out["ours_over_official_cpu"] = out["ours"]["cpu_sec_per_step"] / out["official"]["cpu_sec_per_step"]
    return out


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
    parser.add_argument("--repeats", type=int, default=3, help="timed steps of each implementation (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for both implementations")
    parser.add_argument("--allocator", choices=["glibc", "keep"], default="glibc",
                        help="glibc: its default for both; keep: the launch layer's keep_freed_memory() for both")
    parser.add_argument("--official", default=None, help="checkout of the official code (universome/stylegan-v)")
    parser.add_argument("--skip-paper", action="store_true", help="no 256² step")
    parser.add_argument("--skip-embedded", action="store_true", help="no embedded-default step")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from stylegan_v.launch.allocator import keep_freed_memory

    if args.allocator == "keep":
        keep_freed_memory()
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"threads": torch.get_num_threads(), "allocator": args.allocator,
                              "load_average_before": os.getloadavg(), "matmul_gflops": matmul_gflops()}
    if not args.skip_paper:
        official_root = find_official(args.official)
        if official_root is None:
            print("official code not found (--official, $STYLEGAN_V_OFFICIAL or ../official/stylegan-v): ours only",
                  flush=True)
        paper = paper_step(args.repeats, official_root)
        result["matmul_gflops"] = max(result["matmul_gflops"], matmul_gflops())  # best of before and after
        ours = paper["ours"]
        ours["achieved_over_matmul"] = ours["achieved_gflops"] / result["matmul_gflops"]
        result["paper_256"] = paper
        print(f"paper 256² step (fp32, {result['threads']} threads, allocator {args.allocator}): ours "
              f"{ours['gflop_per_step']:.0f} GFLOP in {ours['sec_per_step']:.2f} s = {ours['achieved_gflops']:.0f} "
              f"GFLOP/s; matmul {result['matmul_gflops']:.0f} GFLOP/s; fraction {ours['achieved_over_matmul']:.2f}",
              flush=True)
        if "official" in paper:
            off = paper["official"]
            print(f"official: {off['gflop_per_step']:.0f} GFLOP in {off['sec_per_step']:.2f} s; ours / official "
                  f"{paper['ours_over_official']:.2f} wall, {paper['ours_over_official_cpu']:.2f} CPU time "
                  f"(medians of {args.repeats}, alternated)", flush=True)
        print("  system time and minor page faults per step: " + "; ".join(
            f"{name} {paper[name]['sys_sec_per_step']:.1f} s, {paper[name]['minor_faults_per_step'] / 1e6:.2f} M"
            for name in ("ours", "official") if name in paper), flush=True)
    if not args.skip_embedded:
        embedded = embedded_step()
        result["embedded"] = embedded
        print(f"embedded default step: {embedded['sec_per_step']:.3f} s per step, "
              f"{embedded['sec_per_video'] * 1e3:.1f} ms per video ({embedded['batch_videos']} videos x "
              f"{embedded['frames_per_video']} frames at {embedded['resolution']}²)", flush=True)
    result["load_average_after"] = os.getloadavg()
    print(f"load average before {result['load_average_before'][0]:.1f}, after {result['load_average_after'][0]:.1f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    print(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
