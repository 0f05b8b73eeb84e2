"""G3AN's generator as its public code builds it (``model.g3an_variant=code``, the default).

The G3AN numbers the StyleGAN-V paper compares with come from running the G3AN authors' public code
(wyhsirius/g3an-project), so this is the generator that reproduces them. Where it differs from the appendix's
reading (:class:`.g3an.G3ANAppendixGenerator`):

- every transposed convolution (all three streams) and every attention convolution is spectrally normalised,
  each followed by BatchNorm and ReLU;
- G_V up-samples with two transposed convolutions, temporal then spatial (``video_conv``);
- fusion after each G^3 module: h_v + h_t (broadcast over space), then h_s (broadcast over time) concatenated
  in front, so G_V carries twice the module's channels into the next module, the attention and the output;
- channels 8, 8, 4, 2, 1 x ch (ch = 64: 512 ... 64); frames 4, 8, 16, 16, 16 grown from z_m's single step;
  space 4, 8, 16, 32, 64;
- F-SA after module ``attention_after`` (the fourth) with the public code's reshapes (:class:`TemporalAttention`);
- to_rgb: a 1x3x3 convolution without spectral norm, then tanh.

The state-dict layout is the public code's (``block1`` ... ``block5``, ``fsa``, ``to_rgb``), so its checkpoints
(after dropping DataParallel's ``module.`` prefix) load as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from stylegan_v.models.config import G3ANConfig, G3ANVariant, G3ANVideoConv
from stylegan_v.models.g3an import G3ANGenerator

# (spatial kernel, temporal kernel, spatial stride, temporal stride, spatial padding, temporal padding) and output
# channels (x ch) of G^3 modules 1..5, as the public Generator builds them.
GEOMETRY = [(4, 4, 1, 1, 0, 0), (4, 4, 2, 2, 1, 1), (4, 4, 2, 2, 1, 1), (4, 1, 2, 1, 1, 0), (4, 1, 2, 1, 1, 0)]
WIDTH = [8, 8, 4, 2, 1]


def _up(in_ch: int, out_ch: int, kernel: tuple[int, int, int], stride: tuple[int, int, int],
        padding: tuple[int, int, int]) -> list[nn.Module]:
    """Spectrally normalised transposed conv, BatchNorm, ReLU."""
    conv = nn.ConvTranspose3d(in_ch, out_ch, kernel, stride, padding)
    return [nn.utils.spectral_norm(conv), nn.BatchNorm3d(out_ch), nn.ReLU(inplace=True)]


class G3Block(nn.Module):
    """One G^3 module: h_s [B, C_s, 1, H, W], h_v [B, C_v, T, H, W], h_t [B, C_t, T, 1, 1] -> the three at the next
    size, h_v fused to [B, 2 x out, T', H', W']."""

    def __init__(self, in_s: int, in_v: int, in_t: int, out: int, video_conv: G3ANVideoConv,
                 geometry: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        k_s, k_t, s_s, s_t, p_s, p_t = geometry
        spatial = ((1, k_s, k_s), (1, s_s, s_s), (0, p_s, p_s))
        temporal = ((k_t, 1, 1), (s_t, 1, 1), (p_t, 0, 0))
        if video_conv == G3ANVideoConv.temporal_spatial:
            self.conv_v = nn.Sequential(*_up(in_v, out, *temporal), *_up(out, out, *spatial))
        elif video_conv == G3ANVideoConv.spatial_temporal:
            self.conv_v = nn.Sequential(*_up(in_v, out, *spatial), *_up(out, out, *temporal))
        elif video_conv == G3ANVideoConv.joint:
            self.conv_v = nn.Sequential(*_up(in_v, out, (k_t, k_s, k_s), (s_t, s_s, s_s), (p_t, p_s, p_s)))
        else:
            raise ValueError(f"unknown model.video_conv {video_conv!r}; valid: {[v.value for v in G3ANVideoConv]}")
        self.conv_s = nn.Sequential(*_up(in_s, out, *spatial))
        self.conv_t = nn.Sequential(*_up(in_t, out, *temporal))

    def forward(self, h_s: torch.Tensor, h_v: torch.Tensor,
                h_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h_v = self.conv_v(h_v)  # [B, out, T, H, W]
        h_s = self.conv_s(h_s)  # [B, out, 1, H, W]
        h_t = self.conv_t(h_t)  # [B, out, T, 1, 1]
        h_v = h_v + h_t  # motion at every pixel
        h_v = torch.cat([h_s.expand(-1, -1, h_v.shape[2], -1, -1), h_v], dim=1)  # appearance at every frame, first
        return h_s, h_v, h_t


class _AttentionConvs(nn.Module):
    """Spectrally normalised 1x1x1 query and key (C / reduction channels) and value (C) convs, and gamma (0 at
    the start, so the attention begins as the identity)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        reduced = max(1, channels // reduction)
        self.q_conv = nn.utils.spectral_norm(nn.Conv3d(channels, reduced, 1))
        self.k_conv = nn.utils.spectral_norm(nn.Conv3d(channels, reduced, 1))
        self.v_conv = nn.utils.spectral_norm(nn.Conv3d(channels, channels, 1))
        self.gamma = nn.Parameter(torch.zeros(1))

    @staticmethod
    def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """query [N, L, C'], key [N, C', L], value [N, L, C] -> [N, L, C]: out_i = sum_j softmax_j(q_i . k_j) v_j."""
        return torch.matmul(torch.softmax(torch.matmul(query, key), dim=2), value)


class TemporalAttention(_AttentionConvs):
    """T-SA: attention over the frames of each pixel.

    The public code reads the attended [T, C] block of each pixel back as [C, T] (a reshape, not a transpose),
    so channels and frames are interleaved in what gamma adds to x. Trained G3AN weights depend on that, so it
    is kept.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape

        def per_pixel(y: torch.Tensor) -> torch.Tensor:  # [B, c, T, H, W] -> [B*H*W, c, T]: pixels into batch
            return y.permute(0, 3, 4, 1, 2).reshape(B * H * W, y.shape[1], T)

        out = self.attend(per_pixel(self.q_conv(x)).transpose(1, 2), per_pixel(self.k_conv(x)),
                          per_pixel(self.v_conv(x)).transpose(1, 2))  # [B*H*W, T, C]
        out = out.reshape(B, H, W, C, T).permute(0, 3, 4, 1, 2)  # read as [B, H, W, C, T] -> [B, C, T, H, W]
        return self.gamma * out + x


class SpatialAttention(_AttentionConvs):
    """S-SA: attention over the pixels of each frame.

    As in the public code, the attended [B, T, H*W, C] tensor is read back as [B, H, W, C, T] (a reshape), which
    mixes frames, pixels and channels in what gamma adds to x; kept for the same reason as in T-SA.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape

        def per_frame(y: torch.Tensor) -> torch.Tensor:  # [B, c, T, H, W] -> [B*T, c, H*W]: frames into batch
            return y.transpose(1, 2).reshape(B * T, y.shape[1], H * W)

        out = self.attend(per_frame(self.q_conv(x)).transpose(1, 2), per_frame(self.k_conv(x)),
                          per_frame(self.v_conv(x)).transpose(1, 2))  # [B*T, H*W, C]
        out = out.reshape(B, H, W, C, T).permute(0, 3, 4, 1, 2)  # read as [B, H, W, C, T] -> [B, C, T, H, W]
        return self.gamma * out + x


class FactorisedAttention(nn.Module):
    """F-SA as the public code builds it: T-SA, then S-SA."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.tsa = TemporalAttention(channels, reduction)
        self.ssa = SpatialAttention(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T, H, W]
        return self.ssa(self.tsa(x))


class G3ANCodeGenerator(G3ANGenerator):
    """G3AN's generator as its public code builds it; ``cfg.channels`` is 8 x its ``ch`` (512)."""

    def __init__(self, cfg: G3ANConfig, num_frames: int) -> None:
        super().__init__(cfg, num_frames)
        assert cfg.g3an_variant == G3ANVariant.code, f"a {cfg.g3an_variant} config builds another G3AN"
        ch = cfg.channels // 8
        zm_dim = cfg.zm_dim + cfg.num_classes  # the one-hot category joins z_m
        outs = [w * ch for w in WIDTH]
        for n in range(5):
            # module 1 takes z_a (G_A), [z_a, z_m] (G_V) and z_m (G_M); later ones the previous outputs (G_V fused)
            ins = (cfg.za_dim, cfg.za_dim + zm_dim, zm_dim) if n == 0 else (outs[n - 1], 2 * outs[n - 1], outs[n - 1])
            self.add_module(f"block{n + 1}", G3Block(*ins, outs[n], cfg.video_conv, GEOMETRY[n]))
        self.attention_after = cfg.attention_after if cfg.attention else None
        if cfg.attention:
            self.fsa = FactorisedAttention(2 * outs[cfg.attention_after], cfg.attention_reduction)
        self.to_rgb = nn.Sequential(nn.Conv3d(2 * ch, cfg.img_channels, (1, 3, 3), 1, (0, 1, 1)), nn.Tanh())
        self.init_weights()

    @property
    def blocks(self) -> list[G3Block]:
        return [getattr(self, f"block{n + 1}") for n in range(5)]

    def video(self, z: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        za, zm = self.codes(z, c)
        h_s = za[:, :, None, None, None]  # [B, za, 1, 1, 1]
        h_t = zm[:, :, None, None, None]  # [B, zm, 1, 1, 1]: one time step, grown to 16 frames by modules 1-3
        h_v = torch.cat([za, zm], dim=1)[:, :, None, None, None]
        feats = []
        for n, block in enumerate(self.blocks):
            h_s, h_v, h_t = block(h_s, h_v, h_t)
            if n == self.attention_after:
                h_v = self.fsa(h_v)
            feats.append(h_v)
        return self.to_rgb(h_v), feats
