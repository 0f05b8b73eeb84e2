"""MoCoGAN+SG2 as the StyleGAN-V authors ran it (their configs/model/mocogan.yaml and src/training/mocogan.py).

G: StyleGAN2 from a plain 4x4 constant. An LSTM over per-frame motion noise gives u_t (one step per frame,
motion.code_distance=1); a 2-layer FC mapping turns u_t into v_t, and [w, v_t] is the style of every synthesis
layer (``time_enc.cond_type: concat_w``), so each affine reads w_dim + v_dim features.

D: StyleGAN2's image D on every frame (no time conditioning) beside MoCoGAN's 3-D video D on the k consecutive
frames (noise before each 3-D conv, batch norm, patch logits), the latter trained at a tenth of the learning rate
(:meth:`MoCoGANDiscriminator.param_groups`).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from stylegan_v.models.config import MoCoGANConfig, MotionConfig, StyleGANVConfig, TimeCond
from stylegan_v.models.discriminator import Discriminator
from stylegan_v.models.generator import Generator, SynthesisNetwork, normalize_2nd_moment
from stylegan_v.models.layers import EqualLinear
from stylegan_v.models.motion import LSTMMotion


class MotionCodeMapping(nn.Module):
    """u_t (+ class) -> v_t: 2nd-moment normalisation, then FC + leaky ReLU layers at lr x 0.01 (official
    MotionMappingNetwork, a StyleGAN2 MappingNetwork of 2 layers when ``motion.fourier`` is off)."""

    def __init__(
        self,
        code_dim: int,  # u_t, the LSTM's hidden size
        c_dim: int,  # one-hot classes (0 = unconditional); embedded to v_dim and normalised, as in the official
        v_dim: int,  # v_t, concatenated to w
        num_layers: int,  # 2 in the official config
        lr_multiplier: float,  # 0.01 (official MappingNetwork default)
    ) -> None:
        super().__init__()
        self.code_dim, self.c_dim = code_dim, c_dim
        self.embed_c = EqualLinear(c_dim, v_dim) if c_dim > 0 else None
        dims = [code_dim + (v_dim if c_dim > 0 else 0)] + [v_dim] * num_layers
        self.layers = nn.ModuleList(EqualLinear(dims[i], dims[i + 1], lr_multiplier=lr_multiplier, activation=True)
                                    for i in range(num_layers))

    def forward(self, u: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """u [N, code_dim], c [N, c_dim] or None -> v [N, v_dim]."""
        assert u.ndim == 2 and u.shape[1] == self.code_dim, f"u must be [N, {self.code_dim}], got {list(u.shape)}"
        parts = [normalize_2nd_moment(u)]
        if self.embed_c is not None:
            assert c is not None and c.shape == (u.shape[0], self.c_dim), f"conditional mapping needs c [N, {self.c_dim}]"
            parts.append(normalize_2nd_moment(self.embed_c(c.to(u.dtype))))
        x = torch.cat(parts, dim=1)
        for layer in self.layers:
            x = layer(x)
        return x


class MoCoGANMotion(LSTMMotion):
    """LSTM codes u_t (the parent class, without its linear head), then :class:`MotionCodeMapping` to v_t."""

    def __init__(self, cfg: MotionConfig, mcfg: MoCoGANConfig, c_dim: int = 0) -> None:
        super().__init__(cfg, c_dim)
        self.to_embed = nn.Identity()  # the parent then returns u_t itself
        self.mapping = MotionCodeMapping(cfg.code_dim, c_dim, cfg.embed_dim, mcfg.motion_mapping_layers,
                                         mcfg.motion_mapping_lr_multiplier)

    def forward(self, seed: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """seed [B], t [B, K], c [B, c_dim] or None, noise [B, L, noise_dim] or None -> v [B, K, embed_dim]."""
        B, K = t.shape
        u = super().forward(seed, t, c, noise)  # [B, K, code_dim]
        c_frames = None if c is None else c.repeat_interleave(K, dim=0)  # [B * K, c_dim]
        v = self.mapping(u.reshape(B * K, -1), c_frames)  # frames into batch
        return v.reshape(B, K, -1)


class ConcatWSynthesis(SynthesisNetwork):
    """The skip synthesis with style [w, v_t] (w_dim + v_dim features into every affine, ToRGB included) and the
    plain 4x4 constant (official ``input.type: const``: nothing is concatenated to it)."""

    def __init__(self, cfg: StyleGANVConfig, resolution: int) -> None:
        self.w_dim, self.v_dim = cfg.mapping.w_dim, cfg.motion.embed_dim
        super().__init__(cfg.synthesis, self.w_dim + self.v_dim, resolution, motion_dim=0,
                         img_channels=cfg.img_channels)

    def forward(self, w: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        """w [N, w_dim], v [N, v_dim] -> images [N, C, R, R]."""
        assert v is not None and w.shape[0] == v.shape[0], "MoCoGAN+SG2 synthesis needs a motion code per frame"
        assert w.shape[1] == self.w_dim and v.shape[1] == self.v_dim, (list(w.shape), list(v.shape))
        return super().forward(torch.cat([w, v.to(w.dtype)], dim=1), None)  # [N, w_dim + v_dim]


class MoCoGANGenerator(Generator):
    """G(z, t, c) -> [B, k, C, H, W]; :class:`Generator`'s interface and forward with the MoCoGAN motion module
    and the [w, v_t] synthesis."""

    def build_motion(self, cfg: StyleGANVConfig) -> nn.Module:
        return MoCoGANMotion(cfg.motion, cfg.mocogan, cfg.c_dim)

    def build_synthesis(self, cfg: StyleGANVConfig, resolution: int) -> nn.Module:
        return ConcatWSynthesis(cfg, resolution)


class Noise3d(nn.Module):
    """x + sigma * N(0, 1), in training and evaluation alike (official ``Noise``)."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x) if self.sigma > 0 else x


