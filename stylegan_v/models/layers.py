"""StyleGAN2 building blocks in plain PyTorch: equalised LR, modulated convolution, FIR resampling.

Equalised learning rate (Karras et al.): parameters are stored at unit scale (divided by the lr multiplier) and
scaled at run time by ``lr_multiplier / sqrt(fan_in)``, so Adam's per-parameter steps are uniform across layers.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2.0)  # keeps activations at unit variance after leaky ReLU(0.2)


def clamp(x: torch.Tensor, limit: float | None) -> torch.Tensor:
    """Clamp to [-limit, limit] (None: no clamp) as ``hardtanh``: the same values, and a backward of one pass
    where ``clamp``'s takes four (it is on every layer's activations)."""
    return x if limit is None else F.hardtanh(x, -limit, limit)


def lrelu_clamp(x: torch.Tensor, gain: float = 1.0, limit: float | None = None) -> torch.Tensor:
    """Leaky ReLU(0.2) * sqrt(2) * gain, then clamp (StyleGAN2's bias_act for 'lrelu')."""
    x = F.leaky_relu(x, 0.2) * (LRELU_GAIN * gain)
    return clamp(x, None if limit is None else limit * gain)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate and optional leaky-ReLU."""

    def __init__(
        self,
        in_features: int,  # input size
        out_features: int,  # output size
        bias: bool = True,  # learnable bias
        bias_init: float = 0.0,  # initial bias value (1.0 for style affines: styles start at 1)
        lr_multiplier: float = 1.0,  # learning-rate multiplier (0.01 in the mapping network)
        activation: bool = False,  # apply leaky ReLU(0.2) * sqrt(2)
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) * self.bias_gain if self.bias is not None else None
        x = F.linear(x, w, b)
        return lrelu_clamp(x) if self.activation else x


class EqualConv1d(nn.Module):
    """1-D convolution with equalised LR; the motion mapping network F_m uses it with padding 0.

    Its activation is a plain leaky ReLU(0.2), without the sqrt(2) gain of the 2-D layers (as the official F_m).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        activation: bool = True,  # leaky ReLU(0.2), no gain
        lr_multiplier: float = 1.0,  # 0.01 in F_m (official)
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = lr_multiplier / math.sqrt(in_channels * kernel_size)
        self.bias_gain = lr_multiplier
        self.padding = padding
        self.kernel_size = kernel_size
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, C, L] -> [B, C', L - (kernel - 1) + 2 pad]
        w = self.weight.to(x.dtype) * self.weight_gain
        x = F.conv1d(x, w, self.bias.to(x.dtype) * self.bias_gain, padding=self.padding)
        return F.leaky_relu(x, 0.2) if self.activation else x


def fir_filter(device: torch.device | None = None) -> torch.Tensor:
    """The [1, 3, 3, 1] binomial filter as a normalised 4x4 kernel."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], device=device)
    f = f[:, None] * f[None, :]
    return f / f.sum()


class _Fir(torch.autograd.Function):
    """y = conv2d(x, kernel, stride, padding, groups=C): the same FIR kernel on every channel.

    Its backward is :class:`_FirTranspose`, whose backward is this again, so R1's double backward stays two
    grouped convolutions: PyTorch's generic double backward of a grouped convolution runs one small
    convolution per group (hundreds per layer; seconds per step on a GPU). The padding is the convolution's
    own, so no padded copy of the activations is made.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: torch.Tensor, padding: int, stride: int) -> torch.Tensor:
        ctx.save_for_backward(kernel)
        ctx.padding, ctx.stride, ctx.shape = padding, stride, x.shape
        return F.conv2d(x, kernel, stride=stride, padding=padding, groups=x.shape[1])

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        (kernel,) = ctx.saved_tensors
        return _FirTranspose.apply(grad_y, kernel, ctx.padding, ctx.stride, ctx.shape), None, None, None


