"""Motion: from (video seed, real-valued frame times t) to the per-frame motion input v_t of synthesis.

Acyclic (ours, paper §3.2 and appendix B): motion noise every d frames -> padding-less conv1d mapping F_m ->
codes u_j at anchors t_j = j d. For a frame t in [t_l, t_r]: u_t = lerp(u_l, u_r), wave parameters from u_t
(periods bounded by tanh + 1, phases, amplitudes), raw embedding sin/cos(omega t + phi), minus the
interpolation of the raw embedding between the anchors (so the waves vanish at anchors), plus the
interpolated aligners W_a u (so the value at an anchor is learned, not zero). The result is continuous in t
and has no cycle. A frame needs only the noise codes of its two anchors' receptive fields, so any t, any
frame rate and any offset cost the same.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from stylegan_v.models.config import MotionConfig, MotionKind
from stylegan_v.models.layers import EqualConv1d, EqualLinear
from stylegan_v.models.noise import counter_normal
from stylegan_v.models.periods import init_periods


def _anchor_coords(t: torch.Tensor, distance: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left anchor index l = floor(t / d) (int64) and the position alpha in [0, 1) between l and l + 1."""
    scaled = t / distance
    left = torch.floor(scaled)
    return left.long(), scaled - left


def _gather_codes(codes: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """codes [B, M, C], local [B, K] int64 -> [B, K, C]."""
    return torch.gather(codes, 1, local[..., None].expand(-1, -1, codes.shape[-1]))


class MotionMapping(nn.Module):
    """F_m: num_layers conv1d, kernel k, stride 1, no padding, hidden 512 (appendix B.1)."""

    def __init__(self, noise_dim: int, hidden_dim: int, code_dim: int, kernel_size: int, num_layers: int) -> None:
        super().__init__()
        dims = [noise_dim] + [hidden_dim] * (num_layers - 1) + [code_dim]
        self.convs = nn.ModuleList(
            EqualConv1d(dims[i], dims[i + 1], kernel_size, padding=0, activation=True) for i in range(num_layers)
        )
        self.receptive_extra = num_layers * (kernel_size - 1)  # extra noise codes consumed: 2 * 10 = 20

    def num_noise_codes(self, num_anchors: int) -> int:
        """n anchors consume n + num_layers * (kernel_size - 1) noise codes (n + 20 with the paper's numbers)."""
        return num_anchors + self.receptive_extra

    def forward(self, noise: torch.Tensor) -> torch.Tensor:  # [B, L, noise_dim] -> [B, L - extra, code_dim]
        x = noise.transpose(1, 2)  # [B, C, L] for conv1d
        for conv in self.convs:
            x = conv(x)
        return x.transpose(1, 2)


class AcyclicCodeLayer(nn.Module):
    """One layer of motion codes at a fixed distance; returns interpolated codes u_t and aligners."""

    def __init__(self, cfg: MotionConfig, distance: int, stream: int) -> None:
        super().__init__()
        self.distance = distance
        self.stream = stream  # separates the noise streams of hierarchical layers
        self.noise_dim = cfg.noise_dim
        self.mapping = MotionMapping(cfg.noise_dim, cfg.code_dim, cfg.code_dim, cfg.kernel_size, cfg.num_layers)
        self.aligner = EqualLinear(cfg.code_dim, cfg.embed_dim, bias=False)  # W_a

    def forward(self, seed: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, K = t.shape
        left, alpha = _anchor_coords(t, self.distance)  # [B, K]
        first = left.min(dim=1).values  # [B] first anchor this batch needs, per video
        num_anchors = int((left.max(dim=1).values - first).max().item()) + 2  # anchors l and l + 1
        index = first[:, None] + torch.arange(self.mapping.num_noise_codes(num_anchors), device=t.device)
        noise = counter_normal(seed * 7919 + self.stream, index, self.noise_dim, dtype=t.dtype)  # [B, M + 20, C]
        codes = self.mapping(noise)  # [B, M, code_dim]; codes[:, m] is anchor first + m
        local = left - first[:, None]
        u_l, u_r = _gather_codes(codes, local), _gather_codes(codes, local + 1)
        a = alpha[..., None]
        u_t = torch.lerp(u_l, u_r, a)
        aligners = torch.lerp(self.aligner(u_l), self.aligner(u_r), a)
        return u_t, aligners


class AcyclicMotion(nn.Module):
    """Acyclic positional embedding; kind=hierarchical sums several code layers at different distances."""

    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.kind == MotionKind.acyclic:
            distances = [cfg.code_distance]
        elif cfg.kind == MotionKind.hierarchical:
            distances = sorted(cfg.hierarchical_distances)
        else:
            raise ValueError(f"AcyclicMotion does not handle motion.kind={cfg.kind!r}")
        self.layers = nn.ModuleList(AcyclicCodeLayer(cfg, d, i) for i, d in enumerate(distances))
        self.stitch_distance = distances[0]  # the finest anchors: the embedding is re-stitched there
        n = cfg.embed_dim // 2
        periods = init_periods(cfg.period_scheme, n, cfg.omega_min, cfg.omega_max, cfg.random_xi, cfg.random_seed)
        self.register_buffer("periods", periods.float())  # frames; sigma = 2 pi / period
        self.register_buffer("sigma", (2.0 * math.pi / periods).float())
        order = torch.argsort(periods, descending=True)  # low frequencies first for progressive growing
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n)
        self.register_buffer("freq_rank", rank.float())
        self.register_buffer("progress", torch.zeros(()))
        self.to_periods = EqualLinear(cfg.code_dim, n)
        self.to_phases = EqualLinear(cfg.code_dim, n)
        self.to_amplitudes = EqualLinear(cfg.code_dim, n, bias_init=1.0)
        self.last_wave_params: torch.Tensor | None = None

    def __getstate__(self) -> dict:
        """Drop the cached graph tensor so deepcopy (G_ema) and pickling (submitit) work after a forward."""
        state = super().__getstate__()
        return {**state, "last_wave_params": None}

    def frequency_mask(self) -> torch.Tensor:
        """Progressive growing of frequencies: 1 for open waves, ramping 0 -> 1 for the next one."""
        if not self.cfg.progressive_frequencies:
            return torch.ones_like(self.sigma)
        n = self.sigma.numel()
        frac = self.cfg.progressive_start + (1.0 - self.cfg.progressive_start) * torch.clamp(
            self.progress / self.cfg.progressive_end, 0.0, 1.0)
        return torch.clamp(frac * n - self.freq_rank, 0.0, 1.0)

    def forward(self, seed: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        u_t, aligners = 0.0, 0.0
        for layer in self.layers:
            u, a = layer(seed, t)
            u_t, aligners = u_t + u, aligners + a
        raw_periods = self.to_periods(u_t)  # [B, K, N]
        freqs = (torch.tanh(raw_periods) + 1.0) * self.sigma.to(t.dtype)  # bounded scale in (0, 2) (appendix B.3)
        phases = self.to_phases(u_t)
        amps = self.to_amplitudes(u_t) * self.frequency_mask().to(t.dtype)
        self.last_wave_params = torch.cat([raw_periods, phases], dim=-1)

        left, alpha = _anchor_coords(t, self.stitch_distance)
        t_l = (left * self.stitch_distance).to(t.dtype)

        def raw(tau: torch.Tensor) -> torch.Tensor:
            # angle in float64: at t ~ 1e4 frames float32 would lose ~1e-3 rad
            angle = (freqs.double() * tau.double()[..., None] + phases.double()).to(t.dtype)
            return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)  # [B, K, 2N]

        a = alpha[..., None]
        stitched = raw(t) - torch.lerp(raw(t_l), raw(t_l + self.stitch_distance), a)  # zero at both anchors
        return amps.repeat(1, 1, 2) * stitched + aligners  # [B, K, embed_dim]

    def entropy(self) -> torch.Tensor:
        """Gaussian entropy estimate (per dimension, mean over dims) of the last wave parameters over the batch."""
        assert self.last_wave_params is not None, "call forward first"
        p = self.last_wave_params.reshape(-1, self.last_wave_params.shape[-1])  # frames into batch
        var = p.float().var(dim=0, unbiased=True) + 1e-8
        return 0.5 * torch.log(2.0 * math.pi * math.e * var).mean()


class LSTMMotion(nn.Module):
    """MoCoGAN-style motion: an LSTM over motion noise (one step per anchor), codes interpolated between anchors.

    The LSTM is unrolled from anchor 0 up to the latest anchor needed, so unlike the acyclic codes its cost grows
    with the time offset (codes only, a few KB per step; frames are still generated chunk by chunk).
    kind=lstm_ema smooths the hidden states with an exponential moving average (appendix D).
    """

    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.distance = cfg.code_distance
        self.lstm = nn.LSTM(cfg.noise_dim, cfg.code_dim, batch_first=True)
        self.to_embed = EqualLinear(cfg.code_dim, cfg.embed_dim)
        self.ema_beta = cfg.lstm_ema_beta if cfg.kind == MotionKind.lstm_ema else None
        self.last_wave_params = None

    def forward(self, seed: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        assert bool((t >= 0).all()), "LSTM motion codes start at t = 0"
        left, alpha = _anchor_coords(t, self.distance)
        steps = int(left.max().item()) + 2
        index = torch.arange(steps, device=t.device)[None].expand(t.shape[0], -1)
        noise = counter_normal(seed * 7919 + 101, index, self.cfg.noise_dim, dtype=t.dtype)  # [B, steps, C]
        h, _ = self.lstm(noise)  # [B, steps, code_dim]
        if self.ema_beta is not None:
            # EMA over steps as one matmul: h'_n = (1 - beta) sum_{i<=n} beta^(n-i) h_i + beta^(n+1) h_0
            n = torch.arange(steps, device=t.device, dtype=t.dtype)
            diff = n[:, None] - n[None, :]
            weights = torch.where(diff >= 0, (1.0 - self.ema_beta) * self.ema_beta ** diff.clamp_min(0), 0.0)
            weights[:, 0] += self.ema_beta ** (n + 1.0)  # start the average at h_0 rather than at 0
            h = torch.einsum("ni,bic->bnc", weights, h)
        u_t = torch.lerp(_gather_codes(h, left), _gather_codes(h, left + 1), alpha[..., None])
        return self.to_embed(u_t)


def build_motion(cfg: MotionConfig) -> nn.Module | None:
    """Motion module per kind; None for the plain image generator."""
    if cfg.kind in (MotionKind.acyclic, MotionKind.hierarchical):
        return AcyclicMotion(cfg)
    elif cfg.kind in (MotionKind.lstm, MotionKind.lstm_ema):
        return LSTMMotion(cfg)
    elif cfg.kind == MotionKind.none:
        return None
    else:
        raise ValueError(f"unknown motion.kind {cfg.kind!r}; valid: {[k.value for k in MotionKind]}")
