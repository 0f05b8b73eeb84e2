"""Video-consistent adaptive augmentation: StyleGAN2-ADA's ``bgc`` pipeline as the official StyleGAN-V code runs it.

The paper found it important to draw **one** random transform per video and apply it to all its frames;
per-frame transforms (``video_consistent=False``) are kept as the ablation. Each transform is applied
with probability ``strength x p`` (``p`` a buffer the training loop adapts); ``p = 0`` returns the input unchanged
(the official code still runs its pipeline there, which gives the input back to within float32 rounding).

The official code folds a video's frames into channels (``[B, k * C, H, W]``), so one transform reaches every
frame; so does ours. Parameters are drawn in the official order and shapes, so the same torch seed draws the
same transforms on the CPU. Geometry: a 3x3 matrix per video maps output pixels to input pixels (x-flip,
90-degree rotations, integer translation, isotropic scaling, rotation, anisotropic scaling, rotation,
fractional translation); it is executed as StyleGAN2-ADA does, to keep the result free of aliasing: reflection
padding wide enough for the transformed corners, 2x upsampling with the sym6 wavelet low-pass filter, one
bilinear resampling (zeros outside), and 2x downsampling with the same filter. Colour: a 4x4 matrix on
homogeneous RGB (brightness, contrast, luma flip, hue, saturation); a grayscale frame gets the transform of
its gray RGB pixel averaged back to one channel, and draws no hue or saturation (both leave gray unchanged).
The tests compare every transform and the whole pipeline with outputs of the official code.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Daubechies' symlet-6 decomposition low-pass filter: orthogonal, so upsampling then downsampling with it is
# the identity; the ADA geometric stage resamples between the two.
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)
# Its taps normalised to a DC gain of 1 in float32 (as upfirdn2d's setup_filter), as python numbers.
LOWPASS: tuple[float, ...] = tuple((torch.tensor(SYM6) / torch.tensor(SYM6).sum()).tolist())


# ---------------------------------------------------------------------------------------------- matrices

def _matrix(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """``[N, R, C]`` matrices from rows of python numbers and ``[N]`` tensors (the tensors set N, dtype, device)."""
    n = like.shape[0]
    return torch.stack([torch.stack([torch.as_tensor(v, dtype=like.dtype, device=like.device).expand(n)
                                     for v in row], -1) for row in rows], -2)


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate2d(theta: Tensor) -> Tensor:
    return _matrix([[torch.cos(theta), torch.sin(-theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1]],
                   theta)


def _const3(rows: list[list[float]], device: torch.device) -> Tensor:
    """A constant 3x3 matrix ``[3, 3]`` (float32, as the official constants)."""
    return torch.tensor(rows, dtype=torch.float32, device=device)


def _translate3d(t: Tensor) -> Tensor:
    return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], t)


def _scale3d(s: Tensor) -> Tensor:
    return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], s)


def _rotate3d(v: Tensor, theta: Tensor) -> Tensor:
    """Rotation by ``theta`` [N] about the unit axis ``v`` (its first three entries), as 4x4 matrices."""
    vx, vy, vz = v[0], v[1], v[2]
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _matrix([[vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
                    [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
                    [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
                    [0, 0, 0, 1]], theta)


# ------------------------------------------------------------------------------- twice-differentiable sampler

ZEROS = 0  # padding-mode code of aten's grid sampler (zeros 0, border 1, reflection 2); bilinear is 0 too


class _GridSample(torch.autograd.Function):
    """Bilinear ``grid_sample`` (zeros outside) whose backward can itself be differentiated.

    R1 differentiates D's gradient with respect to the real frames, which flows back through the augmentation,
    and PyTorch has no derivative for the CUDA grid sampler's backward. Sampling is linear in its input and the
    grid is a constant here, so the only second-order term is the one through the incoming gradient: the
    backward of the adjoint is the sampler itself (StyleGAN2-ADA's ``grid_sample_gradfix`` does the same).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, grid: Tensor) -> Tensor:
        ctx.save_for_backward(x, grid)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None]:
        x, grid = ctx.saved_tensors
        return _GridSampleAdjoint.apply(grad_out, x, grid), None


