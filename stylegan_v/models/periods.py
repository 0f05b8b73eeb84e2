"""Initial wave periods of the positional embedding per scheme, and their cycle length (Figure 9).

A scheme gives N periods in frames; the embedding's angular frequencies at initialisation are
sigma_i = 2 pi / period_i. The cycle length is the least common multiple of the integer (rounded) periods:
the first t > 0 at which sin(sigma t) repeats as a whole vector.
"""

from __future__ import annotations

import math

import torch

from stylegan_v.models.config import PeriodScheme


def init_periods(
    scheme: PeriodScheme | str,
    n: int,  # number of waves (embed_dim / 2)
    omega_min: float = 16.0,  # frames
    omega_max: float = 1024.0,  # frames
    random_xi: float = 1.0,
    random_seed: int = 0,
) -> torch.Tensor:
    """Periods in frames, float64 [n]."""
    i = torch.arange(n, dtype=torch.float64)
    scheme = PeriodScheme(scheme)
    if scheme == PeriodScheme.linear:
        return omega_min + (i / n) * (omega_max - omega_min)  # paper eq. 6
    elif scheme == PeriodScheme.geometric:
        # Longest period first: the official code lays its waves out in this order, so weights load as they are.
        if n == 1:
            return torch.tensor([omega_min], dtype=torch.float64)
        return (2.0 ** torch.linspace(math.log2(omega_min), math.log2(omega_max), n, dtype=torch.float64)).flip(0)
    elif scheme == PeriodScheme.exponential:
        # sigma = (2pi/2^1.., ) without the degenerate period 2 (sin(pi t) = 0 at every integer frame):
        # periods 4, 8, ..., 2^(n+1); with n = 5 the cycle is 64 frames, as in Figure 9a.
        return 2.0 ** (i + 2.0)
    elif scheme == PeriodScheme.random:
        g = torch.Generator().manual_seed(random_seed)
        sigma = torch.randn(n, generator=g, dtype=torch.float64) * math.sqrt(random_xi)
        return 2.0 * math.pi / sigma.abs().clamp_min(1e-6)
    else:
        raise ValueError(f"unknown period scheme {scheme!r}; valid: {[s.value for s in PeriodScheme]}")


def cycle_length(periods: torch.Tensor) -> int:
    """Least common multiple of the periods rounded to integer frames (at least 1 frame)."""
    out = 1
    for p in torch.round(periods).clamp_min(1).to(torch.int64).tolist():
        out = math.lcm(out, int(p))
    return out


def scheme_cycle_length(scheme: PeriodScheme | str, n: int, omega_min: float = 16.0, omega_max: float = 1024.0,
                        random_xi: float = 1.0, random_seed: int = 0) -> int:
    """Cycle length of a scheme's initial embedding, for Figure 9 and the report."""
    return cycle_length(init_periods(scheme, n, omega_min, omega_max, random_xi, random_seed))
