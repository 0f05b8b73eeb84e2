"""G3AN baseline (second source document): the generator API, its appendix reading, and the two-stream D.

:class:`G3ANGenerator` is what both generators share: ``G(z, t, c)`` returns frames of the 16-frame video that
``video(z, c)`` makes. The public code's generator (the default) is in :mod:`.g3an_code`; this module holds the
appendix's reading (``model.g3an_variant=appendix``): G_A (appearance, 2-D), G_M (motion, 1-D) and G_V (video,
3-D) grow together through five G^3 modules; G_V's features are fused with the outer product of the appearance
and motion features after every module, and a factorised spatio-temporal self-attention (temporal, then
spatial) follows module ``attention_after``. As in the appendix, the 1-D and 2-D transposed convolutions are
ConvTranspose3d with a unit spatial / temporal extent. Output sizes after each module are those of its Table 1
(1024x4x4x2 ... 64x64x64x16, then 3x64x64x16). The discriminators are the public code's, for both.
"""

from __future__ import annotations

import torch
from torch import nn

from stylegan_v.models.config import G3ANConfig, G3ANVariant

# (channels, spatial size, frames) after each G^3 module: Table 1 of the G3AN appendix
TABLE1 = [(1024, 4, 2), (512, 8, 4), (256, 16, 8), (128, 32, 16), (64, 64, 16)]


def _bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm3d(channels), nn.ReLU(inplace=True))


