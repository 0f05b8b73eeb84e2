"""Motion: from (video seed or motion noise, real-valued frame times t, class) to the per-frame input v_t of synthesis.

Acyclic (StyleGAN-V): motion noise every d frames -> padding-less conv1d mapping F_m -> codes u_j at anchors
t_j = j d. For a frame t in [t_l, t_r]: wave parameters come from the left code u_l (periods bounded by
tanh + 1 around the initial periods, phases scaled by omega_max / period); the raw embedding sin/cos(omega t + phi)
minus its interpolation between the anchors vanishes at both anchors, and the interpolated aligners W_a u add a
learned value there. The result is continuous in t and has no cycle. A frame needs only the noise codes of its
two anchors' receptive fields, so any t, any frame rate and any offset cost the same.

Motion noise row j feeds anchor j: by default a pure function of (video seed, j) (:mod:`.noise`), so long
videos stream chunk by chunk; ``noise=[B, L, noise_dim]`` injects explicit rows (the official layout).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from stylegan_v.models.config import MotionConfig, MotionKind, WaveCode
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


def noise_rows(seed: torch.Tensor, rows: torch.Tensor, dim: int, noise: torch.Tensor | None, stream: int,
               dtype: torch.dtype) -> torch.Tensor:
    """Motion noise rows [B, M] -> [B, M, dim]: hashed from the video seed, or gathered from explicit ``noise``."""
    if noise is None:
        return counter_normal(seed * 7919 + stream, rows, dim, dtype=dtype)
    B, L, C = noise.shape
    assert C == dim, f"motion noise must be [B, L, {dim}], got {list(noise.shape)}"
    if int(rows.min()) < 0 or int(rows.max()) >= L:
        raise ValueError(f"these frame times need motion noise rows {int(rows.min())}..{int(rows.max())}, "
                         f"but motion_noise has {L} rows (row j feeds motion code j)")
    return _gather_codes(noise.to(dtype), rows)


class MotionMapping(nn.Module):
    """F_m: num_layers conv1d, kernel k, stride 1, no padding, hidden width = noise_dim, lr x 0.01 (official)."""

    def __init__(self, in_dim: int, hidden_dim: int, code_dim: int, kernel_size: int, num_layers: int,
                 lr_multiplier: float) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [code_dim]
        self.convs = nn.ModuleList(
            EqualConv1d(dims[i], dims[i + 1], kernel_size, padding=0, lr_multiplier=lr_multiplier)
            for i in range(num_layers)
        )
        self.receptive_extra = num_layers * (kernel_size - 1)  # extra noise codes consumed

    def num_noise_codes(self, num_anchors: int) -> int:
        """n anchors consume n + num_layers * (kernel_size - 1) noise codes."""
        return num_anchors + self.receptive_extra

    def forward(self, noise: torch.Tensor) -> torch.Tensor:  # [B, L, in_dim] -> [B, L - extra, code_dim]
        x = noise.transpose(1, 2)  # [B, C, L] for conv1d
        for conv in self.convs:
            x = conv(x)
        return x.transpose(1, 2)


class AcyclicCodeLayer(nn.Module):
    """One layer of motion codes at a fixed distance: the codes of each frame's two anchors and their aligners."""

    def __init__(self, cfg: MotionConfig, distance: int, stream: int, c_dim: int) -> None:
        super().__init__()
        self.distance = distance
        self.stream = stream  # separates the noise streams of hierarchical layers
        self.noise_dim = cfg.noise_dim
        self.mapping = MotionMapping(cfg.noise_dim + c_dim, cfg.noise_dim, cfg.code_dim, cfg.kernel_size,
                                     cfg.num_layers, cfg.lr_multiplier)
        self.aligner = EqualLinear(cfg.code_dim, cfg.embed_dim, bias=False)  # W_a

    def forward(self, seed: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None,
                noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """u_l, u_r [B, K, code_dim] and the interpolated aligners [B, K, embed_dim]."""
        left, alpha = _anchor_coords(t, self.distance)  # [B, K]
        first = left.min(dim=1).values  # [B] first anchor this batch needs, per video
        num_anchors = int((left.max(dim=1).values - first).max().item()) + 2  # anchors l and l + 1
        rows = first[:, None] + torch.arange(self.mapping.num_noise_codes(num_anchors), device=t.device)
        x = noise_rows(seed, rows, self.noise_dim, noise, self.stream, t.dtype)  # [B, M + extra, noise_dim]
        if c is not None:  # classes move differently: c joins every noise row
            x = torch.cat([x, c.to(x.dtype)[:, None].expand(-1, x.shape[1], -1)], dim=2)
        codes = self.mapping(x)  # [B, M, code_dim]; codes[:, m] is anchor first + m
        local = left - first[:, None]
        u_l, u_r = _gather_codes(codes, local), _gather_codes(codes, local + 1)
        aligners = torch.lerp(self.aligner(u_l), self.aligner(u_r), alpha[..., None])
        return u_l, u_r, aligners


class AcyclicMotion(nn.Module):
    """Acyclic positional embedding; kind=hierarchical sums several code layers at different distances."""

    def __init__(self, cfg: MotionConfig, c_dim: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.kind == MotionKind.acyclic:
            distances = [cfg.distance]
        elif cfg.kind == MotionKind.hierarchical:
            distances = sorted(cfg.hierarchical_distances)
        else:
            raise ValueError(f"AcyclicMotion does not handle motion.kind={cfg.kind!r}")
        self.layers = nn.ModuleList(AcyclicCodeLayer(cfg, d, i, c_dim) for i, d in enumerate(distances))
        self.stitch_distance = distances[0]  # the finest anchors: the embedding is re-stitched there
        n = cfg.embed_dim // 2
        periods = init_periods(cfg.period_scheme, n, cfg.omega_min, cfg.omega_max, cfg.random_xi, cfg.random_seed)
        self.register_buffer("periods", periods.float())  # initial periods in frames
        self.register_buffer("freqs", (2.0 * math.pi / periods).float())  # angular frequency sigma per wave
        self.register_buffer("phase_scales", (cfg.omega_max / periods).float())  # phases in units of the period
        order = torch.argsort(periods, descending=True)  # low frequencies first for progressive growing
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n)
        self.register_buffer("freq_rank", rank.float())
        self.register_buffer("progress", torch.zeros(()))
        # No bias on the wave heads: a bias would let every video share one motion (official code).
        self.to_periods = EqualLinear(cfg.code_dim, n, bias=False)
        self.to_phases = EqualLinear(cfg.code_dim, n, bias=False)
        self.to_amplitudes = EqualLinear(cfg.code_dim, n, bias_init=1.0) if cfg.amplitude_head else None
        self.last_wave_params: torch.Tensor | None = None

    def __getstate__(self) -> dict:
        """Drop the cached graph tensor so deepcopy (G_ema) and pickling (submitit) work after a forward."""
        state = super().__getstate__()
        return {**state, "last_wave_params": None}

    def frequency_mask(self) -> torch.Tensor:
        """Progressive growing of frequencies: 1 for open waves, ramping 0 -> 1 for the next one."""
        if not self.cfg.progressive_frequencies:
            return torch.ones_like(self.freqs)
        n = self.freqs.numel()
        frac = self.cfg.progressive_start + (1.0 - self.cfg.progressive_start) * torch.clamp(
            self.progress / self.cfg.progressive_end, 0.0, 1.0)
        return torch.clamp(frac * n - self.freq_rank, 0.0, 1.0)

    def forward(self, seed: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """seed [B] int64, t [B, K] frames, c [B, c_dim] or None, noise [B, L, noise_dim] or None -> [B, K, embed_dim]."""
        if noise is not None and len(self.layers) > 1:
            raise ValueError("explicit motion noise is one layer of codes; motion.kind=hierarchical has several")
        u_l, u_r, aligners = 0.0, 0.0, 0.0
        for layer in self.layers:
            left_code, right_code, a = layer(seed, t, c, noise)
            u_l, u_r, aligners = u_l + left_code, u_r + right_code, aligners + a
        left, alpha = _anchor_coords(t, self.stitch_distance)
        a = alpha[..., None]
        if self.cfg.wave_code == WaveCode.left:
            u_wave = u_l
        elif self.cfg.wave_code == WaveCode.interpolated:
            u_wave = torch.lerp(u_l, u_r, a)
        else:
            raise ValueError(f"unknown wave_code {self.cfg.wave_code!r}; valid: {[w.value for w in WaveCode]}")
        raw_periods = self.to_periods(u_wave)  # [B, K, N]
        phases = self.to_phases(u_wave)
        self.last_wave_params = torch.cat([raw_periods, phases], dim=-1)
        # tanh + 1 bounds each period's scale to (0, 2) around its initial value (appendix B.3)
        freqs = (torch.tanh(raw_periods) + 1.0) * self.freqs.to(t.dtype)
        offsets = phases * self.phase_scales.to(t.dtype)
        t_l = (left * self.stitch_distance).to(t.dtype)

        def raw(tau: torch.Tensor) -> torch.Tensor:
            # angle in float64: at t ~ 1e4 frames float32 would lose ~1e-3 rad
            angle = (freqs.double() * tau.double()[..., None] + offsets.double()).to(t.dtype)
            return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)  # [B, K, 2N]

        waves = raw(t) - torch.lerp(raw(t_l), raw(t_l + self.stitch_distance), a)  # zero at both anchors
        scale = self.frequency_mask().to(t.dtype)
        if self.to_amplitudes is not None:
            scale = self.to_amplitudes(u_wave) * scale
        if self.cfg.progressive_frequencies or self.to_amplitudes is not None:
            waves = waves * torch.cat([scale, scale], dim=-1)  # the same scale for a wave's sin and cos
        return waves + aligners  # [B, K, embed_dim]

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

    def __init__(self, cfg: MotionConfig, c_dim: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.distance = cfg.distance
        self.noise_dim = cfg.noise_dim
        self.lstm = nn.LSTM(cfg.noise_dim + c_dim, cfg.code_dim, batch_first=True)
        self.to_embed = EqualLinear(cfg.code_dim, cfg.embed_dim)
        self.ema_beta = cfg.lstm_ema_beta if cfg.kind == MotionKind.lstm_ema else None
        self.last_wave_params = None

    def forward(self, seed: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        assert bool((t >= 0).all()), "LSTM motion codes start at t = 0"
        left, alpha = _anchor_coords(t, self.distance)
        steps = int(left.max().item()) + 2
        rows = torch.arange(steps, device=t.device)[None].expand(t.shape[0], -1)
        x = noise_rows(seed, rows, self.noise_dim, noise, 101, t.dtype)  # [B, steps, C]
        if c is not None:
            x = torch.cat([x, c.to(x.dtype)[:, None].expand(-1, steps, -1)], dim=2)
        h, _ = self.lstm(x)  # [B, steps, code_dim]
        if self.ema_beta is not None:
            # EMA over steps as one matmul: h'_n = (1 - beta) sum_{i<=n} beta^(n-i) h_i + beta^(n+1) h_0
            n = torch.arange(steps, device=t.device, dtype=t.dtype)
            diff = n[:, None] - n[None, :]
            weights = torch.where(diff >= 0, (1.0 - self.ema_beta) * self.ema_beta ** diff.clamp_min(0), 0.0)
            weights[:, 0] += self.ema_beta ** (n + 1.0)  # start the average at h_0 rather than at 0
            h = torch.einsum("ni,bic->bnc", weights, h)
        u_t = torch.lerp(_gather_codes(h, left), _gather_codes(h, left + 1), alpha[..., None])
        return self.to_embed(u_t)


def build_motion(cfg: MotionConfig, c_dim: int = 0) -> nn.Module | None:
    """Motion module per kind; None for the plain image generator."""
    if cfg.kind in (MotionKind.acyclic, MotionKind.hierarchical):
        return AcyclicMotion(cfg, c_dim)
    elif cfg.kind in (MotionKind.lstm, MotionKind.lstm_ema):
        return LSTMMotion(cfg, c_dim)
    elif cfg.kind == MotionKind.none:
        return None
    else:
        raise ValueError(f"unknown motion.kind {cfg.kind!r}; valid: {[k.value for k in MotionKind]}")