class _FirTranspose(torch.autograd.Function):
    """The transpose of :class:`_Fir` (its gradient with respect to x), linear in ``grad_y``."""

    @staticmethod
    def forward(ctx: Any, grad_y: torch.Tensor, kernel: torch.Tensor, padding: int, stride: int,
                shape: torch.Size) -> torch.Tensor:
        ctx.save_for_backward(kernel)
        ctx.padding, ctx.stride = padding, stride
        return torch.nn.grad.conv2d_input(shape, kernel, grad_y, stride=stride, padding=padding, groups=shape[1])

    @staticmethod
    def backward(ctx: Any, grad2: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        (kernel,) = ctx.saved_tensors
        return _Fir.apply(grad2, kernel, ctx.padding, ctx.stride), None, None, None, None


def _depthwise_fir(x: torch.Tensor, f: torch.Tensor, padding: int, gain: float, stride: int = 1) -> torch.Tensor:
    """Convolve each channel with the 4x4 FIR filter (symmetric, so no flip is needed), zero-padded by
    ``padding`` on every side."""
    C = x.shape[1]
    kernel = (f * gain).to(x.dtype)[None, None].expand(C, 1, *f.shape).contiguous()
    return _Fir.apply(x, kernel, padding, stride)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 upsampling: zero-insertion then the FIR filter with gain 4 (upfirdn2d, up=2, pad (2, 1)).

    Padding 2 on both sides gives one extra last row and column, dropped: the same as padding (2, 1).
    """
    N, C, H, W = x.shape
    y = x.new_zeros(N, C, H * 2, W * 2)
    y[:, :, ::2, ::2] = x
    return _depthwise_fir(y, f, 2, gain=4.0)[:, :, :-1, :-1]


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 downsampling: FIR filter then keep every second pixel (upfirdn2d, down=2, pad (1, 1))."""
    return _depthwise_fir(x, f, 1, gain=1.0, stride=2)


def modulated_conv2d(
    x: torch.Tensor,  # [N, Cin, H, W]
    weight: torch.Tensor,  # [Cout, Cin, kh, kw], already scaled
    styles: torch.Tensor,  # [N, Cin]
    demodulate: bool,
    up: bool,
    f: torch.Tensor | None,  # FIR filter for up=True
    fused: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """StyleGAN2 modulated (and demodulated) convolution; 'fused' runs one grouped conv per batch.

    The non-fused path scales activations instead of weights: same result, no per-sample weights, and it is
    the faster choice on CPU (1.2-1.4x at 256² on a 2-core VM). It returns the demodulation coefficients [N, Cout] unapplied, so
    the caller folds them into its bias + activation pass; the fused path returns None there.
    """
    N, Cin, H, W = x.shape
    Cout, _, kh, kw = weight.shape
    padding = kh // 2
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalise so the fp16 products cannot overflow; demodulation undoes the scale (StyleGAN2-ADA).
        weight = weight * (1.0 / math.sqrt(Cin * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    dcoefs = None
    if demodulate:
        # sum_{i,k} (W_oik s_i)^2 = sum_i s_i^2 sum_k W_oik^2: one [N, Cin] x [Cin, Cout] product
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).T + 1e-8).rsqrt()  # [N, Cout]
    if not fused:
        x = x * styles.to(x.dtype)[:, :, None, None]
        w = weight.to(x.dtype)
        if up:
            x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)  # [N, Cout, 2H+1, 2W+1]
            x = _depthwise_fir(x, f, 1, gain=4.0)  # -> [N, Cout, 2H, 2W]
        else:
            x = F.conv2d(x, w, padding=padding)
        return x, dcoefs
    w = weight[None] * styles[:, None, :, None, None]  # [N, Cout, Cin, kh, kw]
    if dcoefs is not None:
        w = w * dcoefs[:, :, None, None, None]
    w = w.to(x.dtype)
    x = x.reshape(1, N * Cin, H, W)  # samples into channels: one grouped conv with N groups
    if up:
        w = w.transpose(1, 2).reshape(N * Cin, Cout, kh, kw)  # conv_transpose weight layout [in, out/groups]
        x = F.conv_transpose2d(x, w, stride=2, groups=N)
        x = _depthwise_fir(x, f, 1, gain=4.0)
    else:
        x = F.conv2d(x, w.reshape(N * Cout, Cin, kh, kw), padding=padding, groups=N)
    return x.reshape(N, Cout, *x.shape[2:]), None


class ModulatedConv(nn.Module):
    """Style-modulated 3x3 (or 1x1 ToRGB) convolution + bias + activation; no per-pixel noise (paper)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 3,
        up: bool = False,  # x2 upsampling (transposed conv + FIR)
        demodulate: bool = True,  # False for ToRGB
        activation: bool = True,  # False for ToRGB (linear output)
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.up = up
        self.demodulate = demodulate
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("fir", fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool, gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w.float())  # [N, Cin] in fp32
        weight = self.weight * self.weight_gain
        if not self.demodulate:
            # ToRGB: StyleGAN2 folds the weight gain into the styles
            styles, weight = styles * self.weight_gain, self.weight
        x, dcoefs = modulated_conv2d(x, weight, styles, self.demodulate, self.up, self.fir, fused)
        act_gain = LRELU_GAIN * gain if self.activation else 1.0
        # one pass for demodulation, bias and the activation gain: x * (d * g) + b * g (lrelu commutes with g > 0)
        b = (self.bias * act_gain).to(x.dtype)[None, :, None, None]
        if dcoefs is not None:
            x = torch.addcmul(b, x, (dcoefs * act_gain).to(x.dtype)[:, :, None, None])
        else:
            x = torch.add(b, x, alpha=act_gain)  # b + g x
        if self.activation:
            x = F.leaky_relu(x, 0.2, inplace=True)  # in place: addcmul's backward does not need its output
        if self.conv_clamp is None:
            return x
        return clamp(x, self.conv_clamp * gain if self.activation else self.conv_clamp)


class EqualConv2d(nn.Module):
    """Discriminator convolution with equalised LR, optional FIR x2 downsampling and activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: bool = True, down: bool = False, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation = activation
        self.down = down
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.register_buffer("fir", fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        # The output gain (sqrt(2) after leaky ReLU, times ``gain``) is folded into the weights and bias, which
        # are tiny next to the activations: lrelu(x) g = lrelu(x g) for g > 0, one full-size pass fewer.
        out_gain = gain * (LRELU_GAIN if self.activation else 1.0)
        w = (self.weight * (self.weight_gain * out_gain)).to(x.dtype)
        b = (self.bias * out_gain).to(x.dtype) if self.bias is not None else None
        if self.down:
            kh = w.shape[-1]
            if kh == 1:  # 1x1 skip: downsample first (cheaper), as StyleGAN2-ADA
                x = downsample2d(x, self.fir)
                x = F.conv2d(x, w, b)
            else:  # 3x3: FIR with pad 2 then strided conv (StyleGAN2-ADA's conv2d_resample, down=2)
                x = _depthwise_fir(x, self.fir, 2, gain=1.0)
                x = F.conv2d(x, w, b, stride=2)
        else:
            x = F.conv2d(x, w, b, padding=self.padding)
        if self.activation:
            x = F.leaky_relu(x, 0.2, inplace=True)  # in place: conv2d's backward does not need its output
        return clamp(x, None if self.conv_clamp is None else self.conv_clamp * gain)


def compute_dtype(is_fp16_res: bool, device: torch.device) -> torch.dtype:
    """fp16 only on the top resolutions and only on CUDA; CPU always computes in fp32."""
    return torch.float16 if (is_fp16_res and device.type == "cuda") else torch.float32


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """fmaps rule of StyleGAN2-ADA: min(channel_base / res, channel_max); 16384 -> 512 up to 32², 64 at 256²."""
    return max(1, min(channel_base // resolution, channel_max))
