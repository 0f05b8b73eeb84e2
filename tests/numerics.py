"""Tolerances for comparing two computations of the same numbers, derived from the computation.

Two fp32 evaluations of one formula may round differently: a kernel picks its blocking, and so the order of
its partial sums, by tensor shape (a batch of 1 or of 2, 100 frames or 1024), by the CPU's vector width
(AVX2, AVX-512) and by the thread count; two implementations of one network (ours and the official one,
fused and non-fused convolutions) order their sums differently by construction. A sum of ``n`` products is
off its exact value by at most ``n * u`` times the sum of the products' magnitudes whatever the order
(``u = 2**-24``, fp32's unit roundoff); that worst case needs every rounding to go the same way, and
independent roundings add like a random walk, ``sqrt(n) * u``. Through a network, first-order errors of
successive layers add up. So two evaluations of ``depth`` layers, each summing at most ``terms`` products of
values at most ``scale``, differ by at most

    2 * depth * sqrt(terms) * u * scale        (:func:`reorder_tolerance`)

and a float64 computation (``u = 2**-53``) is compared against the worst case, ``terms * u``
(``unit=FP64, worst_case=True``). Each test states its ``terms``, ``depth`` and ``scale`` beside the call.
Importable from any test module (pytest puts ``tests/`` on the path for its conftest.py).
"""

from __future__ import annotations

import math

import torch

FP32 = 2.0**-24  # unit roundoff of float32
FP64 = 2.0**-53  # unit roundoff of float64
FP16 = 2.0**-11  # unit roundoff of float16


def reorder_tolerance(terms: int, depth: int, scale: float | torch.Tensor, unit: float = FP32,
                      worst_case: bool = False) -> float:
    """Largest |a - b| expected between two evaluations of the same ``depth``-layer computation that sum their
    ``terms``-term reductions in different orders (see the module docstring)."""
    growth = terms if worst_case else math.sqrt(terms)
    magnitude = scale.detach().item() if isinstance(scale, torch.Tensor) else float(scale)
    return 2.0 * depth * growth * unit * magnitude


def fan_in(module: torch.nn.Module) -> int:
    """The most terms any one weighted layer of ``module`` sums (inputs x kernel taps of one output)."""
    return max(p[0].numel() for p in module.parameters() if p.dim() >= 2)


def weighted_layers(module: torch.nn.Module) -> int:
    """Weighted layers of ``module``: at least as many as any path through it has (a depth to bound with)."""
    return sum(1 for p in module.parameters() if p.dim() >= 2)


def generator_tolerance(G: torch.nn.Module, frames: torch.Tensor, t_max: float) -> float:
    """|a - b| between two fp32 evaluations of a generator's ``frames`` (times up to ``t_max``) that round
    differently: every weighted layer of G at the frames' magnitude, plus, for sine waves of time (acyclic
    motion), their angle's amplification of the rounding of their learned frequencies: the angle is at most
    2 (the period head's tanh + 1) x the highest initial frequency x t_max."""
    tolerance = reorder_tolerance(fan_in(G), weighted_layers(G), frames.abs().max().item())
    freqs = getattr(getattr(G, "motion", None), "freqs", None)
    if freqs is not None:
        angle = 2.0 * float(freqs.max()) * abs(t_max)
        tolerance += reorder_tolerance(fan_in(G.motion), weighted_layers(G.motion), angle)
    return tolerance