class _GridSampleAdjoint(torch.autograd.Function):
    """The sampler's transpose (what its backward computes for the input), differentiable in the gradient."""

    @staticmethod
    def forward(ctx: Any, grad_out: Tensor, x: Tensor, grid: Tensor) -> Tensor:
        ctx.save_for_backward(grid)
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(grad_out, x, grid, 0, ZEROS, False, [True, False])
        return grad_x

    @staticmethod
    def backward(ctx: Any, grad2: Tensor) -> tuple[Tensor, None, None]:
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(grad2, grid), None, None


def grid_sample(x: Tensor, grid: Tensor) -> Tensor:
    """``F.grid_sample(x, grid, "bilinear", "zeros", align_corners=False)``, twice differentiable in x."""
    return _GridSample.apply(x, grid)


# ------------------------------------------------------------------------------------- executing transforms

def _upsample(x: Tensor, dim: int) -> Tensor:
    """2x upsampling along W (``dim=3``) or H (``dim=2``) with the low-pass filter, as upfirdn2d's ``upsample2d``
    (zero insertion, gain 2 per axis, true convolution, its default padding): per output phase r,
    ``out[2m + r] = 2 sum_j x[m + j] f[taps/2 - 1 + r - 2j]``. Shifted slices, not a convolution: the shapes
    change with every draw, and on the CPU a convolution pays its set-up for each new shape."""
    taps = len(LOWPASS)
    reach = taps // 4  # input samples on each side that reach an output sample
    length = x.shape[dim]
    padded = F.pad(x, (reach, reach, 0, 0) if dim == 3 else (0, 0, reach, reach))
    phases = []
    for r in (0, 1):
        shifts = [j for j in range(-reach, reach + 1) if 0 <= taps // 2 - 1 + r - 2 * j < taps]
        phases.append(_weighted_sum([padded.narrow(dim, reach + j, length) for j in shifts],
                                    [2 * LOWPASS[taps // 2 - 1 + r - 2 * j] for j in shifts]))
    return torch.stack(phases, dim + 1).flatten(dim, dim + 1)  # interleave the phases


def _downsample(x: Tensor, dim: int) -> Tensor:
    """2x downsampling along W (``dim=3``) or H (``dim=2``): ``out[m] = sum_k x[2m + k] f[k]`` over the samples
    where the filter fits (upfirdn2d's ``downsample2d`` with ``flip_filter=True``, before its padding)."""
    taps = len(LOWPASS)
    n = (x.shape[dim] - taps) // 2 + 1
    step = (slice(None),) * dim + (slice(None, None, 2),)
    return _weighted_sum([x.narrow(dim, k, 2 * n - 1)[step] for k in range(taps)], list(LOWPASS))


def _weighted_sum(tensors: list[Tensor], weights: list[float]) -> Tensor:
    """sum_i weights[i] * tensors[i], accumulated in order (one running sum: no stacked copy of the terms)."""
    total = tensors[0] * weights[0]
    for tensor, weight in zip(tensors[1:], weights[1:]):
        total = torch.add(total, tensor, alpha=weight)
    return total


def apply_geometric(images: Tensor, G_inv: Tensor) -> Tensor:
    """Resample ``images`` [N, C, H, W] with the output->input pixel maps ``G_inv`` [N, 3, 3] (pixel centres at
    integer coordinates relative to the image centre), alias-free with the sym6 low-pass filter."""
    N, C, H, W = images.shape
    device = images.device
    cx, cy = (W - 1) / 2, (H - 1) / 2
    # Padding: wide enough that every transformed corner, plus the filter's reach, lands inside the image.
    corners = _const3([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device)  # [corner, xyz]
    cp = G_inv @ corners.t()  # [N, xyz, corner]
    Hz_pad = len(LOWPASS) // 4
    margin = cp[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, N * corner]
    margin = torch.cat([-margin, margin]).max(dim=1).values  # [x0, y0, x1, y1]
    margin = margin + torch.tensor([Hz_pad * 2 - cx, Hz_pad * 2 - cy] * 2, device=device)
    margin = margin.max(torch.zeros(4, device=device))
    margin = margin.min(torch.tensor([W - 1, H - 1] * 2, dtype=torch.float32, device=device))
    mx0, my0, mx1, my1 = (int(m) for m in margin.ceil().to(torch.int32).tolist())

    x = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
    eye = torch.eye(3, device=device)
    shift = eye.clone()
    shift[0, 2], shift[1, 2] = (mx0 - mx1) / 2, (my0 - my1) / 2
    G = shift @ G_inv  # the padded image's centre

    x = _upsample(_upsample(x, 3), 2)
    # Into the upsampled image's pixel coordinates: scale by 2 about the pixel-centre offset of half a pixel.
    G = _const3([[2, 0, 0], [0, 2, 0], [0, 0, 1]], device) @ G @ _const3([[0.5, 0, 0], [0, 0.5, 0], [0, 0, 1]], device)
    G = _const3([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]], device) @ G @ _const3([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]],
                                                                                device)

    # Resample into an output of the original size plus the filter's reach, at twice the resolution.
    out_h, out_w = (H + Hz_pad * 2) * 2, (W + Hz_pad * 2) * 2
    to_norm = _const3([[2 / x.shape[3], 0, 0], [0, 2 / x.shape[2], 0], [0, 0, 1]], device)
    from_norm = _const3([[1 / (2 / out_w), 0, 0], [0, 1 / (2 / out_h), 0], [0, 0, 1]], device)
    G = to_norm @ G @ from_norm
    grid = F.affine_grid(G[:, :2, :].to(x.dtype), [N, C, out_h, out_w], align_corners=False)
    x = grid_sample(x, grid)

    # 2x downsampling, cropping the filter's reach (upfirdn2d padding -Hz_pad * 2 with respect to the input).
    crop = Hz_pad * 2 - (len(LOWPASS) - 1) // 2  # what downsample2d's own padding leaves to cut on each side
    x = x[:, :, crop:x.shape[2] - crop, crop:x.shape[3] - crop]
    return _downsample(_downsample(x, 3), 2)


def apply_color(images: Tensor, C: Tensor, channels: int) -> Tensor:
    """Apply the 4x4 colour maps ``C`` [N, 4, 4] to ``images`` [N, F * channels, H, W] (F frames sharing one
    map); ``channels`` 3 (RGB) or 1 (grayscale: the map of a gray RGB pixel, averaged back to one channel)."""
    N, FC, H, W = images.shape
    x = images.reshape(N, FC // channels, channels, H * W)  # [N, F, C, HW]
    C = C.to(x.dtype)
    if channels == 3:
        x = C[:, None, :3, :3] @ x + C[:, None, :3, 3:]
    elif channels == 1:
        c = C[:, :3, :].mean(dim=1, keepdim=True)  # [N, 1, 4]
        x = x * c[:, None, :, :3].sum(dim=3, keepdim=True) + c[:, None, :, 3:]
    else:
        raise ValueError(f"colour augmentation needs RGB or grayscale frames (3 or 1 channels), got {channels}")
    return x.reshape(N, FC, H, W)


# ------------------------------------------------------------------------------------------------ the pipe

class AugmentPipe(nn.Module):
    """ADA ``bgc`` augmentation for videos ``[B, k, C, H, W]`` in [-1, 1], C = 3 or 1."""

    def __init__(
        self,
        p: float = 0.0,  # initial probability multiplier of each transform; adapted by the training loop via adjust
        video_consistent: bool = True,  # one transform per video (paper); False = per frame (ablation)
        xflip: float = 1, rotate90: float = 1, xint: float = 1,  # probability multipliers: 0 disables a transform
        scale: float = 1, rotate: float = 1, aniso: float = 1, xfrac: float = 1,
        brightness: float = 1, contrast: float = 1, lumaflip: float = 1, hue: float = 1, saturation: float = 1,
        xint_max: float = 0.125,  # integer translation range, fraction of the image size
        scale_std: float = 0.2,  # log2 std of isotropic scaling
        rotate_max: float = 1.0,  # rotation range: angles in [-pi, pi] x rotate_max
        aniso_std: float = 0.2,  # log2 std of anisotropic scaling
        xfrac_std: float = 0.125,  # std of fractional translation, fraction of the image size
        brightness_std: float = 0.2, contrast_std: float = 0.5,  # additive / log2 multiplicative
        hue_max: float = 1.0,  # hue rotation range: angles in [-pi, pi] x hue_max
        saturation_std: float = 1.0,  # log2 std of saturation scaling
    ) -> None:
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))
        self.video_consistent = video_consistent
        self.xflip, self.rotate90, self.xint, self.scale = xflip, rotate90, xint, scale
        self.rotate, self.aniso, self.xfrac = rotate, aniso, xfrac
        self.brightness, self.contrast, self.lumaflip = brightness, contrast, lumaflip
        self.hue, self.saturation = hue, saturation
        self.xint_max, self.scale_std, self.rotate_max = xint_max, scale_std, rotate_max
        self.aniso_std, self.xfrac_std = aniso_std, xfrac_std
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std

    def set_p(self, p: float) -> None:
        """Set p (a restored checkpoint's value); p is kept >= 0 but, as in StyleGAN2-ADA, not capped at 1."""
        self.p.fill_(max(float(p), 0.0))

    def adjust(self, sign_mean: float, num_videos: int, target: float = 0.6, speed_kimg: float = 100.0) -> float:
        """ADA heuristic: move p by ``num_videos / (speed_kimg * 1000)`` towards E[sign(D(real))] = target.

        p has no upper bound (StyleGAN2-ADA's): above 1 every transform is always applied, and p must come
        back below 1 before any is skipped again."""
        step = math.copysign(num_videos / (speed_kimg * 1000.0), sign_mean - target) if sign_mean != target else 0.0
        self.p.copy_((self.p + step).clamp(min=0.0))
        return float(self.p)

    # -- parameter draws, in the official order and shapes: one row per unit (a video, or a frame)

    def _where(self, strength: float, value: Tensor, identity: float, shape: list[int]) -> Tensor:
        """``value`` where a uniform draw < strength x p, else ``identity``."""
        keep = torch.rand(shape, device=value.device) < strength * self.p
        return torch.where(keep, value, torch.full_like(value, identity))

    def sample_geometric(self, n: int, width: int, height: int, device: torch.device) -> Tensor | None:
        """``[n, 3, 3]`` output->input pixel maps; None when no geometric transform is enabled."""
        if not any(s > 0 for s in (self.xflip, self.rotate90, self.xint, self.scale, self.rotate, self.aniso,
                                   self.xfrac)):
            return None
        G = torch.eye(3, device=device).expand(n, 3, 3)
        ones = torch.ones(n, device=device)
        if self.xflip > 0:
            i = self._where(self.xflip, torch.floor(torch.rand(n, device=device) * 2), 0.0, [n])
            G = G @ _scale2d(1 - 2 * i, ones)
        if self.rotate90 > 0:
            i = self._where(self.rotate90, torch.floor(torch.rand(n, device=device) * 4), 0.0, [n])
            G = G @ _rotate2d(math.pi / 2 * i)
        if self.xint > 0:
            t = self._where(self.xint, (torch.rand(n, 2, device=device) * 2 - 1) * self.xint_max, 0.0, [n, 1])
            G = G @ _translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
        if self.scale > 0:
            s = self._where(self.scale, torch.exp2(torch.randn(n, device=device) * self.scale_std), 1.0, [n])
            G = G @ _scale2d(1 / s, 1 / s)
        p_rot = 1 - torch.sqrt((1 - self.rotate * self.p).clamp(0, 1))  # two rotations: P(pre or post) = p
        if self.rotate > 0:
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.rotate_max
            theta = torch.where(torch.rand(n, device=device) < p_rot, theta, torch.zeros_like(theta))
            G = G @ _rotate2d(theta)  # before anisotropic scaling
        if self.aniso > 0:
            s = self._where(self.aniso, torch.exp2(torch.randn(n, device=device) * self.aniso_std), 1.0, [n])
            G = G @ _scale2d(1 / s, s)
        if self.rotate > 0:
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.rotate_max
            theta = torch.where(torch.rand(n, device=device) < p_rot, theta, torch.zeros_like(theta))
            G = G @ _rotate2d(theta)  # after anisotropic scaling
        if self.xfrac > 0:
            t = self._where(self.xfrac, torch.randn(n, 2, device=device) * self.xfrac_std, 0.0, [n, 1])
            G = G @ _translate2d(-t[:, 0] * width, -t[:, 1] * height)
        return G

    def sample_color(self, n: int, channels: int, device: torch.device) -> Tensor | None:
        """``[n, 4, 4]`` maps on homogeneous RGB; None when no colour transform applies to these channels."""
        rgb = channels > 1  # hue and saturation leave gray unchanged and are not drawn for it
        if not any(s > 0 for s in (self.brightness, self.contrast, self.lumaflip, self.hue * rgb,
                                   self.saturation * rgb)):
            return None
        I_4 = torch.eye(4, device=device)
        C = I_4.expand(n, 4, 4)
        if self.brightness > 0:
            b = self._where(self.brightness, torch.randn(n, device=device) * self.brightness_std, 0.0, [n])
            C = _translate3d(b) @ C
        if self.contrast > 0:
            c = self._where(self.contrast, torch.exp2(torch.randn(n, device=device) * self.contrast_std), 1.0, [n])
            C = _scale3d(c) @ C
        v = (torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64) / math.sqrt(3)).to(torch.float32).to(device)
        vv = torch.outer(v, v)  # projection onto the luma axis
        if self.lumaflip > 0:
            i = self._where(self.lumaflip, torch.floor(torch.rand(n, 1, 1, device=device) * 2), 0.0, [n, 1, 1])
            C = (I_4 - 2 * vv * i) @ C  # Householder reflection
        if self.hue > 0 and rgb:
            theta = self._where(self.hue, (torch.rand(n, device=device) * 2 - 1) * math.pi * self.hue_max, 0.0, [n])
            C = _rotate3d(v, theta) @ C
        if self.saturation > 0 and rgb:
            s = self._where(self.saturation, torch.exp2(torch.randn(n, 1, 1, device=device) * self.saturation_std),
                            1.0, [n, 1, 1])
            C = (vv + (I_4 - vv) * s) @ C
        return C

    def forward(self, videos: Tensor) -> Tensor:
        B, K, C, H, W = videos.shape
        assert C in (1, 3), f"AugmentPipe expects RGB or grayscale videos [B, k, 3 or 1, H, W], got {tuple(videos.shape)}"
        if float(self.p) <= 0.0:
            return videos  # exactly the identity, and no random numbers consumed
        n = B if self.video_consistent else B * K  # units that get their own transform
        x = videos.reshape(n, -1, H, W)  # [n, (k x) C, H, W]: a unit's frames as channels share its transform
        G_inv = self.sample_geometric(n, W, H, videos.device)
        colour = self.sample_color(n, C, videos.device)
        if G_inv is not None:
            x = apply_geometric(x, G_inv)
        if colour is not None:
            x = apply_color(x, colour, C)
        return x.reshape(B, K, C, H, W)
