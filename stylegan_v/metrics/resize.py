"""Image resizing with the semantics each reference implementation used.

``tf1``: TF1 ``tf.image.resize_bilinear`` (align_corners=False, *no* half-pixel centres), what the reference
FVD code calls before I3D: output pixel i samples input coordinate ``i * in / out``; the upper neighbour is
clamped at the last pixel. ``torch``: ``F.interpolate(mode="bilinear", align_corners=False)``, half-pixel
centres, no antialiasing (the Table 4 "resized to 128²" row uses this one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

RESIZE_MODES = ("tf1", "torch")


def tf1_bilinear_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """[out, in] float64 interpolation weights of TF1 resize_bilinear along one axis."""
    src = torch.arange(out_size, dtype=torch.float64) * (in_size / out_size)
    lo = src.floor().long()
    hi = torch.clamp(lo + 1, max=in_size - 1)
    frac = src - lo.double()
    m = torch.zeros(out_size, in_size, dtype=torch.float64)
    rows = torch.arange(out_size)
    m.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    m.index_put_((rows, hi), frac, accumulate=True)
    return m


def resize_images(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize float [N, C, H, W] to [N, C, size, size] with the named semantics."""
    assert x.ndim == 4 and x.is_floating_point(), f"expected float [N, C, H, W], got {x.dtype} {tuple(x.shape)}"
    H, W = x.shape[-2:]
    if (H, W) == (size, size):
        return x
    if mode == "tf1":
        rh = tf1_bilinear_matrix(H, size).to(x.dtype).to(x.device)
        rw = tf1_bilinear_matrix(W, size).to(x.dtype).to(x.device)
        return torch.matmul(torch.matmul(rh, x), rw.T)  # rows then columns; separable, exact
    elif mode == "torch":
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    else:
        raise ValueError(f"unknown resize mode {mode!r}; valid: {', '.join(RESIZE_MODES)}")