def _conv_output(size: tuple[int, int, int], conv: nn.Conv3d) -> tuple[int, int, int]:
    return tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip(size, conv.padding, conv.kernel_size, conv.stride))


class VideoDiscriminator3d(nn.Module):
    """MoCoGAN's video D: [B, C, T, H, W] -> patch logits [B, P].

    Four 4x4x4 convs (stride 1 in time, 2 in space; channels ndf, 2, 4, 8 ndf), batch norm after all but the
    first, leaky ReLU 0.2, Gaussian noise before each; two more 3x3x3 convs at exactly 256² (as the official);
    a last 4x4x4 conv to one channel. No biases; weights N(0, 0.02), batch-norm scales N(1, 0.02).
    Time is padded only in the first ``time_paddings`` convs (official 0: k = 16 frames leave one time step).
    """

    def __init__(
        self,
        img_channels: int,  # colour channels of a frame
        resolution: int,  # frame size; >= 64 (the last conv needs 4x4 features)
        num_frames: int,  # k frames per clip
        channels: int = 64,  # ndf
        noise_sigma: float = 0.1,  # 0 = no noise
        time_paddings: int = 0,
    ) -> None:
        super().__init__()
        d, n = channels, time_paddings
        layers: list[nn.Module] = []
        widths = [img_channels, d, 2 * d, 4 * d, 8 * d]
        for i in range(4):
            layers += [Noise3d(noise_sigma),
                       nn.Conv3d(widths[i], widths[i + 1], 4, stride=(1, 2, 2), padding=(2 if n > i else 0, 1, 1),
                                 bias=False)]
            layers += [nn.BatchNorm3d(widths[i + 1])] if i > 0 else []
            layers += [nn.LeakyReLU(0.2)]
        if resolution == 256:
            for i in (4, 5):
                layers += [Noise3d(noise_sigma),
                           nn.Conv3d(8 * d, 8 * d, 3, padding=(1 + (1 if n > i else 0), 1, 1), bias=False),
                           nn.BatchNorm3d(8 * d), nn.LeakyReLU(0.2)]
        # The official pads the last conv when more than 5 convs pad (the same test as the second 3x3x3 conv).
        layers += [nn.Conv3d(8 * d, 1, 4, padding=(2 if n > 5 else 0, 0, 0), bias=False)]
        self.main = nn.Sequential(*layers)
        size = (num_frames, resolution, resolution)
        for conv in (m for m in self.main if isinstance(m, nn.Conv3d)):
            size = _conv_output(size, conv)
        if min(size) < 1:
            raise ValueError(
                f"MoCoGAN's video D cannot take {num_frames} frames of {resolution}²: it needs >= 64² and, with "
                f"model.mocogan.video_d_time_paddings={n}, more frames (the official runs use 16 consecutive "
                f"frames: dataset.sampling.num_frames=16, mode=consecutive, as in sweeps/baselines/mocogan_sg2.yaml)")
        self.num_frames, self.num_patches = num_frames, size[0] * size[1] * size[2]
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 5 and x.shape[2] == self.num_frames, f"x must be [B, C, {self.num_frames}, H, W]"
        return self.main(x).flatten(1)  # [B, P]: one logit per output patch


