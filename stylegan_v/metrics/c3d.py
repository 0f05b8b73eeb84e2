"""C3D (Tran et al. 2015) with a 101-way UCF-101 head: the classifier behind the video Inception Score.

Input 16 frames at 112², float values 0..255 minus a per-channel mean. The mean is a buffer carried by the
weight file (``input_mean``; it depends on how the classifier was trained), so one file fixes the whole
preprocessing. Weights are not on any registry reachable here: see :func:`load_c3d`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_v.metrics.inception import resolve_weights
from stylegan_v.metrics.resize import resize_images

C3D_ENV = "STYLEGAN_V_C3D_WEIGHTS"
C3D_FILE = "c3d_ucf101.pth"
C3D_HOW = (
    "convert the C3D UCF-101 classifier used for video IS (TGAN / StyleGAN-V `c3d_ucf101`) to a PyTorch state dict "
    "with the parameter names of stylegan_v.metrics.c3d.C3D (conv1a ... fc8, plus `input_mean` [3])"
)
NUM_CLASSES = 101
INPUT_SIZE = 112
NUM_FRAMES = 16


class C3D(nn.Module):
    """uint8-range float clips [B, 3, 16, H, W] -> class probabilities [B, 101] (resized to 112² inside)."""

    _CONVS = (("conv1a", 3, 64), ("conv2a", 64, 128), ("conv3a", 128, 256), ("conv3b", 256, 256),
              ("conv4a", 256, 512), ("conv4b", 512, 512), ("conv5a", 512, 512), ("conv5b", 512, 512))

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        for name, cin, cout in self._CONVS:
            setattr(self, name, nn.Conv3d(cin, cout, 3, padding=1))
        self.fc6 = nn.Linear(8192, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)
        self.register_buffer("input_mean", torch.zeros(3))  # per-channel mean on the 0..255 scale (from the file)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        assert C == 3 and T == NUM_FRAMES, f"C3D expects [B, 3, {NUM_FRAMES}, H, W], got {tuple(x.shape)}"
        frames = x.float().permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)  # time into batch for 2-D resizing
        frames = resize_images(frames, INPUT_SIZE, "torch")
        x = frames.reshape(B, T, C, INPUT_SIZE, INPUT_SIZE).permute(0, 2, 1, 3, 4) - self.input_mean.view(1, 3, 1, 1, 1)
        x = F.max_pool3d(F.relu(self.conv1a(x)), (1, 2, 2))
        x = F.max_pool3d(F.relu(self.conv2a(x)), 2)
        x = F.max_pool3d(F.relu(self.conv3b(F.relu(self.conv3a(x)))), 2)
        x = F.max_pool3d(F.relu(self.conv4b(F.relu(self.conv4a(x)))), 2)
        x = F.relu(self.conv5b(F.relu(self.conv5a(x))))
        x = F.max_pool3d(F.pad(x, (1, 1, 1, 1)), 2)  # pool5 pads H, W by one: [B, 512, 1, 4, 4]
        x = F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))
        return self.fc8(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.logits(x), dim=1)


def load_c3d(path: str | Path | None, cache_dir: Path, device: str = "cpu") -> C3D:
    weights = resolve_weights(path, C3D_ENV, C3D_FILE, cache_dir, C3D_HOW)
    model = C3D()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval().requires_grad_(False).to(device)