class FactorisedSelfAttention(nn.Module):
    """F-SA: temporal self-attention at every pixel, then spatial self-attention at every frame.

    f, g, h are 1x1x1 convolutions, f and g reduced to C' = C / 8; the attended features are scaled by a
    learnable gamma (initialised at 0) and added to the input (appendix B, eqs. 1-4).
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        reduced = max(1, channels // reduction)
        self.f_t, self.g_t = nn.Conv3d(channels, reduced, 1), nn.Conv3d(channels, reduced, 1)
        self.h_t = nn.Conv3d(channels, channels, 1)
        self.f_s, self.g_s = nn.Conv3d(channels, reduced, 1), nn.Conv3d(channels, reduced, 1)
        self.h_s = nn.Conv3d(channels, channels, 1)
        self.gamma_t = nn.Parameter(torch.zeros(()))
        self.gamma_s = nn.Parameter(torch.zeros(()))

    @staticmethod
    def _attend(f: torch.Tensor, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """f, g [N, L, C'], h [N, L, C] -> [N, L, C]; out_j = sum_i softmax_i(f_i . g_j) h_i."""
        logits = torch.bmm(g, f.transpose(1, 2))  # [N, L_j, L_i]
        return torch.bmm(torch.softmax(logits, dim=-1), h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T, H, W]
        B, C, T, H, W = x.shape

        def per_pixel(y: torch.Tensor) -> torch.Tensor:  # [B, c, T, H, W] -> [B*H*W, T, c]: pixels into batch
            return y.permute(0, 3, 4, 2, 1).reshape(B * H * W, T, y.shape[1])

        att = self._attend(per_pixel(self.f_t(x)), per_pixel(self.g_t(x)), per_pixel(self.h_t(x)))
        x = self.gamma_t * att.reshape(B, H, W, T, C).permute(0, 4, 3, 1, 2) + x  # T-SA

        def per_frame(y: torch.Tensor) -> torch.Tensor:  # [B, c, T, H, W] -> [B*T, H*W, c]: frames into batch
            return y.permute(0, 2, 3, 4, 1).reshape(B * T, H * W, y.shape[1])

        att = self._attend(per_frame(self.f_s(x)), per_frame(self.g_s(x)), per_frame(self.h_s(x)))
        return self.gamma_s * att.reshape(B, T, H, W, C).permute(0, 4, 1, 2, 3) + x  # S-SA


def _up_layers(in_ch: int, out_ch: int, up_t: bool) -> tuple[nn.Module, nn.Module, nn.Module]:
    """G_A (x2 space), G_M (x2 time or x1), G_V (both) for one G^3 module n >= 1."""
    kt, st = (4, 2) if up_t else (3, 1)
    appearance = nn.Sequential(nn.ConvTranspose3d(in_ch, out_ch, (1, 4, 4), (1, 2, 2), (0, 1, 1), bias=False),
                               _bn_relu(out_ch))
    motion = nn.Sequential(nn.ConvTranspose3d(in_ch, out_ch, (kt, 1, 1), (st, 1, 1), (1, 0, 0), bias=False),
                           _bn_relu(out_ch))
    video = nn.Sequential(nn.ConvTranspose3d(in_ch, out_ch, (kt, 4, 4), (st, 2, 2), (1, 1, 1), bias=False),
                          _bn_relu(out_ch))
    return appearance, motion, video


class G3Motion(nn.Module):
    """G_M: the 1-D motion stream, z_m (+ one-hot category) -> [B, C, T, 1, 1] per module."""

    def __init__(self, cfg: G3ANConfig, channels: list[int]) -> None:
        super().__init__()
        in_dim = cfg.zm_dim + cfg.num_classes
        self.layers = nn.ModuleList([nn.Sequential(
            nn.ConvTranspose3d(in_dim, channels[0], (2, 1, 1), bias=False), _bn_relu(channels[0]))])
        for n in range(1, 5):
            self.layers.append(_up_layers(channels[n - 1], channels[n], TABLE1[n][2] > TABLE1[n - 1][2])[1])


class G3Synthesis(nn.Module):
    """G_A and G_V streams, their fusion, F-SA and the RGB output layer."""

    def __init__(self, cfg: G3ANConfig, channels: list[int]) -> None:
        super().__init__()
        self.appearance = nn.ModuleList([nn.Sequential(
            nn.ConvTranspose3d(cfg.za_dim, channels[0], (1, 4, 4), bias=False), _bn_relu(channels[0]))])
        zv_dim = cfg.za_dim + cfg.zm_dim + cfg.num_classes
        self.video = nn.ModuleList([nn.Sequential(
            nn.ConvTranspose3d(zv_dim, channels[0], (2, 4, 4), bias=False), _bn_relu(channels[0]))])
        for n in range(1, 5):
            a, _, v = _up_layers(channels[n - 1], channels[n], TABLE1[n][2] > TABLE1[n - 1][2])
            self.appearance.append(a)
            self.video.append(v)
        self.attention_after = cfg.attention_after if cfg.attention else None
        self.attention = (FactorisedSelfAttention(channels[cfg.attention_after], cfg.attention_reduction)
                          if cfg.attention else None)
        self.to_rgb = nn.Sequential(nn.Conv3d(channels[4], cfg.img_channels, 3, padding=1), nn.Tanh())


class G3ANGenerator(nn.Module):
    """G(z, t, c) -> [B, k, C, 64, 64]: makes the 16-frame video (:meth:`video`) and returns frames round(t)
    (clamped to 0..15). Both G3AN generators derive from it.

    z is [z_a, z_m] concatenated; c is the one-hot motion category (None when unconditional), which joins z_m.
    """

    video_frames = TABLE1[-1][2]  # both variants make 16 frames

    def __init__(self, cfg: G3ANConfig, num_frames: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.c_dim = cfg.z_dim, cfg.num_classes
        self.resolution, self.num_frames = cfg.resolution, num_frames
        self.img_channels = cfg.img_channels
        self.mapping = None  # G3AN has no mapping network

    def init_weights(self) -> None:
        """The public code's initialisation: N(0, 0.02) for every Conv3d (to_rgb, attention), N(1, 0.02) and 0 for
        BatchNorm; transposed convolutions keep PyTorch's default. A spectrally normalised conv's weight is its
        ``weight_orig``."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.normal_(getattr(module, "weight_orig", module.weight), 0.0, 0.02)
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def codes(self, z: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B, za + zm], c [B, classes] or None -> (z_a [B, za], z_m [B, zm + classes])."""
        B = z.shape[0]
        assert z.shape == (B, self.z_dim), f"z must be [B, {self.z_dim}], got {list(z.shape)}"
        za, zm = z[:, : self.cfg.za_dim], z[:, self.cfg.za_dim:]
        if self.c_dim > 0:
            assert c is not None and c.shape == (B, self.c_dim), "conditional G3AN needs one-hot c [B, num_classes]"
            zm = torch.cat([zm, c.to(zm.dtype)], dim=1)
        return za, zm

    def video(self, z: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """z [B, za + zm] -> (video [B, C, 16, 64, 64] in [-1, 1], G_V features after each G^3 module)."""
        raise NotImplementedError(f"{type(self).__name__} builds no network; use a G3AN variant")

    def forward(self, z: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None, **_: object) -> torch.Tensor:
        B, K = t.shape
        video, _ = self.video(z, c)  # [B, C, T, H, W]
        idx = t.round().clamp(0, self.video_frames - 1).long()  # [B, K]
        frames = video.transpose(1, 2)  # [B, T, C, H, W]
        return torch.gather(frames, 1, idx[:, :, None, None, None].expand(-1, -1, *frames.shape[2:]))

    def extra_losses(self) -> dict[str, torch.Tensor]:
        return {}

    def set_progress(self, fraction: float) -> None:
        """No schedule in G3AN."""


class G3ANAppendixGenerator(G3ANGenerator):
    """The appendix's reading (``model.g3an_variant=appendix``): Table 1's sizes, outer-product fusion."""

    def __init__(self, cfg: G3ANConfig, num_frames: int) -> None:
        super().__init__(cfg, num_frames)
        assert cfg.g3an_variant == G3ANVariant.appendix, f"a {cfg.g3an_variant} config builds another G3AN"
        channels = [cfg.channels >> n for n in range(5)]
        self.motion = G3Motion(cfg, channels)
        self.synthesis = G3Synthesis(cfg, channels)
        self.init_weights()

    def video(self, z: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        za, zm = self.codes(z, c)
        zv = torch.cat([za, zm], dim=1)
        a = za[:, :, None, None, None]  # [B, za, 1, 1, 1]
        m = zm[:, :, None, None, None]
        v = zv[:, :, None, None, None]
        feats = []
        for n in range(5):
            a = self.synthesis.appearance[n](a)  # [B, C, 1, H, W]
            m = self.motion.layers[n](m)  # [B, C, T, 1, 1]
            v = self.synthesis.video[n](v) + a * m  # fuse: G_V + outer product of appearance and motion
            if n == self.synthesis.attention_after:
                v = self.synthesis.attention(v)
            feats.append(v)
        return self.synthesis.to_rgb(v), feats


def _sn(layer: nn.Module) -> nn.Module:
    nn.init.normal_(layer.weight, 0.0, 0.02)
    return nn.utils.spectral_norm(layer)


def _with_classes(x: torch.Tensor, c: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """Append the one-hot class as constant input channels (a conditional D sees it at every position)."""
    if num_classes == 0:
        return x
    assert c is not None and c.shape == (x.shape[0], num_classes), f"conditional D needs c [B, {num_classes}]"
    planes = c.to(x.dtype).reshape(*c.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return torch.cat([x, planes], dim=1)


class G3ANVideoDiscriminator(nn.Module):
    """3-D video D of the public G3AN code: four (1x4x4 stride-2 spatial, 4x1x1 temporal) conv pairs with
    spectral norm and leaky ReLU, then a 1x4x4 and a (T-12)x1x1 conv to one logit per clip."""

    def __init__(self, channels: int, num_frames: int, num_classes: int = 0, img_channels: int = 3) -> None:
        super().__init__()
        assert num_frames >= 13, f"the video D needs at least 13 frames, got {num_frames}"
        self.num_classes = num_classes
        chans, layers = [img_channels + num_classes, channels, 2 * channels, 4 * channels, 8 * channels], []
        for i in range(4):
            layers += [_sn(nn.Conv3d(chans[i], chans[i + 1], (1, 4, 4), (1, 2, 2), (0, 1, 1))), nn.LeakyReLU(0.2),
                       _sn(nn.Conv3d(chans[i + 1], chans[i + 1], (4, 1, 1))), nn.LeakyReLU(0.2)]
        layers += [_sn(nn.Conv3d(8 * channels, 8 * channels, (1, 4, 4))), nn.LeakyReLU(0.2),
                   _sn(nn.Conv3d(8 * channels, 1, (num_frames - 12, 1, 1)))]
        self.net = nn.Sequential(*layers)

    def forward(self, video: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:  # [B, 3, T, H, W]
        return self.net(_with_classes(video, c, self.num_classes)).reshape(video.shape[0], 1)


class G3ANImageDiscriminator(nn.Module):
    """2-D image D of the public G3AN code: four 4x4 stride-2 convs with spectral norm, then a 4x4 conv."""

    def __init__(self, channels: int, num_classes: int = 0, img_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        chans, layers = [img_channels + num_classes, channels, 2 * channels, 4 * channels, 8 * channels], []
        for i in range(4):  # 64 -> 4
            layers += [_sn(nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1)), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, _sn(nn.Conv2d(8 * channels, 1, 4)))

    def forward(self, image: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:  # [B, 3, H, W]
        return self.net(_with_classes(image, c, self.num_classes)).reshape(image.shape[0], 1)


class G3ANDiscriminator(nn.Module):
    """G3AN's two discriminators, trained on their own losses (:mod:`stylegan_v.training.g3an_loss`): a video
    D on the whole clip and an image D on one frame. ``forward`` sums both logits for generic callers
    (profiling); training uses :meth:`streams`."""

    def __init__(self, cfg: G3ANConfig, num_frames: int) -> None:
        super().__init__()
        self.num_frames, self.img_channels = num_frames, cfg.img_channels
        self.video = G3ANVideoDiscriminator(cfg.d_channels, num_frames, cfg.num_classes, cfg.img_channels)
        self.image = G3ANImageDiscriminator(cfg.d_channels, cfg.num_classes, cfg.img_channels)

    def streams(self, video: torch.Tensor, c: torch.Tensor | None = None,
                frame: int = 0) -> dict[str, torch.Tensor]:
        """video [B, K, C, 64, 64] -> {"video": [B, 1] on the clip, "image": [B, 1] on frame ``frame``}."""
        B, K, C, H, W = video.shape
        assert (K, C, H, W) == (self.num_frames, self.img_channels, 64, 64), \
            f"video must be [B, {self.num_frames}, {self.img_channels}, 64, 64], got {list(video.shape)}"
        return {"video": self.video(video.transpose(1, 2), c), "image": self.image(video[:, frame], c)}

    def forward(self, video: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        s = self.streams(video, c)
        return s["video"] + s["image"]

    def extra_losses(self) -> dict[str, torch.Tensor]:
        return {}
