"""Counter-based Gaussian noise: motion noise code i of a video is a pure function of (video seed, i).

This is what lets a long video be generated chunk by chunk with memory independent of its length and
bit-for-bit the same codes as all at once: a chunk asks only for the indices it needs, and nothing is
drawn from a stateful generator. The hash is splitmix64 on int64 tensors (wrap-around arithmetic), so the
same seed gives the same codes on CPU and CUDA.
"""

from __future__ import annotations

import math

import torch


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= (1 << 63) else c


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)


def _lshr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser: a bijective, well-mixed hash of int64 values."""
    x = x + _GOLDEN
    x = (x ^ _lshr(x, 30)) * _M1
    x = (x ^ _lshr(x, 27)) * _M2
    return x ^ _lshr(x, 31)


def seed_from_z(z: torch.Tensor) -> torch.Tensor:
    """One int64 seed per row of z, hashed from its float32 bits: the video is a function of (z, t)."""
    assert z.ndim == 2, f"z must be [B, z_dim], got {list(z.shape)}"
    bits = z.detach().float().contiguous().view(torch.int32).long()  # [B, z_dim]
    pos = torch.arange(z.shape[1], device=z.device, dtype=torch.long)
    return mix64(bits + mix64(pos)[None]).sum(dim=1)  # int64 sum wraps around: order-independent mix


def counter_normal(seed: torch.Tensor, index: torch.Tensor, dim: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal codes: seed [B] int64, index [B, M] int64 -> [B, M, dim]; Box-Muller on hashed counters."""
    assert seed.ndim == 1 and index.ndim == 2 and index.shape[0] == seed.shape[0], (seed.shape, index.shape)
    half = (dim + 1) // 2
    ch = torch.arange(half, device=index.device, dtype=torch.long)
    key = mix64(mix64(seed)[:, None] + index * 1_000_003)  # [B, M] per-code key
    counters = key[:, :, None] + ch[None, None, :] * 2  # [B, M, half]
    h1, h2 = mix64(counters), mix64(counters + 1)
    scale = 1.0 / float(1 << 53)
    u1 = (_lshr(h1, 11).double() + 0.5) * scale  # (0, 1), never 0
    u2 = (_lshr(h2, 11).double() + 0.5) * scale
    r = torch.sqrt(-2.0 * torch.log(u1))
    theta = 2.0 * math.pi * u2
    out = torch.cat([r * torch.cos(theta), r * torch.sin(theta)], dim=-1)[..., :dim]
    return out.to(dtype)
