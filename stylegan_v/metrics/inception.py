"""InceptionV3 as used for FID (the TF graph of 2015-12-05), with the parameter names of the usual PyTorch port.

The FID network differs from torchvision's ImageNet Inception3 in four places (as the TF graph does): average
pools exclude padding from the mean (Mixed_5*, Mixed_6*, Mixed_7b) and Mixed_7c pools by max, and it has 1008
classes. Parameter names follow torchvision's layout, so the widely used ``pt_inception-2015-12-05-6726825d.pth``
state dict loads as is. Weights are not on any registry reachable here: see :func:`load_fid_inception`.

What the network sees (``PREPROCESSINGS``), from uint8 pixel values p:
- ``nvidia`` (default): TF1 bilinear resize to 299² (output pixel i samples input coordinate i·in/299), then
  (p − 128) / 128, as NVIDIA's TorchScript translation of the same TF graph does (the detector StyleGAN2-ADA and
  StyleGAN-V's ``fid50k_full`` load): it passes uint8 images through ``affine_grid``/``grid_sample`` set up to
  emulate ``tf.image.resize_bilinear`` and scales with ``x -= 128; x /= 128``, so the input lies in [−1, 0.9922].
- ``pytorch_fid``: the ``pytorch-fid`` package's front end: images as p/255, ``F.interpolate`` bilinear with
  ``align_corners=False`` (half-pixel centres) to 299², then 2x − 1, i.e. p/127.5 − 1 in [−1, 1].
Both map 0 to −1; the scales differ by 0.4 % (1/128 against 1/127.5) and the resampling grids by half a pixel,
enough that FID numbers from one are not comparable with the other at the precision papers report.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_v.metrics.cache import WeightsUnavailable
from stylegan_v.metrics.resize import resize_images

INCEPTION_ENV = "STYLEGAN_V_INCEPTION_WEIGHTS"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILE
FEATURE_DIM = 2048
INPUT_SIZE = 299
PREPROCESSINGS = ("nvidia", "pytorch_fid")


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # TF graph: padding not counted


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool_no_pad(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool_no_pad(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)
        self.pool = pool  # "avg" (Mixed_7b) | "max" (Mixed_7c, a quirk of the TF graph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        if self.pool == "avg":
            p = _avg_pool_no_pad(x)
        elif self.pool == "max":
            p = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            raise ValueError(f"unknown pool {self.pool!r}; valid: avg, max")
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(p)], 1)


def preprocessing_resize_mode(preprocessing: str) -> str:
    """The resize (``resize.RESIZE_MODES``) of a preprocessing, as FID records write it."""
    if preprocessing == "nvidia":
        return "tf1"
    elif preprocessing == "pytorch_fid":
        return "torch"
    else:
        raise ValueError(f"unknown FID preprocessing {preprocessing!r}; valid: {', '.join(PREPROCESSINGS)}")


def preprocess_images(x: torch.Tensor, preprocessing: str) -> torch.Tensor:
    """Images [N, 3, H, W] with values 0..255 -> the network's input [N, 3, 299, 299] (keeps a float dtype)."""
    N, C, H, W = x.shape
    assert C == 3, f"expected [N, 3, H, W], got {tuple(x.shape)}"
    x = x if x.is_floating_point() else x.float()
    if preprocessing == "nvidia":
        return (resize_images(x, INPUT_SIZE, "tf1") - 128.0) / 128.0
    elif preprocessing == "pytorch_fid":
        return resize_images(x, INPUT_SIZE, "torch") / 127.5 - 1.0
    else:
        raise ValueError(f"unknown FID preprocessing {preprocessing!r}; valid: {', '.join(PREPROCESSINGS)}")


class FIDInceptionV3(nn.Module):
    """uint8-range float images [N, 3, H, W] (0..255) -> 2048-d pool features (resized to 299² inside)."""

    def __init__(self, preprocessing: str = "nvidia") -> None:
        super().__init__()
        self.preprocessing = preprocessing  # PREPROCESSINGS
        self.resize_mode = preprocessing_resize_mode(preprocessing)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, "avg")
        self.Mixed_7c = InceptionE(2048, "max")
        self.fc = nn.Linear(2048, 1008)  # unused for FID; present so the reference state dict loads strictly

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = preprocess_images(x, self.preprocessing)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # [N, 2048]


def resolve_weights(path: str | Path | None, env: str, file_name: str, cache_dir: Path, how: str) -> Path:
    """Configured path > environment variable > ``<cache_dir>/weights/<file_name>``; missing -> exact message."""
    candidates = [Path(p) for p in (path, os.environ.get(env)) if p] + [cache_dir / "weights" / file_name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise WeightsUnavailable(
        f"weights file {file_name} not found (looked at: {', '.join(str(c) for c in candidates)}); {how} and place it at "
        f"{cache_dir / 'weights' / file_name}, or set ${env} / the metrics config key to its path"
    )


def load_fid_inception(path: str | Path | None, cache_dir: Path, device: str = "cpu", preprocessing: str = "nvidia") -> FIDInceptionV3:
    weights = resolve_weights(path, INCEPTION_ENV, INCEPTION_FILE, cache_dir, f"download {INCEPTION_URL}")
    model = FIDInceptionV3(preprocessing)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False).to(device)