class MoCoGANDiscriminator(nn.Module):
    """D(video [B, k, C, H, W], t [B, k], c) -> logits [B, 1]: the mean image-D logit of the k frames plus the mean
    patch logit of the 3-D video D. :meth:`heads` gives both, each trained on its own softplus terms by
    :class:`stylegan_v.training.loss.VideoGANLoss`, with R1 on ``r1_head`` only (as the official loss); t only
    fixes k (no time conditioning here)."""

    r1_head = "image"

    def __init__(self, cfg: StyleGANVConfig, resolution: int, num_frames: int) -> None:
        super().__init__()
        self.resolution, self.num_frames, self.c_dim, self.img_channels = (resolution, num_frames, cfg.c_dim,
                                                                            cfg.img_channels)
        self.video_lr_multiplier = cfg.mocogan.video_d_lr_multiplier
        # StyleGAN2's D on single frames: one "frame" per clip, no channel split at concat_res, no Δt input.
        image_cfg = dataclasses.replace(cfg.discriminator, num_frames_div_factor=1, time_cond=TimeCond.none,
                                        feature_diffs=False)
        self.image = Discriminator(image_cfg, resolution, 1, cfg.c_dim, cfg.img_channels)
        m = cfg.mocogan
        self.video = VideoDiscriminator3d(cfg.img_channels, resolution, num_frames, m.video_d_channels,
                                          m.video_d_noise_sigma, m.video_d_time_paddings)

    def param_groups(self, lr: float) -> list[dict]:
        """Adam groups: the image D at lr, the video D at lr x video_d_lr_multiplier (official params_with_lr)."""
        return [{"params": list(self.image.parameters())},
                {"params": list(self.video.parameters()), "lr": self.video_lr_multiplier * lr}]

    def heads(self, video: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"image": [B, k] logits per frame, "video": [B, P] patch logits of the clip}."""
        B, K, C, H, W = video.shape
        assert (K, C, H, W) == (self.num_frames, self.img_channels, self.resolution, self.resolution), (
            f"video must be [B, {self.num_frames}, {self.img_channels}, {self.resolution}, {self.resolution}], "
            f"got {list(video.shape)}")
        assert t.shape == (B, K), f"t must be [{B}, {K}], got {list(t.shape)}"
        frames = video.reshape(B * K, 1, C, H, W)  # frames into batch, each a one-frame clip
        c_frames = c.repeat_interleave(K, dim=0) if self.c_dim > 0 and c is not None else None
        image = self.image(frames, torch.zeros(B * K, 1, device=t.device, dtype=t.dtype), c_frames).reshape(B, K)
        clip = video.transpose(1, 2).float()  # [B, C, K, H, W] for the 3-D convs, in fp32 as the official
        return {"image": image, "video": self.video(clip)}

    def forward(self, video: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        # One number per clip for generic callers (profiling); training uses heads().
        s = self.heads(video, t, c)
        return s["image"].mean(dim=1, keepdim=True) + s["video"].float().mean(dim=1, keepdim=True)  # [B, 1]

    def extra_losses(self) -> dict[str, torch.Tensor]:
        return {}
