"""C3D (Tran et al. 2015) with a 101-way UCF-101 head: the classifier behind the video Inception Score.

StyleGAN-V's ``isv2048_ucf`` loads a TorchScript reproduction of TGANv2's Chainer model
(``tgan2/models/c3d/c3d_ucf101.py``, the Caffe ``c3d_ucf101_finetune_whole_iter_20000`` weights) and feeds it
uint8 videos. The TorchScript's own uint8 conversion is not published; we take TGANv2's, whose datasets give
the model (p − 128)/128 and whose first layer multiplies by 128 again, so the network sees pixel values minus
the mean. The preprocessing, from uint8 RGB pixel values p:
- channels reversed to BGR (the Caffe model was trained on BGR);
- every frame resized to 112² with Chainer's bilinear ``resize_images`` (corners aligned; no 128² step, no crop
  of the frame);
- minus a per-pixel, per-frame mean [3, 16, 112, 112] (BGR): the crop ``[:, :, 8:120, 8:120]`` of TGANv2's
  ``mean2.npz`` (C3D's 16-frame training mean). It is the buffer ``input_mean`` of the weight file, so one
  file fixes the whole preprocessing.
The network: max pools of 2 (1 × 2 × 2 after conv1a); pool5 reaches 4 × 4 from 7 × 7 as Chainer's
``cover_all`` pooling does, by extending the last window past the bottom/right edge. Weights are not on any
registry reachable here: see :func:`load_c3d`.
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
    "convert TGANv2's C3D UCF-101 classifier (conv3d_deepnetA_ucf.npz and mean2.npz of the tgan2 v1.0 release) to a "
    "PyTorch state dict with the parameter names of stylegan_v.metrics.c3d.C3D (conv1a ... fc8 as in the npz, plus "
    "`input_mean` = mean2['mean'][:, :, 8:120, 8:120], shape [3, 16, 112, 112], BGR)"
)
NUM_CLASSES = 101
INPUT_SIZE = 112
NUM_FRAMES = 16


def preprocess_clips(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """RGB clips [B, 3, 16, H, W], values 0..255 -> the network's input [B, 3, 16, 112, 112] (keeps a float dtype):
    BGR, each frame resized to 112² as Chainer does, minus ``mean`` [3, 16, 112, 112] (BGR)."""
    B, C, T, H, W = x.shape
    assert C == 3 and T == NUM_FRAMES, f"C3D expects [B, 3, {NUM_FRAMES}, H, W], got {tuple(x.shape)}"
    x = x if x.is_floating_point() else x.float()
    frames = x.flip(1).permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)  # BGR; time into batch for 2-D resizing
    frames = resize_images(frames, INPUT_SIZE, "chainer")
    x = frames.reshape(B, T, C, INPUT_SIZE, INPUT_SIZE).permute(0, 2, 1, 3, 4)
    return x - mean.to(x.dtype)


class C3D(nn.Module):
    """uint8-range float RGB clips [B, 3, 16, H, W] -> class probabilities [B, 101] (resized to 112² inside)."""

    _CONVS = (("conv1a", 3, 64), ("conv2a", 64, 128), ("conv3a", 128, 256), ("conv3b", 256, 256),
              ("conv4a", 256, 512), ("conv4b", 512, 512), ("conv5a", 512, 512), ("conv5b", 512, 512))

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        for name, cin, cout in self._CONVS:
            setattr(self, name, nn.Conv3d(cin, cout, 3, padding=1))
        self.fc6 = nn.Linear(8192, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)
        # per-pixel, per-frame BGR mean on the 0..255 scale (from the weight file)
        self.register_buffer("input_mean", torch.zeros(3, NUM_FRAMES, INPUT_SIZE, INPUT_SIZE))

    def network(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed clips [B, 3, 16, 112, 112] -> logits [B, 101]."""
        x = F.max_pool3d(F.relu(self.conv1a(x)), (1, 2, 2))
        x = F.max_pool3d(F.relu(self.conv2a(x)), 2)
        x = F.max_pool3d(F.relu(self.conv3b(F.relu(self.conv3a(x)))), 2)
        x = F.max_pool3d(F.relu(self.conv4b(F.relu(self.conv4a(x)))), 2)
        x = F.relu(self.conv5b(F.relu(self.conv5a(x))))
        # Chainer's cover_all pooling: the last window runs one past the bottom/right edge (7 -> 4); after the
        # ReLU every value is >= 0, so a zero pad changes no maximum. [B, 512, 1, 4, 4]
        x = F.max_pool3d(F.pad(x, (0, 1, 0, 1)), 2)
        x = F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))
        return self.fc8(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(preprocess_clips(x, self.input_mean))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.logits(x), dim=1)


def load_c3d(path: str | Path | None, cache_dir: Path, device: str = "cpu") -> C3D:
    weights = resolve_weights(path, C3D_ENV, C3D_FILE, cache_dir, C3D_HOW)
    model = C3D()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval().requires_grad_(False).to(device)
