"""One timed training step of a run's model config on this machine's device, for cost projections.

The step is what dominates a training step's cost: G forward on a rank's batch of videos (k frames each),
D forward on those fakes and on as many real-shaped clips, backward of both. Augmentation, lazy R1 and the
optimiser update are left out, so the figure is a lower bound of the full step (see ``benchmarks/bench_step.py``
for the full step of the embedded default). torch is imported here only.
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Any


def device_name(kind: str) -> str:
    """The device class a measurement belongs to: the GPU's name as CUDA reports it, or ``cpu:<model> x<threads>``."""
    import torch

    if kind == "cuda":
        return torch.cuda.get_device_name(0)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"cpu:{model} x{torch.get_num_threads()}"


def measure(typed: Any, batch: int, kind: str = "cpu", repeats: int = 2, seed: int = 0) -> float:
    """Median seconds of one step (after a warm-up) of the typed config's model at its dataset's resolution
    and frames per video, ``batch`` videos (one rank's share)."""
    import torch

    from stylegan_v.models.registry import build_models

    resolution, k = int(typed.dataset.resolution), int(typed.dataset.sampling.num_frames)
    device = torch.device(kind)
    torch.manual_seed(seed)
    G, D = build_models(typed.model, resolution, k)
    G, D = G.to(device).train(), D.to(device).train()
    z = torch.randn(batch, G.z_dim, device=device)
    t = torch.arange(k, dtype=torch.float32, device=device).expand(batch, k) * 2
    c = None
    if G.c_dim > 0:
        c = torch.nn.functional.one_hot(torch.arange(batch) % G.c_dim, G.c_dim).float().to(device)
    real = torch.rand(batch, k, 3, resolution, resolution, device=device) * 2 - 1

    def step() -> None:
        fake = G(z, t, c)
        softplus = torch.nn.functional.softplus
        (softplus(-D(fake, t, c)).mean() + softplus(D(real, t, c)).mean()).backward()
        G.zero_grad(set_to_none=True), D.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
