"""StyleGAN-V discriminator: a StyleGAN2 residual D run per frame down to 16x16, the k frame feature maps
(channels halved by the last per-frame block) concatenated along channels there, video-level blocks after,
and a projection head conditioned on the time differences between the sampled frames (and on the class).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_v.models.config import DiscriminatorConfig, TimeCond
from stylegan_v.models.generator import normalize_2nd_moment
from stylegan_v.models.layers import EqualConv2d, EqualLinear, channels_at, compute_dtype

SQRT_HALF = math.sqrt(0.5)


class DiscriminatorBlock(nn.Module):
    """Residual block: conv 3x3, conv 3x3 down, 1x1 down skip; sum scaled by sqrt(1/2)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, is_fp16: bool,
                 conv_clamp: float | None) -> None:
        super().__init__()
        self.is_fp16 = is_fp16  # honoured only on CUDA
        self.conv0 = EqualConv2d(in_channels, tmp_channels, 3, conv_clamp=conv_clamp)
        self.conv1 = EqualConv2d(tmp_channels, out_channels, 3, down=True, conv_clamp=conv_clamp)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activation=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float64:
            x = x.to(compute_dtype(self.is_fp16, x.device))
        y = self.skip(x, gain=SQRT_HALF)
        x = self.conv1(self.conv0(x), gain=SQRT_HALF)
        return y.add_(x)  # in place: y is the skip conv's own output, which no backward needs


