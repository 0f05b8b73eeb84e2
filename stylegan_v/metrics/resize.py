"""Image resizing with the semantics each reference implementation used.

``torch``: ``F.interpolate(mode="bilinear", align_corners=False)``, half-pixel centres, no antialiasing. This
is the FVD default: StyleGAN-V's FVD passes uint8 frames to its I3D TorchScript module with
``rescale=True, resize=True``, so the module itself resizes to 224² with PyTorch interpolation (its docstring
says it matches the TensorFlow FVD "up to the upsampling operation"). The module's code is not published; the
reading here is PyTorch's bilinear with ``align_corners=False``, the mode and corner convention the same
project uses for every other resize of video frames (trilinear on [B, C, T, H, W] with T unchanged, which is
bilinear per frame), and no antialiasing (PyTorch 1.9, the version that project targets, has no such option).
It is also the interpolation of the Table 4 "resized to 128²" variant.

``tf1``: TF1 ``tf.image.resize_bilinear`` (align_corners=False, *no* half-pixel centres), what the TensorFlow
FVD code calls before I3D and what the FID Inception graph uses: output pixel i samples input coordinate
``i * in / out``; the upper neighbour is clamped at the last pixel. NVIDIA's TorchScript Inception (the FID
detector of StyleGAN2-ADA and StyleGAN-V) emulates it with ``affine_grid`` + ``grid_sample(padding_mode=
"border")``, the same map computed through normalised coordinates.

``chainer``: Chainer's ``F.resize_images`` (bilinear, corners aligned: output pixel i samples input coordinate
``i * (in - 1) / (out - 1)``), the resize inside the C3D classifier of the video Inception Score. It is a
detector's fixed preprocessing, not a protocol switch, so configs cannot select it (``RESIZE_MODES``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

RESIZE_MODES = ("torch", "tf1")  # the modes a metrics config may choose
_ALL_MODES = RESIZE_MODES + ("chainer",)

# Table 4 "resized to 128²" (pre_resize = R):
# roundtrip: bilinear down to R², back up to the input size, rounded to uint8, then the usual resize to 224²
#   (the reference code's variant: down to 128, up to the 256² dataset resolution, to uint8, into I3D);
# direct: bilinear down to R², then straight to 224², no rounding (the paper-text reading).
PRE_RESIZE_MODES = ("roundtrip", "direct")


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


def resize_images(x: torch.Tensor, size: int | tuple[int, int], mode: str) -> torch.Tensor:
    """Resize float [N, C, H, W] to [N, C, size, size] (or [N, C, h, w] for ``size=(h, w)``) with the named semantics."""
    assert x.ndim == 4 and x.is_floating_point(), f"expected float [N, C, H, W], got {x.dtype} {tuple(x.shape)}"
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    H, W = x.shape[-2:]
    if (H, W) == (out_h, out_w):
        return x
    if mode == "torch":
        return F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=False)
    elif mode == "tf1":
        rh = tf1_bilinear_matrix(H, out_h).to(x.dtype).to(x.device)
        rw = tf1_bilinear_matrix(W, out_w).to(x.dtype).to(x.device)
        return torch.matmul(torch.matmul(rh, x), rw.T)  # rows then columns; separable, exact
    elif mode == "chainer":
        return F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=True)
    else:
        raise ValueError(f"unknown resize mode {mode!r}; valid: {', '.join(_ALL_MODES)}")
