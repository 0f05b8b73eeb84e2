"""Video-consistent ADA augmentation on real frames: one transform per video, p = 0 identity, differentiable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stylegan_v.data.augment import AugmentPipe, grid_sample
from stylegan_v.data.video_dataset import VideoDataset

GEOMETRIC_ONLY = dict(brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0)


def _static_videos(samples_dir: Path, batch: int, frames: int = 3) -> torch.Tensor:
    """``[B, k, 3, H, W]`` in [-1, 1]: the same real frame repeated over time and over videos."""
    frame = torch.from_numpy(VideoDataset(samples_dir).read_frames(0, [5])[0]).permute(2, 0, 1).float() / 127.5 - 1
    return frame.expand(batch, frames, -1, -1, -1).contiguous()


def _real_videos(samples_dir: Path) -> torch.Tensor:
    ds = VideoDataset(samples_dir)
    clips = [torch.from_numpy(ds.read_frames(i, [0, 10, 20])) for i in range(4)]
    return torch.stack(clips).permute(0, 1, 4, 2, 3).float() / 127.5 - 1  # [B,k,H,W,C] -> [B,k,C,H,W]


@pytest.mark.parametrize("video_consistent", [True, False])
def test_p_zero_is_exact_identity(samples_dir: Path, video_consistent: bool) -> None:
    x = _real_videos(samples_dir)
    assert torch.equal(AugmentPipe(p=0.0, video_consistent=video_consistent)(x), x)


def test_same_transform_for_every_frame_of_a_video(samples_dir: Path) -> None:
    torch.manual_seed(0)
    x = _static_videos(samples_dir, batch=8)
    y = AugmentPipe(p=1.0, video_consistent=True)(x)
    assert torch.allclose(y[:, 1:], y[:, :1].expand_as(y[:, 1:]), atol=1e-5)  # frames of a video stay equal
    differing_pairs = sum(not torch.allclose(y[i, 0], y[j, 0], atol=1e-3) for i in range(8) for j in range(i))
    assert differing_pairs == 28  # every pair of videos got a different transform
    assert (y - x).abs().mean() > 0.05


def test_per_frame_mode_differs_within_a_video(samples_dir: Path) -> None:
    torch.manual_seed(0)
    y = AugmentPipe(p=1.0, video_consistent=False)(_static_videos(samples_dir, batch=4))
    assert all(not torch.allclose(y[b, 0], y[b, 1], atol=1e-3) for b in range(4))


def test_geometry_is_consistent_on_moving_videos(samples_dir: Path) -> None:
    """Only x-flip and 90-degree rotations: each whole video is exactly one of the 8 dihedral images."""
    torch.manual_seed(1)
    x = _real_videos(samples_dir)
    only = dict(GEOMETRIC_ONLY, xint=0, scale=0, rotate=0, aniso=0, xfrac=0)
    y = AugmentPipe(p=1.0, **only)(x)
    candidates = [torch.rot90(f, r, dims=(-2, -1)) for f in (x, x.flip(-1)) for r in range(4)]
    for b in range(x.shape[0]):
        matches = [c for c in candidates if torch.allclose(y[b], c[b], atol=1e-5)]
        assert matches, f"video {b} is not a dihedral image of its input"


def test_integer_translation_moves_all_frames_alike(samples_dir: Path) -> None:
    torch.manual_seed(2)
    x = _real_videos(samples_dir)
    only = dict(GEOMETRIC_ONLY, xflip=0, rotate90=0, scale=0, rotate=0, aniso=0, xfrac=0)
    y = AugmentPipe(p=1.0, **only)(x)
    for b in range(x.shape[0]):
        found = [(dx, dy) for dx in range(-8, 9) for dy in range(-8, 9)
                 if torch.allclose(y[b, :, :, 10:-10, 10:-10],
                                   x[b, :, :, 10 - dy:x.shape[-2] - 10 - dy, 10 - dx:x.shape[-1] - 10 - dx], atol=1e-5)]
        assert len(found) == 1  # one shift explains every frame of the video


def test_differentiable_and_p_is_an_adaptive_buffer(samples_dir: Path) -> None:
    x = _real_videos(samples_dir).requires_grad_(True)
    pipe = AugmentPipe(p=0.5)
    pipe(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert "p" in pipe.state_dict() and float(pipe.p) == 0.5
    assert pipe.adjust(sign_mean=0.9, num_images=50_000) == pytest.approx(0.6)  # D overfits: more augmentation
    assert pipe.adjust(sign_mean=0.1, num_images=50_000) == pytest.approx(0.5)
    pipe.set_p(-3)
    assert float(pipe.p) == 0.0


def test_grid_sample_backward_is_differentiable_like_torchs() -> None:
    """R1 through augmentation differentiates the sampler's backward; ours matches PyTorch's (CPU) result."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    w = torch.randn(2, 3, 8, 8, requires_grad=True)
    theta = torch.eye(2, 3)[None].repeat(2, 1, 1) + 0.1 * torch.randn(2, 2, 3)
    grid = torch.nn.functional.affine_grid(theta, [2, 3, 8, 8], align_corners=False)
    results = []
    for sample in (grid_sample, lambda a, g: torch.nn.functional.grid_sample(
            a, g, mode="bilinear", padding_mode="reflection", align_corners=False)):
        w.grad = None
        y = sample(x, grid)
        (gx,) = torch.autograd.grad((y * w).sum(), x, create_graph=True)
        gx.square().sum().backward()
        results.append((y.detach(), gx.detach(), w.grad.clone()))
    for ours, torchs in zip(*results):
        torch.testing.assert_close(ours, torchs)
    assert results[0][2].abs().sum() > 0


def test_grayscale_videos_get_the_colour_transform_of_their_gray_rgb_pixels() -> None:
    gray = torch.rand(3, 2, 1, 16, 16) * 2 - 1
    pipe = AugmentPipe(p=0.9)
    torch.manual_seed(5)
    ours = pipe(gray)
    torch.manual_seed(5)  # the same draws: the transforms do not depend on the channel count
    rgb = pipe(gray.expand(-1, -1, 3, -1, -1).contiguous())
    assert ours.shape == gray.shape
    torch.testing.assert_close(ours, rgb.mean(dim=2, keepdim=True), atol=1e-5, rtol=0)
    assert not torch.allclose(ours, gray)