def minibatch_std(x: torch.Tensor, group_size: int, num_channels: int) -> torch.Tensor:
    """Append the std over groups of samples (largest divisor of N not above group_size) as extra channels."""
    N, C, H, W = x.shape
    G = max(g for g in range(1, min(group_size, N) + 1) if N % g == 0)
    Fc = num_channels
    y = x.reshape(G, -1, Fc, C // Fc, H, W)  # [G, N/G, F, C/F, H, W]: groups of G samples
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [N/G, F]
    y = y.reshape(-1, Fc, 1, 1).repeat(G, 1, H, W)  # [N, F, H, W]
    return torch.cat([x, y], dim=1)


def log_spaced_frequencies(max_num_frames: int) -> torch.Tensor:
    """Angular frequencies pi 2^i / R, i = 0 .. log2 R - 1, with R = max_num_frames rounded up to a power of two.

    Periods run from 2 R down to 4 frames, so every time difference below R has its own code.
    """
    resolution = 2 ** math.ceil(math.log2(max_num_frames))
    num = max(1, int(math.log2(resolution)))
    return math.pi * 2.0 ** torch.arange(num, dtype=torch.float64) / resolution


class TimeDiffEncoder(nn.Module):
    """Time differences [B, k-1] -> [B, (k-1) * (time_embed_dim + 2 F)]: a learned embedding of each rounded
    difference beside sin/cos Fourier features of it."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.max_num_frames = cfg.max_num_frames
        self.embed = nn.Embedding(cfg.max_num_frames, cfg.time_embed_dim)
        self.register_buffer("freqs", log_spaced_frequencies(cfg.max_num_frames).float(), persistent=False)
        self.dim_per_diff = cfg.time_embed_dim + 2 * self.freqs.numel()

    def forward(self, diffs: torch.Tensor) -> torch.Tensor:
        B, D = diffs.shape
        idx = diffs.float().round().long().reshape(-1)  # [B * D]
        if int(idx.min()) < 0 or int(idx.max()) >= self.max_num_frames:
            raise ValueError(f"time differences must be in [0, {self.max_num_frames}) frames "
                             f"(model.discriminator.max_num_frames), got {idx.min()}..{idx.max()}")
        angle = diffs.reshape(-1, 1).float() * self.freqs[None]  # [B * D, F]
        x = torch.cat([self.embed(idx), torch.sin(angle), torch.cos(angle)], dim=1)
        return x.reshape(B, D * self.dim_per_diff)  # the k-1 differences side by side


class ConditionMapping(nn.Module):
    """Conditioning (classes and/or time-difference codes) -> cmap: an embedding, 2nd-moment normalisation,
    then FC layers at lr x 0.01 (StyleGAN2-ADA's label mapping of D)."""

    def __init__(self, in_dim: int, cmap_dim: int, num_layers: int) -> None:
        super().__init__()
        self.embed = EqualLinear(in_dim, cmap_dim)
        self.layers = nn.ModuleList(EqualLinear(cmap_dim, cmap_dim, lr_multiplier=0.01, activation=True)
                                    for _ in range(num_layers))

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(self.embed(cond))
        for layer in self.layers:
            x = layer(x)
        return x


class Discriminator(nn.Module):
    """D(video [B, k, C, H, W], t [B, k], c [B, c_dim] or None) -> logits [B, 1]."""

    def __init__(self, cfg: DiscriminatorConfig, resolution: int, num_frames: int, c_dim: int = 0,
                 img_channels: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.resolution, self.num_frames, self.c_dim, self.img_channels = resolution, num_frames, c_dim, img_channels
        log2 = int(math.log2(resolution))
        ch = {2**i: channels_at(2**i, cfg.channel_base, cfg.channel_max) for i in range(2, log2 + 1)}
        fp16_min = max(2 ** (log2 + 1 - cfg.num_fp16_res), 8)
        self.concat_res = min(cfg.concat_res, resolution)
        if resolution == 4 or self.concat_res == 4:
            raise ValueError("model.discriminator.concat_res must leave at least one video block (>= 8)")
        div = cfg.num_frames_div_factor if self.concat_res < resolution else 1
        per_frame = {r: ch[r] for r in ch}
        per_frame[self.concat_res] = ch[self.concat_res] // div  # the last per-frame block emits fewer channels
        self.fromrgb = EqualConv2d(img_channels, ch[resolution], 1, conv_clamp=cfg.conv_clamp)
        self.frame_blocks = nn.ModuleList()  # per frame: resolutions above concat_res
        self.video_blocks = nn.ModuleList()  # per video: concat_res down to 8
        for r in (2**i for i in range(log2, 2, -1)):
            is_fp16 = cfg.num_fp16_res > 0 and r >= fp16_min
            if r > self.concat_res:
                self.frame_blocks.append(DiscriminatorBlock(ch[r], ch[r], per_frame[r // 2], is_fp16, cfg.conv_clamp))
            else:
                in_ch = ch[r]
                if r == self.concat_res:  # k frames concatenated (+ k-1 neighbour differences)
                    in_ch = per_frame[r] * (num_frames + (num_frames - 1 if cfg.feature_diffs else 0))
                self.video_blocks.append(DiscriminatorBlock(in_ch, ch[r], ch[r // 2], is_fp16, cfg.conv_clamp))
        c4 = ch[4]
        self.mbstd = (cfg.mbstd_group_size, cfg.mbstd_num_channels)
        self.epilogue_conv = EqualConv2d(c4 + cfg.mbstd_num_channels, c4, 3, conv_clamp=cfg.conv_clamp)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        if cfg.time_cond not in (TimeCond.projection, TimeCond.predict, TimeCond.none):
            raise ValueError(f"unknown time_cond {cfg.time_cond!r}; valid: {[m.value for m in TimeCond]}")
        use_time = cfg.time_cond == TimeCond.projection and num_frames > 1
        self.time_encoder = TimeDiffEncoder(cfg) if use_time else None
        cond_dim = c_dim + (self.time_encoder.dim_per_diff * (num_frames - 1) if use_time else 0)
        self.cmap_dim = (cfg.cmap_dim or c4) if cond_dim > 0 else 0
        self.mapping = ConditionMapping(cond_dim, self.cmap_dim, cfg.mapping_layers) if cond_dim > 0 else None
        self.out = EqualLinear(c4, self.cmap_dim or 1)
        self.predict_head = None
        if cfg.time_cond == TimeCond.predict and num_frames > 1:
            self.predict_head = EqualLinear(c4, (num_frames - 1) * (cfg.max_time_diff + 1))
        self._last_pred: tuple[torch.Tensor, torch.Tensor] | None = None

    def __getstate__(self) -> dict:
        """Drop the cached graph tensors so deepcopy and pickling work after a forward."""
        return {**super().__getstate__(), "_last_pred": None}

    def forward(self, video: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        B, K, C, H, W = video.shape
        assert (K, C, H, W) == (self.num_frames, self.img_channels, self.resolution, self.resolution), (
            f"video must be [B, {self.num_frames}, {self.img_channels}, {self.resolution}, {self.resolution}], "
            f"got {list(video.shape)}")
        assert t.shape == (B, K), f"t must be [{B}, {K}], got {list(t.shape)}"
        if self.c_dim > 0:
            assert c is not None and c.shape == (B, self.c_dim), f"conditional D needs c [{B}, {self.c_dim}]"
        dtype = self.fromrgb.weight.dtype
        x = video.reshape(B * K, C, H, W).to(dtype)  # frames into batch
        if self.frame_blocks:
            x = x.to(compute_dtype(self.frame_blocks[0].is_fp16, x.device))
        x = self.fromrgb(x)
        for block in self.frame_blocks:
            x = block(x)
        Cc, R = x.shape[1], x.shape[-1]
        frames = x.reshape(B, K, Cc, R, R)  # batch back into videos
        parts = [frames.reshape(B, K * Cc, R, R)]  # frames into channels at concat_res
        if self.cfg.feature_diffs:
            parts.append((frames[:, 1:] - frames[:, :-1]).reshape(B, (K - 1) * Cc, R, R))
        x = torch.cat(parts, dim=1)
        for block in self.video_blocks:
            x = block(x)
        x = x.to(dtype)  # epilogue in full precision
        x = minibatch_std(x, *self.mbstd) if self.mbstd[1] > 0 else x
        x = self.epilogue_conv(x)
        feats = self.fc(x.flatten(1))  # [B, c4]
        out = self.out(feats)
        diffs = (t[:, 1:] - t[:, :-1]).to(dtype)  # [B, k-1] time differences between sampled frames
        if self.mapping is not None:
            cond = [c.to(dtype)] if self.c_dim > 0 else []
            if self.time_encoder is not None:
                cond.append(self.time_encoder(diffs))
            cmap = self.mapping(torch.cat(cond, dim=1))
            out = (out * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)  # projection
        if self.predict_head is not None:
            logits = self.predict_head(feats).reshape(B * (K - 1), -1)
            target = diffs.round().clamp(0, self.cfg.max_time_diff).long().reshape(-1)
            self._last_pred = (logits, target)
        return out  # [B, 1]

    def extra_losses(self) -> dict[str, torch.Tensor]:
        """Extra D loss terms of the most recent forward (weighted): delta classification when time_cond=predict.

        The loop should add them for the forward on real videos only (fake deltas are the same by construction).
        """
        if self._last_pred is None:
            return {}
        logits, target = self._last_pred
        return {"time_prediction": self.cfg.time_pred_weight * F.cross_entropy(logits.float(), target)}
