"""Video-consistent adaptive augmentation: StyleGAN2-ADA's ``bgc`` set in plain, differentiable PyTorch.

The paper found it important to draw **one** random transform per video and apply it to all its frames;
per-frame transforms (``video_consistent=False``) are kept as the ablation. Each transform is applied
with probability ``p`` (a buffer the training loop adapts); ``p = 0`` returns the input unchanged.

Geometry: a 3x3 matrix per sample mapping output pixel coordinates (centred, in pixels) to input
coordinates, composed like ADA (x-flip, 90-degree rotations, integer translation, isotropic scaling,
rotation, anisotropic scaling, rotation, fractional translation), then sampled with ``grid_sample``
(bilinear, reflection padding). Colour: a 4x4 matrix on RGB (brightness, contrast, luma flip, hue,
saturation); a grayscale frame gets the same transform of its gray RGB pixel, averaged back to one channel.
The ADA defaults below are the published ``bgc`` strengths.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _eye(n: int, batch: int, device: torch.device) -> Tensor:
    return torch.eye(n, device=device).unsqueeze(0).repeat(batch, 1, 1)


def _mat3(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """Batch of 3x3 matrices from rows of scalars/``[N]`` tensors."""
    n = like.shape[0]
    return torch.stack(
        [torch.stack([torch.as_tensor(v, dtype=like.dtype, device=like.device).expand(n) for v in row], -1) for row in rows],
        -2,
    )


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    return _mat3([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    return _mat3([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate2d(theta: Tensor) -> Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return _mat3([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def _translate3d(t: Tensor) -> Tensor:
    m = _eye(4, t.shape[0], t.device)
    m[:, :3, 3] = t.unsqueeze(-1)
    return m


def _scale3d(s: Tensor) -> Tensor:
    m = _eye(4, s.shape[0], s.device)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = s
    return m


def _rotate3d(axis: Tensor, theta: Tensor) -> Tensor:
    """Rodrigues rotation about the unit ``axis`` [3] by ``theta`` [N], as 4x4 matrices."""
    x, y, z = axis
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    m = _eye(4, theta.shape[0], theta.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s
    m[:, 2, 0], m[:, 2, 1], m[:, 2, 2] = z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c
    return m


REFLECTION = 2  # padding-mode code of aten's grid sampler (zeros 0, border 1, reflection 2); bilinear is 0


class _GridSample(torch.autograd.Function):
    """Bilinear ``grid_sample`` (reflection padding) whose backward can itself be differentiated.

    R1 differentiates D's gradient with respect to the real frames, which flows back through the augmentation,
    and PyTorch has no derivative for the CUDA grid sampler's backward. Sampling is linear in its input and the
    grid is a constant here, so the only second-order term is the one through the incoming gradient: the
    backward of the adjoint is the sampler itself.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, grid: Tensor) -> Tensor:
        ctx.save_for_backward(x, grid)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None]:
        x, grid = ctx.saved_tensors
        return _GridSampleAdjoint.apply(grad_out, x, grid), None


class _GridSampleAdjoint(torch.autograd.Function):
    """The sampler's transpose (what its backward computes for the input), differentiable in the gradient."""

    @staticmethod
    def forward(ctx: Any, grad_out: Tensor, x: Tensor, grid: Tensor) -> Tensor:
        ctx.save_for_backward(grid)
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(grad_out, x, grid, 0, REFLECTION, False, [True, False])
        return grad_x

    @staticmethod
    def backward(ctx: Any, grad2: Tensor) -> tuple[Tensor, None, None]:
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(grad2, grid), None, None


def grid_sample(x: Tensor, grid: Tensor) -> Tensor:
    """``F.grid_sample(x, grid, "bilinear", "reflection", align_corners=False)``, twice differentiable in x."""
    return _GridSample.apply(x, grid)


