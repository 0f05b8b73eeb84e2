"""StyleGAN-V generator: mapping (z -> w), motion ((seed, t) -> v_t), StyleGAN2 skip synthesis (w, v_t) -> frame.

Frames of a video share w; they differ only through v_t, concatenated to the learned 4x4 constant. All frames
of all videos are folded into the batch dimension, so a video costs the same as that many images.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from stylegan_v.models.config import FusedModconv, MappingConfig, MotionConfig, StyleGANVConfig, SynthesisConfig
from stylegan_v.models.layers import EqualLinear, ModulatedConv, channels_at, compute_dtype, fir_filter, upsample2d
from stylegan_v.models.motion import AcyclicMotion, build_motion
from stylegan_v.models.noise import seed_from_z


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def fourier_features(x: torch.Tensor, num: int) -> torch.Tensor:
    """[N] -> [N, 2 num]: sin/cos at periods 2, 4, ..., 2**num (in the units of x)."""
    freqs = 2.0 * math.pi / (2.0 ** torch.arange(1, num + 1, device=x.device, dtype=x.dtype))
    angle = x[:, None] * freqs[None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


class MappingNetwork(nn.Module):
    """z (+ class, + video length) -> w: 2 equalised-LR FC layers with lr multiplier 0.01 (appendix B.1)."""

    def __init__(self, cfg: MappingConfig, c_dim: int, motion: MotionConfig) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.c_dim = cfg.z_dim, cfg.w_dim, c_dim
        self.w_avg_beta = cfg.w_avg_beta
        self.length_cond = motion.video_length_cond
        self.max_video_length = motion.max_video_length
        in_dim = cfg.z_dim
        self.embed_c = EqualLinear(c_dim, cfg.w_dim) if c_dim > 0 else None
        in_dim += cfg.w_dim if c_dim > 0 else 0
        self.embed_len = EqualLinear(2 * 16, cfg.w_dim) if self.length_cond else None  # appendix D ablation
        in_dim += cfg.w_dim if self.length_cond else 0
        dims = [in_dim] + [cfg.w_dim] * cfg.num_layers
        self.layers = nn.ModuleList(
            EqualLinear(dims[i], dims[i + 1], lr_multiplier=cfg.lr_multiplier, activation=True)
            for i in range(cfg.num_layers)
        )
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, video_len: torch.Tensor | None = None,
                truncation_psi: float = 1.0) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.z_dim, f"z must be [B, {self.z_dim}], got {list(z.shape)}"
        parts = [normalize_2nd_moment(z)]
        if self.embed_c is not None:
            assert c is not None and c.shape == (z.shape[0], self.c_dim), "conditional G needs c [B, c_dim]"
            parts.append(normalize_2nd_moment(self.embed_c(c.to(z.dtype))))
        if self.embed_len is not None:
            if video_len is None:
                video_len = torch.full([z.shape[0]], float(self.max_video_length), device=z.device)
            parts.append(normalize_2nd_moment(self.embed_len(fourier_features(video_len.to(z.dtype), 16))))
        x = torch.cat(parts, dim=1)
        for layer in self.layers:
            x = layer(x)
        if self.training and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1.0:
            x = self.w_avg.lerp(x, truncation_psi)
        return x  # [B, w_dim]; every layer of synthesis uses the same w (no style mixing in StyleGAN-V)


def coordinate_grid(n: int, res: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[n, 2, res, res] (x, y) in [-1, 1]: the concatenated-coordinates ablation."""
    lin = torch.linspace(-1.0, 1.0, res, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([xx, yy])[None].expand(n, -1, -1, -1)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (up-conv, conv, ToRGB); the 4x4 block starts from the constant."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, motion_dim: int,
                 cfg: SynthesisConfig, is_fp16: bool, img_channels: int = 3) -> None:
        super().__init__()
        self.resolution = resolution
        self.is_fp16 = is_fp16  # honoured only on CUDA
        self.coords = 2 if cfg.concat_coords else 0
        if resolution == 4:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
            self.conv0 = None
            conv1_in = out_channels + motion_dim  # v_t tiled over 4x4 and concatenated to the constant
        else:
            self.conv0 = ModulatedConv(in_channels, out_channels, w_dim, up=True, conv_clamp=cfg.conv_clamp)
            conv1_in = out_channels
        self.conv1 = ModulatedConv(conv1_in + self.coords, out_channels, w_dim, conv_clamp=cfg.conv_clamp)
        self.torgb = ModulatedConv(out_channels, img_channels, w_dim, kernel_size=1, demodulate=False, activation=False,
                                   conv_clamp=cfg.conv_clamp)
        self.register_buffer("fir", fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, w: torch.Tensor, v: torch.Tensor | None,
                fused: bool) -> tuple[torch.Tensor, torch.Tensor]:
        N = w.shape[0]
        dtype = compute_dtype(self.is_fp16, w.device)
        dtype = w.dtype if w.dtype == torch.float64 else dtype  # float64 tests keep float64 throughout
        if self.conv0 is None:
            x = self.const.to(dtype)[None].expand(N, -1, -1, -1)
            if v is not None:
                x = torch.cat([x, v.to(dtype)[:, :, None, None].expand(-1, -1, 4, 4)], dim=1)  # [N, C + v_dim, 4, 4]
        else:
            x = self.conv0(x.to(dtype), w, fused)
        if self.coords:
            x = torch.cat([x, coordinate_grid(N, x.shape[-1], x.device, x.dtype)], dim=1)
        x = self.conv1(x, w, fused)
        y = self.torgb(x, w, fused).to(w.dtype if w.dtype == torch.float64 else torch.float32)  # images in fp32
        img = y if img is None else upsample2d(img, self.fir.to(img.dtype)) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """Skip generator from 4x4 to the output resolution; fmaps 0.5 (channel_base 16384, max 512)."""

    def __init__(self, cfg: SynthesisConfig, w_dim: int, resolution: int, motion_dim: int, img_channels: int = 3) -> None:
        super().__init__()
        self.resolution = resolution
        self.fused_mode = cfg.fused_modconv
        log2 = int(math.log2(resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        fp16_min = max(2 ** (log2 + 1 - cfg.num_fp16_res), 8)  # top num_fp16_res resolutions (StyleGAN2-ADA)
        self.channels = {r: channels_at(r, cfg.channel_base, cfg.channel_max) for r in self.block_resolutions}
        self.blocks = nn.ModuleList()
        for r in self.block_resolutions:
            in_ch = self.channels[r // 2] if r > 4 else 0
            self.blocks.append(SynthesisBlock(in_ch, self.channels[r], w_dim, r, motion_dim, cfg,
                                              is_fp16=cfg.num_fp16_res > 0 and r >= fp16_min,
                                              img_channels=img_channels))

    def use_fused(self, device: torch.device) -> bool:
        if self.fused_mode == FusedModconv.always:
            return True
        elif self.fused_mode == FusedModconv.never:
            return False
        elif self.fused_mode == FusedModconv.auto:
            return device.type == "cuda" and not self.training  # as StyleGAN2-ADA on GPU; CPU: never (faster)
        else:
            raise ValueError(f"unknown fused_modconv {self.fused_mode!r}; valid: {[m.value for m in FusedModconv]}")

    def forward(self, w: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        """w [N, w_dim], v [N, motion_dim] or None -> images [N, 3, R, R]."""
        fused = self.use_fused(w.device)
        x = img = None
        for block in self.blocks:
            x, img = block(x, img, w, v, fused)
        return img


class Generator(nn.Module):
    """G(z, t, c) -> [B, k, 3, H, W]: a video is a function of its content noise z and real-valued frame times t."""

    def __init__(self, cfg: StyleGANVConfig, resolution: int, num_frames: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.w_dim, self.c_dim = cfg.mapping.z_dim, cfg.mapping.w_dim, cfg.c_dim
        self.resolution, self.num_frames = resolution, num_frames
        self.img_channels = cfg.img_channels
        self.mapping = MappingNetwork(cfg.mapping, cfg.c_dim, cfg.motion)
        self.motion = self.build_motion(cfg)
        self.synthesis = self.build_synthesis(cfg, resolution)
        self.entropy_weight = cfg.motion.entropy_weight

    def build_motion(self, cfg: StyleGANVConfig) -> nn.Module | None:
        """The motion module (a subclass swaps in its own: MoCoGAN+SG2)."""
        return build_motion(cfg.motion, cfg.c_dim)

    def build_synthesis(self, cfg: StyleGANVConfig, resolution: int) -> nn.Module:
        """The synthesis network, fed the motion codes (if any) beside w."""
        motion_dim = cfg.motion.embed_dim if self.motion is not None else 0
        return SynthesisNetwork(cfg.synthesis, cfg.mapping.w_dim, resolution, motion_dim, cfg.img_channels)

    def forward(self, z: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None,
                motion_noise: torch.Tensor | None = None, motion_seed: torch.Tensor | None = None,
                video_len: torch.Tensor | None = None, truncation_psi: float = 1.0) -> torch.Tensor:
        """z [B, z_dim], t [B, k] frame times (any real values), c [B, c_dim] one-hot classes (conditional G).

        Motion noise: by default hashed from ``motion_seed`` [B] int64 (default: from z), so any time range
        streams with constant memory; ``motion_noise`` [B, L, noise_dim] gives the rows explicitly (row j feeds
        motion code j, the official layout).
        """
        B, K = t.shape
        assert z.shape == (B, self.z_dim), f"z must be [{B}, {self.z_dim}], got {list(z.shape)}"
        if self.c_dim > 0:
            assert c is not None and c.shape == (B, self.c_dim), f"conditional G needs c [{B}, {self.c_dim}]"
        else:
            c = None  # an unconditional G ignores labels ([B, 0] or None)
        dtype = self.synthesis.blocks[0].const.dtype
        w = self.mapping(z.to(dtype), c, video_len, truncation_psi)  # [B, w_dim]
        v = None
        if self.motion is not None:
            seed = seed_from_z(z) if motion_seed is None else motion_seed.to(device=z.device, dtype=torch.long)
            v = self.motion(seed, t.to(dtype), c, motion_noise)  # [B, K, motion_dim]
            v = v.reshape(B * K, -1)  # frames into batch
        w_frames = w.repeat_interleave(K, dim=0)  # [B * K, w_dim]: each frame of a video shares its w
        img = self.synthesis(w_frames, v)  # [B * K, 3, H, W]
        return img.reshape(B, K, self.img_channels, self.resolution, self.resolution)  # batch back into videos

    def extra_losses(self) -> dict[str, torch.Tensor]:
        """Extra G loss terms of the most recent forward, already weighted; {} when no such ablation is on."""
        if self.entropy_weight > 0 and isinstance(self.motion, AcyclicMotion) and self.motion.last_wave_params is not None:
            return {"motion_entropy": -self.entropy_weight * self.motion.entropy()}  # maximise entropy
        return {}

    def set_progress(self, fraction: float) -> None:
        """Training progress in [0, 1] for progressive growing of frequencies; a no-op when it is off."""
        if isinstance(self.motion, AcyclicMotion):
            self.motion.progress.fill_(float(fraction))


def generate_frames(G: nn.Module, z: torch.Tensor, t_chunks: Iterable[torch.Tensor], c: torch.Tensor | None = None,
                    motion_seed: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """Yield G(z, t_chunk) for each chunk of frame times [B, k_i], without gradients.

    Memory depends on the chunk only: each chunk draws just the motion noise codes its anchors need (a pure
    function of the per-video seed and the code index), so chunks equal one all-at-once call.
    """
    if motion_seed is None:
        motion_seed = seed_from_z(z)
    with torch.inference_mode():
        for t in t_chunks:
            yield G(z, t, c, motion_seed=motion_seed)


def time_chunks(batch: int, num_frames: int, chunk: int, start: float = 0.0, step: float = 1.0,
                device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """Frame times start, start + step, ... split into [batch, <= chunk] pieces (step < 1: higher frame rate)."""
    for s in range(0, num_frames, chunk):
        idx = torch.arange(s, min(s + chunk, num_frames), device=device, dtype=torch.float64)
        yield (start + idx * step).float()[None].expand(batch, -1)


def to_rgb_uint8(video: torch.Tensor) -> torch.Tensor:
    """G's frames [..., C, H, W] in [-1, 1] -> uint8 RGB [..., 3, H, W] (a grayscale frame is repeated): x 127.5 +
    128, clamped and truncated, i.e. rounded half up, as the official code turns frames into images."""
    frames = (video * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return frames if frames.shape[-3] == 3 else frames.expand(*frames.shape[:-3], 3, *frames.shape[-2:])


def count_params(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


