"""Profile a model: parameter counts, G/D forward and backward times and peak memory, as one JSON object.

    python -m stylegan_v.profile model=stylegan_v [model.resolution=64] [+profile.batch_size=4]
        [+profile.device=cuda] [+profile.repeats=3]

Used by people to size runs and by ``benchmarks/bench_models.py``. The batch is ``batch_size`` videos of
``model.num_frames`` frames at ``model.resolution``.
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from stylegan_v.cli import entry_point, type_groups
from stylegan_v.configs import as_schema, register_configs
from stylegan_v.models.config import to_model_config
from stylegan_v.tool_config import ProfileOptions

if TYPE_CHECKING:  # imported where used, so that --help and a refused value answer at once
    import torch

register_configs()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> tuple[float, Any]:
    """Median wall time in ms over ``repeats`` calls after one warm-up call; returns the last result too."""
    out = fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), out


def _timed_backward(make_loss: Callable[[], torch.Tensor], device: torch.device, repeats: int) -> float:
    """Median wall time in ms of backward() alone; the forward that builds each graph is not timed."""
    make_loss().backward()
    times = []
    for _ in range(repeats):
        loss = make_loss()
        _sync(device)
        start = time.perf_counter()
        loss.backward()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def sample_times(batch: int, k: int, max_diff: int, generator: torch.Generator) -> torch.Tensor:
    """Sorted integer frame times starting at 0 within a span of at most max_diff frames: [batch, k]."""
    import torch

    if k == 1:
        return torch.zeros(batch, 1)
    span = max(k - 1, max_diff)
    interior = torch.rand(batch, k - 2, generator=generator) * span if k > 2 else torch.zeros(batch, 0)
    t = torch.cat([torch.zeros(batch, 1), interior.floor(), torch.full([batch, 1], float(span))], dim=1)
    return t.sort(dim=1).values


def profile_models(cfg_model: Any, opts: ProfileOptions, seed: int = 0) -> dict[str, Any]:
    """Build G and D, then time one G forward/backward and D forward/backward on a batch of videos."""
    import torch

    from stylegan_v.models.generator import count_params
    from stylegan_v.models.registry import build_models

    mcfg = to_model_config(cfg_model)
    device = torch.device(opts.device)
    torch.manual_seed(seed)
    G, D = build_models(mcfg, mcfg.resolution, mcfg.num_frames)
    G, D = G.to(device).train(), D.to(device).train()
    gen = torch.Generator().manual_seed(seed)
    B, k = opts.batch_size, mcfg.num_frames
    z = torch.randn(B, G.z_dim, generator=gen).to(device)
    t = sample_times(B, k, opts.max_time_diff, gen).to(device)
    c = None
    if G.c_dim > 0:
        c = torch.nn.functional.one_hot(torch.arange(B) % G.c_dim, G.c_dim).float().to(device)
    real = (torch.rand(B, k, 3, mcfg.resolution, mcfg.resolution, generator=gen) * 2 - 1).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    g_fwd_ms, fake = _timed(lambda: G(z, t, c), device, opts.repeats)
    g_bwd_ms = _timed_backward(lambda: G(z, t, c).square().mean(), device, opts.repeats)
    d_fwd_ms, _ = _timed(lambda: D(real, t), device, opts.repeats)
    d_bwd_ms = _timed_backward(lambda: D(real, t).sum(), device, opts.repeats)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (KB on Linux)
    assert fake.shape == (B, k, 3, mcfg.resolution, mcfg.resolution), fake.shape
    return {
        "params": {
            "G": count_params(G),
            "G.mapping": count_params(getattr(G, "mapping", None)),
            "G.motion": count_params(getattr(G, "motion", None)),
            "G.synthesis": count_params(getattr(G, "synthesis", None)),
            "D": count_params(D),
        },
        "timing_ms": {"G_forward": g_fwd_ms, "G_backward": g_bwd_ms, "D_forward": d_fwd_ms, "D_backward": d_bwd_ms},
        "peak_memory_mb": peak_mb,
        "config": {"model": json.loads(json.dumps(asdict(mcfg), default=str)), "profile": asdict(opts)},
    }


def run(cfg: DictConfig) -> dict[str, Any]:
    """Profile ``cfg.model`` with the options under ``cfg.profile`` (all optional); print and return the JSON."""
    opts = as_schema(ProfileOptions, cfg.profile if "profile" in cfg else {})  # an unknown option fails, named
    result = profile_models(cfg.model, opts, seed=int(cfg.seed))
    print(json.dumps(result))
    return result


def _check(cfg: DictConfig) -> None:
    """What :func:`run` would refuse: every group's ranges and the ``+profile.*`` options."""
    type_groups(cfg)
    as_schema(ProfileOptions, cfg.profile if "profile" in cfg else {})


@entry_point("profile", check=_check)
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