class AugmentPipe(nn.Module):
    """ADA ``bgc`` augmentation for videos ``[B, k, C, H, W]`` in [-1, 1]."""

    def __init__(
        self,
        p: float = 0.0,  # initial probability of each transform; adapted by the training loop via set_p
        video_consistent: bool = True,  # one transform per video (paper); False = per frame (ablation)
        xflip: float = 1, rotate90: float = 1, xint: float = 1,  # strengths: 0 disables a transform
        scale: float = 1, rotate: float = 1, aniso: float = 1, xfrac: float = 1,
        brightness: float = 1, contrast: float = 1, lumaflip: float = 1, hue: float = 1, saturation: float = 1,
        xint_max: float = 0.125,  # integer translation range, fraction of the image size
        scale_std: float = 0.2,  # log2 std of isotropic scaling
        rotate_max: float = 1.0,  # rotation range, fraction of a half-turn
        aniso_std: float = 0.2,  # log2 std of anisotropic scaling
        xfrac_std: float = 0.125,  # std of fractional translation, fraction of the image size
        brightness_std: float = 0.2, contrast_std: float = 0.5,  # additive / log2 multiplicative
        hue_max: float = 1.0,  # hue rotation range, fraction of a half-turn
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
        self.p.fill_(float(min(max(p, 0.0), 1.0)))

    def adjust(self, sign_mean: float, num_images: int, target: float = 0.6, speed_kimg: float = 500.0) -> float:
        """ADA heuristic: move p by ``num_images / (speed_kimg * 1000)`` towards E[sign(D(real))] = target."""
        step = math.copysign(num_images / (speed_kimg * 1000.0), sign_mean - target) if sign_mean != target else 0.0
        self.set_p(float(self.p) + step)
        return float(self.p)

    # -- parameter draws: one row per "unit" (a video, or a frame in per-frame mode)
    def _mask(self, n: int, strength: float, device: torch.device, p: Optional[Tensor] = None) -> Tensor:
        prob = (self.p if p is None else p) * strength
        return (torch.rand(n, device=device) < prob).to(torch.float32)

    def geometric(self, n: int, width: int, height: int, device: torch.device) -> Tensor:
        """``[n, 3, 3]`` output->input pixel-coordinate maps."""
        g = _eye(3, n, device)
        if self.xflip > 0:
            i = torch.randint(0, 2, (n,), device=device) * self._mask(n, self.xflip, device)
            g = g @ _scale2d(1 - 2 * i, torch.ones(n, device=device))
        if self.rotate90 > 0:
            i = torch.randint(0, 4, (n,), device=device) * self._mask(n, self.rotate90, device)
            g = g @ _rotate2d(-math.pi / 2 * i)
        if self.xint > 0:
            t = (torch.rand(n, 2, device=device) * 2 - 1) * self.xint_max * self._mask(n, self.xint, device)[:, None]
            g = g @ _translate2d(torch.round(t[:, 0] * width), torch.round(t[:, 1] * height))
        if self.scale > 0:
            s = torch.exp2(torch.randn(n, device=device) * self.scale_std * self._mask(n, self.scale, device))
            g = g @ _scale2d(s, s)
        p_rot = 1 - torch.sqrt(torch.clamp(1 - self.rotate * self.p, min=0.0))  # two rotations: P(any) = p
        if self.rotate > 0:
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.rotate_max * self._mask(n, 1.0, device, p_rot)
            g = g @ _rotate2d(-theta)
        if self.aniso > 0:
            s = torch.exp2(torch.randn(n, device=device) * self.aniso_std * self._mask(n, self.aniso, device))
            g = g @ _scale2d(s, 1 / s)
        if self.rotate > 0:
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.rotate_max * self._mask(n, 1.0, device, p_rot)
            g = g @ _rotate2d(-theta)
        if self.xfrac > 0:
            t = torch.randn(n, 2, device=device) * self.xfrac_std * self._mask(n, self.xfrac, device)[:, None]
            g = g @ _translate2d(t[:, 0] * width, t[:, 1] * height)
        return g

    def color(self, n: int, device: torch.device) -> Tensor:
        """``[n, 4, 4]`` affine maps on homogeneous RGB."""
        c = _eye(4, n, device)
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
        luma_outer = torch.outer(luma, luma)
        if self.brightness > 0:
            b = torch.randn(n, device=device) * self.brightness_std * self._mask(n, self.brightness, device)
            c = _translate3d(b) @ c
        if self.contrast > 0:
            s = torch.exp2(torch.randn(n, device=device) * self.contrast_std * self._mask(n, self.contrast, device))
            c = _scale3d(s) @ c
        if self.lumaflip > 0:
            i = torch.randint(0, 2, (n,), device=device) * self._mask(n, self.lumaflip, device)
            c = (torch.eye(4, device=device) - 2 * luma_outer * i[:, None, None]) @ c
        if self.hue > 0:
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.hue_max * self._mask(n, self.hue, device)
            c = _rotate3d(luma[:3], theta) @ c
        if self.saturation > 0:
            s = torch.exp2(torch.randn(n, device=device) * self.saturation_std * self._mask(n, self.saturation, device))
            c = (luma_outer + (torch.eye(4, device=device) - luma_outer) * s[:, None, None]) @ c
        return c

    def forward(self, videos: Tensor) -> Tensor:
        B, K, C, H, W = videos.shape
        assert C in (1, 3), f"AugmentPipe expects RGB or grayscale videos [B, k, 3 or 1, H, W], got {tuple(videos.shape)}"
        if float(self.p) <= 0.0:
            return videos  # exactly the identity, and no random numbers consumed
        device = videos.device
        n = B if self.video_consistent else B * K  # units that get their own transform
        g = self.geometric(n, W, H, device)
        c = self.color(n, device)
        if self.video_consistent:  # the same transform for every frame of a video
            g = g.repeat_interleave(K, dim=0)
            c = c.repeat_interleave(K, dim=0)
        x = videos.reshape(B * K, C, H, W)  # time into batch [NCHW]
        eye3 = torch.eye(3, device=device)
        if not torch.allclose(g, eye3.expand_as(g)):
            # pixel coordinates (centred) -> normalised [-1, 1] coordinates of affine_grid (align_corners=False)
            to_norm = torch.diag(torch.tensor([2.0 / W, 2.0 / H, 1.0], device=device))
            from_norm = torch.diag(torch.tensor([W / 2.0, H / 2.0, 1.0], device=device))
            theta = (to_norm @ g @ from_norm)[:, :2, :].to(x.dtype)
            grid = F.affine_grid(theta, [B * K, C, H, W], align_corners=False)
            x = grid_sample(x, grid)
        if not torch.allclose(c, torch.eye(4, device=device).expand_as(c)):
            c = c.to(x.dtype)
            if C == 3:
                x = torch.einsum("nij,njhw->nihw", c[:, :3, :3], x) + c[:, :3, 3, None, None]
            else:  # grayscale: the colour transform of a gray RGB pixel, averaged back to one channel
                c = c[:, :3, :].mean(dim=1)  # [n, 4]
                x = x * c[:, :3].sum(dim=1)[:, None, None, None] + c[:, 3, None, None, None]
        return x.reshape(B, K, C, H, W)
